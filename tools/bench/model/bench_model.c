/*
 * tools/bench/model/bench_model.c: the model-gpt plugin on a whole model,
 * through the real runtime (config, registry, model group), as `mcrt run`
 * drives it. The mcrt side of tools/bench/model/run.py (README.md there).
 *
 *   bench-model --model DIR [--threads N] [--quick] [--json] [--plugin-dir D]
 *               [--only prefill|decode1|decode8|decode32] [--repeat N]
 *
 * --only runs one phase (the others print 0) and --repeat N runs it N times
 * (reporting the best): for profilers (perf record -- bench-model --only ...).
 *
 * DIR holds config.yaml (a model section, load: .) and model.safetensors, as
 * make_model.py writes them. Measures, in one process:
 *   load_s        standalone model creation: open + validate the checkpoint,
 *                 map or read the weights, start the threads, map the KV pool;
 *                 with a warm page cache (the file is read once first, untimed,
 *                 as bench_torch.py does)
 *   prefill_tok_s one sequence of P = 128 and 512 tokens from position 0,
 *                 logits for the last token only; best of the repetitions
 *   decode_tok_s  B = 1, 8, 32 sequences after a 128-token prompt (prefilled
 *                 once and shared by every sequence's block table: the same
 *                 KV reads as B separate prompts), D = 32 steps (--quick: 8) of
 *                 one token per sequence with logits for each; B*D / time
 *   peak_rss_mib  VmHWM at the end
 *   limits        triad and read bandwidth, FMA peak, all threads, measured
 *                 here before the model is loaded; and the read bandwidth
 *                 again right before and right after the batch-1 decode
 *                 (read_gbs_b1_before/after): the memory is shared with
 *                 other tenants and its bandwidth moves by tens of percent
 *                 within a minute, so the b1 bound is taken at b1's time
 *   weights_bytes the checkpoint's tensors (what one decode step reads, the
 *                 tied embedding once as the output layer)
 *   kv_pool_bytes the KV pool, sized for the largest run (kv_num_blocks)
 *   weights_mapped whether the plugin reported every matrix as a view of the
 *                 mapped file (its INFO line)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/limits.h"
#include "checkpoint/checkpoint.h"
#include "config/config.h"
#include "kernels/cpu/cpu.h"
#include "plugin/registry.h"
#include "runtime/model_group.h"
#include "runtime/standalone.h"
#include "util/log.h"

#define PROMPT 128
#define BS 16

static long peak_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmHWM: %ld kB", &v) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return v;
}

/* The read-bandwidth probe while the model is loaded. Its 256 MiB buffer
 * would count in VmHWM, so the peak so far is kept in *hwm and, once the
 * buffer is freed, the kernel's high-water mark is reset to the current RSS
 * (/proc/self/clear_refs, 5): the reported peak is the model's own. */
static double read_probe_outside_peak(mk_threadpool *pool, long *hwm)
{
    long before = peak_rss_kib();
    if (before > *hwm)
        *hwm = before;
    double gbs = bench_measure_read(pool); /* allocates, reads, frees */
    FILE *f = fopen("/proc/self/clear_refs", "w");
    int reset = f != NULL && fputs("5", f) >= 0;
    if (f != NULL && fclose(f) != 0)
        reset = 0;
    if (!reset)
        *hwm = -1; /* cannot separate the probe from the model: report no peak */
    return gbs;
}

static void die(const char *msg)
{
    fprintf(stderr, "bench-model: %s\n", msg);
    exit(1);
}

typedef struct bench {
    standalone_model *sm;
    const mcrt_model_info *mi;
    float *logits;
    int32_t *tok, *pos, *seq, *ctx, *nb;
    uint8_t *want;
    const int32_t **tables;
    int32_t *table_store;
} bench;

