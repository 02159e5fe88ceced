/*
 * core/checkpoint/pickle.h: a restricted pickle machine that builds data
 * only (for torch.save's data.pkl, torch_dist's .metadata and common.pt).
 *
 * It executes the opcodes of pickle protocols 0 to 5 (torch.save writes
 * protocol 2; Python's default is 4 or 5) and builds a tree of values in an
 * arena. It never imports, calls or looks up anything: a GLOBAL is looked up
 * in a fixed allow-list of names mapped to data constructors (below), and
 * REDUCE / NEWOBJ / NEWOBJ_EX / INST / OBJ / BUILD apply only to those. Any
 * other global ("os.system", "builtins.eval", "subprocess.Popen", ...) is
 * refused at the GLOBAL opcode with MCRT_E_DATA:
 *     "<label>: pickle byte N (GLOBAL): global 'os.system' is not allowed
 *      (a checkpoint holds data; mcrt never runs code from it)"
 * so a checkpoint can never run code.
 *
 * Values (pk_kind):
 *   PK_NONE, PK_BOOL, PK_INT (int64), PK_BIGINT (an int outside int64: kept
 *   as its decimal string, at most limits.max_bigint digits), PK_FLOAT,
 *   PK_STR (UTF-8, checked: no overlong forms, no surrogates; NUL allowed;
 *   Python 2 str opcodes STRING/BINSTRING/SHORT_BINSTRING are decoded as
 *   UTF-8, torch.load's encoding), PK_BYTES (bytes and bytearray), PK_TUPLE, PK_LIST, PK_DICT (insertion
 *   ordered; a repeated key replaces the value in place, as Python does),
 *   PK_SET, PK_FROZENSET, and:
 *   PK_GLOBAL   an allowed class or function used as a value (numpy.ndarray
 *               passed to _reconstruct, a class pickled by itself).
 *   PK_DTYPE    torch.float32, torch.bfloat16, ... (pk_as_dtype).
 *   PK_STORAGE  a torch storage: the persistent id ('storage', <storage
 *               type>, key, location, numel) (pk_as_storage). Its bytes are
 *               the zip entry "<prefix>/data/<key>"; they are not copied.
 *   PK_TENSOR   torch._utils._rebuild_tensor_v2(storage, offset, size,
 *               stride, requires_grad, hooks[, metadata]) (pk_as_tensor);
 *               pk_tensor_resolve finds its bytes in the archive.
 *   PK_OBJECT   an instance of an allowed class (pk_class_name): its
 *               constructor arguments, attributes and BUILD state.
 * Dict and set keys must be hashable: None, bool, int, big int, float, str,
 * bytes, tuples of those (at most 4096 values in all), dtypes, globals, and
 * objects (by identity). Numbers compare as Python does (1 == 1.0 == True).
 * Frozensets, lists, dicts, sets, tensors and storages are refused as keys.
 *
 * The allow-list ("module.name"; `__builtin__` is read as `builtins`,
 * `copy_reg` as `copyreg`, `io` as `_io`, `numpy._core` as `numpy.core`):
 *   collections.OrderedDict            -> PK_DICT (BUILD state, e.g. a
 *                                         state_dict's _metadata, kept as its
 *                                         attributes: pk_attrs)
 *   builtins.set / frozenset           -> PK_SET / PK_FROZENSET
 *   builtins.bytes / bytearray, _codecs.encode (latin-1 or UTF-8)
 *                                      -> PK_BYTES (protocol 2 pickles bytes so)
 *   copyreg._reconstructor(cls, builtins.object, None)
 *                                      -> an instance of cls (protocols 0, 1)
 *   torch._utils._rebuild_tensor_v2, _rebuild_tensor, _rebuild_parameter,
 *   _rebuild_parameter_with_state, torch._tensor._rebuild_from_type_v2 (with
 *   torch.Tensor or torch.nn.parameter.Parameter)
 *                                      -> PK_TENSOR (parameter flag set by
 *                                         the parameter forms; hooks, metadata
 *                                         and Python state are dropped)
 *   torch.<X>Storage for X in Float Double Half BFloat16 Long Int Short Char
 *   Byte Bool ComplexFloat ComplexDouble QInt8 QUInt8 QInt32 QUInt4x2
 *   QUInt2x4, torch.UntypedStorage, torch.storage.UntypedStorage
 *                                      -> storage types, valid only inside a
 *                                         persistent id
 *   torch.<dtype> (float32 float64 float16 bfloat16 int64 int32 int16 int8
 *   uint8 bool complex32/64/128, uint16/32/64, float8_e4m3fn float8_e5m2
 *   float8_e4m3fnuz float8_e5m2fnuz, qint8 quint8 qint32 quint4x2 and the
 *   aliases float double half long int short cfloat cdouble chalf)
 *                                      -> PK_DTYPE (dtype 0 where mcrt has none)
 *   torch.Size(tuple)                  -> PK_TUPLE
 *   torch.device(type[, index]), torch.serialization._get_layout(name)
 *                                      -> PK_OBJECT (args kept)
 *   argparse.Namespace                 -> PK_OBJECT; its attributes (BUILD)
 *                                         are pk_attrs / pk_dict_get
 *   _io.BytesIO                        -> PK_OBJECT; pk_as_bytes gives its
 *                                         bytes (TE's _extra_state)
 *   numpy.core.multiarray._reconstruct(numpy.ndarray, shape, b'b'),
 *   numpy.dtype(...), numpy.core.multiarray.scalar(...)
 *                                      -> PK_OBJECT, opaque: constructor
 *                                         arguments and the BUILD state
 *                                         (version, shape, dtype, fortran,
 *                                         raw bytes) kept as given
 *   enums Megatron arguments carry, called with one scalar value:
 *     megatron.core.enums.{ModelType, Fp8Recipe, Fp4Recipe}
 *     megatron.core.transformer.enums.{ModelType, AttnBackend, AttnMaskType,
 *       AttnType, LayerType, CudaGraphScope}
 *     megatron.model.enums.{ModelType, AttnMaskType, AttnType, LayerType,
 *       PositionEmbeddingType}
 *     megatron.legacy.model.enums.{AttnMaskType, AttnType, LayerType}
 *     megatron.core.dist_checkpointing.validation.StrictHandling
 *                                      -> PK_OBJECT. Python < 3.11 pickles a
 *                                         member as Class(value): the value is
 *                                         pk_object_args; 3.11+ as
 *                                         builtins.getattr(Class, 'name'): the
 *                                         name is pk_enum_member
 *   builtins.getattr                   only as getattr(<an enum class above or
 *                                         an extra class>, '<identifier not
 *                                         starting with _>'); every other use
 *                                         is refused naming 'builtins.getattr'
 *   plus the caller's pk_options.extra_classes: generic data classes (any
 *   constructor arguments kept, BUILD dict state merged into attributes,
 *   other state kept; also usable as enums and as plain named values) - how
 *   torch_dist's dataclasses will be read.
 *
 * Persistent ids (BINPERSID) must be torch's storage tuples; the same key
 * always names the same storage (type and numel must agree). Storage keys
 * are 1..255 characters of [A-Za-z0-9_.-], not starting with '.'.
 * Tensors are checked: at most PK_MAX_DIMS dimensions (more is
 * MCRT_E_UNSUPPORTED); sizes, strides and the storage offset non-negative;
 * the view (offset + the furthest element) inside the storage's numel,
 * overflow-checked (torch would silently grow the storage instead).
 *
 * Refused (MCRT_E_DATA unless said): unknown opcodes; EXT1/2/4 (the
 * extension registry names globals); protocol-5 out-of-band buffers
 * (NEXT_BUFFER, READONLY_BUFFER); protocols above 5; a PERSID (text) id;
 * stack underflow (also below the current MARK), STOP with anything but one
 * value on the stack; a memo index never PUT; INT/LONG/FLOAT text that is not
 * a plain decimal (Python also takes "0x..", "1_000"); bytes after STOP
 * (unless the caller asks for the consumed length); APPEND/SETITEM/ADDITEMS
 * on the wrong container; an unhashable key; a result that holds itself (a
 * cycle), which Python allows but no checkpoint needs.
 *
 * Messages are one line: "<label>: pickle byte N (OPCODE): <problem>", or
 * "<label>: pickle: <problem>" for what is found after STOP (trailing
 * bytes, cycles, depth, expansion).
 *
 * Limits (pk_limits, defaults in pk_options_default), each error naming the
 * limit ("memo index 4294967280 is over the limit max_memo (1048576)"):
 *   max_depth     nesting of the result: containers on a path, empty ones
 *                 included ([[[]]] is 3), a shared value counted wherever
 *                 it appears (1000: Python's recursion limit)
 *   max_stack     values plus marks on the machine's stacks (1 << 20)
 *   max_memo      a memo index + 1 (1 << 20)
 *   max_values    values created (1 << 22)
 *   max_expanded  values the result counts as a tree, a shared value once
 *                 per reference (1 << 24: stops "billion laughs")
 *   max_str       bytes of one str, bytes or text line (1 << 28)
 *   max_bigint    decimal digits of an int outside int64 (1000)
 *   max_bytes     arena bytes one load may use (1 << 30)
 * Every read is bounds-checked; the input is never written.
 *
 * Values live in a pk_arena until pk_arena_free; a loaded tree is immutable
 * and may be read from several threads. Loads into one arena must not run
 * concurrently.
 */
