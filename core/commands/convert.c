/*
 * core/commands/convert.c: `mcrt convert PATH OUT` (see convert.h).
 *
 * Whatever the core reads (safetensors, a Megatron torch or torch_dist
 * checkpoint with any TP/PP layout) becomes OUT/model.safetensors: the
 * tensors as a model sees them (MCore TE names, shards merged), sorted by
 * name, in the stored dtype or the one asked for. The hyper-parameters the
 * checkpoint carries go into its `__metadata__` as "mcrt.arg.<name>" with a
 * typed value ("int:64", "float:1e-05", "bool:true", "str:RMSNorm") and
 * "mcrt.arg_origin" (model_config | training_args), so the safetensors
 * reader gives them back as the same arguments: `--use-checkpoint-args`
 * works on the converted file as on the original. The source's metadata
 * is kept as "mcrt.source.<key>".
 *
 * The file is written to OUT/model.safetensors.tmp and renamed when
 * complete; an existing model.safetensors is never overwritten.
 */
#include "commands/convert.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "mcrt/config.h"    /* MCRT_CFG_* */
#include "output/output.h"  /* output_json_string */
#include "util/exitcode.h"  /* EXIT_*, exit_code_for_status */

void cmd_convert_usage(FILE *out)
{
    fputs("usage: mcrt convert PATH OUT [--dtype keep|fp32|bf16|fp16] [--ckpt-step N]\n"
          "\n"
          "Write any checkpoint mcrt reads (safetensors; a Megatron-LM torch or torch_dist\n"
          "checkpoint of any TP/PP layout, or one torch.save file) as OUT/model.safetensors:\n"
          "MCore names, shards merged, the hyper-parameters it carries kept in its metadata\n"
          "(so --use-checkpoint-args works on it). OUT is created when missing; an existing\n"
          "OUT/model.safetensors is not overwritten.\n"
          "\n"
          "  --dtype D      floating-point tensors as D (default keep: as stored)\n"
          "  --ckpt-step N  a Megatron --load folder's iteration N, not the tracker's\n", out);
}

static const char *st_dtype(int32_t d)
{
    return ckpt_dtype_name(d); /* safetensors spells them as mcrt does */
}

static bool is_float(int32_t d)
{
    return d == MCRT_DTYPE_F32 || d == MCRT_DTYPE_F16 || d == MCRT_DTYPE_BF16;
}

/* One typed metadata value: "int:64". */
static void arg_value(char *buf, size_t n, const ckpt_arg *a)
{
    switch (a->type) {
    case MCRT_CFG_BOOL: snprintf(buf, n, "bool:%s", a->i ? "true" : "false"); break;
    case MCRT_CFG_INT: snprintf(buf, n, "int:%" PRId64, a->i); break;
    case MCRT_CFG_FLOAT: snprintf(buf, n, "float:%.17g", a->f); break;
    default: snprintf(buf, n, "str:%s", a->s != NULL ? a->s : ""); break;
    }
}

static void json_pair(FILE *f, bool *first, const char *k, const char *v)
{
    fputs(*first ? "" : ",", f);
    *first = false;
    output_json_string(f, k, strlen(k));
    fputc(':', f);
    output_json_string(f, v, strlen(v));
}

