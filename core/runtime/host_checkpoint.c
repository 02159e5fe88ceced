/*
 * core/runtime/host_checkpoint.c: "mcrt.host.checkpoint/1" for plugins.
 *
 * A thin adapter over core/checkpoint/: argument checks, the caller-sized
 * mcrt_tensor_info, and logging. Every error the checkpoint layer reports is
 * logged at ERROR through the calling plugin's host, so it is tagged with
 * the plugin and becomes its pipeline's last error. Two outcomes are not
 * errors and are not logged at ERROR: find's MCRT_E_NOTFOUND (callers probe
 * spellings) and view's MCRT_E_UNSUPPORTED (callers fall back to read).
 */
#include "runtime/host_checkpoint.h"

#include <stddef.h>
#include <string.h>

#include "checkpoint/checkpoint.h"
#include "mcrt/host.h" /* mcrt_host, MCRT_LOG_* */

static void report(const mcrt_host *h, int32_t level, const ckpt_err *e)
{
    if (h != NULL && h->log != NULL)
        h->log(h, level, "%s", e->msg);
}

static mcrt_status fail(const mcrt_host *h, mcrt_status s, const char *what)
{
    if (h != NULL && h->log != NULL)
        h->log(h, MCRT_LOG_ERROR, "checkpoint %s", what);
    return s;
}

/* Copy t into the caller's struct, as much as its struct_size covers. */
static mcrt_status fill_info(const mcrt_host *h, const ckpt_tensor *t, mcrt_tensor_info *out,
                             const char *fn)
{
    if (out == NULL)
        return MCRT_OK;
    uint32_t keep = out->struct_size;
    if (keep < sizeof out->struct_size) {
        if (h != NULL && h->log != NULL)
            h->log(h, MCRT_LOG_ERROR, "checkpoint %s: mcrt_tensor_info.struct_size is %u; set "
                   "it to sizeof(mcrt_tensor_info)", fn, (unsigned)keep);
        return MCRT_E_INVAL;
    }
    mcrt_tensor_info full;
    memset(&full, 0, sizeof full);
    full.dtype = t->dtype;
    full.ndim = t->ndim;
    for (int32_t i = 0; i < t->ndim; i++)
        full.shape[i] = t->shape[i];
    full.name = t->name;
    full.nbytes = t->nbytes;
    size_t n = keep < sizeof full ? keep : sizeof full;
    memcpy(out, &full, n);
    out->struct_size = keep;
    return MCRT_OK;
}

static mcrt_status svc_open_ex(const mcrt_host *h, const char *path,
                               const mcrt_checkpoint_open_options *opt, mcrt_checkpoint **out)
{
    if (out == NULL)
        return fail(h, MCRT_E_INVAL, "open: no result pointer");
    ckpt_open_options o = {0};
    if (opt != NULL) {
        if (opt->struct_size < sizeof opt->struct_size + sizeof opt->has_step)
            return fail(h, MCRT_E_INVAL, "open_ex: mcrt_checkpoint_open_options.struct_size is "
                        "too small; set it to sizeof(mcrt_checkpoint_open_options)");
        if (opt->has_step && opt->struct_size >= offsetof(mcrt_checkpoint_open_options, step) +
                                                      sizeof opt->step) {
            o.has_step = true;
            o.step = opt->step;
        }
    }
    ckpt_err e;
    mcrt_status s = ckpt_open_ex(path, &o, out, &e);
    if (s != MCRT_OK)
        report(h, MCRT_LOG_ERROR, &e);
    else if (h != NULL && h->log != NULL)
        h->log(h, MCRT_LOG_DEBUG, "checkpoint %s: %s, %zu tensors", path, ckpt_format_name(*out),
               ckpt_count(*out));
    return s;
}

static mcrt_status svc_open(const mcrt_host *h, const char *path, mcrt_checkpoint **out)
{
    return svc_open_ex(h, path, NULL, out);
}

static void svc_close(const mcrt_host *h, mcrt_checkpoint *ck)
{
    if (ck == NULL)
        return;
    if (!ckpt_valid(ck)) {
        fail(h, MCRT_E_INVAL, "close: not an open checkpoint");
        return;
    }
    ckpt_close(ck);
}

static size_t svc_count(const mcrt_host *h, const mcrt_checkpoint *ck)
{
    (void)h;
    return ckpt_count(ck);
}