#ifndef MCRT_CORE_CHECKPOINT_PICKLE_H
#define MCRT_CORE_CHECKPOINT_PICKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "checkpoint/checkpoint.h" /* ckpt_err */
#include "checkpoint/zip.h"

#define PK_MAX_DIMS 8

typedef enum pk_kind {
    PK_NONE = 1,
    PK_BOOL,
    PK_INT,
    PK_BIGINT,
    PK_FLOAT,
    PK_STR,
    PK_BYTES,
    PK_TUPLE,
    PK_LIST,
    PK_DICT,
    PK_SET,
    PK_FROZENSET,
    PK_GLOBAL,
    PK_DTYPE,
    PK_STORAGE,
    PK_TENSOR,
    PK_OBJECT
} pk_kind;

typedef struct pk_value pk_value;
typedef struct pk_arena pk_arena;

typedef struct pk_limits {
    size_t max_depth;
    size_t max_stack;
    size_t max_memo;
    size_t max_values;
    uint64_t max_expanded;
    size_t max_str;
    size_t max_bigint;
    size_t max_bytes;
} pk_limits;

typedef struct pk_options {
    pk_limits limits;
    /* NULL-terminated "module.name" list of extra generic data classes, or
     * NULL. Borrowed for the load. */
    const char *const *extra_classes;
} pk_options;

