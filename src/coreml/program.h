/*
 * program.h -- the one in-memory form of a CoreML ML Program (the IR), shared by the text reader
 * (.mlmodelc: model.mil + metadata.json), the protobuf reader (.mlpackage: model.mlmodel), the
 * writer (IR -> .mlmodelc) and the executor.
 *
 * Everything a program owns lives in its arena (prog->arena) and is freed with it; the weight
 * files stay memory-mapped (prog->blobs) and are never copied. Names are NUL-terminated strings.
 *
 * Shape of the IR:
 *   program -> functions (name, opset, typed inputs incl. states, attributes, one block)
 *           -> block (inputs for nested blocks, operations in topological order, output names)
 *           -> operation (type, named arguments bound to values or literals, typed results,
 *              attributes such as `name` and `val`, nested blocks)
 *   program -> desc (the model description: features per function, default function, metadata)
 */
#ifndef ANML_COREML_PROGRAM_H
#define ANML_COREML_PROGRAM_H

#include "core/core.h"

/* ---- types ---- */

#define MIL_DIM_UNKNOWN (-1) /* a '?' dimension or list length */

enum mil_type_kind {
    MIL_TYPE_TENSOR = 0, /* rank 0 is a scalar: `fp16` and `tensor<fp16, []>` are the same type */
    MIL_TYPE_STATE,      /* elems[0] is the wrapped tensor type */
    MIL_TYPE_LIST,       /* elems[0] is the element type, list_length its length */
    MIL_TYPE_TUPLE,      /* elems[0..n_elems) */
    MIL_TYPE_DICT,       /* elems[0] key type, elems[1] value type */
    MIL_TYPE_KIND_COUNT
};

struct mil_type {
    enum mil_type_kind kind;
    enum anml_dtype dtype; /* TENSOR */
    int32_t rank;          /* TENSOR: number of dims; -1 = unknown rank */
    int64_t *dims;         /* TENSOR: rank entries, MIL_DIM_UNKNOWN for '?' */
    int32_t n_elems;       /* STATE/LIST: 1, TUPLE: n, DICT: 2 */
    struct mil_type **elems;
    int64_t list_length; /* LIST */
};

/* ---- values (literals: immediate tensors, blob references, tuples, lists, dicts) ---- */

enum mil_value_kind {
    MIL_VALUE_TENSOR = 0, /* immediate data */
    MIL_VALUE_BLOB,       /* a reference into a weight file; the data is read through prog->blobs */
    MIL_VALUE_TUPLE,
    MIL_VALUE_LIST,
    MIL_VALUE_DICT, /* items alternate key, value: n_items is even */
    MIL_VALUE_KIND_COUNT
};

struct mil_value {
    enum mil_value_kind kind;
    struct mil_type *type; /* full type; for BLOB the declared tensor type */
    /* TENSOR: n_elem elements, row-major, unpacked: anml__dtype_size(dtype) bytes each. fp16/bf16
     * are raw bit patterns (uint16_t), bool is one byte 0/1, uintN (N < 8) one uint8_t each, int4 a
     * sign-extended int8_t each. STRING tensors hold `char *` pointers (data is char **). */
    int64_t n_elem;
    void *data;
    /* BLOB */
    char *blob_path;      /* as written: "@model_path/weights/weight.bin" */
    uint64_t blob_offset; /* offset of the blob's 64-byte metadata record in that file */
    /* TUPLE / LIST / DICT */
    int32_t n_items;
    struct mil_value **items;
};

/* ---- operations and blocks ---- */

struct mil_binding {         /* exactly one of name / value is set */
    char *name;              /* reference to an earlier value (function input or op result) */
    struct mil_value *value; /* literal */
};

struct mil_arg { /* one named parameter; several bindings form a tuple (concat's values) */
    char *name;
    int32_t n_bindings;
    struct mil_binding *bindings;
};

struct mil_named_type {
    char *name;
    struct mil_type *type;
};

struct mil_attr {
    char *name;
    struct mil_value *value;
};

struct mil_block;

struct mil_op {
    char *type; /* "conv", "const", "constexpr_lut_to_dense", ... */
    int32_t n_args;
    struct mil_arg *args;
    int32_t n_results;
    struct mil_named_type *results;
    int32_t n_attrs; /* `name`, const `val`, iOS15-17 constexpr parameters, ... */
    struct mil_attr *attrs;
    int32_t n_blocks;
    struct mil_block *blocks;
    int32_t line, col; /* position of the statement in model.mil; 0 when read from protobuf */
};

