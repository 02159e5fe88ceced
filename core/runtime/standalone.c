/*
 * core/runtime/standalone.c: one tokenizer instance outside a pipeline (see
 * standalone.h). The plugin is chosen and validated as a pipeline does it.
 */
#include "runtime/standalone.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "runtime/model_group.h"
#include "runtime/pipeline.h" /* pipeline_choose_plugin */
#include "util/exitcode.h" /* exit_code_for_status, EXIT_* */

standalone_tokenizer *standalone_tokenizer_create(cfg_tree *cfg, registry *reg,
                                                  const log_sink *log, char *err,
                                                  size_t err_size, int *exit_code)
{
    const char *kn = kind_name(MCRT_KIND_TOKENIZER);
    mcrt_config *sec = cfg_section(cfg, kn);
    plugin_entry *pe =
        pipeline_choose_plugin(cfg, reg, MCRT_KIND_TOKENIZER, err, err_size, exit_code);
    if (pe == NULL)
        return NULL;
    standalone_tokenizer *t = calloc(1, sizeof *t);
    char tag[96];
    snprintf(tag, sizeof tag, "%s/%s", kn, pe->name);
    if (t == NULL || (t->hctx = host_ctx_create(log, tag, NULL)) == NULL) {
        free(t);
        snprintf(err, err_size, "out of memory");
        *exit_code = EXIT_UNAVAILABLE;
        return NULL;
    }
    t->pe = pe;
    t->iface = pe->iface;
    void *self = NULL;
    mcrt_status st = t->iface->create(&t->hctx->host, sec, &self);
    if (st == MCRT_OK && self == NULL)
        st = MCRT_E_INTERNAL;
    if (st != MCRT_OK) {
        snprintf(err, err_size, "%s: cannot create the tokenizer: %s", tag, mcrt_status_str(st));
        *exit_code = exit_code_for_status(st);
        host_ctx_destroy(t->hctx);
        free(t);
        return NULL;
    }
    t->self = self;
    pe->instances++;
    return t;
}

void standalone_tokenizer_destroy(standalone_tokenizer *t)
{
    if (t == NULL)
        return;
    if (t->self != NULL) {
        t->iface->destroy(t->self);
        t->pe->instances--;
    }
    host_ctx_destroy(t->hctx);
    free(t);
}

standalone_model *standalone_model_create(cfg_tree *cfg, registry *reg, const log_sink *log,
                                          char *err, size_t err_size, int *exit_code)
{
    plugin_entry *pe =
        pipeline_choose_plugin(cfg, reg, MCRT_KIND_MODEL, err, err_size, exit_code);
    if (pe == NULL)
        return NULL;
    int64_t tp = 1, pp = 1, threads = 0;
    const mcrt_config *par = cfg_section(cfg, "parallel");
    const mcrt_config *rt = cfg_section(cfg, "runtime");
    if (cfg_get_int(par, "tensor_model_parallel_size", &tp) != MCRT_OK) tp = 1;
    if (cfg_get_int(par, "pipeline_model_parallel_size", &pp) != MCRT_OK) pp = 1;
    if (cfg_get_int(rt, "threads", &threads) != MCRT_OK) threads = 0;
    if (threads == 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        threads = nc > 0 ? nc : 1;
    }
    standalone_model *m = calloc(1, sizeof *m);
    if (m == NULL) {
        snprintf(err, err_size, "out of memory");
        *exit_code = EXIT_UNAVAILABLE;
        return NULL;
    }
    m->pe = pe;
    mcrt_status st = model_group_create(NULL, log, pe, cfg_section(cfg, "model"), (int)tp,
                                        (int)pp, (int)((threads + tp * pp - 1) / (tp * pp)),
                                        &m->group);
    if (st != MCRT_OK) {
        snprintf(err, err_size, "model/%s: cannot create the model: %s", pe->name,
                 mcrt_status_str(st));
        *exit_code = exit_code_for_status(st);
        free(m);
        return NULL;
    }
    return m;
}

void standalone_model_destroy(standalone_model *m)
{
    if (m == NULL)
        return;
    model_group_destroy(m->group);
    free(m);
}