/* The defaults listed above, no extra classes. */
void pk_options_default(pk_options *o);

pk_arena *pk_arena_new(void);   /* NULL on out of memory */
void pk_arena_free(pk_arena *a); /* every value loaded into it */

/* Run the pickle in data[0..len) (borrowed during the call only; strings
 * are copied). `label` names it in messages ("x.pt: archive/data.pkl").
 * opt NULL: the defaults. used NULL: the pickle must end exactly at len;
 * otherwise bytes may follow STOP and, on success, *used gets the pickle's
 * length (pickles back to back, as the legacy non-zip torch format has).
 * Returns the root value, or NULL with err filled (MCRT_E_DATA,
 * MCRT_E_UNSUPPORTED, MCRT_E_NOMEM); a failed load leaves garbage in the
 * arena until it is freed. */
pk_value *pk_load(const void *data, size_t len, const pk_options *opt, const char *label,
                  pk_arena *arena, size_t *used, ckpt_err *err);

/* ---- reading values (all accept NULL and return nothing for it) ---------- */

pk_kind pk_kind_of(const pk_value *v); /* 0 for NULL */
const char *pk_kind_name(pk_kind k);   /* "a dict", "a tensor" ... */

bool pk_as_bool(const pk_value *v, bool *out);      /* PK_BOOL */
bool pk_as_int(const pk_value *v, int64_t *out);    /* PK_INT (not bool) */
bool pk_as_float(const pk_value *v, double *out);   /* PK_FLOAT, or PK_INT converted */
/* PK_STR: its bytes, NUL-terminated (NUL may also occur inside). */
const char *pk_as_str(const pk_value *v, size_t *len);
/* PK_BIGINT: its decimal digits ("-1180591620717411303424"). */
const char *pk_as_bigint(const pk_value *v);
/* PK_BYTES, or an _io.BytesIO object's bytes. */
const unsigned char *pk_as_bytes(const pk_value *v, size_t *len);

