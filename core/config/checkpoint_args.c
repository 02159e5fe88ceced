/*
 * core/config/checkpoint_args.c: --use-checkpoint-args for the host's own
 * keys (config.h, cfg_apply_checkpoint_args).
 *
 * Megatron's load_args_from_checkpoint (reference §3.5) forces the
 * tokenizer type from the saved args. The tokenizer plugin is chosen by the
 * host before any model runs, so the host applies that one rule: with
 * model.use_checkpoint_args, tokenizer.tokenizer_type becomes the args'
 * `tokenizer_type` (source "checkpoint <file>: args"). The model's own
 * hyper-parameters are the model plugin's business (plugins/model-gpt/
 * config.c). `tokenizer_model` and vocabulary paths are not taken: they
 * name files on the training machine (Megatron's --no-use-tokenizer-model-
 * from-checkpoint-args behaviour; docs/checkpoints.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/checkpoint.h"
#include "config/internal.h"

int cfg_apply_checkpoint_args(cfg_tree *t, cfg_diag *diag)
{
    const mcrt_config *model = cfg_section(t, "model");
    bool use = false;
    const char *load = NULL;
    if (model == NULL || cfg_get_bool(model, "use_checkpoint_args", &use) != MCRT_OK || !use ||
        cfg_get_string(model, "load", &load) != MCRT_OK || load == NULL || load[0] == '\0')
        return 0;
    /* Plugin sections resolve their paths when the plugin validates them,
     * later: resolve model.load here as that will (config.h). */
    char path[4096];
    const cfg_entry *le = cfg_entry_find(model, "load");
    const char *home = getenv("HOME");
    if (strncmp(load, "~/", 2) == 0 && le != NULL && le->src == CFG_SRC_YAML && home != NULL) {
        snprintf(path, sizeof path, "%s/%s", home, load + 2);
        load = path;
    } else if (load[0] != '/' && le != NULL && le->src == CFG_SRC_YAML && cfg_file(t) != NULL) {
        const char *f = cfg_file(t), *slash = strrchr(f, '/');
        if (slash != NULL) {
            snprintf(path, sizeof path, "%.*s/%s", (int)(slash - f), f, load);
            load = path;
        }
    }
    ckpt_open_options opt = {0};
    int64_t step = -1;
    if (cfg_get_int(model, "ckpt_step", &step) == MCRT_OK && step >= 0) {
        opt.has_step = true;
        opt.step = step;
    }
    ckpt *ck = NULL;
    ckpt_err err;
    if (ckpt_open_ex(load, &opt, &ck, &err) != MCRT_OK)
        return 0; /* the model plugin reports it, in its context */
    const ckpt_arg *a = ckpt_find_arg(ck, "tokenizer_type");
    int rc = 0;
    if (a != NULL && a->origin == MCRT_CHECKPOINT_ARG_TRAINING_ARGS &&
        a->type == MCRT_CFG_STRING && a->s != NULL && a->s[0] != '\0') {
        mcrt_config *tok = cfg_section(t, "tokenizer");
        const char *before = NULL;
        if (tok != NULL && cfg_get_string(tok, "tokenizer_type", &before) == MCRT_OK &&
            before != NULL && strcmp(before, a->s) != 0 && cfg_log_level(t) >= MCRT_LOG_WARN)
            fprintf(stderr, "mcrt: warn: tokenizer.tokenizer_type = %s is replaced by the "
                    "checkpoint's args (%s): --use-checkpoint-args forces it, as Megatron "
                    "does\n", before, a->s);
        cfg_entry *e = tok != NULL ? cfg_entry_find(tok, "tokenizer_type") : NULL;
        if (tok != NULL && e == NULL)
            e = cfg_entry_add(tok, "tokenizer_type");
        if (e == NULL || cfg_entry_set_scalar(e, a->s, CFG_SRC_CHECKPOINT, a->source) < 0)
            rc = cfg_fail(diag, CFG_EXIT_SOFTWARE, "out of memory");
        else
            rc = cfg_validate_core(t, diag);
    }
    ckpt_close(ck);
    return rc;
}