struct mil_block {
    int32_t n_inputs; /* nested blocks only (loop variables) */
    struct mil_named_type *inputs;
    int32_t n_ops;
    struct mil_op *ops;
    int32_t n_outputs;
    char **outputs;
    int32_t n_attrs;
    struct mil_attr *attrs;
};

struct mil_function {
    char *name;
    int opset; /* CoreML generation: 5 = ios15/CoreML5, 6, 7, 8 = ios18/CoreML8, 9 = ios26 */
    int32_t n_inputs;
    struct mil_named_type *inputs; /* states have MIL_TYPE_STATE */
    int32_t n_attrs;
    struct mil_attr *attrs;
    struct mil_block block;
};

/* ---- model description (metadata.json / Model.description) ---- */

enum mil_feature_kind {
    MIL_FEATURE_MULTIARRAY = 0,
    MIL_FEATURE_STATE,
    MIL_FEATURE_INT64,
    MIL_FEATURE_DOUBLE,
    MIL_FEATURE_STRING,
    MIL_FEATURE_IMAGE,
    MIL_FEATURE_DICTIONARY,
    MIL_FEATURE_SEQUENCE,
    MIL_FEATURE_KIND_COUNT
};

struct mil_feature {
    char *name;
    char *short_description; /* "" when absent */
    enum mil_feature_kind kind;
    bool optional;
    enum anml_dtype dtype; /* MULTIARRAY / STATE: F16, F32, F64, INT32, INT8; INVALID if unset */
    int32_t rank;
    int64_t *shape;        /* default shape, rank entries */
    int32_t n_enum_shapes; /* enumerated shapes, each `rank` entries */
    int64_t **enum_shapes;
    bool has_range; /* shape range: lo/hi per dim, hi = -1 unbounded */
    int64_t *range_lo;
    int64_t *range_hi;
};

struct mil_function_desc {
    char *name;
    int32_t n_inputs;
    struct mil_feature *inputs;
    int32_t n_outputs;
    struct mil_feature *outputs;
    int32_t n_states;
    struct mil_feature *states;
};

struct mil_model_desc {
    bool multifunction; /* functions listed per function (FunctionDescription / "functions") */
    /* Single-function models have exactly one entry, named after the program's function. */
    int32_t n_functions;
    struct mil_function_desc *functions;
    char *default_function;                               /* NULL when absent */
    char *short_description, *author, *license, *version; /* NULL when absent */
    int32_t n_user;                                       /* userDefined metadata, file order */
    char **user_keys;
    char **user_values;
};

/* ---- the program ---- */

enum mil_format { MIL_FORMAT_MLMODELC = 0, MIL_FORMAT_MLPACKAGE, MIL_FORMAT_COUNT };

struct mil_blob_store; /* opened weight files (blob.h) */

struct mil_program {
    struct anml_arena *arena;
    enum mil_format format;
    int64_t spec_version; /* Model.specificationVersion / metadata.json specificationVersion */
    char *source_path;    /* the .mlmodelc / .mlpackage path as given */
    char *model_dir;      /* what @model_path stands for */
    int32_t n_attrs;      /* program attributes (buildInfo) */
    struct mil_attr *attrs;
    int32_t n_functions;
    struct mil_function *functions;
    struct mil_model_desc desc;
    struct mil_blob_store *blobs;
};

/* ---- construction and lookup (program.c) ---- */

/* A new empty program with its arena; NULL when out of memory. */
struct mil_program *anml__mil_program_new(void);
/* Frees the program, its arena and its mapped weight files. NULL is a no-op. */
void anml__mil_program_free(struct mil_program *prog);

/* Loads a program from a .mlmodelc directory, a .mlpackage directory, or a bare model.mil file
 * (then metadata.json and weights are looked up beside it). Blob references are validated
 * against the weight files before this returns. */
enum anml_status anml__mil_load(const char *path, struct mil_program **out, struct anml_error *err);

struct mil_function *anml__mil_find_function(const struct mil_program *prog, const char *name);
/* Name of the function used when the caller names none: desc.default_function, else "main",
 * else the first function. NULL for a program without functions. */
