/*
 * core/commands/convert.h: `mcrt convert PATH OUT`: any checkpoint the core
 * reads (safetensors; Megatron torch or torch_dist, any TP/PP layout) to
 * OUT/model.safetensors with MCore names, its hyper-parameters kept in the
 * metadata (read back as the same checkpoint arguments; docs/checkpoints.md).
 */
#ifndef MCRT_CORE_COMMANDS_CONVERT_H
#define MCRT_CORE_COMMANDS_CONVERT_H

#include <stdio.h>

/* argv[0] is "convert". Returns the exit code (docs/cli.md): 0, 64 usage,
 * 65 a malformed checkpoint, 66 a missing one, 73 OUT cannot be written. */
int cmd_convert(int argc, char **argv);
void cmd_convert_usage(FILE *out);

#endif /* MCRT_CORE_COMMANDS_CONVERT_H */