static mcrt_status svc_info_at(const mcrt_host *h, const mcrt_checkpoint *ck, size_t i,
                               mcrt_tensor_info *out)
{
    if (!ckpt_valid(ck))
        return fail(h, MCRT_E_INVAL, "info_at: not an open checkpoint");
    if (out == NULL)
        return fail(h, MCRT_E_INVAL, "info_at: no result pointer");
    const ckpt_tensor *t = ckpt_at(ck, i);
    if (t == NULL) {
        if (h != NULL && h->log != NULL)
            h->log(h, MCRT_LOG_ERROR, "checkpoint info_at: index %zu is out of range (%zu "
                   "tensors)", i, ckpt_count(ck));
        return MCRT_E_RANGE;
    }
    return fill_info(h, t, out, "info_at");
}

static mcrt_status svc_find(const mcrt_host *h, const mcrt_checkpoint *ck, const char *name,
                            mcrt_tensor_info *out)
{
    if (!ckpt_valid(ck))
        return fail(h, MCRT_E_INVAL, "find: not an open checkpoint");
    if (name == NULL)
        return fail(h, MCRT_E_INVAL, "find: no tensor name");
    const ckpt_tensor *t = ckpt_find(ck, name);
    if (t == NULL)
        return MCRT_E_NOTFOUND; /* not logged: callers probe spellings */
    return fill_info(h, t, out, "find");
}

static mcrt_status svc_read(const mcrt_host *h, const mcrt_checkpoint *ck, const char *name,
                            int32_t dim, int64_t start, int64_t len, int32_t dtype, void *dst,
                            size_t dst_size)
{
    ckpt_err e;
    const ckpt_tensor *t;
    mcrt_status s = ckpt_lookup(ck, name, &t, &e);
    if (s == MCRT_OK)
        s = ckpt_read(ck, t, dim, start, len, dtype, dst, dst_size, NULL, &e);
    if (s != MCRT_OK)
        report(h, MCRT_LOG_ERROR, &e);
    return s;
}

static mcrt_status svc_view(const mcrt_host *h, const mcrt_checkpoint *ck, const char *name,
                            const void **data, mcrt_tensor_info *out)
{
    ckpt_err e;
    const ckpt_tensor *t;
    if (data == NULL)
        return fail(h, MCRT_E_INVAL, "view: no data pointer");
    *data = NULL;
    mcrt_status s = ckpt_lookup(ck, name, &t, &e);
    if (s == MCRT_OK)
        s = ckpt_view(ck, t, data, &e);
    if (s == MCRT_E_UNSUPPORTED) {
        report(h, MCRT_LOG_DEBUG, &e);
        return s;
    }
    if (s != MCRT_OK) {
        report(h, MCRT_LOG_ERROR, &e);
        return s;
    }
    s = fill_info(h, t, out, "view");
    if (s != MCRT_OK)
        *data = NULL;
    return s;
}

static mcrt_status svc_arg(const mcrt_host *h, const mcrt_checkpoint *ck, const char *name,
                           mcrt_checkpoint_arg *out)
{
    if (!ckpt_valid(ck))
        return fail(h, MCRT_E_INVAL, "arg: not an open checkpoint");
    if (name == NULL || out == NULL)
        return fail(h, MCRT_E_INVAL, "arg: no name or no result pointer");
    uint32_t keep = out->struct_size;
    if (keep < sizeof out->struct_size) {
        if (h != NULL && h->log != NULL)
            h->log(h, MCRT_LOG_ERROR, "checkpoint arg: mcrt_checkpoint_arg.struct_size is %u; "
                   "set it to sizeof(mcrt_checkpoint_arg)", (unsigned)keep);
        return MCRT_E_INVAL;
    }
    const ckpt_arg *a = ckpt_find_arg(ck, name);
    if (a == NULL)
        return MCRT_E_NOTFOUND;
    mcrt_checkpoint_arg full;
    memset(&full, 0, sizeof full);
    full.type = a->type;
    full.i = a->i;
    full.f = a->f;
    full.s = a->s;
    full.source = a->source;
    full.origin = a->origin;
    memcpy(out, &full, keep < sizeof full ? keep : sizeof full);
    out->struct_size = keep;
    return MCRT_OK;
}

static const mcrt_checkpoint_services services = {
    .struct_size = (uint32_t)sizeof(mcrt_checkpoint_services),
    .open = svc_open,
    .close = svc_close,
    .count = svc_count,
    .info_at = svc_info_at,
    .find = svc_find,
    .read = svc_read,
    .view = svc_view,
    .arg = svc_arg,
    .open_ex = svc_open_ex,
};

const mcrt_checkpoint_services *checkpoint_services(void)
{
    return &services;
}
