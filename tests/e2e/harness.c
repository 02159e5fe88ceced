/* tests/e2e/harness.c: see harness.h. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

const char *need_env(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0') {
        fprintf(stderr, "test harness: environment variable %s is not set (run through meson test)\n", name);
        exit(1);
    }
    return v;
}

static void append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t nc = *cap ? *cap : 4096;
        while (nc < *len + n + 1) nc *= 2;
        *buf = realloc(*buf, nc);
        if (*buf == NULL) { perror("realloc"); exit(1); }
        *cap = nc;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

run_result run_mcrt(const char *const *args, const char *const *env, int timeout_s)
{
    const char *exe = need_env("MCRT_EXE");
    run_result r = {0};
    int po[2], pe[2];
    if (pipe(po) != 0 || pipe(pe) != 0) { perror("pipe"); exit(1); }
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); exit(1); }
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]); close(po[1]); close(pe[0]); close(pe[1]);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) { dup2(devnull, 0); close(devnull); }
        /* The test owns every MCRT_* variable. */
        size_t n = 0;
        for (char **e = environ; *e; e++) n++;
        char **keep = calloc(n + 1, sizeof *keep);
        size_t k = 0;
        for (char **e = environ; *e; e++)
            if (strncmp(*e, "MCRT_", 5) != 0 || strncmp(*e, "MCRT_EXE=", 9) == 0)
                keep[k++] = *e;
        environ = keep;
        for (const char *const *e = env; e && *e; e++) {
            const char *eq = strchr(*e, '=');
            if (eq == NULL) continue;
            char name[256];
            size_t nl = (size_t)(eq - *e);
            if (nl >= sizeof name) continue;
            memcpy(name, *e, nl);
            name[nl] = '\0';
            if (eq[1] == '\0' && strcmp(name, "NO_COLOR") != 0) unsetenv(name);
            else setenv(name, eq + 1, 1);
        }
        size_t na = 0;
        while (args[na]) na++;
        char **argv = calloc(na + 2, sizeof *argv);
        argv[0] = (char *)exe;
        for (size_t i = 0; i < na; i++) argv[i + 1] = (char *)args[i];
        execv(exe, argv);
        fprintf(stderr, "exec %s: %s\n", exe, strerror(errno));
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    size_t ol = 0, oc = 0, el = 0, ec = 0;
    append(&r.out, &ol, &oc, "", 0);
    append(&r.err, &el, &ec, "", 0);
    double deadline = now_s() + timeout_s;
    int open_fds = 2;
    struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    while (open_fds > 0) {
        double left = deadline - now_s();
        if (left <= 0) {
            kill(pid, SIGKILL);
            r.timed_out = 1;
            break;
        }
        int pr = poll(fds, 2, (int)(left * 1000) + 1);
        if (pr < 0 && errno == EINTR) continue;
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[4096];
            ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            } else if (i == 0) {
                append(&r.out, &ol, &oc, buf, (size_t)n);
            } else {
                append(&r.err, &el, &ec, buf, (size_t)n);
            }
        }
    }
    for (int i = 0; i < 2; i++) if (fds[i].fd >= 0) close(fds[i].fd);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (WIFEXITED(st)) r.exit_code = WEXITSTATUS(st);
    else if (WIFSIGNALED(st)) r.exit_code = 128 + WTERMSIG(st);
    return r;
}

void run_result_free(run_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

void use_isolated_exe(const char *dir)
{
    const char *exe = need_env("MCRT_EXE");
    char dst[4096];
    snprintf(dst, sizeof dst, "%s/mcrt", dir);
    FILE *a = fopen(exe, "rb"), *b = fopen(dst, "wb");
    if (a == NULL || b == NULL) { perror("copy mcrt"); exit(1); }
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        if (fwrite(buf, 1, n, b) != n) { perror("copy mcrt"); exit(1); }
    fclose(a);
    if (fclose(b) != 0) { perror("copy mcrt"); exit(1); }
    chmod(dst, 0755);
    setenv("MCRT_EXE", dst, 1);
}

char *scratch_dir(void)
{
    const char *base = getenv("TEST_SCRATCH");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/mcrt-test-XXXXXX", base && base[0] ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    if (d == NULL) { perror("mkdtemp"); exit(1); }
    chmod(d, 0755);
    return strdup(d);
}

char *write_file(const char *dir, const char *name, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL) { perror(path); exit(1); }
    fputs(text, f);
    fclose(f);
    return strdup(path);
}
