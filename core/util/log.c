/* core/util/log.c: see log.h. */
#include "util/log.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void log_sink_init(log_sink *s, FILE *out, int level)
{
    const char *nc = getenv("NO_COLOR");
    s->level = level;
    s->out = out;
    s->color = (nc == NULL || nc[0] == '\0') && isatty(fileno(out));
}

const char *log_level_name(int level)
{
    switch (level) {
    case MCRT_LOG_ERROR: return "error";
    case MCRT_LOG_WARN: return "warn";
    case MCRT_LOG_INFO: return "info";
    case MCRT_LOG_DEBUG: return "debug";
    case MCRT_LOG_TRACE: return "trace";
    default: return "log";
    }
}

static const char *level_color(int level)
{
    switch (level) {
    case MCRT_LOG_ERROR: return "\033[1;31m";
    case MCRT_LOG_WARN: return "\033[1;33m";
    case MCRT_LOG_INFO: return "\033[1;32m";
    default: return "\033[2m";
    }
}

void log_msgv(const log_sink *s, int level, const char *tag, const char *fmt, va_list ap)
{
    if (s == NULL || level > s->level)
        return;
    /* Format into one buffer so concurrent rank threads never interleave a line. */
    char line[4096];
    size_t n = 0;
    int w;
    if (s->color)
        w = snprintf(line, sizeof line, "mcrt: %s%s\033[0m: ", level_color(level), log_level_name(level));
    else
        w = snprintf(line, sizeof line, "mcrt: %s: ", log_level_name(level));
    n = w > 0 ? (size_t)w : 0;
    if (tag != NULL && n < sizeof line) {
        w = snprintf(line + n, sizeof line - n, "[%s] ", tag);
        n += w > 0 ? (size_t)w : 0;
    }
    if (n < sizeof line) {
        w = vsnprintf(line + n, sizeof line - n, fmt, ap);
        n += w > 0 ? (size_t)w : 0;
    }
    if (n >= sizeof line - 1)
        n = sizeof line - 2;
    while (n > 0 && line[n - 1] == '\n')
        n--;
    line[n++] = '\n';
    fwrite(line, 1, n, s->out);
    fflush(s->out);
}

void log_msg(const log_sink *s, int level, const char *tag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_msgv(s, level, tag, fmt, ap);
    va_end(ap);
}
