/*
 * core/commands/inspect.h: `mcrt inspect PATH [--json]`, like Megatron's
 * checkpoint inspector: what a checkpoint holds, read through the core's
 * checkpoint reader (every format it knows; docs/checkpoints.md): the
 * format, its metadata, the hyper-parameters it carries (as Megatron
 * arguments) and a table of tensors (name, dtype, shape, bytes).
 */
#ifndef MCRT_CORE_COMMANDS_INSPECT_H
#define MCRT_CORE_COMMANDS_INSPECT_H

#include <stdio.h>

/* argv[0] is "inspect". Returns the exit code (docs/cli.md): 0, 64 usage,
 * 65 a malformed checkpoint, 66 a missing one. */
int cmd_inspect(int argc, char **argv);
void cmd_inspect_usage(FILE *out);

#endif /* MCRT_CORE_COMMANDS_INSPECT_H */
