/*
 * kernels/cpu/ctx.c: the CPU execution context (thread pool, ISA level,
 * scratch), CPU feature detection, and the two op tables.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if MK_HAVE_OPENBLAS
#include <cblas.h> /* openblas_set_num_threads */
#endif

#include "internal.h" /* struct mk_ctx, prototypes */

int mk_cpu_detect_isa(void)
{
#if MK_HAVE_AVX2 && (defined(__x86_64__) || defined(__i386__))
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return MK_ISA_PORTABLE;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!(fma && osxsave && avx && f16c))
        return MK_ISA_PORTABLE;
    /* the OS must save the YMM state (XCR0 bits 1 and 2) */
    unsigned xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    (void)xhi;
    if ((xlo & 6u) != 6u)
        return MK_ISA_PORTABLE;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !((b >> 5) & 1)) /* AVX2 */
        return MK_ISA_PORTABLE;
    return MK_ISA_AVX2;
#else
    return MK_ISA_PORTABLE;
#endif
}

int mk_cpu_has_blas(void)
{
    return MK_HAVE_OPENBLAS;
}

mcrt_status mk_cpu_ctx_create(int n_threads, unsigned flags, mk_ctx **out)
{
    if (!out)
        return MCRT_E_INVAL;
    if (n_threads < 1) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)n : 1;
    }
    mk_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return MCRT_E_NOMEM;
    ctx->device = MCRT_DEVICE_CPU;
    ctx->isa = mk_cpu_detect_isa();
    const char *env = getenv("MCRT_KERNELS_ISA");
    if ((flags & MK_CPU_PORTABLE) || (env && strcmp(env, "portable") == 0))
        ctx->isa = MK_ISA_PORTABLE;
    ctx->use_blas = MK_HAVE_OPENBLAS && !(flags & MK_CPU_NO_BLAS);
#if MK_HAVE_OPENBLAS
    /* the pool does the threading; every OpenBLAS call runs on one thread */
    openblas_set_num_threads(1);
#endif
    ctx->n_threads = n_threads;
    ctx->pool = mk_threadpool_create(n_threads);
    if (!ctx->pool) {
        free(ctx);
        return MCRT_E_NOMEM;
    }
    *out = ctx;
    return MCRT_OK;
}

void mk_cpu_ctx_destroy(mk_ctx *ctx)
{
    if (!ctx)
        return;
    mk_threadpool_destroy(ctx->pool);
    free(ctx->scratch);
    free(ctx->work);
    free(ctx);
}

int mk_cpu_ctx_threads(const mk_ctx *ctx)
{
    return ctx ? ctx->n_threads : 1;
}

int mk_cpu_ctx_isa(const mk_ctx *ctx)
{
    return ctx ? ctx->isa : MK_ISA_PORTABLE;
}

const char *mk_cpu_ctx_isa_name(const mk_ctx *ctx)
{
    return mk_cpu_ctx_isa(ctx) == MK_ISA_AVX2 ? "avx2" : "portable";
}

mcrt_status mk_ctx_reserve(mk_ctx *ctx, size_t bytes)
{
    if (bytes <= ctx->scratch_stride)
        return MCRT_OK;
    size_t stride = (bytes + 63) & ~(size_t)63; /* each slice 64-byte aligned */
    if (stride > (size_t)-1 / (size_t)ctx->n_threads)
        return MCRT_E_NOMEM;
    void *p = aligned_alloc(64, stride * (size_t)ctx->n_threads);
    if (!p)
        return MCRT_E_NOMEM;
    free(ctx->scratch);
    ctx->scratch = p;
    ctx->scratch_stride = stride;
    return MCRT_OK;
}

mcrt_status mk_ctx_reserve_work(mk_ctx *ctx, size_t n)
{
    if (n <= ctx->work_cap)
        return MCRT_OK;
    if (n > (size_t)-1 / sizeof(int32_t))
        return MCRT_E_NOMEM;
    int32_t *p = malloc(n * sizeof(int32_t));
    if (!p)
        return MCRT_E_NOMEM;
    free(ctx->work);
    ctx->work = p;
    ctx->work_cap = n;
    return MCRT_OK;
}

void mk_par_for(mk_ctx *ctx, int64_t n, int64_t grain, double cost_per_item, mk_range_fn *fn,
                void *arg)
{
    if (n <= 0)
        return;
    if (ctx->n_threads == 1 || (double)n * cost_per_item < 32768.0)
        fn(arg, 0, n, 0);
    else
        mk_threadpool_parallel_for(ctx->pool, n, grain, fn, arg);
}

/* --- the op tables --------------------------------------------------------------- */

static const mk_ops ops_cpu = {
    .name = "cpu",
    .device = MCRT_DEVICE_CPU,
    .embedding = embedding_forward_cpu_fast,
    .layernorm = layernorm_forward_cpu_fast,
    .rmsnorm = rmsnorm_forward_cpu_fast,
    .matmul = matmul_forward_cpu_fast,
    .split_qkv = split_qkv_forward_cpu_fast,
    .rotary = rotary_forward_cpu_fast,
    .kv_write = kv_write_forward_cpu_fast,
    .attention = attention_forward_cpu_fast,
    .activation = activation_forward_cpu_fast,
    .residual = residual_forward_cpu_fast,
    .bias_add = bias_add_forward_cpu_fast,
    .log_softmax = log_softmax_forward_cpu_fast,
    .argmax = argmax_forward_cpu_fast,
};

static const mk_ops ops_cpu_reference = {
    .name = "cpu-reference",
    .device = MCRT_DEVICE_CPU,
    .embedding = embedding_forward_cpu,
    .layernorm = layernorm_forward_cpu,
    .rmsnorm = rmsnorm_forward_cpu,
    .matmul = matmul_forward_cpu,
    .split_qkv = split_qkv_forward_cpu,
    .rotary = rotary_forward_cpu,
    .kv_write = kv_write_forward_cpu,
    .attention = attention_forward_cpu,
    .activation = activation_forward_cpu,
    .residual = residual_forward_cpu,
    .bias_add = bias_add_forward_cpu,
    .log_softmax = log_softmax_forward_cpu,
    .argmax = argmax_forward_cpu,
};

const mk_ops *mk_ops_cpu(void)
{
    return &ops_cpu;
}

const mk_ops *mk_ops_cpu_reference(void)
{
    return &ops_cpu_reference;
}