/* The header JSON (without padding) to f; data offsets from dtype sizes. */
static void write_header(FILE *f, const ckpt *ck, const char *src, int32_t to)
{
    fputs("{\"__metadata__\":{", f);
    bool first = true;
    json_pair(f, &first, "format", "pt");
    json_pair(f, &first, "mcrt.converted_from", src);
    json_pair(f, &first, "mcrt.source_format", ckpt_format_name(ck));
    const char *mk, *mv;
    for (size_t i = 0; ckpt_metadata_at(ck, i, &mk, &mv); i++) {
        if (strncmp(mk, "mcrt.", 5) == 0 || strcmp(mk, "format") == 0)
            continue;
        char key[600];
        snprintf(key, sizeof key, "mcrt.source.%s", mk);
        json_pair(f, &first, key, mv);
    }
    size_t na = ckpt_arg_count(ck);
    for (size_t i = 0; i < na; i++) {
        const ckpt_arg *a = ckpt_arg_at(ck, i);
        char key[600], val[1200];
        snprintf(key, sizeof key, "mcrt.arg.%s", a->name);
        arg_value(val, sizeof val, a);
        json_pair(f, &first, key, val);
        if (i == 0) {
            json_pair(f, &first, "mcrt.arg_origin",
                      a->origin == MCRT_CHECKPOINT_ARG_TRAINING_ARGS ? "training_args"
                                                                     : "model_config");
            if (a->source != NULL)
                json_pair(f, &first, "mcrt.arg_source", a->source);
        }
    }
    fputc('}', f);
    uint64_t off = 0;
    for (size_t i = 0; i < ckpt_count(ck); i++) {
        const ckpt_tensor *t = ckpt_at(ck, i);
        int32_t d = to != 0 && is_float(t->dtype) ? to : t->dtype;
        uint64_t bytes = t->nelem * mcrt_dtype_size(d);
        fputc(',', f);
        output_json_string(f, t->name, strlen(t->name));
        fprintf(f, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype(d));
        for (int32_t k = 0; k < t->ndim; k++)
            fprintf(f, "%s%" PRId64, k ? "," : "", t->shape[k]);
        fprintf(f, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off, off + bytes);
        off += bytes;
    }
    fputc('}', f);
}

