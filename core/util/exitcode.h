/*
 * core/util/exitcode.h: mcrt's exit codes (sysexits.h values, listed in
 * docs/cli.md) and the mapping from a failed status to one.
 */
#ifndef MCRT_CORE_EXITCODE_H
#define MCRT_CORE_EXITCODE_H

#include "mcrt/status.h"

enum {
    EXIT_OK = 0,
    EXIT_USAGE = 64,       /* bad command line */
    EXIT_DATAERR = 65,     /* corrupt input data; or some requests failed */
    EXIT_NOINPUT = 66,     /* a named input file or folder is missing or unreadable */
    EXIT_UNAVAILABLE = 69, /* no usable plugin, device or memory */
    EXIT_SOFTWARE = 70,    /* an internal error (a bug) */
    EXIT_CANTCREAT = 73,   /* an output file cannot be created */
    EXIT_CONFIG = 78       /* the configuration is invalid */
};

/* The exit code for a status that stopped the program. */
int exit_code_for_status(mcrt_status s);

#endif
