/*
 * tests/fuzz/replay.c: runs a fuzz target over files (the corpus), for
 * compilers without libFuzzer. Exit 0 when every input ran; a crash is the
 * failure the test suite sees.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path);

/* A folder runs every regular file in it (not recursively). */
static int run_path(const char *path, int *count)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        perror(path);
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        (*count)++;
        return run_file(path);
    }
    DIR *d = opendir(path);
    if (d == NULL) {
        perror(path);
        return 1;
    }
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
        rc = run_path(sub, count);
    }
    closedir(d);
    return rc;
}

int main(int argc, char **argv)
{
    int count = 0;
    for (int i = 1; i < argc; i++)
        if (run_path(argv[i], &count) != 0)
            return 1;
    printf("replayed %d inputs\n", count);
    return count > 0 ? 0 : 1;
}

static int run_file(const char *path)
{
    {
        FILE *f = fopen(path, "rb");
        if (f == NULL) {
            perror(path);
            return 1;
        }
        uint8_t *buf = NULL;
        size_t n = 0, cap = 0;
        int c;
        while ((c = fgetc(f)) != EOF) {
            if (n == cap) {
                cap = cap ? cap * 2 : 4096;
                uint8_t *nb = realloc(buf, cap);
                if (nb == NULL) {
                    free(buf);
                    fclose(f);
                    return 1;
                }
                buf = nb;
            }
            buf[n++] = (uint8_t)c;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n);
        free(buf);
    }
    return 0;
}
