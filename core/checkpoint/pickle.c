/*
 * core/checkpoint/pickle.c: the restricted pickle machine of pickle.h.
 *
 * Layout: the arena; hashing (SipHash-1-3, seeded per arena); values and
 * the hash map behind dicts and sets; the allow-list; the machine (input,
 * stacks, memo, messages); text-opcode parsing; constructors (calls,
 * persistent ids, BUILD); the opcode loop; the final check of the result
 * (cycles, depth, expansion); accessors, repr and tensor resolution.
 */
#include "checkpoint/pickle.h"
#include "checkpoint/backend.h"

#include "../../plugins/common/utf8.h" /* mcrt_utf8_first_invalid, mcrt_utf8_put */
#include "util/strutil.h"               /* hex_digit_value */

#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the arena ----------------------------------------------------------- */

#define CHUNK_MIN (4u * 1024u)   /* the first chunk; each next one doubles */
#define CHUNK_MAX (256u * 1024u)

typedef struct chunk {
    struct chunk *next;
    size_t size;
    _Alignas(16) unsigned char data[];
} chunk;

struct pk_arena {
    chunk *head;
    unsigned char *cur;
    size_t left;
    size_t used;      /* bytes handed out (rounded), for limits.max_bytes */
    size_t next;      /* the next chunk's size */
    uint64_t k0, k1;  /* the hash seed */
};

pk_arena *pk_arena_new(void)
{
    pk_arena *a = calloc(1, sizeof *a);
    if (a == NULL)
        return NULL;
    /* A seed an input cannot predict (hash flooding); it only changes speed. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t x = (uint64_t)(uintptr_t)a ^ ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec;
    x ^= (uint64_t)(uintptr_t)&x << 7;
    a->k0 = x * 0x9E3779B97F4A7C15ull;
    a->k1 = (x ^ 0xD6E8FEB86659FD93ull) * 0xBF58476D1CE4E5B9ull;
    return a;
}

void pk_arena_free(pk_arena *a)
{
    if (a == NULL)
        return;
    chunk *c = a->head;
    while (c != NULL) {
        chunk *n = c->next;
        free(c);
        c = n;
    }
    free(a);
}

/* n bytes, zeroed, 16-aligned; NULL on out of memory. Chunks are not
 * zeroed whole: only what is handed out is touched. */
static void *arena_alloc(pk_arena *a, size_t n)
{
    if (n > SIZE_MAX - 15u - sizeof(chunk))
        return NULL;
    n = (n + 15u) & ~(size_t)15u;
    if (n == 0)
        n = 16;
    if (n > a->left) {
        if (a->next < CHUNK_MIN)
            a->next = CHUNK_MIN;
        size_t sz = n > a->next ? n : a->next;
        if (a->next < CHUNK_MAX)
            a->next *= 2;
        chunk *c = malloc(sizeof(chunk) + sz);
        if (c == NULL)
            return NULL;
        c->size = sz;
        c->next = a->head;
        a->head = c;
        if (sz - n >= a->left) { /* keep whichever chunk has more room */
            a->cur = c->data + n;
            a->left = sz - n;
        }
        a->used += n;
        memset(c->data, 0, n);
        return c->data;
    }
    void *p = a->cur;
    a->cur += n;
    a->left -= n;
    a->used += n;
    memset(p, 0, n);
    return p;
}

/* ---- hashing ------------------------------------------------------------- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                  \
    do {                                                                                          \
        v0 += v1;                                                                                 \
        v1 = ROTL(v1, 13);                                                                        \
        v1 ^= v0;                                                                                 \
        v0 = ROTL(v0, 32);                                                                        \
        v2 += v3;                                                                                 \
        v3 = ROTL(v3, 16);                                                                        \
        v3 ^= v2;                                                                                 \
        v0 += v3;                                                                                 \
        v3 = ROTL(v3, 21);                                                                        \
        v3 ^= v0;                                                                                 \
        v2 += v1;                                                                                 \
        v1 = ROTL(v1, 17);                                                                        \
        v1 ^= v2;                                                                                 \
        v2 = ROTL(v2, 32);                                                                        \
    } while (0)

/* SipHash-1-3 (what CPython uses for str). */
static uint64_t siphash13(uint64_t k0, uint64_t k1, const void *data, size_t n)
{
    const unsigned char *p = data;
    uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
    uint64_t b = (uint64_t)n << 56;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t m;
        memcpy(&m, p + i, 8); /* little-endian host (safetensors.c checks) */
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    for (size_t k = 0; i + k < n; k++)
        b |= (uint64_t)p[i + k] << (8 * k);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 31;
    return x;
}

/* ---- values -------------------------------------------------------------- */

typedef struct gdef gdef;

typedef struct hmap {
    pk_value **keys;
    pk_value **vals;  /* NULL for sets */
    size_t n, cap;
    uint32_t *slots;  /* index + 1; 0 = empty */
    size_t nslots;    /* a power of two, or 0 */
    const pk_arena *a; /* the seed */
    pk_value *attrs;  /* dicts: the BUILD state (an OrderedDict's __dict__) */
} hmap;

struct pk_value {
    uint8_t kind;
    uint8_t hashable;
    uint8_t color;      /* the final check: 0 new, 1 on the path, 2 done */
    uint32_t weight;    /* hashable tuples: values in the key */
    uint32_t height;    /* the final check: containers on the longest path down */
    uint64_t hash;
    uint64_t expanded;  /* the final check */
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            char *s;
            size_t len;
        } str; /* STR, BYTES, BIGINT (decimal) */
        struct {
            pk_value **items;
            size_t n, cap;
        } seq; /* TUPLE, LIST */
        hmap map; /* DICT, SET, FROZENSET */
        const gdef *g; /* GLOBAL */
        pk_dtype dtype;
        pk_storage storage;
        struct {
            pk_tensor t;
            pk_value *storage;
        } tensor;
        struct {
            const gdef *cls;
            pk_value *args;  /* a tuple */
            pk_value *attrs; /* a dict, or NULL */
            pk_value *state; /* BUILD state not merged into attrs, or NULL */
            pk_value *bytes; /* _io.BytesIO: its bytes */
            const char *member; /* an enum member pickled by name */
        } obj;
    } u;
};

#define KEY_WEIGHT_MAX 4096u

/* ---- the allow-list ------------------------------------------------------ */

enum gkind {
    G_ORDEREDDICT = 1,
    G_SET,
    G_FROZENSET,
    G_BYTES,
    G_BYTEARRAY,
    G_ENCODE,
    G_RECONSTRUCTOR,
    G_NEWOBJ_FN,
    G_OBJECT_CLASS,
    G_REBUILD_V2,
    G_REBUILD_V1,
    G_REBUILD_PARAM,
    G_REBUILD_PARAM_STATE,
    G_REBUILD_FROM_TYPE,
    G_TENSOR_CLASS,
    G_SIZE,
    G_DEVICE,
    G_STORAGE_TYPE,
    G_DTYPE,
    G_NAMESPACE,
    G_BYTESIO,
    G_NP_RECONSTRUCT,
    G_NP_NDARRAY,
    G_NP_DTYPE,
    G_NP_SCALAR,
    G_ENUM,
    G_GETATTR,
    G_GENERIC
};

struct gdef {
    const char *module, *name;
    const char *full; /* "module.name" */
    uint8_t kind;
    int32_t dtype;     /* storage types and dtypes */
    uint32_t esize;
    const char *tname; /* torch dtype name */
};

#define GD(m, n, k) {m, n, m "." n, k, 0, 0, NULL}
#define GS(n, dt, sz, tn) {"torch", n, "torch." n, G_STORAGE_TYPE, dt, sz, tn}
#define GT(n, dt, sz, tn) {"torch", n, "torch." n, G_DTYPE, dt, sz, tn}
#define GE(m, n) GD(m, n, G_ENUM)

static const gdef allowed[] = {
    GD("collections", "OrderedDict", G_ORDEREDDICT),
    GD("builtins", "set", G_SET),
    GD("builtins", "frozenset", G_FROZENSET),
    GD("builtins", "bytes", G_BYTES),
    GD("builtins", "bytearray", G_BYTEARRAY),
    GD("builtins", "object", G_OBJECT_CLASS),
    GD("_codecs", "encode", G_ENCODE),
    GD("copyreg", "_reconstructor", G_RECONSTRUCTOR),
    GD("copyreg", "__newobj__", G_NEWOBJ_FN),
    GD("builtins", "getattr", G_GETATTR), /* only getattr(<enum class>, '<member>') */
    GD("torch._utils", "_rebuild_tensor_v2", G_REBUILD_V2),
    GD("torch._utils", "_rebuild_tensor", G_REBUILD_V1),
    GD("torch._utils", "_rebuild_parameter", G_REBUILD_PARAM),
    GD("torch._utils", "_rebuild_parameter_with_state", G_REBUILD_PARAM_STATE),
    GD("torch._tensor", "_rebuild_from_type_v2", G_REBUILD_FROM_TYPE),
    GD("torch", "Tensor", G_TENSOR_CLASS),
    GD("torch._tensor", "Tensor", G_TENSOR_CLASS),
    GD("torch.nn.parameter", "Parameter", G_TENSOR_CLASS),
    GD("torch", "Size", G_SIZE),
    GD("torch", "device", G_DEVICE),
    GD("torch.serialization", "_get_layout", G_DEVICE),
    GS("FloatStorage", MCRT_DTYPE_F32, 4, "float32"),
    GS("DoubleStorage", MCRT_DTYPE_F64, 8, "float64"),
    GS("HalfStorage", MCRT_DTYPE_F16, 2, "float16"),
    GS("BFloat16Storage", MCRT_DTYPE_BF16, 2, "bfloat16"),
    GS("LongStorage", MCRT_DTYPE_I64, 8, "int64"),
    GS("IntStorage", MCRT_DTYPE_I32, 4, "int32"),
    GS("ShortStorage", MCRT_DTYPE_I16, 2, "int16"),
    GS("CharStorage", MCRT_DTYPE_I8, 1, "int8"),
    GS("ByteStorage", MCRT_DTYPE_U8, 1, "uint8"),
    GS("BoolStorage", MCRT_DTYPE_BOOL, 1, "bool"),
    GS("ComplexFloatStorage", 0, 8, "complex64"),
    GS("ComplexDoubleStorage", 0, 16, "complex128"),
    GS("QInt8Storage", 0, 1, "qint8"),
    GS("QUInt8Storage", 0, 1, "quint8"),
    GS("QInt32Storage", 0, 4, "qint32"),
    GS("QUInt4x2Storage", 0, 1, "quint4x2"),
    GS("QUInt2x4Storage", 0, 1, "quint2x4"),
    GS("UntypedStorage", MCRT_DTYPE_U8, 1, "uint8"),
    {"torch.storage", "UntypedStorage", "torch.storage.UntypedStorage", G_STORAGE_TYPE,
     MCRT_DTYPE_U8, 1, "uint8"},
    GT("float32", MCRT_DTYPE_F32, 4, "float32"),
    GT("float", MCRT_DTYPE_F32, 4, "float32"),
    GT("float64", MCRT_DTYPE_F64, 8, "float64"),
    GT("double", MCRT_DTYPE_F64, 8, "float64"),
    GT("float16", MCRT_DTYPE_F16, 2, "float16"),
    GT("half", MCRT_DTYPE_F16, 2, "float16"),
    GT("bfloat16", MCRT_DTYPE_BF16, 2, "bfloat16"),
    GT("int64", MCRT_DTYPE_I64, 8, "int64"),
    GT("long", MCRT_DTYPE_I64, 8, "int64"),
    GT("int32", MCRT_DTYPE_I32, 4, "int32"),
    GT("int", MCRT_DTYPE_I32, 4, "int32"),
    GT("int16", MCRT_DTYPE_I16, 2, "int16"),
    GT("short", MCRT_DTYPE_I16, 2, "int16"),
    GT("int8", MCRT_DTYPE_I8, 1, "int8"),
    GT("uint8", MCRT_DTYPE_U8, 1, "uint8"),
    GT("bool", MCRT_DTYPE_BOOL, 1, "bool"),
    GT("uint16", 0, 2, "uint16"),
    GT("uint32", 0, 4, "uint32"),
    GT("uint64", 0, 8, "uint64"),
    GT("complex32", 0, 4, "complex32"),
    GT("chalf", 0, 4, "complex32"),
    GT("complex64", 0, 8, "complex64"),
    GT("cfloat", 0, 8, "complex64"),
    GT("complex128", 0, 16, "complex128"),
    GT("cdouble", 0, 16, "complex128"),
    GT("float8_e4m3fn", 0, 1, "float8_e4m3fn"),
    GT("float8_e5m2", 0, 1, "float8_e5m2"),
    GT("float8_e4m3fnuz", 0, 1, "float8_e4m3fnuz"),
    GT("float8_e5m2fnuz", 0, 1, "float8_e5m2fnuz"),
    GT("qint8", 0, 1, "qint8"),
    GT("quint8", 0, 1, "quint8"),
    GT("qint32", 0, 4, "qint32"),
    GT("quint4x2", 0, 1, "quint4x2"),
    GD("argparse", "Namespace", G_NAMESPACE),
    GD("_io", "BytesIO", G_BYTESIO),
    GD("numpy.core.multiarray", "_reconstruct", G_NP_RECONSTRUCT),
    GD("numpy", "ndarray", G_NP_NDARRAY),
    GD("numpy", "dtype", G_NP_DTYPE),
    GD("numpy.core.multiarray", "scalar", G_NP_SCALAR),
    GE("megatron.core.enums", "ModelType"),
    GE("megatron.core.enums", "Fp8Recipe"),
    GE("megatron.core.enums", "Fp4Recipe"),
    GE("megatron.core.transformer.enums", "ModelType"),
    GE("megatron.core.transformer.enums", "AttnBackend"),
    GE("megatron.core.transformer.enums", "AttnMaskType"),
    GE("megatron.core.transformer.enums", "AttnType"),
    GE("megatron.core.transformer.enums", "LayerType"),
    GE("megatron.core.transformer.enums", "CudaGraphScope"),
    GE("megatron.model.enums", "ModelType"),
    GE("megatron.model.enums", "AttnMaskType"),
    GE("megatron.model.enums", "AttnType"),
    GE("megatron.model.enums", "LayerType"),
    GE("megatron.model.enums", "PositionEmbeddingType"),
    GE("megatron.legacy.model.enums", "AttnMaskType"),
    GE("megatron.legacy.model.enums", "AttnType"),
    GE("megatron.legacy.model.enums", "LayerType"),
    GE("megatron.core.dist_checkpointing.validation", "StrictHandling"),
};

/* Python 2 names and moved modules, as the unpickler's fix_imports maps
 * them (plus numpy 2's numpy._core). */
static const struct {
    const char *from, *to;
} module_alias[] = {
    {"__builtin__", "builtins"},
    {"copy_reg", "copyreg"},
    {"io", "_io"},
    {"numpy._core.multiarray", "numpy.core.multiarray"},
    {"numpy._core", "numpy.core"},
};