/* One step: S sequences, sequence s feeding n[s] tokens from position ctx[s]. */
static void step(bench *b, int S, const int *n, const int *ctx_len, int MB)
{
    int T = 0, NL = 0;
    for (int s = 0; s < S; s++) {
        b->ctx[s] = ctx_len[s];
        b->nb[s] = MB;
        b->tables[s] = b->table_store + (size_t)s * MB;
        for (int k = 0; k < n[s]; k++) {
            b->tok[T] = (int32_t)((T * 7919 + s * 104729) % b->mi->vocab_size);
            b->pos[T] = ctx_len[s] + k;
            b->seq[T] = s;
            b->want[T] = k == n[s] - 1;
            NL += b->want[T];
            T++;
        }
    }
    mcrt_step_batch batch = {(uint32_t)sizeof batch, (uint32_t)T, (uint32_t)S, (uint32_t)NL,
                             b->tok, b->pos, b->seq, b->want, b->ctx, b->tables, b->nb};
    if (model_group_step(b->sm->group, &batch, b->logits) != MCRT_OK)
        die("a model step failed (see the log above)");
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *plugin_dir = NULL;
    const char *only = NULL;
    int threads = 0, quick = 0, json = 0, repeat = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--model") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--plugin-dir") == 0 && i + 1 < argc)
            plugin_dir = argv[++i];
        else if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
            repeat = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench-model --model DIR [--threads N] [--quick] [--json] "
                            "[--plugin-dir D] [--only prefill|decode1|decode8|decode32] "
                            "[--repeat N]\n");
            return 2;
        }
    }
    if (dir == NULL)
        die("--model DIR is required");
    if (only != NULL && strcmp(only, "prefill") != 0 && strcmp(only, "decode1") != 0 &&
        strcmp(only, "decode8") != 0 && strcmp(only, "decode32") != 0)
        die("--only takes prefill, decode1, decode8 or decode32");
    if (repeat < 1)
        die("--repeat takes a count >= 1");
    if (threads <= 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        threads = nc > 0 ? (int)nc : 1;
    }
    static const int Bs[] = {1, 8, 32};
    int D = quick ? 8 : 32;
    int max_b = 32, mb_decode = (PROMPT + D + BS - 1) / BS;
    int nblocks = PROMPT / BS + max_b * (mb_decode - PROMPT / BS);
    if (nblocks < 512 / BS)
        nblocks = 512 / BS;

    /* limits first, on an idle pool of the same size */
    mk_threadpool *pool = mk_threadpool_create(threads);
    double triad = bench_measure_triad(pool), rd = bench_measure_read(pool);
    double fma = mk_cpu_detect_isa() == MK_ISA_AVX2 ? bench_measure_fma_peak(pool) : 0.0;
    double rd_b1[2] = {0.0, 0.0}; /* around the batch-1 decode; the pool stays for it */
    long hwm_kib = 0;             /* peak RSS before each probe inside the run */

    /* weights bytes from the checkpoint itself */
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    ckpt *ck = NULL;
    ckpt_err e;
    if (ckpt_open(path, &ck, &e) != MCRT_OK)
        die(e.msg);
    uint64_t weights_bytes = 0;
    for (size_t i = 0; i < ckpt_count(ck); i++)
        weights_bytes += ckpt_at(ck, i)->nbytes;
    ckpt_close(ck);

    /* the config: DIR/config.yaml with the pool sized for the largest run */
    char yaml[4096], line[1024];
    snprintf(yaml, sizeof yaml, "/tmp/mcrt-bench-model-%d.yaml", (int)getpid());
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    FILE *in = fopen(path, "r"), *out = fopen(yaml, "w");
    if (in == NULL || out == NULL)
        die("cannot read DIR/config.yaml or write a temporary config");
    char absdir[4096];
    if (realpath(dir, absdir) == NULL)
        die("cannot resolve DIR");
    while (fgets(line, sizeof line, in) != NULL) {
        if (strncmp(line, "  load: ", 8) == 0)
            fprintf(out, "  load: %s\n", absdir);
        else
            fputs(line, out);
    }
    fprintf(out, "  kv_block_size: %d\n  kv_num_blocks: %d\nruntime:\n  threads: %d\n"
                 "  log_level: info\n", BS, nblocks, threads);
    fclose(in);
    fclose(out);

    static char logbuf[1 << 16];
    FILE *logf = fmemopen(logbuf, sizeof logbuf, "w");
    setvbuf(logf, NULL, _IONBF, 0);
    log_sink log;
    log_sink_init(&log, logf, getenv("BENCH_DEBUG") ? MCRT_LOG_DEBUG : MCRT_LOG_INFO);
    cfg_tree *cfg = cfg_tree_create();
    char *cargv[] = {(char *)"run", yaml, NULL};
    char *envp[] = {NULL};
    cfg_diag d;
    memset(&d, 0, sizeof d);
    if (cfg_build(cfg, 2, cargv, envp, &d) != 0 || cfg_validate_core(cfg, &d) != 0)
        die(d.msg);
    char exe[4096];
    ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[el > 0 ? el : 0] = '\0';
    registry *reg = registry_create(&log, NULL);
    char err[2048];
    int code = 0;
    if (plugin_dir == NULL) { /* build tree: <build>/tools/bench/model/ -> <build>/plugins/model-gpt */
        static char pd[4200];
        char *cut = strstr(exe, "/tools/bench/model/");
        if (cut == NULL)
            die("--plugin-dir is required outside the build tree");
        *cut = '\0';
        snprintf(pd, sizeof pd, "%s/plugins/model-gpt", exe);
        plugin_dir = pd;
    }
    if (registry_add_dir(reg, plugin_dir, DIR_FLAG, true, err, sizeof err, &code) != 0)
        die(err);
    /* warm the page cache (untimed), as bench_torch.py does: load_s must not
     * depend on which side ran first */
    {
        char fpath[4200];
        snprintf(fpath, sizeof fpath, "%s/model.safetensors", absdir);
        FILE *wf = fopen(fpath, "rb");
        static char chunk[1 << 20];
        while (wf != NULL && fread(chunk, 1, sizeof chunk, wf) == sizeof chunk)
            ;
        if (wf != NULL)
            fclose(wf);
    }
    double t0 = bench_now_s();
    bench b;
    memset(&b, 0, sizeof b);
    b.sm = standalone_model_create(cfg, reg, &log, err, sizeof err, &code);
    double load_s = bench_now_s() - t0;
    unlink(yaml);
    if (b.sm == NULL) {
        fprintf(stderr, "%s", logbuf);
        die(err);
    }
    b.mi = model_group_info(b.sm->group);
    int maxT = 512 > max_b ? 512 : max_b;
    b.logits = malloc(sizeof(float) * (size_t)max_b * (size_t)b.mi->padded_vocab_size);
    b.tok = malloc(sizeof(int32_t) * maxT);
    b.pos = malloc(sizeof(int32_t) * maxT);
    b.seq = malloc(sizeof(int32_t) * maxT);
    b.want = malloc((size_t)maxT);
    b.ctx = malloc(sizeof(int32_t) * max_b);
    b.nb = malloc(sizeof(int32_t) * max_b);
    b.tables = malloc(sizeof(*b.tables) * max_b);
    int MBmax = 512 / BS > mb_decode ? 512 / BS : mb_decode;
    b.table_store = malloc(sizeof(int32_t) * (size_t)max_b * MBmax);

    /* prefill: sequence 0 on blocks 0..P/BS-1 */
    double prefill[2] = {0, 0};
    static const int Ps[] = {128, 512};
    for (int pi = 0; pi < 2 && (only == NULL || strcmp(only, "prefill") == 0); pi++) {
        int P = Ps[pi], MB = P / BS, n[1] = {P}, c0[1] = {0};
        for (int k = 0; k < MB; k++)
            b.table_store[k] = k;
        double best = 1e30;
        int reps = (quick ? 2 : (P == 128 ? 6 : 3)) * repeat;
        for (int r = 0; r < reps + 1; r++) { /* the first run faults the weights in */
            double t1 = bench_now_s();
            step(&b, 1, n, c0, MB);
            double dt = bench_now_s() - t1;
            if (r > 0 && dt < best)
                best = dt;
        }
        prefill[pi] = P / best;
    }
    /* decode: the shared 128-token prompt on blocks 0..7, then each sequence's own */
    double decode[3] = {0, 0, 0};
    {
        int n[1] = {PROMPT}, c0[1] = {0};
        for (int k = 0; k < PROMPT / BS; k++)
            b.table_store[k] = k;
        step(&b, 1, n, c0, PROMPT / BS);
    }
    for (int bi = 0; bi < 3; bi++) {
        int B = Bs[bi], MB = mb_decode;
        char phase[16];
        snprintf(phase, sizeof phase, "decode%d", B);
        if (only != NULL && strcmp(only, phase) != 0)
            continue;
        int n[32], c[32];
        for (int s = 0; s < B; s++) {
            for (int k = 0; k < MB; k++)
                b.table_store[(size_t)s * MB + k] =
                    k < PROMPT / BS ? k : PROMPT / BS + s * (MB - PROMPT / BS) + (k - PROMPT / BS);
            n[s] = 1;
        }
        if (B == 1 && hwm_kib >= 0)
            rd_b1[0] = read_probe_outside_peak(pool, &hwm_kib);
        for (int r = 0; r < repeat; r++) {
            double t1 = bench_now_s();
            for (int dstep = 0; dstep < D; dstep++) {
                for (int s = 0; s < B; s++)
                    c[s] = PROMPT + dstep;
                step(&b, B, n, c, MB);
            }
            double rate = (double)B * D / (bench_now_s() - t1);
            if (rate > decode[bi])
                decode[bi] = rate;
        }
        if (B == 1 && hwm_kib >= 0)
            rd_b1[1] = read_probe_outside_peak(pool, &hwm_kib);
    }
    mk_threadpool_destroy(pool);
    long rss = peak_rss_kib();
    if (hwm_kib < 0)
        die("cannot reset the peak RSS after the bandwidth probe (/proc/self/clear_refs)");
    if (hwm_kib > rss)
        rss = hwm_kib;
    if (getenv("BENCH_DEBUG"))
        fprintf(stderr, "%s", logbuf);
    int mapped = strstr(logbuf, "matrices all mapped from the file") != NULL;
    const char *info = strstr(logbuf, "GPT ");
    char info_line[512] = "";
    if (info != NULL)
        sscanf(info, "%511[^\n]", info_line);
    /* the KV pool: 2 (K, V) x layers x NKV x BS x HS x 4 bytes per block */
    double kv_bytes = 0;
    {
        /* from the info line's pool size would be circular; compute from the config */
        int64_t h = 0, L = 0, nh = 0, ng = 0;
        const mcrt_config *ms = cfg_section(cfg, "model");
        cfg_get_int(ms, "hidden_size", &h);
        cfg_get_int(ms, "num_layers", &L);
        cfg_get_int(ms, "num_attention_heads", &nh);
        if (cfg_get_int(ms, "num_query_groups", &ng) != MCRT_OK)
            ng = nh;
        kv_bytes = 2.0 * (double)L * (double)ng * BS * (double)(h / nh) * 4.0 * nblocks;
    }
    if (json) {
        printf("{\"impl\":\"mcrt\",\"model\":\"%s\",\"threads\":%d,\"load_s\":%.4f,"
               "\"peak_rss_mib\":%.1f,\"prefill_tok_s\":{\"128\":%.2f,\"512\":%.2f},"
               "\"decode_tok_s\":{\"1\":%.3f,\"8\":%.3f,\"32\":%.3f},"
               "\"limits\":{\"triad_gbs\":%.3f,\"read_gbs\":%.3f,\"fma_gflops\":%.2f,"
               "\"read_gbs_b1_before\":%.3f,\"read_gbs_b1_after\":%.3f},"
               "\"weights_bytes\":%llu,\"kv_pool_bytes\":%.0f,\"weights_mapped\":%s,"
               "\"decode_steps\":%d,\"decode_prompt_len\":%d,\"isa\":\"%s\",\"blas\":%s,"
               "\"plugin_info\":\"%s\"}\n",
               dir, threads, load_s, (double)rss / 1024.0, prefill[0], prefill[1], decode[0],
               decode[1], decode[2], triad, rd, fma, rd_b1[0], rd_b1[1],
               (unsigned long long)weights_bytes, kv_bytes,
               mapped ? "true" : "false", D, PROMPT, mk_cpu_detect_isa() ? "avx2" : "portable",
               mk_cpu_has_blas() ? "true" : "false", info_line);
    } else {
        printf("%s\n", info_line);
        printf("threads %d | triad %.2f GB/s, read %.2f GB/s, FMA peak %.1f GFLOP/s\n", threads,
               triad, rd, fma);
        printf("load %.3f s | peak RSS %.1f MiB (weights %.1f MiB, KV pool %.1f MiB), "
               "weights %s\n", load_s, (double)rss / 1024.0, (double)weights_bytes / 1048576.0,
               kv_bytes / 1048576.0, mapped ? "mapped" : "copied");
        printf("prefill 128: %.1f tok/s, 512: %.1f tok/s\n", prefill[0], prefill[1]);
        printf("decode b1 %.2f, b8 %.2f, b32 %.2f tok/s (after %d tokens, %d steps); read "
               "%.2f / %.2f GB/s before / after b1\n", decode[0], decode[1], decode[2], PROMPT, D,
               rd_b1[0], rd_b1[1]);
    }
    standalone_model_destroy(b.sm);
    registry_destroy(reg);
    cfg_tree_destroy(cfg);
    fclose(logf);
    free(b.logits);
    free(b.tok);
    free(b.pos);
    free(b.seq);
    free(b.want);
    free(b.ctx);
    free(b.nb);
    free(b.tables);
    free(b.table_store);
    return 0;
}
