/*
 * core/commands/tokenize.c: `mcrt tokenize` and `mcrt detokenize` (see
 * tokenize.h and docs/tokenizer.md).
 *
 * The tokenizer comes from the same machinery as `mcrt run`: the config tree
 * (CONFIG.yaml, MCRT_* environment, the tokenizer and logging flags), the
 * plugin registry (runtime.plugin_dirs / --plugin-dir, MCRT_PLUGIN_PATH, the
 * installed folder, the build tree) and one standalone instance of the chosen
 * tokenizer plugin (core/runtime/standalone.h).
 *
 * Arguments are split here: this command's own options, the config flags it
 * passes on to cfg_build (--vocab-file, --merge-file, --tokenizer-type,
 * --tokenizer, --plugin-dir, --log-level, -v, -q), CONFIG (the first
 * positional argument before "--" that ends in .yaml or .yml) and the
 * TEXTs / IDs (every other positional argument; all of them after "--").
 */
#include "commands/tokenize.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "config/config.h"        /* cfg_tree, cfg_build, cfg_validate_core */
#include "mcrt/tokenizer.h"       /* mcrt_tokenizer_iface */
#include "plugin/registry.h"      /* registry */
#include "runtime/standalone.h"   /* standalone_tokenizer */
#include "util/exitcode.h"        /* EXIT_* */
#include "util/log.h"             /* log_sink */
#include "util/strutil.h"         /* strbuf, hex_digit_value */

extern char **environ;

#define TK_INPUT_MAX (256u << 20) /* -f FILE: at most 256 MiB */

void cmd_tokenize_usage(FILE *out, bool detokenize)
{
    if (!detokenize) {
        fputs("usage: mcrt tokenize [CONFIG.yaml] [--vocab-file F --merge-file F] [options] "
              "[--] TEXT...\n"
              "\n"
              "Tokenizes each TEXT (and the file of -f) with the tokenizer of CONFIG's tokenizer\n"
              "section, or of the files given, and prints one line per TEXT: its ids, as in\n"
              "  [15496, 995]\n"
              "\n"
              "options:\n"
              "  --ids                 print the ids, one list per TEXT (the default)\n"
              "  --pieces              print each token on its own line with its bytes,\n"
              "                        `  15496 -> 'Hello'` (an empty line between TEXTs)\n"
              "  -e, --escape          TEXT may hold escapes: \\n \\r \\t \\0 \\\\ \\' \\xHH (a byte),\n"
              "                        \\uXXXX and \\UXXXXXXXX (a code point, as UTF-8)\n"
              "  -f, --file F          tokenize the whole content of file F (- = standard input)\n",
              out);
    } else {
        fputs("usage: mcrt detokenize [CONFIG.yaml] [--vocab-file F --merge-file F] [options] "
              "[--] ID...\n"
              "\n"
              "Decodes the ids with the tokenizer of CONFIG's tokenizer section, or of the files\n"
              "given, and prints the text and a newline. The ID arguments are one sequence; they\n"
              "may be separate or lists such as \"[15496, 995]\" (what `mcrt tokenize` prints).\n"
              "Each line of -f FILE is a sequence of its own, printed on its own line, so\n"
              "`mcrt tokenize A B | mcrt detokenize -f -` gives A and B back. Invalid UTF-8 in\n"
              "the decoded bytes becomes U+FFFD, as Megatron's errors='replace'. An id outside\n"
              "the vocabulary is an error (exit 65) naming the id.\n"
              "\n"
              "options:\n"
              "  --raw                 write the tokens' raw bytes (no U+FFFD, no newline)\n"
              "  -n, --no-newline      no newline after the text\n"
              "  -f, --file F          decode each line of file F (- = standard input)\n",
              out);
    }
    fputs("\n"
          "tokenizer (as for `mcrt run`; also MCRT_* environment variables):\n"
          "  --vocab-file F        tokenizer.vocab_file (GPT-2: vocab.json)\n"
          "  --merge-file F        tokenizer.merge_file (GPT-2: merges.txt)\n"
          "  --tokenizer-type T    tokenizer.tokenizer_type, e.g. GPT2BPETokenizer\n"
          "  --tokenizer NAME      tokenizer.name: the plugin (default auto)\n"
          "  --plugin-dir D        search D for plugins first (repeatable)\n"
          "  --log-level L, -v, -q logging on standard error\n"
          "\n"
          "Exit codes: 0 ok, 64 usage, 65 malformed vocabulary files or an id outside the\n"
          "vocabulary, 66 a missing file, 69 no usable tokenizer plugin, 78 config.\n",
          out);
}