/* Items of a tuple, list, set, frozenset or dict (0 otherwise). */
size_t pk_len(const pk_value *v);
const pk_value *pk_item(const pk_value *v, size_t i); /* tuple/list/set/frozenset */
const pk_value *pk_dict_key(const pk_value *v, size_t i);
const pk_value *pk_dict_value(const pk_value *v, size_t i);
/* The value of str key `key` in a dict, or the attribute `key` of an
 * object (argparse.Namespace, generic classes); NULL if absent. */
const pk_value *pk_dict_get(const pk_value *v, const char *key);

/* The attribute dict of an object, or the BUILD state of a dict (an
 * OrderedDict's __dict__, e.g. {'_metadata': ...}); NULL if none. */
const pk_value *pk_attrs(const pk_value *v);
/* PK_OBJECT and PK_GLOBAL: "argparse.Namespace" (canonical module). */
const char *pk_class_name(const pk_value *v);
/* PK_OBJECT: the constructor arguments (a tuple), and the BUILD state as
 * given when it was not merged into the attributes (or NULL). */
const pk_value *pk_object_args(const pk_value *v);
const pk_value *pk_object_state(const pk_value *v);
/* PK_OBJECT made by getattr(EnumClass, 'name'): the member's name; NULL
 * for every other value (an enum pickled by value keeps it in the args). */
const char *pk_enum_member(const pk_value *v);

typedef struct pk_dtype {
    const char *name;   /* torch's name: "float32", "bfloat16", "complex64" */
    int32_t dtype;      /* MCRT_DTYPE_*, 0 when mcrt has no such dtype */
    uint32_t elem_size; /* bytes (1 for sub-byte quantized types) */
} pk_dtype;

typedef struct pk_storage {
    const char *key;       /* "0": the entry "<prefix>/data/0" */
    const char *location;  /* "cpu", "cuda:0" */
    const char *type_name; /* "torch.FloatStorage", "torch.UntypedStorage" */
    pk_dtype dtype;        /* uint8 for an untyped storage */
    uint64_t numel;        /* elements (bytes for an untyped storage) */
} pk_storage;

typedef struct pk_tensor {
    const pk_storage *storage;
    uint64_t storage_offset; /* elements */
    int32_t ndim;
    int64_t shape[PK_MAX_DIMS];
    int64_t stride[PK_MAX_DIMS]; /* elements */
    uint64_t nelem;              /* product of shape */
    bool requires_grad;
    bool parameter;              /* built through _rebuild_parameter */
} pk_tensor;

const pk_dtype *pk_as_dtype(const pk_value *v);
const pk_storage *pk_as_storage(const pk_value *v);
const pk_tensor *pk_as_tensor(const pk_value *v);

/* A short Python-like rendering for messages (containers cut after a few
 * items and levels); always NUL-terminated. Returns buf. */
const char *pk_repr(const pk_value *v, char *buf, size_t size);

/* Where a tensor's elements are. */
typedef struct pk_tensor_view {
    const zip_entry *entry;    /* "<prefix>/data/<key>" */
    const unsigned char *data; /* the first element: entry->data + byte_offset */
    uint64_t byte_offset;      /* storage_offset * elem_size */
    uint64_t extent;           /* bytes from data to the end of the last element */
    int32_t dtype;             /* MCRT_DTYPE_* (never 0) */
    uint32_t elem_size;
    int32_t ndim;
    int64_t shape[PK_MAX_DIMS];
    int64_t stride[PK_MAX_DIMS]; /* elements */
    uint64_t nelem;
    bool contiguous;           /* row-major, no gaps (every tensor of <= 1 element is) */
} pk_tensor_view;

/* Resolve tensor value t against its torch.save archive: the entry
 * "<prefix>/data/<key>" must exist (MCRT_E_NOTFOUND) and hold exactly
 * numel * elem_size bytes, and the view must fit (MCRT_E_DATA); a dtype
 * mcrt does not read is MCRT_E_UNSUPPORTED naming it. CRC is not checked
 * here (zip_verify). */
mcrt_status pk_tensor_resolve(const pk_value *t, const zip_archive *z, pk_tensor_view *out,
                              ckpt_err *err);

#endif /* MCRT_CORE_CHECKPOINT_PICKLE_H */
