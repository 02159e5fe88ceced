/* core/output/output.c: see output.h. */
#include "output/output.h"

#include <math.h>
#include <string.h>

#include "mcrt/request.h"

int output_format_parse(const char *s)
{
    if (strcmp(s, "text") == 0) return OUTPUT_TEXT;
    if (strcmp(s, "json") == 0) return OUTPUT_JSON;
    if (strcmp(s, "jsonl") == 0) return OUTPUT_JSONL;
    return -1;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned min;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; min = 0x10000; }
    else return 0;
    if (n < len) return 0;
    unsigned cp = c & (0xFFu >> (len + 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

void output_json_string(FILE *out, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', out);
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c == '"' || c == '\\') { fputc('\\', out); fputc((int)c, out); i++; continue; }
        if (c < 0x20 || c == 0x7F) {
            switch (c) {
            case '\n': fputs("\\n", out); break;
            case '\t': fputs("\\t", out); break;
            case '\r': fputs("\\r", out); break;
            default: fprintf(out, "\\u%04x", c); break;
            }
            i++;
            continue;
        }
        size_t k = utf8_seq(s + i, len - i);
        if (k == 0) { fputs("\\ufffd", out); i++; continue; }
        fwrite(s + i, 1, k, out);
        i += k;
    }
    fputc('"', out);
}

static const char *status_name(uint32_t s)
{
    switch (s) {
    case MCRT_REQ_WAITING_IN_QUEUE: return "WAITING_IN_QUEUE";
    case MCRT_REQ_ACTIVE_AND_GENERATING_TOKENS: return "ACTIVE_AND_GENERATING_TOKENS";
    case MCRT_REQ_ACTIVE_BUT_NOT_GENERATING_TOKENS: return "ACTIVE_BUT_NOT_GENERATING_TOKENS";
    case MCRT_REQ_COMPLETED: return "COMPLETED";
    case MCRT_REQ_FAILED: return "FAILED";
    default: return "UNKNOWN";
    }
}

static const char *finish_name(uint32_t f)
{
    switch (f) {
    case MCRT_FINISH_NONE: return NULL;
    case MCRT_FINISH_LENGTH: return "length";
    case MCRT_FINISH_EOD: return "eod";
    case MCRT_FINISH_STOP: return "stop";
    case MCRT_FINISH_ERROR: return "error";
    case MCRT_FINISH_CANCELLED: return "cancelled";
    default: return "unknown";
    }
}

static void json_float(FILE *out, float v)
{
    if (isfinite(v)) fprintf(out, "%.9g", (double)v);
    else fputs(v < 0 ? "-1e999" : "null", out); /* -inf log prob: JSON has no inf */
}

static void json_floats(FILE *out, const float *v, size_t n)
{
    fputc('[', out);
    for (size_t i = 0; i < n; i++) {
        if (i) fputs(", ", out);
        json_float(out, v[i]);
    }
    fputc(']', out);
}

static void json_ints(FILE *out, const int32_t *v, size_t n)
{
    fputc('[', out);
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s%d", i ? ", " : "", v[i]);
    fputc(']', out);
}

/* One request: the seed's fields (id, input_prompt, generated_text,
 * generated_tokens), then finish_reason, the log probs and top-N when asked,
 * segments when asked, error when it failed, and status, prompt_tokens and
 * latency (docs/cli.md lists them). */