/* ---- arguments ------------------------------------------------------------ */

typedef struct tk_args {
    const char *cmd;         /* "mcrt tokenize" / "mcrt detokenize" for messages */
    bool detokenize;
    bool pieces, escape, raw, no_newline;
    const char *file;        /* -f */
    const char *config;      /* CONFIG.yaml */
    char **pass;             /* argv for cfg_build: [sub, CONFIG?, flags...] */
    int n_pass;
    char **pos;              /* TEXTs / IDs */
    int n_pos;
} tk_args;

static bool tk_ends_with_yaml(const char *s)
{
    size_t n = strlen(s);
    return (n > 5 && strcasecmp(s + n - 5, ".yaml") == 0) ||
           (n > 4 && strcasecmp(s + n - 4, ".yml") == 0);
}

/* "--vocab_file" -> "--vocab-file" for comparison (into buf). */
static const char *tk_norm(const char *a, char *buf, size_t cap)
{
    size_t i = 0;
    for (; a[i] != '\0' && a[i] != '=' && i + 1 < cap; i++)
        buf[i] = (i >= 2 && a[i] == '_') ? '-' : a[i];
    buf[i] = '\0';
    return buf;
}

/* Config flags passed on to cfg_build; all take one value. */
static bool tk_is_config_flag(const char *norm)
{
    static const char *const flags[] = {"--vocab-file", "--merge-file", "--tokenizer-type",
                                        "--tokenizer",  "--plugin-dir", "--log-level"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (strcmp(norm, flags[i]) == 0)
            return true;
    return false;
}

static bool tk_is_verbosity(const char *a)
{
    if (strcmp(a, "-q") == 0)
        return true;
    if (a[0] != '-' || a[1] != 'v')
        return false;
    for (const char *p = a + 1; *p; p++)
        if (*p != 'v')
            return false;
    return true;
}

/* A signed decimal integer (an id for detokenize, so "-5" is not a flag). */
static bool tk_is_integer(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static int tk_parse_args(tk_args *a, int argc, char **argv)
{
    bool dashdash = false;
    a->pass = calloc((size_t)argc + 2, sizeof *a->pass);
    a->pos = calloc((size_t)argc + 1, sizeof *a->pos);
    if (a->pass == NULL || a->pos == NULL) {
        fprintf(stderr, "%s: out of memory\n", a->cmd);
        return EXIT_UNAVAILABLE;
    }
    a->pass[a->n_pass++] = argv[0];
    a->pass[a->n_pass++] = NULL; /* CONFIG, filled in below */
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        char norm[64];
        if (dashdash || s[0] != '-' || s[1] == '\0' || (a->detokenize && tk_is_integer(s))) {
            if (!dashdash && a->config == NULL && a->n_pos == 0 && tk_ends_with_yaml(s))
                a->config = s;
            else
                a->pos[a->n_pos++] = argv[i];
            continue;
        }
        if (strcmp(s, "--") == 0) {
            dashdash = true;
            continue;
        }
        tk_norm(s, norm, sizeof norm);
        if (!a->detokenize && strcmp(norm, "--ids") == 0) {
            a->pieces = false;
        } else if (!a->detokenize && strcmp(norm, "--pieces") == 0) {
            a->pieces = true;
        } else if (!a->detokenize && (strcmp(s, "-e") == 0 || strcmp(norm, "--escape") == 0)) {
            a->escape = true;
        } else if (a->detokenize && strcmp(norm, "--raw") == 0) {
            a->raw = true;
        } else if (a->detokenize && (strcmp(s, "-n") == 0 || strcmp(norm, "--no-newline") == 0)) {
            a->no_newline = true;
        } else if (strcmp(s, "-f") == 0 || strcmp(norm, "--file") == 0) {
            const char *v = strchr(s, '=');
            if (v != NULL && s[1] == '-') {
                v++;
            } else if (i + 1 < argc) {
                v = argv[++i];
            } else {
                fprintf(stderr, "%s: %s needs a file name (- for standard input)\n", a->cmd, s);
                return EXIT_USAGE;
            }
            if (a->file != NULL) {
                fprintf(stderr, "%s: -f/--file given twice\n", a->cmd);
                return EXIT_USAGE;
            }
            a->file = v;
        } else if (tk_is_config_flag(norm)) {
            a->pass[a->n_pass++] = argv[i];
            if (strchr(s, '=') == NULL) {
                if (i + 1 >= argc) {
                    fprintf(stderr, "%s: %s needs a value\n", a->cmd, s);
                    return EXIT_USAGE;
                }
                a->pass[a->n_pass++] = argv[++i];
            }
        } else if (tk_is_verbosity(s)) {
            a->pass[a->n_pass++] = argv[i];
        } else {
            fprintf(stderr, "%s: unknown option '%s' (see `%s --help`; put -- before a %s that "
                            "starts with '-')\n",
                    a->cmd, s, a->cmd, a->detokenize ? "ID" : "TEXT");
            return EXIT_USAGE;
        }
    }
    if (a->config != NULL) {
        a->pass[1] = (char *)a->config;
    } else {
        /* No CONFIG: drop the placeholder. */
        memmove(a->pass + 1, a->pass + 2, (size_t)(a->n_pass - 2) * sizeof *a->pass);
        a->n_pass--;
    }
    if (a->n_pos == 0 && a->file == NULL) {
        fprintf(stderr, "%s: nothing to %s: give %s or -f FILE (see `%s --help`)\n", a->cmd,
                a->detokenize ? "decode" : "tokenize", a->detokenize ? "IDs" : "TEXT", a->cmd);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* ---- input ---------------------------------------------------------------- */

/* The whole of a file (or stdin for "-") into *out. */
static int tk_read_input(const char *cmd, const char *path, strbuf *out)
{
    FILE *f = stdin;
    bool is_stdin = strcmp(path, "-") == 0;
    if (!is_stdin) {
        struct stat sb;
        if (stat(path, &sb) != 0) {
            fprintf(stderr, "%s: -f %s: %s\n", cmd, path, strerror(errno));
            return EXIT_NOINPUT;
        }
        if (S_ISDIR(sb.st_mode)) {
            fprintf(stderr, "%s: -f %s: is a folder, expected a file\n", cmd, path);
            return EXIT_NOINPUT;
        }
        f = fopen(path, "rb");
        if (f == NULL) {
            fprintf(stderr, "%s: -f %s: %s\n", cmd, path, strerror(errno));
            return EXIT_NOINPUT;
        }
    }
    char buf[65536];
    size_t got;
    int rc = EXIT_OK;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        if (out->len + got > TK_INPUT_MAX) {
            fprintf(stderr, "%s: -f %s: larger than %u MiB\n", cmd, path, TK_INPUT_MAX >> 20);
            rc = EXIT_DATAERR;
            break;
        }
        strbuf_append(out, buf, got);
    }
    if (rc == EXIT_OK && ferror(f)) {
        fprintf(stderr, "%s: -f %s: read error\n", cmd, path);
        rc = EXIT_NOINPUT;
    }
    if (!is_stdin)
        fclose(f);
    if (rc == EXIT_OK && out->failed) {
        fprintf(stderr, "%s: out of memory reading %s\n", cmd, path);
        rc = EXIT_UNAVAILABLE;
    }
    return rc;
}

/* Expand the escapes of -e into out; 64 with a message on a bad one. */
static int tk_unescape(const char *cmd, const char *s, strbuf *out)
{
    for (size_t i = 0; s[i] != '\0';) {
        if (s[i] != '\\') {
            size_t j = i;
            while (s[j] != '\0' && s[j] != '\\')
                j++;
            strbuf_append(out, s + i, j - i);
            i = j;
            continue;
        }
        char c = s[i + 1], one;
        size_t digits = 0;
        switch (c) {
        case 'n': one = '\n'; break;
        case 'r': one = '\r'; break;
        case 't': one = '\t'; break;
        case '0': one = '\0'; break;
        case '\\': one = '\\'; break;
        case '\'': one = '\''; break;
        case '"': one = '"'; break;
        case 'x': digits = 2; one = 0; break;
        case 'u': digits = 4; one = 0; break;
        case 'U': digits = 8; one = 0; break;
        default:
            fprintf(stderr, "%s: -e: unknown escape '\\%c' at offset %zu (known: \\n \\r \\t \\0 "
                            "\\\\ \\' \\\" \\xHH \\uXXXX \\UXXXXXXXX)\n",
                    cmd, c ? c : ' ', i);
            return EXIT_USAGE;
        }
        if (digits == 0) {
            strbuf_append(out, &one, 1);
            i += 2;
            continue;
        }
        uint32_t v = 0;
        for (size_t k = 0; k < digits; k++) {
            int h = hex_digit_value((unsigned char)s[i + 2 + k]);
            if (h < 0) {
                fprintf(stderr, "%s: -e: '\\%c' at offset %zu needs %zu hex digits\n", cmd, c, i,
                        digits);
                return EXIT_USAGE;
            }
            v = v * 16 + (uint32_t)h;
        }
        i += 2 + digits;
        if (c == 'x') {
            char b = (char)(unsigned char)v;
            strbuf_append(out, &b, 1);
            continue;
        }
        if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
            fprintf(stderr, "%s: -e: U+%04X is not a Unicode scalar value (a surrogate or above "
                            "U+10FFFF); use \\xHH for raw bytes\n",
                    cmd, (unsigned)v);
            return EXIT_USAGE;
        }
        char u[4];
        size_t n;
        if (v < 0x80) {
            u[0] = (char)v;
            n = 1;
        } else if (v < 0x800) {
            u[0] = (char)(0xC0 | (v >> 6));
            u[1] = (char)(0x80 | (v & 0x3F));
            n = 2;
        } else if (v < 0x10000) {
            u[0] = (char)(0xE0 | (v >> 12));
            u[1] = (char)(0x80 | ((v >> 6) & 0x3F));
            u[2] = (char)(0x80 | (v & 0x3F));
            n = 3;
        } else {
            u[0] = (char)(0xF0 | (v >> 18));
            u[1] = (char)(0x80 | ((v >> 12) & 0x3F));
            u[2] = (char)(0x80 | ((v >> 6) & 0x3F));
            u[3] = (char)(0x80 | (v & 0x3F));
            n = 4;
        }
        strbuf_append(out, u, n);
    }
    return EXIT_OK;
}

/* Ids from text such as "15496 995", "[15496, 995]" or "15496,995". */
typedef struct tk_ids {
    int32_t *v;
    size_t n, cap;
} tk_ids;

static int tk_parse_ids(const char *cmd, const char *s, size_t len, const char *where,
                        tk_ids *ids)
{
    size_t i = 0;
    while (i < len) {
        char c = s[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == '[' || c == ']') {
            i++;
            continue;
        }
        size_t j = i;
        if (s[j] == '-' || s[j] == '+')
            j++;
        size_t d = j;
        while (j < len && s[j] >= '0' && s[j] <= '9')
            j++;
        bool sep = j >= len || strchr(" \t\n\r,[]", s[j]) != NULL;
        if (j == d || !sep) {
            size_t e = j;
            while (e < len && strchr(" \t\n\r,[]", s[e]) == NULL)
                e++;
            fprintf(stderr, "%s: %s: '%.*s' is not a token id (expected integers, e.g. 15496 "
                            "995 or [15496, 995])\n",
                    cmd, where, (int)(e - i > 40 ? 40 : e - i), s + i);
            return EXIT_USAGE;
        }
        char num[32];
        size_t nl = j - i;
        long long v = 0;
        if (nl >= sizeof num) {
            v = s[i] == '-' ? LLONG_MIN : LLONG_MAX;
        } else {
            memcpy(num, s + i, nl);
            num[nl] = '\0';
            errno = 0;
            v = strtoll(num, NULL, 10);
        }
        if (v < INT32_MIN || v > INT32_MAX) {
            fprintf(stderr, "%s: %s: token id %.*s is outside the vocabulary (not even a 32-bit "
                            "integer)\n",
                    cmd, where, (int)(nl > 40 ? 40 : nl), s + i);
            return EXIT_DATAERR;
        }
        if (ids->n == ids->cap) {
            size_t nc = ids->cap ? ids->cap * 2 : 64;
            int32_t *nv = realloc(ids->v, nc * sizeof *nv);
            if (nv == NULL) {
                fprintf(stderr, "%s: out of memory\n", cmd);
                return EXIT_UNAVAILABLE;
            }
            ids->v = nv;
            ids->cap = nc;
        }
        ids->v[ids->n++] = (int32_t)v;
        i = j;
    }
    return EXIT_OK;
}

/* ---- output ----------------------------------------------------------------- */

/* A token's bytes as `-e` would read them back: printable UTF-8 as is,
 * \n \r \t \\ \' and \xHH for other control bytes and invalid UTF-8. */
static void tk_print_escaped(FILE *out, const unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = b[i];
        size_t k = 0;
        if (c >= 0x20 && c < 0x7F) {
            if (c == '\\' || c == '\'')
                fputc('\\', out);
            fputc(c, out);
            i++;
            continue;
        }
        if (c == '\n' || c == '\r' || c == '\t') {
            fputs(c == '\n' ? "\\n" : c == '\r' ? "\\r" : "\\t", out);
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xF4) {
            /* A complete, valid sequence is printed as is. */
            size_t need = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
            uint32_t cp = c & (need == 2 ? 0x1F : need == 3 ? 0x0F : 0x07);
            if (i + need <= n) {
                k = need;
                for (size_t j = 1; j < need; j++) {
                    if ((b[i + j] & 0xC0) != 0x80)
                        k = 0;
                    cp = (cp << 6) | (b[i + j] & 0x3Fu);
                }
                if (k && ((need == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
                          (need == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
                          (cp >= 0x80 && cp < 0xA0))) /* C1 controls: escape */
                    k = 0;
            }
        }
        if (k > 0) {
            fwrite(b + i, 1, k, out);
            i += k;
        } else {
            fprintf(out, "\\x%02x", c);
            i++;
        }
    }
}

/* ---- the command ------------------------------------------------------------- */

static int tk_add_plugin_dirs(registry *reg, cfg_tree *t, const char *cmd)
{
    const mcrt_config *rt = cfg_section(t, "runtime");
    size_t n = 0;
    if (cfg_list_size(rt, "plugin_dirs", &n) == MCRT_OK) {
        for (size_t i = 0; i < n; i++) {
            const char *dir;
            char err[1024];
            int code = 0;
            if (cfg_list_item(rt, "plugin_dirs", i, &dir) != MCRT_OK)
                continue;
            if (registry_add_dir(reg, dir, DIR_FLAG, true, err, sizeof err, &code) != 0) {
                fprintf(stderr, "%s: %s\n", cmd, err);
                return code;
            }
        }
    }
    registry_add_default_dirs(reg, getenv("MCRT_PLUGIN_PATH"));
    return EXIT_OK;
}

/* Grow a plain buffer to at least `need` bytes. */
static bool tk_reserve(char **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return true;
    char *np = realloc(*p, need);
    if (np == NULL)
        return false;
    *p = np;
    *cap = need;
    return true;
}

/* The raw bytes of one token into *buf; the exit code. */
static int tk_token_bytes(const tk_args *a, const standalone_tokenizer *tok, int32_t id,
                          char **buf, size_t *cap, size_t *len)
{
    mcrt_status st = tok->iface->token_bytes(tok->self, id, *buf, *cap, len);
    if (st == MCRT_E_RANGE) {
        if (!tk_reserve(buf, cap, *len)) {
            fprintf(stderr, "%s: out of memory\n", a->cmd);
            return EXIT_UNAVAILABLE;
        }
        st = tok->iface->token_bytes(tok->self, id, *buf, *cap, len);
    }
    if (st != MCRT_OK) /* an id outside the vocabulary: the plugin logged it */
        return st == MCRT_E_INVAL ? EXIT_DATAERR : exit_code_for_status(st);
    return EXIT_OK;
}

/* Encode one text and print it. */
static int tk_tokenize_one(const tk_args *a, const standalone_tokenizer *tok, const char *text,
                           size_t len, bool first, tk_ids *buf, char **piece, size_t *piece_cap)
{
    const mcrt_tokenizer_iface *ti = tok->iface;
    size_t need = 0;
    mcrt_status st = MCRT_E_RANGE;
    /* GPT-2 BPE gives at most one id per byte; retry when a tokenizer needs more. */
    size_t want = len + 16;
    for (int tries = 0; tries < 3 && st == MCRT_E_RANGE; tries++) {
        if (want > buf->cap) {
            int32_t *nv = realloc(buf->v, want * sizeof *nv);
            if (nv == NULL) {
                fprintf(stderr, "%s: out of memory for %zu ids\n", a->cmd, want);
                return EXIT_UNAVAILABLE;
            }
            buf->v = nv;
            buf->cap = want;
        }
        st = ti->encode(tok->self, text, len, buf->v, buf->cap, &need);
        want = need;
    }
    if (st != MCRT_OK) {
        fprintf(stderr, "%s: encoding failed: %s\n", a->cmd, mcrt_status_str(st));
        return exit_code_for_status(st);
    }
    if (!a->pieces) {
        fputc('[', stdout);
        for (size_t i = 0; i < need; i++)
            fprintf(stdout, i ? ", %d" : "%d", (int)buf->v[i]);
        fputs("]\n", stdout);
        return EXIT_OK;
    }
    if (!first)
        fputc('\n', stdout);
    for (size_t i = 0; i < need; i++) {
        size_t pl = 0;
        int rc = tk_token_bytes(a, tok, buf->v[i], piece, piece_cap, &pl);
        if (rc != EXIT_OK)
            return rc;
        fprintf(stdout, "%7d -> '", (int)buf->v[i]);
        tk_print_escaped(stdout, (const unsigned char *)*piece, pl);
        fputs("'\n", stdout);
    }
    return EXIT_OK;
}

static int tk_run_tokenize(const tk_args *a, const standalone_tokenizer *tok)
{
    tk_ids buf = {0};
    strbuf text = {0};
    char *piece = NULL;
    size_t piece_cap = 0;
    int rc = EXIT_OK;
    bool first = true;
    for (int i = 0; rc == EXIT_OK && i < a->n_pos; i++) {
        const char *s = a->pos[i];
        size_t len = strlen(s);
        if (a->escape) {
            text.len = 0;
            rc = tk_unescape(a->cmd, s, &text);
            if (rc == EXIT_OK && text.failed) {
                fprintf(stderr, "%s: out of memory\n", a->cmd);
                rc = EXIT_UNAVAILABLE;
            }
            if (rc != EXIT_OK)
                break;
            s = text.data ? text.data : "";
            len = text.len;
        }
        rc = tk_tokenize_one(a, tok, s, len, first, &buf, &piece, &piece_cap);
        first = false;
    }
    if (rc == EXIT_OK && a->file != NULL) {
        text.len = 0;
        rc = tk_read_input(a->cmd, a->file, &text);
        if (rc == EXIT_OK)
            rc = tk_tokenize_one(a, tok, text.data ? text.data : "", text.len, first, &buf,
                                 &piece, &piece_cap);
    }
    free(buf.v);
    free(piece);
    strbuf_free(&text);
    return rc;
}

/* Decode one sequence and print it. */
static int tk_detokenize_one(const tk_args *a, const standalone_tokenizer *tok, const tk_ids *ids,
                             char **out, size_t *cap)
{
    const mcrt_tokenizer_iface *ti = tok->iface;
    size_t need = 0;
    int rc = EXIT_OK;
    if (a->raw) {
        /* Token by token: exactly the tokens' bytes. */
        for (size_t i = 0; i < ids->n && rc == EXIT_OK; i++) {
            rc = tk_token_bytes(a, tok, ids->v[i], out, cap, &need);
            if (rc == EXIT_OK)
                fwrite(*out, 1, need, stdout);
        }
        return rc;
    }
    mcrt_status st = ti->decode(tok->self, ids->v, ids->n, *out, *cap, &need);
    if (st == MCRT_E_RANGE) {
        if (!tk_reserve(out, cap, need)) {
            fprintf(stderr, "%s: out of memory\n", a->cmd);
            return EXIT_UNAVAILABLE;
        }
        st = ti->decode(tok->self, ids->v, ids->n, *out, *cap, &need);
    }
    if (st != MCRT_OK) /* the plugin has logged which id and why */
        return st == MCRT_E_INVAL ? EXIT_DATAERR : exit_code_for_status(st);
    if (need > 0)
        fwrite(*out, 1, need, stdout);
    if (!a->no_newline)
        fputc('\n', stdout);
    return EXIT_OK;
}

/* The ID arguments are one sequence; each line of -f FILE is one more. */
static int tk_run_detokenize(const tk_args *a, const standalone_tokenizer *tok)
{
    tk_ids ids = {0};
    char *out = NULL;
    size_t cap = 0;
    int rc = EXIT_OK;
    for (int i = 0; rc == EXIT_OK && i < a->n_pos; i++) {
        char where[32];
        snprintf(where, sizeof where, "argument %d", i + 1);
        rc = tk_parse_ids(a->cmd, a->pos[i], strlen(a->pos[i]), where, &ids);
    }
    if (rc == EXIT_OK && a->n_pos > 0)
        rc = tk_detokenize_one(a, tok, &ids, &out, &cap);
    if (rc == EXIT_OK && a->file != NULL) {
        strbuf in = {0};
        rc = tk_read_input(a->cmd, a->file, &in);
        const char *s = in.data ? in.data : "";
        size_t pos = 0, line = 0;
        while (rc == EXIT_OK && pos < in.len) {
            const char *nl = memchr(s + pos, '\n', in.len - pos);
            size_t ll = nl ? (size_t)(nl - (s + pos)) : in.len - pos;
            char where[300];
            line++;
            snprintf(where, sizeof where, "%s:%zu", strcmp(a->file, "-") == 0 ? "stdin" : a->file,
                     line);
            ids.n = 0;
            rc = tk_parse_ids(a->cmd, s + pos, ll, where, &ids);
            if (rc == EXIT_OK)
                rc = tk_detokenize_one(a, tok, &ids, &out, &cap);
            pos += ll + (nl != NULL);
        }
        strbuf_free(&in);
    }
    free(ids.v);
    free(out);
    return rc;
}

int cmd_tokenize(int argc, char **argv, const char *exe, bool detokenize)
{
    tk_args a;
    cfg_tree *t = NULL;
    registry *reg = NULL;
    standalone_tokenizer *tok = NULL;
    log_sink log;
    int rc;
    memset(&a, 0, sizeof a);
    a.detokenize = detokenize;
    a.cmd = detokenize ? "mcrt detokenize" : "mcrt tokenize";
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            cmd_tokenize_usage(stdout, detokenize);
            return EXIT_OK;
        }
    }
    rc = tk_parse_args(&a, argc, argv);
    if (rc != EXIT_OK)
        goto done;
    t = cfg_tree_create();
    if (t == NULL) {
        fprintf(stderr, "%s: out of memory\n", a.cmd);
        rc = EXIT_UNAVAILABLE;
        goto done;
    }
    cfg_diag d;
    memset(&d, 0, sizeof d);
    if (cfg_build(t, a.n_pass, a.pass, environ, &d) != 0 || cfg_validate_core(t, &d) != 0) {
        fprintf(stderr, "%s: %s\n", a.cmd, d.msg);
        rc = d.exit_code ? d.exit_code : EXIT_CONFIG;
        goto done;
    }
    log_sink_init(&log, stderr, cfg_log_level(t));
    reg = registry_create(&log, exe);
    if (reg == NULL) {
        fprintf(stderr, "%s: out of memory\n", a.cmd);
        rc = EXIT_UNAVAILABLE;
        goto done;
    }
    rc = tk_add_plugin_dirs(reg, t, a.cmd);
    if (rc != EXIT_OK)
        goto done;
    char err[2048];
    int code = EXIT_SOFTWARE;
    tok = standalone_tokenizer_create(t, reg, &log, err, sizeof err, &code);
    if (tok == NULL) {
        fprintf(stderr, "%s: %s\n", a.cmd, err);
        rc = code;
        goto done;
    }
    rc = detokenize ? tk_run_detokenize(&a, tok) : tk_run_tokenize(&a, tok);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "%s: writing the output: %s\n", a.cmd, strerror(errno));
        if (rc == EXIT_OK)
            rc = EXIT_CANTCREAT;
    }
done:
    standalone_tokenizer_destroy(tok);
    registry_destroy(reg);
    cfg_tree_destroy(t);
    free(a.pass);
    free(a.pos);
    return rc;
}