/* ---- the machine --------------------------------------------------------- */

typedef struct pkm {
    const unsigned char *p;
    size_t len, pos;
    size_t op_at;
    uint8_t op;
    bool in_op;
    pk_arena *a;
    size_t used0;
    pk_limits L;
    const char *const *extra;
    ckpt_err *err;
    bool failed;
    char ql[CKPT_QUOTE_SIZE];
    pk_value **st;
    size_t sp, scap;
    size_t *marks;
    size_t nm, mcap;
    pk_value **memo;
    size_t memo_cap;   /* allocated slots */
    size_t memo_count; /* defined entries (MEMOIZE's next index) */
    size_t nvalues;
    pk_value *storages; /* key -> storage, a dict */
    int proto;
} pkm;

static const char *const op_names[256] = {
    ['('] = "MARK", ['.'] = "STOP", ['0'] = "POP", ['1'] = "POP_MARK", ['2'] = "DUP",
    ['F'] = "FLOAT", ['I'] = "INT", ['J'] = "BININT", ['K'] = "BININT1", ['L'] = "LONG",
    ['M'] = "BININT2", ['N'] = "NONE", ['P'] = "PERSID", ['Q'] = "BINPERSID", ['R'] = "REDUCE",
    ['S'] = "STRING", ['T'] = "BINSTRING", ['U'] = "SHORT_BINSTRING", ['V'] = "UNICODE",
    ['X'] = "BINUNICODE", ['a'] = "APPEND", ['b'] = "BUILD", ['c'] = "GLOBAL", ['d'] = "DICT",
    ['}'] = "EMPTY_DICT", ['e'] = "APPENDS", ['g'] = "GET", ['h'] = "BINGET", ['i'] = "INST",
    ['j'] = "LONG_BINGET", ['l'] = "LIST", [']'] = "EMPTY_LIST", ['o'] = "OBJ", ['p'] = "PUT",
    ['q'] = "BINPUT", ['r'] = "LONG_BINPUT", ['s'] = "SETITEM", ['t'] = "TUPLE",
    [')'] = "EMPTY_TUPLE", ['u'] = "SETITEMS", ['G'] = "BINFLOAT", [0x80] = "PROTO",
    [0x81] = "NEWOBJ", [0x82] = "EXT1", [0x83] = "EXT2", [0x84] = "EXT4", [0x85] = "TUPLE1",
    [0x86] = "TUPLE2", [0x87] = "TUPLE3", [0x88] = "NEWTRUE", [0x89] = "NEWFALSE",
    [0x8a] = "LONG1", [0x8b] = "LONG4", ['B'] = "BINBYTES", ['C'] = "SHORT_BINBYTES",
    [0x8c] = "SHORT_BINUNICODE", [0x8d] = "BINUNICODE8", [0x8e] = "BINBYTES8",
    [0x8f] = "EMPTY_SET", [0x90] = "ADDITEMS", [0x91] = "FROZENSET", [0x92] = "NEWOBJ_EX",
    [0x93] = "STACK_GLOBAL", [0x94] = "MEMOIZE", [0x95] = "FRAME", [0x96] = "BYTEARRAY8",
    [0x97] = "NEXT_BUFFER", [0x98] = "READONLY_BUFFER",
};

static bool fail(pkm *m, mcrt_status st, const char *fmt, ...) CKPT_PRINTF(3, 4);

/* Record the first error: "<label>: pickle byte N (OP): <msg>". */
static bool fail(pkm *m, mcrt_status st, const char *fmt, ...)
{
    if (m->failed)
        return false;
    m->failed = true;
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (m->in_op) {
        const char *name = op_names[m->op];
        if (name != NULL)
            ckpt_fail(m->err, st, "%s: pickle byte %zu (%s): %s", m->ql, m->op_at, name, msg);
        else
            ckpt_fail(m->err, st, "%s: pickle byte %zu (opcode 0x%02x): %s", m->ql, m->op_at,
                      m->op, msg);
    } else {
        ckpt_fail(m->err, st, "%s: pickle: %s", m->ql, msg);
    }
    return false;
}

static bool limit_fail(pkm *m, const char *what, const char *limit, size_t value)
{
    return fail(m, MCRT_E_DATA, "%s is over the limit %s (%zu)", what, limit, value);
}

static void *aalloc(pkm *m, size_t n)
{
    if (n > m->L.max_bytes || m->a->used - m->used0 > m->L.max_bytes - n) {
        limit_fail(m, "the values' memory", "max_bytes", m->L.max_bytes);
        return NULL;
    }
    void *p = arena_alloc(m->a, n);
    if (p == NULL)
        fail(m, MCRT_E_NOMEM, "out of memory");
    return p;
}

static pk_value *newv(pkm *m, pk_kind k)
{
    if (m->nvalues >= m->L.max_values) {
        limit_fail(m, "the number of values", "max_values", m->L.max_values);
        return NULL;
    }
    pk_value *v = aalloc(m, sizeof *v);
    if (v == NULL)
        return NULL;
    m->nvalues++;
    v->kind = (uint8_t)k;
    return v;
}

/* ---- hashing values and comparing keys ----------------------------------- */

static uint64_t hash_bytes(const pk_arena *a, const void *p, size_t n)
{
    return siphash13(a->k0, a->k1, p, n);
}

static uint64_t hash_int(const pk_arena *a, int64_t i)
{
    return mix64((uint64_t)i ^ a->k0);
}

/* A float that equals an int64 hashes as that int (1.0 == 1). */
static bool float_as_int(double f, int64_t *out)
{
    if (!(f >= -9223372036854775808.0 && f < 9223372036854775808.0) || f != floor(f))
        return false;
    *out = (int64_t)f;
    return true;
}

static void set_scalar_hash(const pk_arena *a, pk_value *v)
{
    v->hashable = 1;
    v->weight = 1;
    switch (v->kind) {
    case PK_NONE: v->hash = mix64(a->k1 ^ 0x4e4f4e45u); break;
    case PK_BOOL: v->hash = hash_int(a, v->u.b ? 1 : 0); break;
    case PK_INT: v->hash = hash_int(a, v->u.i); break;
    case PK_FLOAT: {
        int64_t i;
        if (float_as_int(v->u.f, &i)) {
            v->hash = hash_int(a, i);
        } else {
            uint64_t bits;
            memcpy(&bits, &v->u.f, 8);
            v->hash = mix64(bits ^ a->k1);
        }
        break;
    }
    case PK_STR:
    case PK_BYTES:
    case PK_BIGINT: v->hash = hash_bytes(a, v->u.str.s, v->u.str.len) ^ v->kind; break;
    default: v->hashable = 0; break;
    }
}

static bool is_num(const pk_value *v)
{
    return v->kind == PK_BOOL || v->kind == PK_INT || v->kind == PK_FLOAT;
}

static bool num_eq(const pk_value *a, const pk_value *b)
{
    if (a->kind == PK_FLOAT && b->kind == PK_FLOAT)
        return a->u.f == b->u.f;
    if (a->kind == PK_FLOAT || b->kind == PK_FLOAT) {
        const pk_value *f = a->kind == PK_FLOAT ? a : b, *o = a->kind == PK_FLOAT ? b : a;
        int64_t fi;
        if (!float_as_int(f->u.f, &fi))
            return false;
        return fi == (o->kind == PK_BOOL ? (int64_t)o->u.b : o->u.i);
    }
    int64_t x = a->kind == PK_BOOL ? (int64_t)a->u.b : a->u.i;
    int64_t y = b->kind == PK_BOOL ? (int64_t)b->u.b : b->u.i;
    return x == y;
}

/* Key equality (both hashable). Tuples recurse, at most KEY_WEIGHT_MAX deep. */
static bool key_eq(const pk_value *a, const pk_value *b)
{
    if (a == b)
        return true;
    if (a->hash != b->hash)
        return false;
    if (is_num(a) && is_num(b))
        return num_eq(a, b);
    if (a->kind != b->kind)
        return false;
    switch (a->kind) {
    case PK_NONE: return true;
    case PK_STR:
    case PK_BYTES:
    case PK_BIGINT:
        return a->u.str.len == b->u.str.len && memcmp(a->u.str.s, b->u.str.s, a->u.str.len) == 0;
    case PK_TUPLE:
        if (a->u.seq.n != b->u.seq.n)
            return false;
        for (size_t i = 0; i < a->u.seq.n; i++)
            if (!key_eq(a->u.seq.items[i], b->u.seq.items[i]))
                return false;
        return true;
    case PK_DTYPE: return strcmp(a->u.dtype.name, b->u.dtype.name) == 0;
    case PK_GLOBAL: return strcmp(a->u.g->full, b->u.g->full) == 0;
    default: return false; /* objects: identity */
    }
}

/* ---- the hash map (dicts and sets) --------------------------------------- */

static pk_value *new_map(pkm *m, pk_kind k)
{
    pk_value *v = newv(m, k);
    if (v != NULL)
        v->u.map.a = m->a;
    return v;
}

