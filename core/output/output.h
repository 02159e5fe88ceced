/*
 * core/output/output.h: writing results. Formats: text (for people), json
 * (one array) and jsonl (one object per line). Results go to stdout or
 * --output-path; diagnostics never do.
 */
#ifndef MCRT_CORE_OUTPUT_H
#define MCRT_CORE_OUTPUT_H

#include <stdio.h>

#include "runtime/pipeline.h" /* pipeline_result */

typedef enum { OUTPUT_TEXT, OUTPUT_JSON, OUTPUT_JSONL } output_format;

/* "text" | "json" | "jsonl" -> format; -1 when unknown. */
int output_format_parse(const char *s);

/* Write every result of the pipeline in request order. Returns 0, or -1 on a
 * write error (errno set). */
int output_write(FILE *out, output_format fmt, const pipeline *p);

/* JSON string literal of bytes: invalid UTF-8 becomes U+FFFD, control
 * characters are escaped. */
void output_json_string(FILE *out, const char *s, size_t len);

#endif
