/*
 * tests/fuzz/fuzz_config.c: libFuzzer target for the configuration reader.
 *
 * Input: YAML text, optionally followed by "\n\0" and NUL-separated command
 * line arguments for `mcrt run`. The target builds the tree exactly as `mcrt`
 * does (YAML + flags; no environment), validates the core, validates the
 * plugin sections against a key set of every type, and prints the effective
 * config. Any crash, leak, hang or sanitizer report is a bug; errors are fine.
 *
 * Built as a fuzzer with clang (tests/fuzz/README.md); built with any
 * compiler as a corpus replayer that the test suite runs over corpus/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Keys of every type, with ranges and an enum, standing in for a plugin. */
static const mcrt_config_key plugin_keys[] = {
    MCRT_CONFIG_KEY(MCRT_CFG_BOOL, "flag", "false", "a bool"),
    MCRT_CONFIG_KEY_RANGE(MCRT_CFG_INT, "count", "4", 1, 64, "an int in [1, 64]"),
    MCRT_CONFIG_KEY_MIN(MCRT_CFG_FLOAT, "scale", "0.5", 0, "a float >= 0"),
    MCRT_CONFIG_KEY(MCRT_CFG_STRING, "label", NULL, "a string"),
    MCRT_CONFIG_KEY(MCRT_CFG_PATH, "file", NULL, "a path"),
    MCRT_CONFIG_KEY_ENUM("mode", "fast", "fast|exact", "an enum"),
    MCRT_CONFIG_KEY(MCRT_CFG_STRING_LIST, "items", NULL, "a list"),
    MCRT_CONFIG_KEY_END,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Split YAML and arguments. */
    size_t yaml_len = size;
    for (size_t i = 0; i + 1 < size; i++)
        if (data[i] == '\n' && data[i + 1] == '\0') {
            yaml_len = i + 1;
            break;
        }
    int fd = memfd_create("fuzz.yaml", 0);
    if (fd < 0)
        return 0;
    if (yaml_len > 0 && write(fd, data, yaml_len) != (ssize_t)yaml_len) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);

    char *argbuf = NULL;
    char *argv[34];
    int argc = 0;
    argv[argc++] = "run";
    argv[argc++] = path;
    if (yaml_len + 1 < size) {
        size_t n = size - yaml_len - 1;
        argbuf = malloc(n + 1);
        if (argbuf != NULL) {
            memcpy(argbuf, data + yaml_len + 1, n);
            argbuf[n] = '\0';
            for (size_t i = 0; i < n && argc < 33;) {
                argv[argc++] = argbuf + i;
                i += strlen(argbuf + i) + 1;
            }
        }
    }
    argv[argc] = NULL;

    cfg_tree *t = cfg_tree_create();
    cfg_diag d;
    char *envp[] = {NULL};
    if (t != NULL && cfg_build(t, argc, argv, envp, &d) == 0 && cfg_validate_core(t, &d) == 0) {
        static const char *const kinds[] = {"engine", "controller", "model", "sampler", "tokenizer"};
        for (size_t k = 0; k < 5; k++) {
            const mcrt_config_key *sets[2] = {cfg_core_keys(kinds[k]), plugin_keys};
            if (cfg_validate_section(t, kinds[k], sets, 2, &d) != 0)
                break;
        }
        FILE *devnull = fopen("/dev/null", "w");
        if (devnull != NULL) {
            cfg_print_effective(t, devnull);
            fclose(devnull);
        }
        /* Read every core key back through the typed getters. */
        for (const char *const *sec = cfg_section_names(); *sec; sec++) {
            const mcrt_config *s = cfg_section(t, *sec);
            const mcrt_config_key *k = cfg_core_keys(*sec);
            for (; k && k->name; k++) {
                bool b;
                int64_t i;
                double f;
                const char *str;
                size_t n;
                (void)cfg_get_bool(s, k->name, &b);
                (void)cfg_get_int(s, k->name, &i);
                (void)cfg_get_float(s, k->name, &f);
                (void)cfg_get_string(s, k->name, &str);
                if (cfg_list_size(s, k->name, &n) == MCRT_OK)
                    for (size_t j = 0; j < n; j++)
                        (void)cfg_list_item(s, k->name, j, &str);
            }
        }
    }
    cfg_tree_destroy(t);
    free(argbuf);
    close(fd);
    return 0;
}
