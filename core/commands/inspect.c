/*
 * core/commands/inspect.c: `mcrt inspect` (see inspect.h).
 */
#include "commands/inspect.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/checkpoint.h"
#include "mcrt/config.h"    /* MCRT_CFG_* */
#include "output/output.h"  /* output_json_string */
#include "util/exitcode.h"  /* EXIT_*, exit_code_for_status */

void cmd_inspect_usage(FILE *out)
{
    fputs("usage: mcrt inspect PATH [--json] [--ckpt-step N]\n"
          "\n"
          "What a checkpoint holds: its format, metadata (for Megatron checkpoints the\n"
          "iteration, checkpoint_version and the saved TP x PP layout), the hyper-parameters\n"
          "it carries (as Megatron argument names) and every tensor (name, dtype, shape,\n"
          "bytes) as the model sees it: MCore names, TP/PP shards merged.\n"
          "PATH: a .safetensors file, a model.safetensors.index.json, or a folder with\n"
          "either (an HF config.json beside the weights is read too); a Megatron --load\n"
          "folder (torch or torch_dist format), an iteration folder, or one torch.save file.\n"
          "\n"
          "  --json         one JSON object instead of the tables\n"
          "  --ckpt-step N  a Megatron --load folder's iteration N, not the tracker's\n", out);
}

static void shape_text(char *buf, size_t n, const ckpt_tensor *t)
{
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int32_t d = 0; d < t->ndim && o < n; d++)
        o += (size_t)snprintf(buf + o, n - o, "%s%" PRId64, d ? ", " : "", t->shape[d]);
    if (o < n)
        snprintf(buf + o, n - o, "]");
}

static void arg_text(FILE *out, const ckpt_arg *a, bool json)
{
    switch (a->type) {
    case MCRT_CFG_BOOL: fputs(a->i ? "true" : "false", out); break;
    case MCRT_CFG_INT: fprintf(out, "%" PRId64, a->i); break;
    case MCRT_CFG_FLOAT: fprintf(out, "%.9g", a->f); break;
    default:
        if (json)
            output_json_string(out, a->s ? a->s : "", a->s ? strlen(a->s) : 0);
        else
            fputs(a->s ? a->s : "", out);
        break;
    }
}

int cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    bool json = false;
    ckpt_open_options opt = {0};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            cmd_inspect_usage(stdout);
            return EXIT_OK;
        }
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--ckpt-step") == 0 || strncmp(argv[i], "--ckpt-step=", 12) == 0) {
            const char *v = argv[i][11] == '=' ? argv[i] + 12 : (i + 1 < argc ? argv[++i] : NULL);
            char *end = NULL;
            long long x = v != NULL ? strtoll(v, &end, 10) : -1;
            if (v == NULL || *v == '\0' || *end != '\0' || x < 0) {
                fprintf(stderr, "mcrt inspect: --ckpt-step takes an iteration number >= 0\n");
                return EXIT_USAGE;
            }
            opt.has_step = true;
            opt.step = x;
        }
        else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "mcrt inspect: unknown flag '%s' (see mcrt inspect --help)\n", argv[i]);
            return EXIT_USAGE;
        } else if (path == NULL)
            path = argv[i];
        else {
            fprintf(stderr, "mcrt inspect: one checkpoint at a time (got '%s' and '%s')\n", path,
                    argv[i]);
            return EXIT_USAGE;
        }
    }
    if (path == NULL) {
        fprintf(stderr, "mcrt inspect: no checkpoint given (see mcrt inspect --help)\n");
        return EXIT_USAGE;
    }
    ckpt *ck = NULL;
    ckpt_err err;
    mcrt_status st = ckpt_open_ex(path, &opt, &ck, &err);
    if (st != MCRT_OK) {
        fprintf(stderr, "mcrt inspect: %s\n", err.msg);
        return exit_code_for_status(st);
    }
    size_t n = ckpt_count(ck), na = ckpt_arg_count(ck);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += ckpt_at(ck, i)->nbytes;
    if (json) {
        fputs("{\"path\": ", stdout);
        output_json_string(stdout, path, strlen(path));
        fprintf(stdout, ", \"format\": \"%s\", \"tensors\": %zu, \"bytes\": %" PRIu64
                ", \"args\": {", ckpt_format_name(ck), n, total);
        for (size_t i = 0; i < na; i++) {
            const ckpt_arg *a = ckpt_arg_at(ck, i);
            fputs(i ? ", " : "", stdout);
            output_json_string(stdout, a->name, strlen(a->name));
            fputs(": ", stdout);
            arg_text(stdout, a, true);
        }
        fputs("}, \"metadata\": {", stdout);
        const char *mk, *mv;
        for (size_t i = 0; ckpt_metadata_at(ck, i, &mk, &mv); i++) {
            fputs(i ? ", " : "", stdout);
            output_json_string(stdout, mk, strlen(mk));
            fputs(": ", stdout);
            output_json_string(stdout, mv, strlen(mv));
        }
        fputs("}, \"table\": [", stdout);
        for (size_t i = 0; i < n; i++) {
            const ckpt_tensor *t = ckpt_at(ck, i);
            char shape[256];
            shape_text(shape, sizeof shape, t);
            fputs(i ? ",\n  {\"name\": " : "\n  {\"name\": ", stdout);
            output_json_string(stdout, t->name, strlen(t->name));
            fprintf(stdout, ", \"dtype\": \"%s\", \"shape\": %s, \"bytes\": %" PRIu64 "}",
                    ckpt_dtype_name(t->dtype), shape, t->nbytes);
        }
        fputs("\n]}\n", stdout);
    } else {
        printf("checkpoint  %s\nformat      %s\ntensors     %zu, %.1f MiB\n", path,
               ckpt_format_name(ck), n, (double)total / 1048576.0);
        const char *mk, *mv;
        for (size_t i = 0, shown = 0; ckpt_metadata_at(ck, i, &mk, &mv); i++) {
            if (strncmp(mk, "mcrt.arg.", 9) == 0)
                continue; /* listed below as hyper-parameters */
            if (shown++ == 0)
                printf("\nmetadata\n");
            printf("  %-38s %s\n", mk, mv);
        }
        if (na > 0) {
            printf("\nhyper-parameters (Megatron argument names, from %s)\n",
                   ckpt_arg_at(ck, 0)->source);
            for (size_t i = 0; i < na; i++) {
                const ckpt_arg *a = ckpt_arg_at(ck, i);
                printf("  %-38s ", a->name);
                arg_text(stdout, a, false);
                fputc('\n', stdout);
            }
        }
        printf("\n  %-60s %-5s %-20s %12s\n", "tensor", "dtype", "shape", "bytes");
        for (size_t i = 0; i < n; i++) {
            const ckpt_tensor *t = ckpt_at(ck, i);
            char shape[256];
            shape_text(shape, sizeof shape, t);
            printf("  %-60s %-5s %-20s %12" PRIu64 "\n", t->name, ckpt_dtype_name(t->dtype),
                   shape, t->nbytes);
        }
    }
    ckpt_close(ck);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "mcrt inspect: writing the output failed\n");
        return EXIT_CANTCREAT;
    }
    return EXIT_OK;
}
