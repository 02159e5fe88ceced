/*
 * core/commands/tokenize.h: the `mcrt tokenize` and `mcrt detokenize`
 * subcommands (docs/tokenizer.md): text -> ids and ids -> text with the
 * configured tokenizer plugin, like llama.cpp's llama-tokenize.
 *
 *   mcrt tokenize   [CONFIG.yaml] [--vocab-file F --merge-file F] [options] [--] TEXT...
 *   mcrt detokenize [CONFIG.yaml] [--vocab-file F --merge-file F] [options] [--] ID...
 */
#ifndef MCRT_CORE_COMMANDS_TOKENIZE_H
#define MCRT_CORE_COMMANDS_TOKENIZE_H

#include <stdbool.h>
#include <stdio.h>

/* Runs the subcommand. argv[0] is the subcommand's name ("tokenize" or
 * "detokenize"), as main passes argc - 1, argv + 1; `exe` locates the build
 * tree's plugins (main's "/proc/self/exe"). Returns the exit code
 * (docs/cli.md): 0 ok, 64 usage, 65 malformed vocabulary or an id outside
 * it, 66 missing file, 69 no usable tokenizer, 78 config. */
int cmd_tokenize(int argc, char **argv, const char *exe, bool detokenize);

/* The --help text of either subcommand. */
void cmd_tokenize_usage(FILE *out, bool detokenize);

#endif /* MCRT_CORE_COMMANDS_TOKENIZE_H */