/* The slot index holding key, or the empty slot where it would go. */
static size_t map_probe(const hmap *h, const pk_value *key, bool *found)
{
    size_t mask = h->nslots - 1, i = (size_t)key->hash & mask;
    for (;;) {
        uint32_t s = h->slots[i];
        if (s == 0) {
            *found = false;
            return i;
        }
        if (key_eq(h->keys[s - 1], key)) {
            *found = true;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static bool map_rehash(pkm *m, hmap *h, size_t nslots)
{
    if (nslots > SIZE_MAX / sizeof(uint32_t))
        return fail(m, MCRT_E_NOMEM, "out of memory");
    uint32_t *s = aalloc(m, nslots * sizeof *s);
    if (s == NULL)
        return false;
    h->slots = s;
    h->nslots = nslots;
    for (size_t i = 0; i < h->n; i++) {
        bool found;
        size_t at = map_probe(h, h->keys[i], &found);
        h->slots[at] = (uint32_t)(i + 1);
    }
    return true;
}

static const char *kind_name(pk_kind k);

/* d[key] = val (sets: val NULL). A repeated key keeps its place. */
static bool map_put(pkm *m, pk_value *mv, pk_value *key, pk_value *val)
{
    hmap *h = &mv->u.map;
    if (!key->hashable) {
        if (key->kind == PK_TUPLE && key->weight > KEY_WEIGHT_MAX)
            return fail(m, MCRT_E_DATA, "a %s key holds more than %u values", mv->kind == PK_DICT
                        ? "dict" : "set", KEY_WEIGHT_MAX);
        return fail(m, MCRT_E_DATA, "%s cannot be a %s key (unhashable)", kind_name(key->kind),
                    mv->kind == PK_DICT ? "dict" : "set");
    }
    if (h->nslots == 0 && !map_rehash(m, h, 8))
        return false;
    bool found;
    size_t at = map_probe(h, key, &found);
    if (found) {
        if (h->vals != NULL)
            h->vals[h->slots[at] - 1] = val;
        return true;
    }
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 8;
        if (cap > UINT32_MAX - 1)
            return limit_fail(m, "a dict's size", "max_values", m->L.max_values);
        pk_value **k = aalloc(m, cap * sizeof *k);
        pk_value **v = mv->kind == PK_DICT ? aalloc(m, cap * sizeof *v) : NULL;
        if (k == NULL || (mv->kind == PK_DICT && v == NULL))
            return false;
        if (h->n > 0) {
            memcpy(k, h->keys, h->n * sizeof *k);
            if (v != NULL)
                memcpy(v, h->vals, h->n * sizeof *v);
        }
        h->keys = k;
        h->vals = v;
        h->cap = cap;
    }
    h->keys[h->n] = key;
    if (h->vals != NULL)
        h->vals[h->n] = val;
    h->n++;
    h->slots[at] = (uint32_t)h->n;
    if (h->n * 2 > h->nslots)
        return map_rehash(m, h, h->nslots * 2);
    return true;
}

static pk_value *map_get_str(const pk_value *mv, const char *key, size_t len)
{
    const hmap *h = &mv->u.map;
    if (h->nslots == 0)
        return NULL;
    pk_value k;
    memset(&k, 0, sizeof k);
    k.kind = PK_STR;
    k.u.str.s = (char *)key;
    k.u.str.len = len;
    set_scalar_hash(h->a, &k);
    bool found;
    size_t at = map_probe(h, &k, &found);
    if (!found)
        return NULL;
    return h->vals != NULL ? h->vals[h->slots[at] - 1] : h->keys[h->slots[at] - 1];
}

/* ---- making values ------------------------------------------------------- */

static pk_value *new_scalar(pkm *m, pk_kind k)
{
    pk_value *v = newv(m, k);
    if (v != NULL)
        set_scalar_hash(m->a, v);
    return v;
}

static pk_value *new_int(pkm *m, int64_t i)
{
    pk_value *v = newv(m, PK_INT);
    if (v != NULL) {
        v->u.i = i;
        set_scalar_hash(m->a, v);
    }
    return v;
}

static pk_value *new_bool(pkm *m, bool b)
{
    pk_value *v = newv(m, PK_BOOL);
    if (v != NULL) {
        v->u.b = b;
        set_scalar_hash(m->a, v);
    }
    return v;
}

static pk_value *new_float(pkm *m, double f)
{
    pk_value *v = newv(m, PK_FLOAT);
    if (v != NULL) {
        v->u.f = f;
        set_scalar_hash(m->a, v);
    }
    return v;
}

/* A str / bytes / bigint value holding a copy of s[0..n) (NUL-terminated). */
static pk_value *new_strv(pkm *m, pk_kind k, const void *s, size_t n)
{
    pk_value *v = newv(m, k);
    if (v == NULL)
        return NULL;
    char *c = aalloc(m, n + 1);
    if (c == NULL)
        return NULL;
    if (n > 0)
        memcpy(c, s, n);
    c[n] = '\0';
    v->u.str.s = c;
    v->u.str.len = n;
    set_scalar_hash(m->a, v);
    return v;
}

/* A str/bytes value of n bytes to fill in (NUL-terminated, hash unset). */
static pk_value *new_str_buf(pkm *m, pk_kind k, size_t n, char **buf)
{
    pk_value *v = newv(m, k);
    if (v == NULL)
        return NULL;
    char *c = aalloc(m, n + 1);
    if (c == NULL)
        return NULL;
    v->u.str.s = c;
    v->u.str.len = n;
    *buf = c;
    return v;
}

/* A tuple of items[0..n) (copied). Hashable when every item is and the
 * whole key is small. */
static pk_value *new_tuple(pkm *m, pk_value *const *items, size_t n)
{
    pk_value *v = newv(m, PK_TUPLE);
    if (v == NULL)
        return NULL;
    if (n > 0) {
        v->u.seq.items = aalloc(m, n * sizeof *items);
        if (v->u.seq.items == NULL)
            return NULL;
        memcpy(v->u.seq.items, items, n * sizeof *items);
    }
    v->u.seq.n = v->u.seq.cap = n;
    bool hashable = true;
    uint64_t w = 1, h = mix64(m->a->k0 ^ 0x7475706c65ull ^ n);
    for (size_t i = 0; i < n; i++) {
        const pk_value *it = items[i];
        if (!it->hashable)
            hashable = false;
        w += it->weight;
        if (w > KEY_WEIGHT_MAX + 1u)
            w = KEY_WEIGHT_MAX + 1u;
        h = mix64(h ^ it->hash) + 0x9E3779B97F4A7C15ull;
    }
    v->weight = (uint32_t)w;
    v->hash = h;
    v->hashable = hashable && w <= KEY_WEIGHT_MAX;
    return v;
}

static bool list_append(pkm *m, pk_value *l, pk_value *const *items, size_t n)
{
    if (n == 0)
        return true;
    size_t need = l->u.seq.n + n;
    if (need > l->u.seq.cap) {
        size_t cap = l->u.seq.cap ? l->u.seq.cap : 8;
        while (cap < need)
            cap *= 2;
        if (cap > SIZE_MAX / sizeof(pk_value *))
            return fail(m, MCRT_E_NOMEM, "out of memory");
        pk_value **it = aalloc(m, cap * sizeof *it);
        if (it == NULL)
            return false;
        if (l->u.seq.n > 0)
            memcpy(it, l->u.seq.items, l->u.seq.n * sizeof *it);
        l->u.seq.items = it;
        l->u.seq.cap = cap;
    }
    memcpy(l->u.seq.items + l->u.seq.n, items, n * sizeof *items);
    l->u.seq.n = need;
    return true;
}

static pk_value *new_object(pkm *m, const gdef *cls, pk_value *args)
{
    pk_value *v = newv(m, PK_OBJECT);
    if (v == NULL)
        return NULL;
    if (args == NULL && (args = new_tuple(m, NULL, 0)) == NULL)
        return NULL;
    v->u.obj.cls = cls;
    v->u.obj.args = args;
    v->hashable = 1; /* by identity */
    v->weight = 1;
    v->hash = mix64((uint64_t)(uintptr_t)v ^ m->a->k1);
    return v;
}

/* ---- names and messages -------------------------------------------------- */

static const char *kind_name(pk_kind k)
{
    switch (k) {
    case PK_NONE: return "None";
    case PK_BOOL: return "a bool";
    case PK_INT: return "an int";
    case PK_BIGINT: return "a big int";
    case PK_FLOAT: return "a float";
    case PK_STR: return "a str";
    case PK_BYTES: return "bytes";
    case PK_TUPLE: return "a tuple";
    case PK_LIST: return "a list";
    case PK_DICT: return "a dict";
    case PK_SET: return "a set";
    case PK_FROZENSET: return "a frozenset";
    case PK_GLOBAL: return "a class or function";
    case PK_DTYPE: return "a torch dtype";
    case PK_STORAGE: return "a torch storage";
    case PK_TENSOR: return "a tensor";
    case PK_OBJECT: return "an object";
    default: return "nothing";
    }
}

const char *pk_kind_name(pk_kind k)
{
    return kind_name(k);
}

/* "a dict", or for objects and globals their class ("an argparse.Namespace
 * object"), into buf. */
static const char *describe(const pk_value *v, char *buf, size_t size)
{
    if (v == NULL)
        return "nothing";
    if (v->kind == PK_OBJECT) {
        snprintf(buf, size, "a %s object", v->u.obj.cls->full);
        return buf;
    }
    if (v->kind == PK_GLOBAL) {
        snprintf(buf, size, "%s", v->u.g->full);
        return buf;
    }
    return kind_name((pk_kind)v->kind);
}

/* ---- reading the input --------------------------------------------------- */

static bool need(pkm *m, size_t n)
{
    if (m->len - m->pos >= n)
        return true;
    return fail(m, MCRT_E_DATA, "truncated pickle: the opcode needs %zu more bytes, %zu are left",
                n, m->len - m->pos);
}

static uint64_t rd_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static bool read_le(pkm *m, int n, uint64_t *out)
{
    if (!need(m, (size_t)n))
        return false;
    *out = rd_le(m->p + m->pos, n);
    m->pos += (size_t)n;
    return true;
}

/* A text argument: up to '\n' (consumed, not returned). */
static bool read_line(pkm *m, const char **s, size_t *n)
{
    size_t left = m->len - m->pos;
    size_t scan = left < m->L.max_str + 1 ? left : m->L.max_str + 1;
    const unsigned char *nl = memchr(m->p + m->pos, '\n', scan);
    if (nl == NULL) {
        if (scan < left)
            return limit_fail(m, "a text line's length", "max_str", m->L.max_str);
        return fail(m, MCRT_E_DATA, "truncated pickle: no end of line after the opcode");
    }
    *s = (const char *)m->p + m->pos;
    *n = (size_t)(nl - (m->p + m->pos));
    m->pos += *n + 1;
    return true;
}

/* A counted argument: n bytes (checked against max_str, then the input). */
static bool read_counted(pkm *m, uint64_t n, const char *what, const unsigned char **out)
{
    if (n > m->L.max_str) {
        char w[96];
        snprintf(w, sizeof w, "a %s of %" PRIu64 " bytes", what, n);
        return limit_fail(m, w, "max_str", m->L.max_str);
    }
    if (!need(m, (size_t)n))
        return false;
    *out = m->p + m->pos;
    m->pos += (size_t)n;
    return true;
}

/* ---- the stacks and the memo --------------------------------------------- */

static size_t fence(const pkm *m)
{
    return m->nm > 0 ? m->marks[m->nm - 1] : 0;
}

static bool push(pkm *m, pk_value *v)
{
    if (v == NULL)
        return false;
    if (m->sp + m->nm >= m->L.max_stack)
        return limit_fail(m, "the stack", "max_stack", m->L.max_stack);
    if (m->sp == m->scap) {
        size_t cap = m->scap ? m->scap * 2 : 64;
        pk_value **s = realloc(m->st, cap * sizeof *s);
        if (s == NULL)
            return fail(m, MCRT_E_NOMEM, "out of memory");
        m->st = s;
        m->scap = cap;
    }
    m->st[m->sp++] = v;
    return true;
}

static pk_value *pop(pkm *m)
{
    if (m->sp <= fence(m)) {
        fail(m, MCRT_E_DATA, "stack underflow (%s)", m->sp == 0 ? "the stack is empty"
                                                                : "nothing above the MARK");
        return NULL;
    }
    return m->st[--m->sp];
}

static pk_value *top(pkm *m)
{
    if (m->sp <= fence(m)) {
        fail(m, MCRT_E_DATA, "stack underflow (%s)", m->sp == 0 ? "the stack is empty"
                                                                : "nothing above the MARK");
        return NULL;
    }
    return m->st[m->sp - 1];
}

static bool push_mark(pkm *m)
{
    if (m->sp + m->nm >= m->L.max_stack)
        return limit_fail(m, "the stack", "max_stack", m->L.max_stack);
    if (m->nm == m->mcap) {
        size_t cap = m->mcap ? m->mcap * 2 : 32;
        size_t *s = realloc(m->marks, cap * sizeof *s);
        if (s == NULL)
            return fail(m, MCRT_E_NOMEM, "out of memory");
        m->marks = s;
        m->mcap = cap;
    }
    m->marks[m->nm++] = m->sp;
    return true;
}

/* The items above the top MARK: st[*first .. sp); the MARK is removed (the
 * caller then sets sp = *first). */
static bool pop_mark(pkm *m, size_t *first)
{
    if (m->nm == 0)
        return fail(m, MCRT_E_DATA, "no MARK on the stack");
    *first = m->marks[--m->nm];
    return true;
}

static bool memo_put(pkm *m, uint64_t idx, pk_value *v)
{
    if (v == NULL)
        return false;
    if (idx >= m->L.max_memo) {
        char w[64];
        snprintf(w, sizeof w, "memo index %" PRIu64, idx);
        return limit_fail(m, w, "max_memo", m->L.max_memo);
    }
    if (idx >= m->memo_cap) {
        size_t cap = m->memo_cap ? m->memo_cap : 64;
        while (cap <= idx)
            cap *= 2;
        if (cap > m->L.max_memo)
            cap = m->L.max_memo;
        pk_value **n = realloc(m->memo, cap * sizeof *n);
        if (n == NULL)
            return fail(m, MCRT_E_NOMEM, "out of memory");
        memset(n + m->memo_cap, 0, (cap - m->memo_cap) * sizeof *n);
        m->memo = n;
        m->memo_cap = cap;
    }
    if (m->memo[idx] == NULL)
        m->memo_count++;
    m->memo[idx] = v;
    return true;
}

static pk_value *memo_get(pkm *m, uint64_t idx)
{
    if (idx >= m->memo_cap || m->memo[idx] == NULL) {
        fail(m, MCRT_E_DATA, "memo index %" PRIu64 " was never stored (PUT)", idx);
        return NULL;
    }
    return m->memo[idx];
}

/* ---- text arguments ------------------------------------------------------ */

/* GET / PUT: a memo index in decimal. */
static bool parse_index(pkm *m, const char *s, size_t n, uint64_t *out)
{
    uint64_t u = 0;
    bool ok = n > 0 && n <= 19;
    for (size_t i = 0; ok && i < n; i++) {
        ok = s[i] >= '0' && s[i] <= '9';
        u = u * 10 + (uint64_t)(s[i] - '0');
    }
    if (!ok) {
        char q[80];
        return fail(m, MCRT_E_DATA, "the memo index '%s' is not a decimal number",
                    ckpt_quote(q, sizeof q, s, n));
    }
    *out = u;
    return true;
}

static bool digits_ok(const char *s, size_t n, size_t *start)
{
    size_t i = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        i++;
    if (i == n)
        return false;
    for (size_t k = i; k < n; k++)
        if (s[k] < '0' || s[k] > '9')
            return false;
    *start = i;
    return true;
}

/* A decimal integer (sign, digits): an int, or a big int kept as text. */
static pk_value *parse_decimal(pkm *m, const char *s, size_t n, const char *what)
{
    size_t i;
    if (!digits_ok(s, n, &i)) {
        char q[80];
        fail(m, MCRT_E_DATA, "%s '%s' is not a decimal integer", what,
             ckpt_quote(q, sizeof q, s, n));
        return NULL;
    }
    bool neg = s[0] == '-';
    while (i + 1 < n && s[i] == '0')
        i++;
    size_t nd = n - i;
    /* int64 when it fits */
    if (nd <= 19) {
        uint64_t mag = 0;
        bool over = false;
        for (size_t k = i; k < n; k++) {
            uint64_t d = (uint64_t)(s[k] - '0');
            if (mag > (UINT64_MAX - d) / 10) {
                over = true;
                break;
            }
            mag = mag * 10 + d;
        }
        if (!over && ((!neg && mag <= INT64_MAX) || (neg && mag <= (uint64_t)INT64_MAX + 1)))
            return new_int(m, neg ? (int64_t)(0 - mag) : (int64_t)mag);
    }
    if (nd > m->L.max_bigint) {
        char w[64];
        snprintf(w, sizeof w, "an int of %zu digits", nd);
        limit_fail(m, w, "max_bigint", m->L.max_bigint);
        return NULL;
    }
    char *buf;
    pk_value *v = new_str_buf(m, PK_BIGINT, nd + (neg ? 1 : 0), &buf);
    if (v == NULL)
        return NULL;
    size_t o = 0;
    if (neg)
        buf[o++] = '-';
    memcpy(buf + o, s + i, nd);
    buf[o + nd] = '\0';
    set_scalar_hash(m->a, v);
    return v;
}

/* LONG1/LONG4: little-endian two's complement of n bytes. */
static pk_value *parse_long_bytes(pkm *m, const unsigned char *p, size_t n)
{
    if (n == 0)
        return new_int(m, 0);
    bool neg = (p[n - 1] & 0x80) != 0;
    /* significant bytes */
    size_t sig = n;
    while (sig > 1 && p[sig - 1] == (neg ? 0xff : 0x00) &&
           ((p[sig - 2] & 0x80) != 0) == neg)
        sig--;
    if (sig <= 8) {
        uint64_t u = 0;
        for (size_t k = sig; k-- > 0;)
            u = (u << 8) | p[k];
        if (neg && sig < 8)
            u |= ~UINT64_C(0) << (8 * sig);
        return new_int(m, (int64_t)u);
    }
    /* a big int: magnitude, then decimal */
    /* 256^sig has at most 2.40824 sig + 1 digits: refuse early what cannot fit */
    if ((uint64_t)sig * 240824 / 100000 > (uint64_t)m->L.max_bigint + 3) {
        char w[64];
        snprintf(w, sizeof w, "an int of %zu bytes", sig);
        limit_fail(m, w, "max_bigint", m->L.max_bigint);
        return NULL;
    }
    unsigned char *mag = malloc(sig);
    char *dec = malloc(sig * 3 + 2);
    if (mag == NULL || dec == NULL) {
        free(mag);
        free(dec);
        fail(m, MCRT_E_NOMEM, "out of memory");
        return NULL;
    }
    unsigned carry = 1;
    for (size_t k = 0; k < sig; k++) {
        unsigned b = neg ? (unsigned)(~p[k] & 0xff) + carry : p[k];
        if (neg)
            carry = b >> 8;
        mag[k] = (unsigned char)b;
    }
    /* repeated division by 10 (sig <= max_bigint / 2: small) */
    size_t nd = 0, len = sig;
    while (len > 0) {
        unsigned rem = 0;
        for (size_t k = len; k-- > 0;) {
            unsigned cur = (rem << 8) | mag[k];
            mag[k] = (unsigned char)(cur / 10);
            rem = cur % 10;
        }
        dec[nd++] = (char)('0' + rem);
        while (len > 0 && mag[len - 1] == 0)
            len--;
    }
    char *buf;
    pk_value *v = NULL;
    if (nd > m->L.max_bigint) {
        char w[64];
        snprintf(w, sizeof w, "an int of %zu digits", nd);
        limit_fail(m, w, "max_bigint", m->L.max_bigint);
    } else if ((v = new_str_buf(m, PK_BIGINT, nd + (neg ? 1 : 0), &buf)) != NULL) {
        size_t o = 0;
        if (neg)
            buf[o++] = '-';
        for (size_t k = nd; k-- > 0;)
            buf[o++] = dec[k];
        buf[o] = '\0';
        set_scalar_hash(m->a, v);
    }
    free(mag);
    free(dec);
    return v;
}

/* FLOAT: Python's repr of a float ("2.5", "1e-05", "inf", "nan"). */
static pk_value *parse_float_text(pkm *m, const char *s, size_t n)
{
    char buf[128];
    char q[80];
    if (n == 0 || n >= sizeof buf) {
        fail(m, MCRT_E_DATA, "float '%s' is not a number", ckpt_quote(q, sizeof q, s, n));
        return NULL;
    }
    size_t i = 0;
    bool neg = false;
    if (s[i] == '-' || s[i] == '+')
        neg = s[i++] == '-';
    char low[16];
    size_t rest = n - i;
    if (rest <= 8) {
        for (size_t k = 0; k < rest; k++)
            low[k] = (char)((s[i + k] >= 'A' && s[i + k] <= 'Z') ? s[i + k] + 32 : s[i + k]);
        low[rest] = '\0';
        if (strcmp(low, "inf") == 0 || strcmp(low, "infinity") == 0)
            return new_float(m, neg ? -INFINITY : INFINITY);
        if (strcmp(low, "nan") == 0)
            return new_float(m, neg ? -NAN : NAN);
    }
    /* digits [. digits] [e [sign] digits], at least one digit in the mantissa */
    size_t k = i, md = 0;
    while (k < n && s[k] >= '0' && s[k] <= '9')
        k++, md++;
    if (k < n && s[k] == '.') {
        k++;
        while (k < n && s[k] >= '0' && s[k] <= '9')
            k++, md++;
    }
    bool ok = md > 0;
    if (ok && k < n && (s[k] == 'e' || s[k] == 'E')) {
        k++;
        if (k < n && (s[k] == '+' || s[k] == '-'))
            k++;
        size_t ed = 0;
        while (k < n && s[k] >= '0' && s[k] <= '9')
            k++, ed++;
        ok = ed > 0;
    }
    if (!ok || k != n) {
        fail(m, MCRT_E_DATA, "float '%s' is not a number", ckpt_quote(q, sizeof q, s, n));
        return NULL;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    /* strtod reads the locale's decimal point */
    const char *dp = localeconv()->decimal_point;
    if (dp != NULL && dp[0] != '\0' && dp[0] != '.' && dp[1] == '\0') {
        char *dot = strchr(buf, '.');
        if (dot != NULL)
            *dot = dp[0];
    }
    return new_float(m, strtod(buf, NULL));
}

/* Strict UTF-8 (no overlong forms, no surrogates): the offset of the first
 * bad byte, or n. */
static size_t utf8_check(const unsigned char *s, size_t n)
{
    return mcrt_utf8_first_invalid((const char *)s, n);
}

static pk_value *new_utf8(pkm *m, const void *s, size_t n)
{
    size_t bad = utf8_check(s, n);
    if (bad != n) {
        fail(m, MCRT_E_DATA, "a str of %zu bytes is not valid UTF-8 (byte %zu: 0x%02x)", n, bad,
             ((const unsigned char *)s)[bad]);
        return NULL;
    }
    return new_strv(m, PK_STR, s, n);
}

/* UNICODE: raw-unicode-escape (bytes are Latin-1 code points; \uXXXX and
 * \UXXXXXXXX after an odd run of backslashes). */
static pk_value *parse_raw_unicode(pkm *m, const char *s, size_t n)
{
    if (n > (SIZE_MAX - 1) / 2) {
        fail(m, MCRT_E_NOMEM, "out of memory");
        return NULL;
    }
    char *out = malloc(n * 2 + 1); /* a Latin-1 byte is at most 2 UTF-8 bytes; \u.. shrink */
    if (out == NULL) {
        fail(m, MCRT_E_NOMEM, "out of memory");
        return NULL;
    }
    size_t o = 0, i = 0;
    pk_value *v = NULL;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c != '\\') {
            o += mcrt_utf8_put(out + o, c);
            i++;
            continue;
        }
        size_t run = 0;
        while (i < n && s[i] == '\\') {
            out[o++] = '\\';
            i++;
            run++;
        }
        if ((run & 1) == 0 || i >= n || (s[i] != 'u' && s[i] != 'U'))
            continue;
        o--; /* the escape's backslash */
        int count = s[i] == 'u' ? 4 : 8;
        i++;
        uint32_t cp = 0;
        for (int k = 0; k < count; k++, i++) {
            int h = i < n ? hex_digit_value((unsigned char)s[i]) : -1;
            if (h < 0) {
                fail(m, MCRT_E_DATA, "truncated \\%c escape in a UNICODE string",
                     count == 4 ? 'u' : 'U');
                goto done;
            }
            cp = (cp << 4) | (uint32_t)h;
        }
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            fail(m, MCRT_E_DATA, "\\U%08" PRIx32 " in a UNICODE string is not a Unicode scalar "
                 "value (surrogates and code points past U+10FFFF are refused)", cp);
            goto done;
        }
        o += mcrt_utf8_put(out + o, cp);
    }
    if (o > m->L.max_str) {
        limit_fail(m, "a str's length", "max_str", m->L.max_str);
        goto done;
    }
    v = new_strv(m, PK_STR, out, o);
done:
    free(out);
    return v;
}

