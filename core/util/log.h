/*
 * core/util/log.h: the host's logger. Diagnostics go to stderr only, one line
 * each, "mcrt: LEVEL: [tag] message". Colour only when stderr is a terminal
 * and NO_COLOR is unset or empty (no-color.org). The sink is a handle owned by
 * main and lent to the registry and the pipelines; there is no global logger.
 */
#ifndef MCRT_CORE_LOG_H
#define MCRT_CORE_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#include "mcrt/host.h" /* MCRT_LOG_* levels, MCRT_PRINTF */

typedef struct log_sink {
    int level;     /* messages with level <= this are written */
    FILE *out;     /* stderr */
    bool color;    /* ANSI colours on the level word */
} log_sink;

/* Fill a sink for `out` at `level`, deciding colour from isatty and NO_COLOR. */
void log_sink_init(log_sink *s, FILE *out, int level);

/* Level names: "error", "warn", "info", "debug", "trace". */
const char *log_level_name(int level);

/* Write one message; `tag` may be NULL ("engine/static", "loader"). */
void log_msg(const log_sink *s, int level, const char *tag, const char *fmt, ...) MCRT_PRINTF(4, 5);
void log_msgv(const log_sink *s, int level, const char *tag, const char *fmt, va_list ap);

#endif /* MCRT_CORE_LOG_H */
