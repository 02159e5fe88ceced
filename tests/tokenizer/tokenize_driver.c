/*
 * tests/tokenizer/tokenize_driver.c: `mcrt tokenize` / `mcrt detokenize`
 * without the rest of mcrt: `tokenize_driver tokenize|detokenize ARGS...`
 * calls cmd_tokenize exactly as core/main.c does. The tests use it when the
 * mcrt program they are given has no tokenize subcommand.
 */
#include <stdio.h>
#include <string.h>

#include "commands/tokenize.h"
#include "util/exitcode.h"

int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "tokenize") != 0 && strcmp(argv[1], "detokenize") != 0)) {
        fprintf(stderr, "usage: tokenize_driver tokenize|detokenize ARGS...\n");
        return EXIT_USAGE;
    }
    return cmd_tokenize(argc - 1, argv + 1, "/proc/self/exe", strcmp(argv[1], "detokenize") == 0);
}