/* STRING: a Python 2 str repr, quoted, with C-like escapes; then UTF-8. */
static pk_value *parse_quoted(pkm *m, const char *s, size_t n)
{
    if (n < 2 || s[0] != s[n - 1] || (s[0] != '\'' && s[0] != '"')) {
        fail(m, MCRT_E_DATA, "the STRING argument is not quoted");
        return NULL;
    }
    s++;
    n -= 2;
    char *out = malloc(n + 1);
    if (out == NULL) {
        fail(m, MCRT_E_NOMEM, "out of memory");
        return NULL;
    }
    size_t o = 0;
    pk_value *v = NULL;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c != '\\') {
            out[o++] = c;
            continue;
        }
        if (++i >= n) {
            fail(m, MCRT_E_DATA, "a trailing \\ in a STRING argument");
            goto done;
        }
        c = s[i];
        switch (c) {
        case '\n': break;
        case '\\': out[o++] = '\\'; break;
        case '\'': out[o++] = '\''; break;
        case '"': out[o++] = '"'; break;
        case 'a': out[o++] = '\a'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'v': out[o++] = '\v'; break;
        case 'x': {
            int h1 = i + 1 < n ? hex_digit_value((unsigned char)s[i + 1]) : -1;
            int h2 = i + 2 < n ? hex_digit_value((unsigned char)s[i + 2]) : -1;
            if (h1 < 0 || h2 < 0) {
                fail(m, MCRT_E_DATA, "an invalid \\x escape in a STRING argument");
                goto done;
            }
            out[o++] = (char)(h1 * 16 + h2);
            i += 2;
            break;
        }
        default:
            if (c >= '0' && c <= '7') {
                unsigned val = (unsigned)(c - '0');
                for (int k = 0; k < 2 && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '7'; k++)
                    val = val * 8 + (unsigned)(s[++i] - '0');
                out[o++] = (char)(val & 0xff);
            } else {
                out[o++] = '\\';
                out[o++] = c;
            }
        }
    }
    v = new_utf8(m, out, o);
done:
    free(out);
    return v;
}

/* ---- globals ------------------------------------------------------------- */

static const char *canonical_module(const char *mod, size_t n, size_t *out_n)
{
    for (size_t i = 0; i < sizeof module_alias / sizeof module_alias[0]; i++) {
        size_t fl = strlen(module_alias[i].from);
        if (n == fl && memcmp(mod, module_alias[i].from, fl) == 0) {
            *out_n = strlen(module_alias[i].to);
            return module_alias[i].to;
        }
    }
    *out_n = n;
    return mod;
}

static bool name_eq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* The value a GLOBAL pushes, or NULL (refused, with the message). */
static pk_value *find_global(pkm *m, const char *mod0, size_t mn0, const char *name, size_t nn)
{
    size_t mn;
    const char *mod = canonical_module(mod0, mn0, &mn);
    const gdef *g = NULL;
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0] && g == NULL; i++)
        if (name_eq(mod, mn, allowed[i].module) && name_eq(name, nn, allowed[i].name))
            g = &allowed[i];
    if (g == NULL && m->extra != NULL) {
        for (const char *const *e = m->extra; *e != NULL; e++) {
            size_t el = strlen(*e);
            if (el == mn + 1 + nn && memcmp(*e, mod, mn) == 0 && (*e)[mn] == '.' &&
                memcmp(*e + mn + 1, name, nn) == 0) {
                gdef *d = aalloc(m, sizeof *d);
                char *full = aalloc(m, el + 1);
                if (d == NULL || full == NULL)
                    return NULL;
                memcpy(full, *e, el + 1);
                full[mn] = '\0';
                d->module = full; /* "module\0name": module and name share the copy */
                d->name = full + mn + 1;
                char *f2 = aalloc(m, el + 1);
                if (f2 == NULL)
                    return NULL;
                memcpy(f2, *e, el + 1);
                d->full = f2;
                d->kind = G_GENERIC;
                g = d;
                break;
            }
        }
    }
    if (g == NULL) {
        char qm[CKPT_QUOTE_SIZE], qn[CKPT_QUOTE_SIZE];
        fail(m, MCRT_E_DATA, "global '%s.%s' is not allowed (a checkpoint holds data; mcrt never "
             "runs code from it)", ckpt_quote(qm, sizeof qm, mod0, mn0),
             ckpt_quote(qn, sizeof qn, name, nn));
        return NULL;
    }
    if (g->kind == G_DTYPE) {
        pk_value *v = newv(m, PK_DTYPE);
        if (v == NULL)
            return NULL;
        v->u.dtype.name = g->tname;
        v->u.dtype.dtype = g->dtype;
        v->u.dtype.elem_size = g->esize;
        v->hashable = 1;
        v->weight = 1;
        v->hash = hash_bytes(m->a, g->tname, strlen(g->tname)) ^ 0x64;
        return v;
    }
    pk_value *v = newv(m, PK_GLOBAL);
    if (v == NULL)
        return NULL;
    v->u.g = g;
    v->hashable = 1;
    v->weight = 1;
    v->hash = hash_bytes(m->a, g->full, strlen(g->full)) ^ 0x67;
    return v;
}

/* ---- constructors -------------------------------------------------------- */

enum call_how { CALL_REDUCE, CALL_NEWOBJ, CALL_INST };

static size_t nargs(const pk_value *args)
{
    return args->u.seq.n;
}

static pk_value *arg(const pk_value *args, size_t i)
{
    return args->u.seq.items[i];
}

static bool argc_fail(pkm *m, const gdef *g, size_t n, const char *want)
{
    return fail(m, MCRT_E_DATA, "%s called with %zu argument%s (expects %s)", g->full, n,
                n == 1 ? "" : "s", want);
}

static bool arg_fail(pkm *m, const gdef *g, size_t i, const char *what, const pk_value *v,
                     const char *want)
{
    char d[160];
    return fail(m, MCRT_E_DATA, "%s: argument %zu (%s) is %s, not %s", g->full, i + 1, what,
                describe(v, d, sizeof d), want);
}

/* The items of a list, tuple, set or frozenset; false otherwise. */
static bool iter_items(const pk_value *v, pk_value *const **items, size_t *n)
{
    switch (v->kind) {
    case PK_LIST:
    case PK_TUPLE:
        *items = v->u.seq.items;
        *n = v->u.seq.n;
        return true;
    case PK_SET:
    case PK_FROZENSET:
        *items = v->u.map.keys;
        *n = v->u.map.n;
        return true;
    default:
        return false;
    }
}

static pk_value *make_set(pkm *m, pk_kind k, const gdef *g, pk_value *args)
{
    pk_value *s = new_map(m, k);
    if (s == NULL)
        return NULL;
    if (nargs(args) == 0)
        return s;
    pk_value *const *items;
    size_t n;
    if (nargs(args) != 1) {
        argc_fail(m, g, nargs(args), "0 or 1");
        return NULL;
    }
    if (!iter_items(arg(args, 0), &items, &n)) {
        arg_fail(m, g, 0, "iterable", arg(args, 0), "a list, tuple or set");
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (!map_put(m, s, items[i], NULL))
            return NULL;
    return s;
}

static bool is_encoding(const pk_value *v, const char *const *names)
{
    if (v->kind != PK_STR)
        return false;
    for (; *names != NULL; names++)
        if (strcmp(v->u.str.s, *names) == 0 && strlen(*names) == v->u.str.len)
            return true;
    return false;
}

/* A str's code points as Latin-1 bytes (each < 256). */
static pk_value *latin1_bytes(pkm *m, const gdef *g, const pk_value *s)
{
    char *buf;
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)s->u.str.s;
    for (size_t i = 0; i < s->u.str.len; i++)
        if ((p[i] & 0xC0) != 0x80)
            n++;
    pk_value *v = new_str_buf(m, PK_BYTES, n, &buf);
    if (v == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < s->u.str.len;) {
        unsigned c = p[i];
        if (c < 0x80) {
            buf[o++] = (char)c;
            i++;
        } else if ((c == 0xC2 || c == 0xC3) && i + 1 < s->u.str.len) {
            buf[o++] = (char)(((c & 0x1F) << 6) | (p[i + 1] & 0x3F));
            i += 2;
        } else {
            fail(m, MCRT_E_DATA, "%s: the str holds a character past U+00FF, which Latin-1 "
                 "cannot encode", g->full);
            return NULL;
        }
    }
    buf[o] = '\0';
    set_scalar_hash(m->a, v);
    return v;
}

static const char *const latin1_names[] = {"latin1", "latin-1", "iso-8859-1", "iso8859-1", "l1",
                                           NULL};
static const char *const utf8_names[] = {"utf-8", "utf8", "UTF-8", "UTF8", NULL};

static pk_value *make_bytes(pkm *m, const gdef *g, pk_value *args)
{
    size_t n = nargs(args);
    if (g->kind == G_ENCODE) {
        if (n < 1 || n > 3) {
            argc_fail(m, g, n, "(str, encoding)");
            return NULL;
        }
        if (arg(args, 0)->kind != PK_STR) {
            arg_fail(m, g, 0, "obj", arg(args, 0), "a str");
            return NULL;
        }
        if (n == 1 || is_encoding(arg(args, 1), utf8_names))
            return new_strv(m, PK_BYTES, arg(args, 0)->u.str.s, arg(args, 0)->u.str.len);
        if (is_encoding(arg(args, 1), latin1_names))
            return latin1_bytes(m, g, arg(args, 0));
        arg_fail(m, g, 1, "encoding", arg(args, 1), "'latin1' or 'utf-8'");
        return NULL;
    }
    /* bytes() / bytes(b) / bytearray() / bytearray(b) / bytearray(str, 'latin-1') */
    if (n == 0)
        return new_strv(m, PK_BYTES, "", 0);
    if (n == 1 && arg(args, 0)->kind == PK_BYTES)
        return new_strv(m, PK_BYTES, arg(args, 0)->u.str.s, arg(args, 0)->u.str.len);
    if (n == 2 && arg(args, 0)->kind == PK_STR) {
        if (is_encoding(arg(args, 1), latin1_names))
            return latin1_bytes(m, g, arg(args, 0));
        if (is_encoding(arg(args, 1), utf8_names))
            return new_strv(m, PK_BYTES, arg(args, 0)->u.str.s, arg(args, 0)->u.str.len);
    }
    fail(m, MCRT_E_DATA, "%s: expects no argument, bytes, or (str, 'latin-1')", g->full);
    return NULL;
}

