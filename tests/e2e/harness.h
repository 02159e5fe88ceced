/*
 * tests/e2e/harness.h: run the `mcrt` program as a user would and capture
 * what it does. Every run has a wall-clock limit; a run that passes it is
 * killed and reported as a hang, so no test can hang the suite.
 */
#ifndef MCRT_TEST_HARNESS_H
#define MCRT_TEST_HARNESS_H

#include <stddef.h>

typedef struct run_result {
    int exit_code;     /* exit status; 128+signal when killed by a signal */
    int timed_out;     /* 1 when the run was killed for passing the limit */
    char *out;         /* stdout, NUL-terminated */
    char *err;         /* stderr, NUL-terminated */
} run_result;

/* Runs MCRT_EXE (environment variable set by meson) with args (NULL-ended,
 * without argv[0]) and extra environment entries "K=V" (NULL-ended, may be
 * NULL; "K=" unsets K). MCRT_PLUGIN_PATH and MCRT_* variables of the caller's
 * environment are removed first so the test controls them. */
run_result run_mcrt(const char *const *args, const char *const *env, int timeout_s);
void run_result_free(run_result *r);

/* A fresh scratch folder (mode 0755) under $TEST_SCRATCH (set by meson) or /tmp;
 * returns a malloc'd path. */
char *scratch_dir(void);
/* Write `text` to dir/name; returns a malloc'd path. */
char *write_file(const char *dir, const char *name, const char *text);
/* Copy MCRT_EXE into dir/mcrt and point MCRT_EXE at the copy, so runs see no
 * build-tree plugins (the registry searches <dir of mcrt>/plugins): tests that
 * need "no plugin of a kind" stay true as plugins are added to the tree. */
void use_isolated_exe(const char *dir);
/* Environment variable or abort the test with a message. */
const char *need_env(const char *name);

#endif