const char *anml__mil_default_function(const struct mil_program *prog);
const struct mil_arg *anml__mil_op_arg(const struct mil_op *op, const char *name);
const struct mil_attr *anml__mil_op_attr(const struct mil_op *op, const char *name);
/* The op's name for messages: its `name` attribute when it is a string, else its first result's
 * name, else "<unnamed>". Borrowed from the program. */
const char *anml__mil_op_name(const struct mil_op *op);

/* Opset tags: "ios15".."ios18", "ios26" and "CoreML5".."CoreML9" -> 5..9; 0 when unknown. */
int anml__mil_opset_from_tag(const char *tag);
const char *anml__mil_opset_text_tag(int opset);   /* 8 -> "ios18" */
const char *anml__mil_opset_proto_name(int opset); /* 8 -> "CoreML8" */

/* Type helpers, allocated in the arena; NULL when out of memory. */
struct mil_type *anml__mil_tensor_type(struct anml_arena *a, enum anml_dtype dt, int32_t rank,
                                       const int64_t *dims);
bool anml__mil_type_equal(const struct mil_type *a, const struct mil_type *b);
/* Writes the MIL text form of a type ("tensor<fp16, [1, ?, 64]>"); snprintf semantics. */
int anml__mil_type_str(const struct mil_type *t, char *buf, size_t cap);

/* ---- readers (mil_parser.c, metadata.c, mlpackage.c) ---- */

/* Parses model.mil text into prog->functions and prog->attrs. `filename` is used in error
 * positions ("model.mil:12:5"). The text need not be NUL-terminated. */
enum anml_status anml__mil_parse_text(struct mil_program *prog, const char *text, size_t len,
                                      const char *filename, struct anml_error *err);
/* Parses metadata.json text into prog->desc and prog->spec_version. */
enum anml_status anml__mil_parse_metadata_json(struct mil_program *prog, const char *text,
                                               size_t len, const char *filename,
                                               struct anml_error *err);
/* Decodes a serialized protobuf Model (model.mlmodel) into prog (functions, attrs, desc,
 * spec_version). */
enum anml_status anml__mlpackage_parse_model(struct mil_program *prog, const uint8_t *data,
                                             size_t len, const char *filename,
                                             struct anml_error *err);

/* Loads a .mlpackage directory: Manifest.json -> root model item -> model.mlmodel; sets
 * prog->model_dir to the directory holding model.mlmodel (what @model_path stands for). */
enum anml_status anml__mlpackage_load(struct mil_program *prog, const char *dir,
                                      struct anml_error *err);

/* ---- writer and comparison (writer.c, compare.c) ---- */

/* Writes prog as a .mlmodelc directory: model.mil (coremlc program(1.3) style), metadata.json and
 * weights/weight.bin holding every blob the program references (re-packed, byte-identical data). */
enum anml_status anml__mil_write_mlmodelc(const struct mil_program *prog, const char *out_dir,
                                          struct anml_error *err);
/* Writes prog->desc (with the op histograms of prog's functions) as a metadata.json file at
 * `path`, exactly as anml__mil_write_mlmodelc would. */
enum anml_status anml__mil_write_metadata_json(const struct mil_program *prog, const char *path,
                                               struct anml_error *err);
/* Structural equality of two programs (functions by name, ops in order, arguments and attributes
 * by name, values by content; blob values compared by their bytes, not their offsets). On a
 * difference returns false and describes the first one in why. */
bool anml__mil_program_equal(const struct mil_program *a, const struct mil_program *b, char *why,
                             size_t why_len);
/* Formats a float the way coremlc prints it: lowercase C99 hex float with trailing zero digits
 * trimmed and subnormals normalized ("0x0p+0", "-0x0p+0", "0x1p-24", "0x1.91eb86p+1"), or "inf",
 * "-inf", "nan". strtod parses every output back to the identical value. snprintf semantics. */
int anml__mil_format_float(double v, char *buf, size_t cap);
/* Writes s as a double-quoted MIL string literal, escaping '"', '\\', newline and tab.
 * snprintf semantics. */
int anml__mil_format_string(const char *s, char *buf, size_t cap);

#endif /* ANML_COREML_PROGRAM_H */