static bool nonneg_int(const pk_value *v, int64_t *out)
{
    if (v->kind != PK_INT || v->u.i < 0)
        return false;
    *out = v->u.i;
    return true;
}

/* A tensor from its storage and view, checked. */
static pk_value *make_tensor(pkm *m, const gdef *g, pk_value *storage, pk_value *off,
                             pk_value *size, pk_value *stride, pk_value *rg)
{
    if (storage->kind != PK_STORAGE) {
        arg_fail(m, g, 0, "storage", storage, "a storage (a persistent id)");
        return NULL;
    }
    int64_t o;
    if (!nonneg_int(off, &o)) {
        arg_fail(m, g, 1, "storage_offset", off, "a non-negative int");
        return NULL;
    }
    if (size->kind != PK_TUPLE) {
        arg_fail(m, g, 2, "size", size, "a tuple of ints");
        return NULL;
    }
    if (stride->kind != PK_TUPLE) {
        arg_fail(m, g, 3, "stride", stride, "a tuple of ints");
        return NULL;
    }
    size_t nd = size->u.seq.n;
    if (stride->u.seq.n != nd) {
        fail(m, MCRT_E_DATA, "%s: size has %zu dimensions but stride %zu", g->full, nd,
             stride->u.seq.n);
        return NULL;
    }
    if (nd > PK_MAX_DIMS) {
        fail(m, MCRT_E_UNSUPPORTED, "%s: a tensor of %zu dimensions (mcrt reads at most %d)",
             g->full, nd, PK_MAX_DIMS);
        return NULL;
    }
    if (rg != NULL && rg->kind != PK_BOOL) {
        arg_fail(m, g, 4, "requires_grad", rg, "a bool");
        return NULL;
    }
    pk_value *v = newv(m, PK_TENSOR);
    if (v == NULL)
        return NULL;
    pk_tensor *t = &v->u.tensor.t;
    const pk_storage *s = &storage->u.storage;
    t->storage = s;
    t->storage_offset = (uint64_t)o;
    t->ndim = (int32_t)nd;
    t->requires_grad = rg != NULL && rg->u.b;
    v->u.tensor.storage = storage;
    uint64_t nelem = 1, last = 0; /* last: offset of the furthest element */
    bool empty = false, over = false;
    for (size_t i = 0; i < nd; i++) {
        if (!nonneg_int(size->u.seq.items[i], &t->shape[i])) {
            char w[32];
            snprintf(w, sizeof w, "size[%zu]", i);
            arg_fail(m, g, 2, w, size->u.seq.items[i], "a non-negative int");
            return NULL;
        }
        if (!nonneg_int(stride->u.seq.items[i], &t->stride[i])) {
            char w[32];
            snprintf(w, sizeof w, "stride[%zu]", i);
            arg_fail(m, g, 3, w, stride->u.seq.items[i], "a non-negative int");
            return NULL;
        }
        if (t->shape[i] == 0)
            empty = true;
    }
    for (size_t i = 0; i < nd && !empty; i++) {
        uint64_t step;
        if (!ckpt_mul_u64((uint64_t)t->shape[i], nelem, &nelem) ||
            !ckpt_mul_u64((uint64_t)(t->shape[i] - 1), (uint64_t)t->stride[i], &step) ||
            !ckpt_add_u64(last, step, &last))
            over = true;
    }
    uint64_t end; /* one past the furthest element */
    if (empty) {
        nelem = 0;
        end = (uint64_t)o;
    } else if (over || !ckpt_add_u64(last, (uint64_t)o, &end) || !ckpt_add_u64(end, 1, &end)) {
        fail(m, MCRT_E_DATA, "%s: the view of storage '%s' overflows 64 bits", g->full, s->key);
        return NULL;
    }
    if (end > s->numel) {
        fail(m, MCRT_E_DATA, "%s: the view (offset %" PRId64 ", %zu dimensions) needs %" PRIu64
             " elements of storage '%s', which holds %" PRIu64, g->full, o, nd, end, s->key,
             s->numel);
        return NULL;
    }
    t->nelem = nelem;
    return v;
}

static pk_value *make_object_call(pkm *m, const gdef *g, pk_value *args, enum call_how how);

/* Copy of tensor value t, as a parameter (or not), requires_grad rg. */
static pk_value *retag_tensor(pkm *m, pk_value *t, bool parameter, const pk_value *rg)
{
    pk_value *v = newv(m, PK_TENSOR);
    if (v == NULL)
        return NULL;
    v->u.tensor = t->u.tensor;
    v->u.tensor.t.parameter = parameter || t->u.tensor.t.parameter;
    if (rg != NULL)
        v->u.tensor.t.requires_grad = rg->u.b;
    return v;
}

static bool is_rebuild(const pk_value *f)
{
    if (f->kind != PK_GLOBAL)
        return false;
    uint8_t k = f->u.g->kind;
    return k == G_REBUILD_V2 || k == G_REBUILD_V1 || k == G_REBUILD_PARAM ||
           k == G_REBUILD_PARAM_STATE;
}

static pk_value *call_global(pkm *m, const gdef *g, pk_value *args, enum call_how how)
{
    size_t n = nargs(args);
    switch (g->kind) {
    case G_ORDEREDDICT: {
        pk_value *d = new_map(m, PK_DICT);
        if (d == NULL || n == 0 || how == CALL_NEWOBJ)
            return d;
        pk_value *const *items;
        size_t k;
        if (n != 1 || !iter_items(arg(args, 0), &items, &k)) {
            fail(m, MCRT_E_DATA, "%s: expects no argument or a list of (key, value) pairs",
                 g->full);
            return NULL;
        }
        for (size_t i = 0; i < k; i++) {
            const pk_value *p = items[i];
            if ((p->kind != PK_TUPLE && p->kind != PK_LIST) || p->u.seq.n != 2) {
                fail(m, MCRT_E_DATA, "%s: item %zu is not a (key, value) pair", g->full, i);
                return NULL;
            }
            if (!map_put(m, d, p->u.seq.items[0], p->u.seq.items[1]))
                return NULL;
        }
        return d;
    }
    case G_SET:
        return how == CALL_NEWOBJ ? new_map(m, PK_SET) : make_set(m, PK_SET, g, args);
    case G_FROZENSET:
        return make_set(m, PK_FROZENSET, g, args);
    case G_BYTES:
    case G_BYTEARRAY:
    case G_ENCODE:
        if (how == CALL_NEWOBJ && g->kind == G_ENCODE)
            break;
        return make_bytes(m, g, args);
    case G_RECONSTRUCTOR: {
        if (how != CALL_REDUCE)
            break;
        if (n != 3 || arg(args, 0)->kind != PK_GLOBAL || arg(args, 1)->kind != PK_GLOBAL ||
            arg(args, 1)->u.g->kind != G_OBJECT_CLASS || arg(args, 2)->kind != PK_NONE) {
            fail(m, MCRT_E_DATA, "%s: expects (class, builtins.object, None)", g->full);
            return NULL;
        }
        pk_value *none = new_tuple(m, NULL, 0);
        if (none == NULL)
            return NULL;
        return make_object_call(m, arg(args, 0)->u.g, none, CALL_NEWOBJ);
    }
    case G_NEWOBJ_FN: {
        if (how != CALL_REDUCE)
            break;
        if (n < 1 || arg(args, 0)->kind != PK_GLOBAL) {
            fail(m, MCRT_E_DATA, "%s: expects (class, *args)", g->full);
            return NULL;
        }
        pk_value *rest = new_tuple(m, args->u.seq.items + 1, n - 1);
        if (rest == NULL)
            return NULL;
        return make_object_call(m, arg(args, 0)->u.g, rest, CALL_NEWOBJ);
    }
    case G_REBUILD_V2:
        if (how != CALL_REDUCE)
            break;
        if (n < 6 || n > 7) {
            argc_fail(m, g, n, "6 or 7: storage, storage_offset, size, stride, requires_grad, "
                      "backward_hooks[, metadata]");
            return NULL;
        }
        return make_tensor(m, g, arg(args, 0), arg(args, 1), arg(args, 2), arg(args, 3),
                           arg(args, 4));
    case G_REBUILD_V1:
        if (how != CALL_REDUCE)
            break;
        if (n != 4) {
            argc_fail(m, g, n, "4: storage, storage_offset, size, stride");
            return NULL;
        }
        return make_tensor(m, g, arg(args, 0), arg(args, 1), arg(args, 2), arg(args, 3), NULL);
    case G_REBUILD_PARAM:
    case G_REBUILD_PARAM_STATE: {
        if (how != CALL_REDUCE)
            break;
        size_t want = g->kind == G_REBUILD_PARAM ? 3 : 4;
        if (n != want) {
            argc_fail(m, g, n, want == 3 ? "3: data, requires_grad, backward_hooks"
                                         : "4: data, requires_grad, backward_hooks, state");
            return NULL;
        }
        if (arg(args, 0)->kind != PK_TENSOR) {
            arg_fail(m, g, 0, "data", arg(args, 0), "a tensor");
            return NULL;
        }
        if (arg(args, 1)->kind != PK_BOOL) {
            arg_fail(m, g, 1, "requires_grad", arg(args, 1), "a bool");
            return NULL;
        }
        return retag_tensor(m, arg(args, 0), true, arg(args, 1));
    }
    case G_REBUILD_FROM_TYPE: {
        if (how != CALL_REDUCE)
            break;
        if (n != 4) {
            argc_fail(m, g, n, "4: func, type, args, state");
            return NULL;
        }
        pk_value *f = arg(args, 0), *ty = arg(args, 1), *fa = arg(args, 2);
        if (!is_rebuild(f)) {
            arg_fail(m, g, 0, "func", f, "a torch._utils._rebuild_* function");
            return NULL;
        }
        if (ty->kind != PK_GLOBAL || ty->u.g->kind != G_TENSOR_CLASS) {
            arg_fail(m, g, 1, "type", ty, "torch.Tensor or torch.nn.parameter.Parameter");
            return NULL;
        }
        if (fa->kind != PK_TUPLE) {
            arg_fail(m, g, 2, "args", fa, "a tuple");
            return NULL;
        }
        pk_value *t = call_global(m, f->u.g, fa, CALL_REDUCE);
        if (t == NULL)
            return NULL;
        if (strcmp(ty->u.g->name, "Parameter") == 0)
            return retag_tensor(m, t, true, NULL);
        return t;
    }
    case G_GETATTR: {
        /* Python 3.11+ pickles an enum member as getattr(cls, name); nothing
         * else is allowed (no attribute of anything else is ever looked up). */
        if (how != CALL_REDUCE)
            break;
        char d1[160], d2[160];
        pk_value *c = n == 2 ? arg(args, 0) : NULL, *nm = n == 2 ? arg(args, 1) : NULL;
        bool ok = c != NULL && c->kind == PK_GLOBAL &&
                  (c->u.g->kind == G_ENUM || c->u.g->kind == G_GENERIC) && nm->kind == PK_STR &&
                  nm->u.str.len > 0 && nm->u.str.len <= 255 && nm->u.str.s[0] != '_';
        for (size_t i = 0; ok && i < nm->u.str.len; i++) {
            char ch = nm->u.str.s[i];
            ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '_';
        }
        if (!ok) {
            if (n != 2)
                fail(m, MCRT_E_DATA, "global 'builtins.getattr' is allowed only as getattr(<enum "
                     "class>, '<member>') (how Python 3.11+ pickles enums); here with %zu "
                     "arguments", n);
            else if (arg(args, 1)->kind == PK_STR)
                fail(m, MCRT_E_DATA, "global 'builtins.getattr' is allowed only as getattr(<enum "
                     "class>, '<member>') (how Python 3.11+ pickles enums); here getattr(%s, '%s')",
                     describe(arg(args, 0), d1, sizeof d1),
                     ckpt_quote(d2, sizeof d2, arg(args, 1)->u.str.s, arg(args, 1)->u.str.len));
            else
                fail(m, MCRT_E_DATA, "global 'builtins.getattr' is allowed only as getattr(<enum "
                     "class>, '<member>') (how Python 3.11+ pickles enums); here getattr(%s, %s)",
                     describe(arg(args, 0), d1, sizeof d1), describe(arg(args, 1), d2, sizeof d2));
            return NULL;
        }
        pk_value *o = new_object(m, c->u.g, NULL);
        if (o != NULL)
            o->u.obj.member = nm->u.str.s;
        return o;
    }
    case G_SIZE: {
        if (how != CALL_REDUCE)
            break;
        if (n == 0)
            return new_tuple(m, NULL, 0);
        pk_value *const *items;
        size_t k;
        if (n != 1 || !iter_items(arg(args, 0), &items, &k) || arg(args, 0)->kind == PK_SET ||
            arg(args, 0)->kind == PK_FROZENSET) {
            fail(m, MCRT_E_DATA, "%s: expects one tuple or list of ints", g->full);
            return NULL;
        }
        for (size_t i = 0; i < k; i++)
            if (items[i]->kind != PK_INT) {
                char w[32];
                snprintf(w, sizeof w, "item %zu", i);
                arg_fail(m, g, 0, w, items[i], "an int");
                return NULL;
            }
        return new_tuple(m, items, k);
    }
    default:
        return make_object_call(m, g, args, how);
    }
    static const char *const how_name[] = {"called (REDUCE)", "created with NEWOBJ",
                                           "created with INST/OBJ"};
    fail(m, MCRT_E_DATA, "%s cannot be %s", g->full, how_name[how]);
    return NULL;
}

static bool is_scalar(const pk_value *v)
{
    return v->kind == PK_NONE || v->kind == PK_BOOL || v->kind == PK_INT ||
           v->kind == PK_BIGINT || v->kind == PK_FLOAT || v->kind == PK_STR;
}

