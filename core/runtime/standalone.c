/*
 * core/runtime/standalone.c: one tokenizer instance outside a pipeline (see
 * standalone.h). The choice and validation mirror pipeline.c's `choose`.
 */
#include "runtime/standalone.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/exitcode.h" /* exit_code_for_status, EXIT_* */

standalone_tokenizer *standalone_tokenizer_create(cfg_tree *cfg, registry *reg,
                                                  const log_sink *log, char *err,
                                                  size_t err_size, int *exit_code)
{
    const char *kn = kind_name(MCRT_KIND_TOKENIZER);
    mcrt_config *sec = cfg_section(cfg, kn);
    const char *name = "auto";
    if (cfg_get_string(sec, "name", &name) != MCRT_OK || name == NULL)
        name = "auto";
    plugin_entry *pe = registry_select(reg, MCRT_KIND_TOKENIZER, name, sec, err, err_size,
                                       exit_code);
    if (pe == NULL)
        return NULL;
    const mcrt_config_key *sets[2];
    size_t n = 0;
    sets[n++] = cfg_core_keys(kn);
    if (pe->desc->config_keys != NULL)
        sets[n++] = pe->desc->config_keys;
    cfg_diag d;
    memset(&d, 0, sizeof d);
    if (cfg_validate_section(cfg, kn, sets, n, &d) != 0) {
        snprintf(err, err_size, "%s", d.msg);
        *exit_code = d.exit_code ? d.exit_code : EXIT_CONFIG;
        return NULL;
    }
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