int cmd_convert(int argc, char **argv)
{
    const char *src = NULL, *out_dir = NULL;
    int32_t to = 0;
    ckpt_open_options opt = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cmd_convert_usage(stdout);
            return EXIT_OK;
        }
        if (strcmp(a, "--dtype") == 0 || strcmp(a, "--ckpt-step") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "mcrt convert: %s needs a value\n", a);
                return EXIT_USAGE;
            }
            const char *v = argv[++i];
            if (strcmp(a, "--dtype") == 0) {
                if (strcmp(v, "keep") == 0) to = 0;
                else if (strcmp(v, "fp32") == 0) to = MCRT_DTYPE_F32;
                else if (strcmp(v, "bf16") == 0) to = MCRT_DTYPE_BF16;
                else if (strcmp(v, "fp16") == 0) to = MCRT_DTYPE_F16;
                else {
                    fprintf(stderr, "mcrt convert: --dtype '%s': expected keep, fp32, bf16 or "
                            "fp16\n", v);
                    return EXIT_USAGE;
                }
            } else {
                char *end = NULL;
                long long x = strtoll(v, &end, 10);
                if (*v == '\0' || *end != '\0' || x < 0) {
                    fprintf(stderr, "mcrt convert: --ckpt-step takes an iteration number >= "
                            "0, not '%s'\n", v);
                    return EXIT_USAGE;
                }
                opt.has_step = true;
                opt.step = x;
            }
            continue;
        }
        if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "mcrt convert: unknown flag '%s' (see mcrt convert --help)\n", a);
            return EXIT_USAGE;
        }
        if (src == NULL)
            src = a;
        else if (out_dir == NULL)
            out_dir = a;
        else {
            fprintf(stderr, "mcrt convert: one checkpoint and one output folder (extra '%s')\n",
                    a);
            return EXIT_USAGE;
        }
    }
    if (src == NULL || out_dir == NULL) {
        fprintf(stderr, "mcrt convert: needs PATH and OUT (see mcrt convert --help)\n");
        return EXIT_USAGE;
    }
    ckpt *ck = NULL;
    ckpt_err err;
    mcrt_status st = ckpt_open_ex(src, &opt, &ck, &err);
    if (st != MCRT_OK) {
        fprintf(stderr, "mcrt convert: %s\n", err.msg);
        return exit_code_for_status(st);
    }
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "mcrt convert: %s: cannot create the folder: %s\n", out_dir,
                strerror(errno));
        ckpt_close(ck);
        return EXIT_CANTCREAT;
    }
    size_t ol = strlen(out_dir);
    char *final = malloc(ol + 32), *tmp = malloc(ol + 32);
    if (final == NULL || tmp == NULL) {
        free(final);
        free(tmp);
        ckpt_close(ck);
        fprintf(stderr, "mcrt convert: out of memory\n");
        return EXIT_UNAVAILABLE;
    }
    snprintf(final, ol + 32, "%s/model.safetensors", out_dir);
    snprintf(tmp, ol + 32, "%s/model.safetensors.tmp", out_dir);
    int code = EXIT_OK;
    struct stat sb;
    FILE *f = NULL;
    char *hdr = NULL;
    size_t hlen = 0;
    unsigned char *buf = NULL;
    if (stat(final, &sb) == 0) {
        fprintf(stderr, "mcrt convert: %s exists; remove it or choose another OUT\n", final);
        code = EXIT_CANTCREAT;
        goto done;
    }
    /* the header, padded with spaces to 8 bytes (safetensors' alignment) */
    FILE *mf = open_memstream(&hdr, &hlen);
    if (mf == NULL) {
        code = EXIT_UNAVAILABLE;
        goto done;
    }
    write_header(mf, ck, src, to);
    while (ftell(mf) % 8 != 0)
        fputc(' ', mf);
    if (fclose(mf) != 0) {
        code = EXIT_UNAVAILABLE;
        goto done;
    }
    f = fopen(tmp, "wb");
    if (f == NULL) {
        fprintf(stderr, "mcrt convert: %s: cannot create: %s\n", tmp, strerror(errno));
        code = EXIT_CANTCREAT;
        goto done;
    }
    unsigned char len8[8];
    for (int k = 0; k < 8; k++)
        len8[k] = (unsigned char)((uint64_t)hlen >> (8 * k));
    bool ok = fwrite(len8, 1, 8, f) == 8 && fwrite(hdr, 1, hlen, f) == hlen;
    uint64_t total = 0;
    for (size_t i = 0; ok && i < ckpt_count(ck); i++) {
        const ckpt_tensor *t = ckpt_at(ck, i);
        int32_t d = to != 0 && is_float(t->dtype) ? to : t->dtype;
        size_t bytes = (size_t)(t->nelem * mcrt_dtype_size(d));
        unsigned char *nb = realloc(buf, bytes ? bytes : 1);
        if (nb == NULL) {
            fprintf(stderr, "mcrt convert: out of memory for tensor '%s' (%zu bytes)\n",
                    t->name, bytes);
            code = EXIT_UNAVAILABLE;
            goto done;
        }
        buf = nb;
        st = ckpt_read(ck, t, -1, 0, 0, d, buf, bytes, NULL, &err);
        if (st != MCRT_OK) {
            fprintf(stderr, "mcrt convert: %s\n", err.msg);
            code = exit_code_for_status(st);
            goto done;
        }
        ok = fwrite(buf, 1, bytes, f) == bytes;
        total += bytes;
    }
    if (!ok || fflush(f) != 0 || ferror(f)) {
        fprintf(stderr, "mcrt convert: writing %s failed: %s\n", tmp, strerror(errno));
        code = EXIT_CANTCREAT;
        goto done;
    }
    if (fclose(f) != 0) {
        f = NULL;
        fprintf(stderr, "mcrt convert: writing %s failed: %s\n", tmp, strerror(errno));
        code = EXIT_CANTCREAT;
        goto done;
    }
    f = NULL;
    if (rename(tmp, final) != 0) {
        fprintf(stderr, "mcrt convert: %s: cannot rename to %s: %s\n", tmp, final,
                strerror(errno));
        code = EXIT_CANTCREAT;
        goto done;
    }
    printf("wrote %s: %zu tensors, %.1f MiB, %zu hyper-parameters from %s (%s)\n", final,
           ckpt_count(ck), (double)total / 1048576.0, ckpt_arg_count(ck), src,
           ckpt_format_name(ck));
    if (ckpt_arg_count(ck) > 0 &&
        ckpt_arg_at(ck, 0)->origin == MCRT_CHECKPOINT_ARG_TRAINING_ARGS)
        printf("load it with: mcrt run CONFIG --load %s --use-checkpoint-args\n", out_dir);
done:
    if (f != NULL) {
        fclose(f);
        unlink(tmp);
    } else if (code != EXIT_OK) {
        unlink(tmp);
    }
    free(buf);
    free(hdr);
    free(final);
    free(tmp);
    ckpt_close(ck);
    return code;
}