/* Classes that make PK_OBJECT values. */
static pk_value *make_object_call(pkm *m, const gdef *g, pk_value *args, enum call_how how)
{
    size_t n = nargs(args);
    switch (g->kind) {
    case G_ORDEREDDICT:
    case G_SET:
    case G_FROZENSET:
    case G_BYTES:
    case G_BYTEARRAY:
        if (how == CALL_NEWOBJ) /* cls.__new__(cls, ...): an empty container */
            return g->kind == G_ORDEREDDICT ? new_map(m, PK_DICT)
                   : g->kind == G_SET       ? new_map(m, PK_SET)
                   : g->kind == G_FROZENSET ? make_set(m, PK_FROZENSET, g, args)
                                            : make_bytes(m, g, args);
        return call_global(m, g, args, how);
    case G_NAMESPACE:
        if (how == CALL_REDUCE && n != 0) {
            argc_fail(m, g, n, "none (attributes come with BUILD)");
            return NULL;
        }
        return new_object(m, g, NULL);
    case G_BYTESIO: {
        pk_value *o = new_object(m, g, NULL);
        if (o == NULL || how == CALL_NEWOBJ)
            return o;
        if (n == 0)
            return o;
        if (n == 1 && arg(args, 0)->kind == PK_BYTES) {
            o->u.obj.bytes = arg(args, 0);
            return o;
        }
        fail(m, MCRT_E_DATA, "%s: expects no argument or bytes", g->full);
        return NULL;
    }
    case G_NP_RECONSTRUCT: {
        if (how != CALL_REDUCE)
            break;
        if (n != 3 || arg(args, 0)->kind != PK_GLOBAL ||
            arg(args, 0)->u.g->kind != G_NP_NDARRAY || arg(args, 1)->kind != PK_TUPLE) {
            fail(m, MCRT_E_DATA, "%s: expects (numpy.ndarray, shape, dtype code)", g->full);
            return NULL;
        }
        return new_object(m, arg(args, 0)->u.g, args);
    }
    case G_NP_DTYPE:
    case G_NP_SCALAR:
    case G_DEVICE:
        if (how == CALL_NEWOBJ && g->kind != G_NP_DTYPE)
            break;
        if (n > 3) {
            argc_fail(m, g, n, "at most 3");
            return NULL;
        }
        for (size_t i = 0; i < n; i++)
            if (!is_scalar(arg(args, i)) && arg(args, i)->kind != PK_BYTES &&
                arg(args, i)->kind != PK_OBJECT) {
                arg_fail(m, g, i, "value", arg(args, i), "a scalar");
                return NULL;
            }
        return new_object(m, g, args);
    case G_ENUM:
        if (n != 1 || !is_scalar(arg(args, 0))) {
            fail(m, MCRT_E_DATA, "%s: an enum is created from one value (int or str)", g->full);
            return NULL;
        }
        return new_object(m, g, args);
    case G_GENERIC:
        return new_object(m, g, args);
    default:
        break;
    }
    static const char *const how_name[] = {"called (REDUCE)", "created with NEWOBJ",
                                           "created with INST/OBJ"};
    fail(m, MCRT_E_DATA, "%s cannot be %s", g->full, how_name[how]);
    return NULL;
}

/* REDUCE / NEWOBJ / INST / OBJ: callable must be an allowed global. */
static pk_value *do_call(pkm *m, pk_value *callable, pk_value *args, enum call_how how)
{
    char d[160];
    if (callable->kind == PK_DTYPE) {
        fail(m, MCRT_E_DATA, "torch.%s cannot be called", callable->u.dtype.name);
        return NULL;
    }
    if (callable->kind != PK_GLOBAL) {
        fail(m, MCRT_E_DATA, "the callable is %s, not an allowed class or function",
             describe(callable, d, sizeof d));
        return NULL;
    }
    if (args->kind != PK_TUPLE) {
        fail(m, MCRT_E_DATA, "the arguments of %s are %s, not a tuple", callable->u.g->full,
             describe(args, d, sizeof d));
        return NULL;
    }
    return call_global(m, callable->u.g, args, how);
}