static void write_json_object(FILE *out, const pipeline_result *r)
{
    fprintf(out, "{\"id\": %llu", (unsigned long long)r->id);
    if (r->custom_id != NULL) {
        fputs(", \"custom_id\": ", out);
        output_json_string(out, r->custom_id, strlen(r->custom_id));
    }
    fputs(", \"input_prompt\": ", out);
    output_json_string(out, r->prompt, r->prompt_len);
    fputs(", \"generated_text\": ", out);
    output_json_string(out, r->text, r->text_len);
    fputs(", \"generated_tokens\": ", out);
    json_ints(out, r->tokens, r->n_tokens);
    const char *fin = finish_name(r->finish_reason);
    fprintf(out, ", \"finish_reason\": ");
    if (fin) fprintf(out, "\"%s\"", fin);
    else fputs("null", out);
    if (r->params->return_log_probs) {
        fputs(", \"prompt_log_probs\": ", out);
        json_floats(out, r->prompt_logprobs, r->prompt_logprobs ? r->n_prompt_logprobs : 0);
        fputs(", \"generated_log_probs\": ", out);
        json_floats(out, r->logprobs, r->logprobs ? r->n_tokens : 0);
    }
    if (r->params->top_n_logprobs > 0) {
        fputs(", \"top_n_logprobs\": [", out);
        size_t e = 0;
        const char *txt = r->top_text;
        for (size_t i = 0; i < r->n_top_positions; i++) {
            fputs(i ? ", [" : "[", out);
            for (size_t j = 0; j < r->top_counts[i]; j++, e++) {
                fprintf(out, "%s{\"token\": %d, \"text\": ", j ? ", " : "", r->top_ids[e]);
                output_json_string(out, txt, r->top_lens[e]);
                txt += r->top_lens[e];
                fputs(", \"logprob\": ", out);
                json_float(out, r->top_logprobs[e]);
                fputc('}', out);
            }
            fputc(']', out);
        }
        fputc(']', out);
    }
    if (r->segments != NULL) {
        fputs(", \"generated_segments\": [", out);
        const char *s = r->segments;
        for (size_t i = 0; i < r->n_segments; i++) {
            size_t l = r->segment_lens[i];
            if (i) fputs(", ", out);
            output_json_string(out, s, l);
            s += l;
        }
        fputc(']', out);
    }
    if (r->error) {
        fputs(", \"error\": ", out);
        output_json_string(out, r->error, strlen(r->error));
    }
    fprintf(out, ", \"status\": \"%s\"", status_name(r->status));
    fputs(", \"prompt_tokens\": ", out);
    json_ints(out, r->prompt_tokens, r->n_prompt_tokens);
    if (r->done_ns > r->arrival_ns)
        fprintf(out, ", \"latency\": %.6f", (double)(r->done_ns - r->arrival_ns) / 1e9);
    fputc('}', out);
}

int output_write(FILE *out, output_format fmt, const pipeline *p)
{
    size_t n = pipeline_result_count(p);
    if (fmt == OUTPUT_JSON)
        fputs("[\n", out);
    for (size_t i = 0; i < n; i++) {
        pipeline_result r;
        pipeline_result_at(p, i, &r);
        switch (fmt) {
        case OUTPUT_JSON:
            fputs("  ", out);
            write_json_object(out, &r);
            fputs(i + 1 < n ? ",\n" : "\n", out);
            break;
        case OUTPUT_JSONL:
            write_json_object(out, &r);
            fputc('\n', out);
            break;
        case OUTPUT_TEXT:
        default:
            /* the seed's example script: id, input_prompt, generated_text,
             * generated_tokens, one request after another */
            fprintf(out, "id: %llu\n", (unsigned long long)r.id);
            if (r.custom_id) fprintf(out, "custom_id: %s\n", r.custom_id);
            fputs("input_prompt: ", out);
            fwrite(r.prompt, 1, r.prompt_len, out);
            fputs("\ngenerated_text: ", out);
            fwrite(r.text, 1, r.text_len, out);
            fputs("\ngenerated_tokens: ", out);
            json_ints(out, r.tokens, r.n_tokens);
            fprintf(out, "\nfinish_reason: %s\n",
                    finish_name(r.finish_reason) ? finish_name(r.finish_reason) : "none");
            if (r.error) fprintf(out, "error: %s\n", r.error);
            if (i + 1 < n) fputc('\n', out);
            break;
        }
    }
    if (fmt == OUTPUT_JSON)
        fputs("]\n", out);
    fflush(out);
    return ferror(out) ? -1 : 0;
}