/* Storage keys: [A-Za-z0-9_.-]{1,255}, not starting with '.'. */
static bool key_ok(const pk_value *k)
{
    if (k->kind != PK_STR || k->u.str.len == 0 || k->u.str.len > 255 || k->u.str.s[0] == '.')
        return false;
    for (size_t i = 0; i < k->u.str.len; i++) {
        char c = k->u.str.s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

static pk_value *persistent_load(pkm *m, pk_value *pid)
{
    char d[160];
    if (pid->kind != PK_TUPLE || pid->u.seq.n != 5 || pid->u.seq.items[0]->kind != PK_STR ||
        strcmp(pid->u.seq.items[0]->u.str.s, "storage") != 0) {
        fail(m, MCRT_E_DATA, "the persistent id is %s, not ('storage', type, key, location, "
             "numel)", describe(pid, d, sizeof d));
        return NULL;
    }
    pk_value *ty = pid->u.seq.items[1], *key = pid->u.seq.items[2];
    pk_value *loc = pid->u.seq.items[3], *num = pid->u.seq.items[4];
    if (ty->kind != PK_GLOBAL || ty->u.g->kind != G_STORAGE_TYPE) {
        fail(m, MCRT_E_DATA, "the persistent id's storage type is %s, not a torch storage class",
             describe(ty, d, sizeof d));
        return NULL;
    }
    if (!key_ok(key)) {
        char q[CKPT_QUOTE_SIZE];
        if (key->kind == PK_STR)
            fail(m, MCRT_E_DATA, "storage key '%s' is not 1 to 255 characters of [A-Za-z0-9_.-] "
                 "(not starting with '.')", ckpt_quote(q, sizeof q, key->u.str.s, key->u.str.len));
        else
            fail(m, MCRT_E_DATA, "the storage key is %s, not a str", describe(key, d, sizeof d));
        return NULL;
    }
    if (loc->kind != PK_STR) {
        fail(m, MCRT_E_DATA, "storage '%s': the location is %s, not a str", key->u.str.s,
             describe(loc, d, sizeof d));
        return NULL;
    }
    int64_t numel;
    if (!nonneg_int(num, &numel)) {
        fail(m, MCRT_E_DATA, "storage '%s': numel is %s, not a non-negative int", key->u.str.s,
             describe(num, d, sizeof d));
        return NULL;
    }
    const gdef *g = ty->u.g;
    uint64_t bytes;
    if (!ckpt_mul_u64((uint64_t)numel, g->esize, &bytes) || bytes > ZIP_MAX_ENTRY_SIZE) {
        fail(m, MCRT_E_DATA, "storage '%s': %" PRId64 " elements of %s is more than 2^40 bytes",
             key->u.str.s, numel, g->tname);
        return NULL;
    }
    pk_value *old = map_get_str(m->storages, key->u.str.s, key->u.str.len);
    if (old != NULL) {
        const pk_storage *s = &old->u.storage;
        if (strcmp(s->type_name, g->full) != 0 || s->numel != (uint64_t)numel) {
            fail(m, MCRT_E_DATA, "storage '%s' was %s of %" PRIu64 " elements, now %s of %" PRId64,
                 key->u.str.s, s->type_name, s->numel, g->full, numel);
            return NULL;
        }
        return old;
    }
    pk_value *v = newv(m, PK_STORAGE);
    if (v == NULL)
        return NULL;
    pk_storage *s = &v->u.storage;
    s->key = key->u.str.s;
    s->location = loc->u.str.s;
    s->type_name = g->full;
    s->dtype.name = g->tname;
    s->dtype.dtype = g->dtype;
    s->dtype.elem_size = g->esize;
    s->numel = (uint64_t)numel;
    if (!map_put(m, m->storages, key, v))
        return NULL;
    return v;
}

/* Merge a dict (or the (dict, slots) pair of a __setstate__-less BUILD)
 * into *attrs. false: state is not of that shape (no message). */
static int merge_state(pkm *m, pk_value **attrs, pk_value *state)
{
    pk_value *parts[2] = {state, NULL};
    if (state->kind == PK_TUPLE) {
        if (state->u.seq.n != 2)
            return 0;
        parts[0] = state->u.seq.items[0];
        parts[1] = state->u.seq.items[1];
    } else if (state->kind != PK_DICT) {
        return 0;
    }
    for (int p = 0; p < 2; p++)
        if (parts[p] != NULL && parts[p]->kind != PK_DICT && parts[p]->kind != PK_NONE)
            return 0;
    for (int p = 0; p < 2; p++) {
        pk_value *s = parts[p];
        if (s == NULL || s->kind == PK_NONE)
            continue;
        if (*attrs == NULL && (*attrs = new_map(m, PK_DICT)) == NULL)
            return -1;
        for (size_t i = 0; i < s->u.map.n; i++)
            if (!map_put(m, *attrs, s->u.map.keys[i], s->u.map.vals[i]))
                return -1;
    }
    return 1;
}

static bool do_build(pkm *m, pk_value *inst, pk_value *state)
{
    char d[160], d2[160];
    if (inst->kind == PK_DICT) {
        int r = merge_state(m, &inst->u.map.attrs, state);
        if (r < 0)
            return false;
        if (r > 0)
            return true;
    } else if (inst->kind == PK_OBJECT) {
        const gdef *g = inst->u.obj.cls;
        switch (g->kind) {
        case G_NAMESPACE:
        case G_GENERIC:
        case G_ENUM:
        case G_DEVICE: {
            int r = merge_state(m, &inst->u.obj.attrs, state);
            if (r < 0)
                return false;
            if (r > 0)
                return true;
            if (g->kind == G_GENERIC) {
                inst->u.obj.state = state;
                return true;
            }
            break;
        }
        case G_BYTESIO:
            if (state->kind == PK_TUPLE && state->u.seq.n == 3 &&
                state->u.seq.items[0]->kind == PK_BYTES && state->u.seq.items[1]->kind == PK_INT &&
                (state->u.seq.items[2]->kind == PK_DICT ||
                 state->u.seq.items[2]->kind == PK_NONE)) {
                inst->u.obj.bytes = state->u.seq.items[0];
                inst->u.obj.state = state;
                return true;
            }
            return fail(m, MCRT_E_DATA, "BUILD of %s takes (bytes, position, dict or None), not %s",
                        g->full, describe(state, d, sizeof d));
        case G_NP_NDARRAY:
        case G_NP_DTYPE:
        case G_NP_SCALAR:
            if (state->kind == PK_TUPLE) {
                inst->u.obj.state = state;
                return true;
            }
            break;
        default:
            break;
        }
    }
    return fail(m, MCRT_E_DATA, "BUILD of %s with %s is not supported", describe(inst, d, sizeof d),
                describe(state, d2, sizeof d2));
}

/* ---- the opcode loop ----------------------------------------------------- */

/* Items above the top MARK as a new tuple/list/... (the MARK is removed). */
static bool mark_items(pkm *m, pk_value ***items, size_t *n)
{
    size_t first = 0;
    if (!pop_mark(m, &first))
        return false;
    *n = m->sp - first;
    *items = *n > 0 ? m->st + first : NULL;
    m->sp = first;
    return true;
}

static bool op_setitems(pkm *m, pk_value *const *items, size_t n)
{
    pk_value *d = top(m);
    if (d == NULL)
        return false;
    if (d->kind != PK_DICT) {
        char b[160];
        return fail(m, MCRT_E_DATA, "SETITEM on %s, not a dict", describe(d, b, sizeof b));
    }
    if (n % 2 != 0)
        return fail(m, MCRT_E_DATA, "an odd number of items (%zu) for key/value pairs", n);
    for (size_t i = 0; i < n; i += 2)
        if (!map_put(m, d, items[i], items[i + 1]))
            return false;
    return true;
}

static bool op_appends(pkm *m, pk_value *const *items, size_t n)
{
    pk_value *l = top(m);
    if (l == NULL)
        return false;
    if (l->kind != PK_LIST) {
        char b[160];
        return fail(m, MCRT_E_DATA, "APPEND on %s, not a list", describe(l, b, sizeof b));
    }
    return list_append(m, l, items, n);
}

static bool op_global_text(pkm *m, bool inst)
{
    const char *mod, *name;
    size_t mn, nn;
    if (!read_line(m, &mod, &mn) || !read_line(m, &name, &nn))
        return false;
    pk_value *g = find_global(m, mod, mn, name, nn);
    if (g == NULL)
        return false;
    if (!inst)
        return push(m, g);
    pk_value **items;
    size_t n;
    if (!mark_items(m, &items, &n))
        return false;
    pk_value *args = new_tuple(m, items, n);
    if (args == NULL)
        return false;
    return push(m, do_call(m, g, args, CALL_INST));
}

static bool step(pkm *m, bool *stop)
{
    uint64_t u;
    const char *s;
    size_t n;
    const unsigned char *b;
    pk_value *v, *w, **items;
    m->in_op = false;
    if (m->pos >= m->len)
        return fail(m, MCRT_E_DATA, "truncated pickle: %zu bytes and no STOP opcode", m->len);
    m->op_at = m->pos;
    m->op = m->p[m->pos++];
    m->in_op = true;
    switch (m->op) {
    case 0x80: /* PROTO */
        if (!read_le(m, 1, &u))
            return false;
        if (u > 5)
            return fail(m, MCRT_E_DATA, "pickle protocol %" PRIu64 " (mcrt reads 0 to 5)", u);
        m->proto = (int)u;
        return true;
    case 0x95: /* FRAME */
        if (!read_le(m, 8, &u))
            return false;
        if (u > m->len - m->pos)
            return fail(m, MCRT_E_DATA, "truncated pickle: a frame of %" PRIu64 " bytes, %zu are "
                        "left", u, m->len - m->pos);
        return true;
    case '.': /* STOP */
        if (m->nm != 0 || m->sp != 1)
            return fail(m, MCRT_E_DATA, "STOP with %zu values and %zu marks on the stack (want "
                        "one value)", m->sp, m->nm);
        *stop = true;
        return true;
    case '(':
        return push_mark(m);
    case '0': /* POP */
        if (m->sp > fence(m)) {
            m->sp--;
            return true;
        }
        if (m->nm == 0)
            return fail(m, MCRT_E_DATA, "stack underflow (the stack is empty)");
        return mark_items(m, &items, &n);
    case '1': /* POP_MARK */
        return mark_items(m, &items, &n);
    case '2': /* DUP */
        return push(m, top(m));
    case 'N':
        return push(m, new_scalar(m, PK_NONE));
    case 0x88:
        return push(m, new_bool(m, true));
    case 0x89:
        return push(m, new_bool(m, false));
    case 'I':
        if (!read_line(m, &s, &n))
            return false;
        if (n == 2 && s[0] == '0' && (s[1] == '0' || s[1] == '1'))
            return push(m, new_bool(m, s[1] == '1'));
        return push(m, parse_decimal(m, s, n, "INT"));
    case 'L':
        if (!read_line(m, &s, &n))
            return false;
        if (n > 0 && s[n - 1] == 'L')
            n--;
        return push(m, parse_decimal(m, s, n, "LONG"));
    case 'J':
        if (!read_le(m, 4, &u))
            return false;
        return push(m, new_int(m, (int32_t)(uint32_t)u));
    case 'K':
        if (!read_le(m, 1, &u))
            return false;
        return push(m, new_int(m, (int64_t)u));
    case 'M':
        if (!read_le(m, 2, &u))
            return false;
        return push(m, new_int(m, (int64_t)u));
    case 0x8a: /* LONG1 */
    case 0x8b: /* LONG4 */
        if (!read_le(m, m->op == 0x8a ? 1 : 4, &u))
            return false;
        if (m->op == 0x8b && (u & 0x80000000u))
            return fail(m, MCRT_E_DATA, "negative byte count");
        if (!read_counted(m, u, "long", &b))
            return false;
        return push(m, parse_long_bytes(m, b, (size_t)u));
    case 'F':
        if (!read_line(m, &s, &n))
            return false;
        return push(m, parse_float_text(m, s, n));
    case 'G': {
        if (!need(m, 8))
            return false;
        uint64_t bits = 0;
        for (int i = 0; i < 8; i++)
            bits = (bits << 8) | m->p[m->pos + (size_t)i];
        m->pos += 8;
        double f;
        memcpy(&f, &bits, 8);
        return push(m, new_float(m, f));
    }
    case 'S':
        if (!read_line(m, &s, &n))
            return false;
        return push(m, parse_quoted(m, s, n));
    case 'T':
    case 'U':
        if (!read_le(m, m->op == 'T' ? 4 : 1, &u))
            return false;
        if (m->op == 'T' && (u & 0x80000000u))
            return fail(m, MCRT_E_DATA, "negative byte count");
        if (!read_counted(m, u, "str", &b))
            return false;
        return push(m, new_utf8(m, b, (size_t)u));
    case 'V':
        if (!read_line(m, &s, &n))
            return false;
        return push(m, parse_raw_unicode(m, s, n));
    case 'X':
    case 0x8c:
    case 0x8d:
        if (!read_le(m, m->op == 'X' ? 4 : m->op == 0x8c ? 1 : 8, &u) ||
            !read_counted(m, u, "str", &b))
            return false;
        return push(m, new_utf8(m, b, (size_t)u));
    case 'B':
    case 'C':
    case 0x8e:
    case 0x96: /* BYTEARRAY8: a bytearray, read as bytes */
        if (!read_le(m, m->op == 'B' ? 4 : m->op == 'C' ? 1 : 8, &u) ||
            !read_counted(m, u, "bytes object", &b))
            return false;
        return push(m, new_strv(m, PK_BYTES, b, (size_t)u));
    case ')':
        return push(m, new_tuple(m, NULL, 0));
    case 0x85:
    case 0x86:
    case 0x87: {
        size_t k = (size_t)(m->op - 0x84);
        if (m->sp - fence(m) < k)
            return fail(m, MCRT_E_DATA, "stack underflow (TUPLE%zu needs %zu values)", k, k);
        v = new_tuple(m, m->st + m->sp - k, k);
        m->sp -= k;
        return push(m, v);
    }
    case 't':
        if (!mark_items(m, &items, &n))
            return false;
        return push(m, new_tuple(m, items, n));
    case ']':
        return push(m, newv(m, PK_LIST));
    case 'l':
        if (!mark_items(m, &items, &n))
            return false;
        v = newv(m, PK_LIST);
        if (v == NULL || !list_append(m, v, items, n))
            return false;
        return push(m, v);
    case '}':
        return push(m, new_map(m, PK_DICT));
    case 'd':
        if (!mark_items(m, &items, &n))
            return false;
        if (n % 2 != 0)
            return fail(m, MCRT_E_DATA, "an odd number of items (%zu) for key/value pairs", n);
        v = new_map(m, PK_DICT);
        if (v == NULL)
            return false;
        for (size_t i = 0; i < n; i += 2)
            if (!map_put(m, v, items[i], items[i + 1]))
                return false;
        return push(m, v);
    case 0x8f:
        return push(m, new_map(m, PK_SET));
    case 0x91: /* FROZENSET */
        if (!mark_items(m, &items, &n))
            return false;
        v = new_map(m, PK_FROZENSET);
        if (v == NULL)
            return false;
        for (size_t i = 0; i < n; i++)
            if (!map_put(m, v, items[i], NULL))
                return false;
        return push(m, v);
    case 'a':
        if ((v = pop(m)) == NULL)
            return false;
        return op_appends(m, &v, 1);
    case 'e':
        if (!mark_items(m, &items, &n))
            return false;
        return op_appends(m, items, n);
    case 's': {
        pk_value *kv[2];
        if ((kv[1] = pop(m)) == NULL || (kv[0] = pop(m)) == NULL)
            return false;
        return op_setitems(m, kv, 2);
    }
    case 'u':
        if (!mark_items(m, &items, &n))
            return false;
        return op_setitems(m, items, n);
    case 0x90: /* ADDITEMS */
        if (!mark_items(m, &items, &n))
            return false;
        if ((v = top(m)) == NULL)
            return false;
        if (v->kind != PK_SET) {
            char d[160];
            return fail(m, MCRT_E_DATA, "ADDITEMS on %s, not a set", describe(v, d, sizeof d));
        }
        for (size_t i = 0; i < n; i++)
            if (!map_put(m, v, items[i], NULL))
                return false;
        return true;
    case 'g':
        if (!read_line(m, &s, &n) || !parse_index(m, s, n, &u))
            return false;
        return push(m, memo_get(m, u));
    case 'h':
    case 'j':
        if (!read_le(m, m->op == 'h' ? 1 : 4, &u))
            return false;
        return push(m, memo_get(m, u));
    case 'p':
        if (!read_line(m, &s, &n) || !parse_index(m, s, n, &u))
            return false;
        return memo_put(m, u, top(m));
    case 'q':
    case 'r':
        if (!read_le(m, m->op == 'q' ? 1 : 4, &u))
            return false;
        return memo_put(m, u, top(m));
    case 0x94: /* MEMOIZE */
        return memo_put(m, m->memo_count, top(m));
    case 'c':
        return op_global_text(m, false);
    case 'i':
        return op_global_text(m, true);
    case 0x93: { /* STACK_GLOBAL */
        if ((w = pop(m)) == NULL || (v = pop(m)) == NULL)
            return false;
        if (v->kind != PK_STR || w->kind != PK_STR)
            return fail(m, MCRT_E_DATA, "STACK_GLOBAL needs two str values (module, name)");
        return push(m, find_global(m, v->u.str.s, v->u.str.len, w->u.str.s, w->u.str.len));
    }
    case 'R':
        if ((w = pop(m)) == NULL || (v = pop(m)) == NULL)
            return false;
        return push(m, do_call(m, v, w, CALL_REDUCE));
    case 0x81:
        if ((w = pop(m)) == NULL || (v = pop(m)) == NULL)
            return false;
        return push(m, do_call(m, v, w, CALL_NEWOBJ));
    case 0x92: { /* NEWOBJ_EX */
        pk_value *kw = pop(m);
        if (kw == NULL || (w = pop(m)) == NULL || (v = pop(m)) == NULL)
            return false;
        if (kw->kind != PK_DICT || kw->u.map.n != 0) {
            char d[160];
            return fail(m, MCRT_E_DATA, "keyword arguments (%s) are not supported",
                        describe(kw, d, sizeof d));
        }
        return push(m, do_call(m, v, w, CALL_NEWOBJ));
    }
    case 'o': { /* OBJ: MARK class args... */
        if (!mark_items(m, &items, &n))
            return false;
        if (n == 0)
            return fail(m, MCRT_E_DATA, "OBJ without a class");
        pk_value *args = new_tuple(m, items + 1, n - 1);
        if (args == NULL)
            return false;
        return push(m, do_call(m, items[0], args, CALL_INST));
    }
    case 'b':
        if ((w = pop(m)) == NULL || (v = top(m)) == NULL)
            return false;
        return do_build(m, v, w);
    case 'Q':
        if ((v = pop(m)) == NULL)
            return false;
        return push(m, persistent_load(m, v));
    case 'P':
        return fail(m, MCRT_E_DATA, "a text persistent id (PERSID); torch uses BINPERSID with a "
                    "('storage', ...) tuple");
    case 0x82:
    case 0x83:
    case 0x84:
        return fail(m, MCRT_E_DATA, "the extension registry (copyreg codes) is not allowed: it "
                    "names globals outside the pickle");
    case 0x97:
    case 0x98:
        return fail(m, MCRT_E_DATA, "out-of-band buffers (pickle protocol 5) are not allowed");
    default:
        return fail(m, MCRT_E_DATA, "unknown opcode 0x%02x", m->op);
    }
}

/* ---- the final check ----------------------------------------------------- */

static bool is_container(const pk_value *v)
{
    switch (v->kind) {
    case PK_TUPLE:
    case PK_LIST:
    case PK_DICT:
    case PK_SET:
    case PK_FROZENSET:
    case PK_OBJECT:
    case PK_TENSOR: return true;
    default: return false;
    }
}

static size_t n_children(const pk_value *v)
{
    switch (v->kind) {
    case PK_TUPLE:
    case PK_LIST: return v->u.seq.n;
    case PK_DICT: return 2 * v->u.map.n + 1;
    case PK_SET:
    case PK_FROZENSET: return v->u.map.n;
    case PK_OBJECT: return 4;
    case PK_TENSOR: return 1;
    default: return 0;
    }
}

static pk_value *child(const pk_value *v, size_t i)
{
    switch (v->kind) {
    case PK_TUPLE:
    case PK_LIST: return v->u.seq.items[i];
    case PK_DICT:
        if (i == 2 * v->u.map.n)
            return v->u.map.attrs;
        return i % 2 == 0 ? v->u.map.keys[i / 2] : v->u.map.vals[i / 2];
    case PK_SET:
    case PK_FROZENSET: return v->u.map.keys[i];
    case PK_OBJECT:
        return i == 0 ? v->u.obj.args : i == 1 ? v->u.obj.attrs : i == 2 ? v->u.obj.state
                                                                          : v->u.obj.bytes;
    case PK_TENSOR: return v->u.tensor.storage;
    default: return NULL;
    }
}

typedef struct frame {
    pk_value *v;
    size_t next;
    uint32_t hmax; /* the highest child so far */
} frame;

static uint64_t sat_add(uint64_t a, uint64_t b, uint64_t lim)
{
    return a + b > lim ? lim + 1 : a + b;
}

/* No cycles, nesting at most max_depth (containers on a path, empty ones
 * included: [[[]]] is 3; a shared value counts wherever it appears), at
 * most max_expanded values as a tree. Iterative: the input decides the
 * depth. Each value is visited once (color), its height and expansion kept. */
static bool check_result(pkm *m, pk_value *root)
{
    m->in_op = false;
    uint64_t lim = m->L.max_expanded;
    size_t maxd = m->L.max_depth;
    if (n_children(root) == 0) {
        root->color = 2;
        root->expanded = 1;
        root->height = is_container(root) ? 1 : 0;
        if (root->height > maxd)
            return limit_fail(m, "the nesting depth", "max_depth", maxd);
        return true;
    }
    if (maxd < 1)
        return limit_fail(m, "the nesting depth", "max_depth", maxd);
    size_t cap = 64, depth = 0;
    frame *fs = malloc(cap * sizeof *fs);
    if (fs == NULL)
        return fail(m, MCRT_E_NOMEM, "out of memory");
    bool ok = true;
    root->color = 1;
    root->expanded = 1;
    fs[depth++] = (frame){root, 0, 0};
    while (ok && depth > 0) {
        frame *f = &fs[depth - 1];
        if (f->next == n_children(f->v)) {
            pk_value *v = f->v;
            v->color = 2;
            v->height = f->hmax + 1;
            depth--;
            if (v->expanded > lim) {
                ok = limit_fail(m, "the values the result expands to (shared values counted "
                                "each time they appear)", "max_expanded", (size_t)lim);
                break;
            }
            if (depth > 0) {
                frame *p = &fs[depth - 1];
                p->v->expanded = sat_add(p->v->expanded, v->expanded, lim);
                if (v->height > p->hmax)
                    p->hmax = v->height;
            }
            continue;
        }
        pk_value *c = child(f->v, f->next++);
        if (c == NULL)
            continue;
        if (c->color == 1) {
            char d[160];
            ok = fail(m, MCRT_E_DATA, "%s holds itself (a cycle); mcrt reads trees, where values "
                      "may be shared but not contain themselves", describe(c, d, sizeof d));
            break;
        }
        if (c->color == 0 && n_children(c) == 0) {
            c->color = 2;
            c->expanded = 1;
            c->height = is_container(c) ? 1 : 0;
        }
        if (c->color == 2) {
            if (depth + c->height > maxd) {
                ok = limit_fail(m, "the nesting depth", "max_depth", maxd);
                break;
            }
            f->v->expanded = sat_add(f->v->expanded, c->expanded, lim);
            if (c->height > f->hmax)
                f->hmax = c->height;
            continue;
        }
        if (depth + 1 > maxd) {
            ok = limit_fail(m, "the nesting depth", "max_depth", maxd);
            break;
        }
        if (depth == cap) {
            frame *nf = realloc(fs, cap * 2 * sizeof *fs);
            if (nf == NULL) {
                ok = fail(m, MCRT_E_NOMEM, "out of memory");
                break;
            }
            fs = nf;
            cap *= 2;
        }
        c->color = 1;
        c->expanded = 1;
        fs[depth++] = (frame){c, 0, 0};
    }
    free(fs);
    return ok;
}

/* ---- the API ------------------------------------------------------------- */

void pk_options_default(pk_options *o)
{
    memset(o, 0, sizeof *o);
    o->limits.max_depth = 1000;
    o->limits.max_stack = (size_t)1 << 20;
    o->limits.max_memo = (size_t)1 << 20;
    o->limits.max_values = (size_t)1 << 22;
    o->limits.max_expanded = (uint64_t)1 << 24;
    o->limits.max_str = (size_t)1 << 28;
    o->limits.max_bigint = 1000;
    o->limits.max_bytes = (size_t)1 << 30;
    o->extra_classes = NULL;
}

pk_value *pk_load(const void *data, size_t len, const pk_options *opt, const char *label,
                  pk_arena *arena, size_t *used, ckpt_err *err)
{
    pk_options def;
    if (arena == NULL) {
        ckpt_fail(err, MCRT_E_INVAL, "%s: pk_load without an arena", label ? label : "(pickle)");
        return NULL;
    }
    if (opt == NULL) {
        pk_options_default(&def);
        opt = &def;
    }
    pkm m;
    memset(&m, 0, sizeof m);
    m.p = data;
    m.len = data != NULL ? len : 0;
    m.a = arena;
    m.used0 = arena->used;
    m.L = opt->limits;
    m.extra = opt->extra_classes;
    m.err = err;
    if (label == NULL)
        label = "(pickle)";
    ckpt_quote(m.ql, sizeof m.ql, label, strlen(label));
    pk_value *root = NULL;
    m.storages = new_map(&m, PK_DICT);
    if (m.storages != NULL) {
        m.nvalues = 0; /* the table is not the input's */
        bool stop = false;
        while (!stop && step(&m, &stop))
            ;
        if (stop) {
            m.in_op = false;
            if (used != NULL)
                *used = m.pos;
            else if (m.pos != m.len)
                fail(&m, MCRT_E_DATA, "%zu bytes after the STOP opcode at byte %zu",
                     m.len - m.pos, m.op_at);
            if (!m.failed && check_result(&m, m.st[0]))
                root = m.st[0];
        }
    }
    free(m.st);
    free(m.marks);
    free(m.memo);
    return root;
}

/* ---- accessors ----------------------------------------------------------- */

pk_kind pk_kind_of(const pk_value *v)
{
    return v != NULL ? (pk_kind)v->kind : (pk_kind)0;
}

bool pk_as_bool(const pk_value *v, bool *out)
{
    if (v == NULL || v->kind != PK_BOOL)
        return false;
    *out = v->u.b;
    return true;
}

bool pk_as_int(const pk_value *v, int64_t *out)
{
    if (v == NULL || v->kind != PK_INT)
        return false;
    *out = v->u.i;
    return true;
}

bool pk_as_float(const pk_value *v, double *out)
{
    if (v == NULL)
        return false;
    if (v->kind == PK_FLOAT) {
        *out = v->u.f;
        return true;
    }
    if (v->kind == PK_INT) {
        *out = (double)v->u.i;
        return true;
    }
    return false;
}

const char *pk_as_str(const pk_value *v, size_t *len)
{
    if (v == NULL || v->kind != PK_STR)
        return NULL;
    if (len != NULL)
        *len = v->u.str.len;
    return v->u.str.s;
}

const char *pk_as_bigint(const pk_value *v)
{
    return v != NULL && v->kind == PK_BIGINT ? v->u.str.s : NULL;
}

const unsigned char *pk_as_bytes(const pk_value *v, size_t *len)
{
    if (v != NULL && v->kind == PK_OBJECT && v->u.obj.cls->kind == G_BYTESIO) {
        if (v->u.obj.bytes == NULL) {
            if (len != NULL)
                *len = 0;
            return (const unsigned char *)"";
        }
        v = v->u.obj.bytes;
    }
    if (v == NULL || v->kind != PK_BYTES)
        return NULL;
    if (len != NULL)
        *len = v->u.str.len;
    return (const unsigned char *)v->u.str.s;
}

size_t pk_len(const pk_value *v)
{
    if (v == NULL)
        return 0;
    switch (v->kind) {
    case PK_TUPLE:
    case PK_LIST: return v->u.seq.n;
    case PK_DICT:
    case PK_SET:
    case PK_FROZENSET: return v->u.map.n;
    default: return 0;
    }
}

const pk_value *pk_item(const pk_value *v, size_t i)
{
    if (v == NULL || i >= pk_len(v))
        return NULL;
    switch (v->kind) {
    case PK_TUPLE:
    case PK_LIST: return v->u.seq.items[i];
    case PK_SET:
    case PK_FROZENSET: return v->u.map.keys[i];
    default: return NULL;
    }
}

const pk_value *pk_dict_key(const pk_value *v, size_t i)
{
    if (v == NULL || v->kind != PK_DICT || i >= v->u.map.n)
        return NULL;
    return v->u.map.keys[i];
}

const pk_value *pk_dict_value(const pk_value *v, size_t i)
{
    if (v == NULL || v->kind != PK_DICT || i >= v->u.map.n)
        return NULL;
    return v->u.map.vals[i];
}

const pk_value *pk_attrs(const pk_value *v)
{
    if (v == NULL)
        return NULL;
    if (v->kind == PK_DICT)
        return v->u.map.attrs;
    if (v->kind == PK_OBJECT)
        return v->u.obj.attrs;
    return NULL;
}

const pk_value *pk_dict_get(const pk_value *v, const char *key)
{
    if (v != NULL && v->kind == PK_OBJECT)
        v = v->u.obj.attrs;
    if (v == NULL || v->kind != PK_DICT || key == NULL)
        return NULL;
    return map_get_str(v, key, strlen(key));
}

const char *pk_class_name(const pk_value *v)
{
    if (v == NULL)
        return NULL;
    if (v->kind == PK_OBJECT)
        return v->u.obj.cls->full;
    if (v->kind == PK_GLOBAL)
        return v->u.g->full;
    return NULL;
}

const pk_value *pk_object_args(const pk_value *v)
{
    return v != NULL && v->kind == PK_OBJECT ? v->u.obj.args : NULL;
}

const pk_value *pk_object_state(const pk_value *v)
{
    return v != NULL && v->kind == PK_OBJECT ? v->u.obj.state : NULL;
}

const char *pk_enum_member(const pk_value *v)
{
    return v != NULL && v->kind == PK_OBJECT ? v->u.obj.member : NULL;
}

const pk_dtype *pk_as_dtype(const pk_value *v)
{
    return v != NULL && v->kind == PK_DTYPE ? &v->u.dtype : NULL;
}

const pk_storage *pk_as_storage(const pk_value *v)
{
    return v != NULL && v->kind == PK_STORAGE ? &v->u.storage : NULL;
}

const pk_tensor *pk_as_tensor(const pk_value *v)
{
    return v != NULL && v->kind == PK_TENSOR ? &v->u.tensor.t : NULL;
}

/* ---- repr ---------------------------------------------------------------- */

typedef struct rbuf {
    char *b;
    size_t size, o;
    bool full;
} rbuf;

static void rput(rbuf *r, const char *fmt, ...) CKPT_PRINTF(2, 3);

static void rput(rbuf *r, const char *fmt, ...)
{
    if (r->full)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(r->b + r->o, r->size - r->o, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= r->size - r->o) {
        r->full = true;
        r->o = r->size - 1;
        if (r->size >= 4)
            memcpy(r->b + r->size - 4, "...", 4);
        return;
    }
    r->o += (size_t)w;
}

#define REPR_ITEMS 8
#define REPR_DEPTH 4

/* Python's float repr: the shortest form that reads back, with ".0" on
 * integral values ("3.0", "0.1", "1e-05", "1e+300", "inf", "nan"). */
static void repr_float(rbuf *r, double f)
{
    if (isnan(f)) {
        rput(r, "nan");
        return;
    }
    if (isinf(f)) {
        rput(r, "%sinf", f < 0 ? "-" : "");
        return;
    }
    char b[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(b, sizeof b, "%.*g", prec, f);
        if (strtod(b, NULL) == f)
            break;
    }
    bool plain = strpbrk(b, ".en") == NULL;
    rput(r, "%s%s", b, plain ? ".0" : "");
}

/* b'...': printable ASCII kept, the rest as \xNN. */
static void repr_bytes(rbuf *r, const unsigned char *p, size_t n)
{
    rput(r, "b'");
    size_t shown = n > 60 ? 60 : n;
    for (size_t i = 0; i < shown && !r->full; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\' && p[i] != '\'')
            rput(r, "%c", p[i]);
        else
            rput(r, "\\x%02x", p[i]);
    }
    rput(r, "%s'", shown < n ? "..." : "");
}

static void repr_v(rbuf *r, const pk_value *v, int depth);

static void repr_items(rbuf *r, const pk_value *v, int depth, const char *open,
                       const char *close)
{
    rput(r, "%s", open);
    size_t n = pk_len(v);
    for (size_t i = 0; i < n && !r->full; i++) {
        if (i == REPR_ITEMS) {
            rput(r, ", ... (%zu items)", n);
            break;
        }
        if (i > 0)
            rput(r, ", ");
        if (v->kind == PK_DICT) {
            repr_v(r, v->u.map.keys[i], depth + 1);
            rput(r, ": ");
            repr_v(r, v->u.map.vals[i], depth + 1);
        } else {
            repr_v(r, pk_item(v, i), depth + 1);
        }
    }
    if (v->kind == PK_TUPLE && n == 1)
        rput(r, ",");
    rput(r, "%s", close);
}

static void repr_v(rbuf *r, const pk_value *v, int depth)
{
    if (r->full)
        return;
    if (v == NULL) {
        rput(r, "<nothing>");
        return;
    }
    if (depth > REPR_DEPTH && n_children(v) > 0) {
        rput(r, "...");
        return;
    }
    char q[CKPT_QUOTE_SIZE];
    switch (v->kind) {
    case PK_NONE: rput(r, "None"); break;
    case PK_BOOL: rput(r, "%s", v->u.b ? "True" : "False"); break;
    case PK_INT: rput(r, "%" PRId64, v->u.i); break;
    case PK_BIGINT: rput(r, "%s", v->u.str.s); break;
    case PK_FLOAT: repr_float(r, v->u.f); break;
    case PK_STR: rput(r, "'%s'", ckpt_quote(q, 80, v->u.str.s, v->u.str.len)); break;
    case PK_BYTES: repr_bytes(r, (const unsigned char *)v->u.str.s, v->u.str.len); break;
    case PK_TUPLE: repr_items(r, v, depth, "(", ")"); break;
    case PK_LIST: repr_items(r, v, depth, "[", "]"); break;
    case PK_DICT: repr_items(r, v, depth, "{", "}"); break;
    case PK_SET: repr_items(r, v, depth, v->u.map.n ? "{" : "set(", v->u.map.n ? "}" : ")"); break;
    case PK_FROZENSET: repr_items(r, v, depth, "frozenset({", "})"); break;
    case PK_GLOBAL: rput(r, "%s", v->u.g->full); break;
    case PK_DTYPE: rput(r, "torch.%s", v->u.dtype.name); break;
    case PK_STORAGE:
        rput(r, "%s(key '%s', %s, %" PRIu64 " elements)", v->u.storage.type_name,
             v->u.storage.key,
             ckpt_quote(q, 80, v->u.storage.location, strlen(v->u.storage.location)),
             v->u.storage.numel);
        break;
    case PK_TENSOR: {
        const pk_tensor *t = &v->u.tensor.t;
        rput(r, "%s(%s, [", t->parameter ? "Parameter" : "tensor", t->storage->dtype.name);
        for (int32_t i = 0; i < t->ndim; i++)
            rput(r, "%s%" PRId64, i ? ", " : "", t->shape[i]);
        rput(r, "], storage '%s' offset %" PRIu64 " stride [", t->storage->key, t->storage_offset);
        for (int32_t i = 0; i < t->ndim; i++)
            rput(r, "%s%" PRId64, i ? ", " : "", t->stride[i]);
        rput(r, "])");
        break;
    }
    case PK_OBJECT:
        rput(r, "%s", v->u.obj.cls->full);
        if (v->u.obj.member != NULL) {
            rput(r, ".%s", v->u.obj.member);
        } else if (v->u.obj.cls->kind == G_BYTESIO) {
            size_t n = 0;
            pk_as_bytes(v, &n);
            rput(r, "(%zu bytes)", n);
        } else if (v->u.obj.attrs != NULL) {
            rput(r, "(");
            const hmap *h = &v->u.obj.attrs->u.map;
            for (size_t i = 0; i < h->n && !r->full; i++) {
                if (i == REPR_ITEMS) {
                    rput(r, ", ... (%zu attributes)", h->n);
                    break;
                }
                if (i > 0)
                    rput(r, ", ");
                if (h->keys[i]->kind == PK_STR)
                    rput(r, "%s=", ckpt_quote(q, 80, h->keys[i]->u.str.s, h->keys[i]->u.str.len));
                else {
                    repr_v(r, h->keys[i], depth + 1);
                    rput(r, "=");
                }
                repr_v(r, h->vals[i], depth + 1);
            }
            rput(r, ")");
        } else {
            repr_v(r, v->u.obj.args, depth + 1);
        }
        break;
    default: rput(r, "?"); break;
    }
}

const char *pk_repr(const pk_value *v, char *buf, size_t size)
{
    if (buf == NULL || size == 0)
        return buf;
    buf[0] = '\0';
    rbuf r = {.b = buf, .size = size};
    repr_v(&r, v, 0);
    return buf;
}

/* ---- tensors in the archive ---------------------------------------------- */

mcrt_status pk_tensor_resolve(const pk_value *tv, const zip_archive *z, pk_tensor_view *out,
                              ckpt_err *err)
{
    memset(out, 0, sizeof *out);
    char q[CKPT_QUOTE_SIZE];
    const char *label = ckpt_quote(q, sizeof q, zip_label(z), strlen(zip_label(z)));
    const pk_tensor *t = pk_as_tensor(tv);
    if (t == NULL)
        return ckpt_fail(err, MCRT_E_INVAL, "%s: resolving %s, not a tensor", label,
                         kind_name(pk_kind_of(tv)));
    const pk_storage *s = t->storage;
    if (s->dtype.dtype == 0)
        return ckpt_fail(err, MCRT_E_UNSUPPORTED, "%s: storage '%s' holds %s values (%s), which "
                         "mcrt does not read", label, s->key, s->dtype.name, s->type_name);
    char rec[300];
    snprintf(rec, sizeof rec, "data/%s", s->key);
    const zip_entry *e;
    mcrt_status st = zip_torch_record(z, rec, &e, err);
    if (st != MCRT_OK)
        return st;
    uint64_t need_bytes = s->numel * s->dtype.elem_size; /* <= 2^40, checked at load */
    char qe[CKPT_QUOTE_SIZE];
    if (e->size != need_bytes)
        return ckpt_fail(err, MCRT_E_DATA, "%s: entry '%s': %" PRIu64 " bytes, but storage '%s' "
                         "(%s, %" PRIu64 " elements) needs %" PRIu64, label,
                         ckpt_quote(qe, sizeof qe, e->name, e->name_len), e->size, s->key,
                         s->type_name, s->numel, need_bytes);
    uint64_t es = s->dtype.elem_size, last = 0, nelem = 1;
    bool empty = false;
    for (int32_t i = 0; i < t->ndim; i++)
        if (t->shape[i] == 0)
            empty = true;
    for (int32_t i = 0; i < t->ndim && !empty; i++) {
        uint64_t step;
        if (!ckpt_mul_u64((uint64_t)(t->shape[i] - 1), (uint64_t)t->stride[i], &step) ||
            !ckpt_add_u64(last, step, &last) ||
            !ckpt_mul_u64(nelem, (uint64_t)t->shape[i], &nelem))
            return ckpt_fail(err, MCRT_E_DATA, "%s: a view of storage '%s' overflows", label,
                             s->key);
    }
    uint64_t off_b, ext;
    if (!ckpt_mul_u64(t->storage_offset, es, &off_b) || off_b > e->size)
        return ckpt_fail(err, MCRT_E_DATA, "%s: storage offset %" PRIu64 " is past the end of "
                         "storage '%s' (%" PRIu64 " elements)", label, t->storage_offset, s->key,
                         s->numel);
    if (empty) {
        ext = 0;
        nelem = 0;
    } else if (!ckpt_mul_u64(last + 1, es, &ext) || ext > e->size - off_b) {
        return ckpt_fail(err, MCRT_E_DATA, "%s: the view (offset %" PRIu64 ") runs past the end "
                         "of storage '%s' (%" PRIu64 " elements)", label, t->storage_offset,
                         s->key, s->numel);
    }
    out->entry = e;
    out->byte_offset = off_b;
    out->data = e->data + off_b;
    out->extent = ext;
    out->dtype = s->dtype.dtype;
    out->elem_size = s->dtype.elem_size;
    out->ndim = t->ndim;
    out->nelem = nelem;
    bool contig = true;
    uint64_t want = 1; /* <= nelem when no dimension is 0 */
    for (int32_t i = t->ndim; i-- > 0;) {
        out->shape[i] = t->shape[i];
        out->stride[i] = t->stride[i];
        if (nelem > 1) {
            if (t->shape[i] != 1 && (uint64_t)t->stride[i] != want)
                contig = false;
            want *= (uint64_t)t->shape[i];
        }
    }
    out->contiguous = contig || nelem <= 1;
    return MCRT_OK;
}
