/*
 * test_mlpackage_unit.c -- the .mlpackage reader on models built here with protobuf-c's pack
 * functions: a small valid Model decodes to the expected IR (every TensorValue field, sub-byte
 * unpacking, tuples and dictionaries, nested blocks, features with enumerated shapes, ranges and
 * states, metadata), and hostile variants fail cleanly: truncation at every byte offset, wrong
 * wire types, lengths past the end, excessive nesting, a non-mlProgram model, a missing block
 * specialization, element-count mismatches, unknown dtype enums, and bad Manifest.json files.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coreml.pb-c.h"
#include "coreml/program.h"
#include "testutil.h"

#define SPEC(name) CoreML__Specification__##name
#define MIL(name)  CoreML__Specification__MILSpec__##name

/* ---- a scratch pool: every builder allocation is freed by pool_free() ---- */

static void *g_pool[4096];
static size_t g_pool_n;

static void *tnew(size_t n) {
    assert_true(g_pool_n < sizeof g_pool / sizeof g_pool[0]);
    void *p = calloc(1, n);
    assert_non_null(p);
    g_pool[g_pool_n++] = p;
    return p;
}

static void pool_free(void) {
    for (size_t i = 0; i < g_pool_n; i++) {
        free(g_pool[i]);
    }
    g_pool_n = 0;
}

/* Appends to a repeated pointer field (capacity grows by reallocating into the pool). */
#define PUSH(n_field, field, item)                          \
  do {                                                      \
    void **grown_ = tnew(sizeof(void *) * ((n_field) + 1)); \
    if ((n_field) > 0) {                                    \
      memcpy(grown_, (field), sizeof(void *) * (n_field));  \
    }                                                       \
    grown_[(n_field)] = (item);                             \
    (field) = (void *)grown_;                               \
    (n_field)++;                                            \
  } while (0)

/* ---- MIL builders ---- */

static MIL(ValueType) * vt_tensor(int dtype, int rank, const int64_t *dims) {
    MIL(ValueType) *vt = tnew(sizeof *vt);
    core_ml__specification__milspec__value_type__init(vt);
    MIL(TensorType) *tt = tnew(sizeof *tt);
    core_ml__specification__milspec__tensor_type__init(tt);
    tt->datatype = dtype;
    tt->rank = rank;
    for (int i = 0; i < rank; i++) {
        MIL(Dimension) *d = tnew(sizeof *d);
        core_ml__specification__milspec__dimension__init(d);
        if (dims[i] < 0) {
            MIL(Dimension__UnknownDimension) *u = tnew(sizeof *u);
            core_ml__specification__milspec__dimension__unknown_dimension__init(u);
            d->dimension_case = CORE_ML__SPECIFICATION__MILSPEC__DIMENSION__DIMENSION_UNKNOWN;
            d->unknown = u;
        } else {
            MIL(Dimension__ConstantDimension) *cd = tnew(sizeof *cd);
            core_ml__specification__milspec__dimension__constant_dimension__init(cd);
            cd->size = (uint64_t)dims[i];
            d->dimension_case = CORE_ML__SPECIFICATION__MILSPEC__DIMENSION__DIMENSION_CONSTANT;
            d->constant = cd;
        }
        PUSH(tt->n_dimensions, tt->dimensions, d);
    }
    vt->type_case = CORE_ML__SPECIFICATION__MILSPEC__VALUE_TYPE__TYPE_TENSOR_TYPE;
    vt->tensortype = tt;
    return vt;
}

static MIL(ValueType) * vt_scalar(int dtype) {
    return vt_tensor(dtype, 0, NULL);
}

static MIL(TensorValue) * tv_new(void) {
    MIL(TensorValue) *tv = tnew(sizeof *tv);
    core_ml__specification__milspec__tensor_value__init(tv);
    return tv;
}

static MIL(Value) * val_imm_tensor(MIL(ValueType) * vt, MIL(TensorValue) * tv) {
    MIL(Value) *v = tnew(sizeof *v);
    core_ml__specification__milspec__value__init(v);
    MIL(Value__ImmediateValue) *iv = tnew(sizeof *iv);
    core_ml__specification__milspec__value__immediate_value__init(iv);
    iv->value_case = CORE_ML__SPECIFICATION__MILSPEC__VALUE__IMMEDIATE_VALUE__VALUE_TENSOR;
    iv->tensor = tv;
    v->type = vt;
    v->value_case = CORE_ML__SPECIFICATION__MILSPEC__VALUE__VALUE_IMMEDIATE_VALUE;
    v->immediatevalue = iv;
    return v;
}

static MIL(Value) * val_bytes(MIL(ValueType) * vt, const void *bytes, size_t n) {
    MIL(TensorValue) *tv = tv_new();
    MIL(TensorValue__RepeatedBytes) *rb = tnew(sizeof *rb);
    core_ml__specification__milspec__tensor_value__repeated_bytes__init(rb);
    rb->values.data = tnew(n ? n : 1);
    memcpy(rb->values.data, bytes, n);
    rb->values.len = n;
    tv->value_case = CORE_ML__SPECIFICATION__MILSPEC__TENSOR_VALUE__VALUE_BYTES;
    tv->bytes = rb;
    return val_imm_tensor(vt, tv);
}

static MIL(Value) * val_string(const char *s) {
    MIL(TensorValue) *tv = tv_new();
    MIL(TensorValue__RepeatedStrings) *rs = tnew(sizeof *rs);
    core_ml__specification__milspec__tensor_value__repeated_strings__init(rs);
    PUSH(rs->n_values, rs->values, (char *)s);
    tv->value_case = CORE_ML__SPECIFICATION__MILSPEC__TENSOR_VALUE__VALUE_STRINGS;
    tv->strings = rs;
    return val_imm_tensor(vt_scalar(2), tv);
}

static MIL(Value) * val_ints(MIL(ValueType) * vt, const int32_t *v, size_t n) {
    MIL(TensorValue) *tv = tv_new();
    MIL(TensorValue__RepeatedInts) *r = tnew(sizeof *r);
    core_ml__specification__milspec__tensor_value__repeated_ints__init(r);
    r->values = tnew(sizeof(int32_t) * (n ? n : 1));
    memcpy(r->values, v, sizeof(int32_t) * n);
    r->n_values = n;
    tv->value_case = CORE_ML__SPECIFICATION__MILSPEC__TENSOR_VALUE__VALUE_INTS;
    tv->ints = r;
    return val_imm_tensor(vt, tv);
}

static MIL(Value) * val_longs(MIL(ValueType) * vt, const int64_t *v, size_t n) {
    MIL(TensorValue) *tv = tv_new();
    MIL(TensorValue__RepeatedLongInts) *r = tnew(sizeof *r);
    core_ml__specification__milspec__tensor_value__repeated_long_ints__init(r);
    r->values = tnew(sizeof(int64_t) * (n ? n : 1));
    memcpy(r->values, v, sizeof(int64_t) * n);
    r->n_values = n;
    tv->value_case = CORE_ML__SPECIFICATION__MILSPEC__TENSOR_VALUE__VALUE_LONG_INTS;
    tv->longints = r;
    return val_imm_tensor(vt, tv);
}

static MIL(Value) * val_floats(MIL(ValueType) * vt, const float *v, size_t n) {
    MIL(TensorValue) *tv = tv_new();
    MIL(TensorValue__RepeatedFloats) *r = tnew(sizeof *r);
    core_ml__specification__milspec__tensor_value__repeated_floats__init(r);
    r->values = tnew(sizeof(float) * (n ? n : 1));
    memcpy(r->values, v, sizeof(float) * n);
    r->n_values = n;
    tv->value_case = CORE_ML__SPECIFICATION__MILSPEC__TENSOR_VALUE__VALUE_FLOATS;
    tv->floats = r;
    return val_imm_tensor(vt, tv);
}

static MIL(Value) * val_doubles(MIL(ValueType) * vt, const double *v, size_t n) {
    MIL(TensorValue) *tv = tv_new();
    MIL(TensorValue__RepeatedDoubles) *r = tnew(sizeof *r);
    core_ml__specification__milspec__tensor_value__repeated_doubles__init(r);
    r->values = tnew(sizeof(double) * (n ? n : 1));
    memcpy(r->values, v, sizeof(double) * n);
    r->n_values = n;
    tv->value_case = CORE_ML__SPECIFICATION__MILSPEC__TENSOR_VALUE__VALUE_DOUBLES;
    tv->doubles = r;
    return val_imm_tensor(vt, tv);
}

static MIL(Value) * val_bools(MIL(ValueType) * vt, const protobuf_c_boolean *v, size_t n) {
    MIL(TensorValue) *tv = tv_new();
    MIL(TensorValue__RepeatedBools) *r = tnew(sizeof *r);
    core_ml__specification__milspec__tensor_value__repeated_bools__init(r);
    r->values = tnew(sizeof(protobuf_c_boolean) * (n ? n : 1));
    memcpy(r->values, v, sizeof(protobuf_c_boolean) * n);
    r->n_values = n;
    tv->value_case = CORE_ML__SPECIFICATION__MILSPEC__TENSOR_VALUE__VALUE_BOOLS;
    tv->bools = r;
    return val_imm_tensor(vt, tv);
}

static MIL(Value) * val_blob(MIL(ValueType) * vt, const char *file, uint64_t off) {
    MIL(Value) *v = tnew(sizeof *v);
    core_ml__specification__milspec__value__init(v);
    MIL(Value__BlobFileValue) *b = tnew(sizeof *b);
    core_ml__specification__milspec__value__blob_file_value__init(b);
    b->filename = (char *)file;
    b->offset = off;
    v->type = vt;
    v->value_case = CORE_ML__SPECIFICATION__MILSPEC__VALUE__VALUE_BLOB_FILE_VALUE;
    v->blobfilevalue = b;
    return v;
}

/* dict<string, string> {k: v} as coremltools writes buildInfo */
static MIL(Value) * val_str_dict(const char *k, const char *v) {
    MIL(ValueType) *vt = tnew(sizeof *vt);
    core_ml__specification__milspec__value_type__init(vt);
    MIL(DictionaryType) *dt = tnew(sizeof *dt);
    core_ml__specification__milspec__dictionary_type__init(dt);
    dt->keytype = vt_scalar(2);
    dt->valuetype = vt_scalar(2);
    vt->type_case = CORE_ML__SPECIFICATION__MILSPEC__VALUE_TYPE__TYPE_DICTIONARY_TYPE;
    vt->dictionarytype = dt;
    MIL(DictionaryValue) *dv = tnew(sizeof *dv);
    core_ml__specification__milspec__dictionary_value__init(dv);
    MIL(DictionaryValue__KeyValuePair) *kv = tnew(sizeof *kv);
    core_ml__specification__milspec__dictionary_value__key_value_pair__init(kv);
    kv->key = val_string(k);
    kv->value = val_string(v);
    PUSH(dv->n_values, dv->values, kv);
    MIL(Value) *val = tnew(sizeof *val);
    core_ml__specification__milspec__value__init(val);
    MIL(Value__ImmediateValue) *iv = tnew(sizeof *iv);
    core_ml__specification__milspec__value__immediate_value__init(iv);
    iv->value_case = CORE_ML__SPECIFICATION__MILSPEC__VALUE__IMMEDIATE_VALUE__VALUE_DICTIONARY;
    iv->dictionary = dv;
    val->type = vt;
    val->value_case = CORE_ML__SPECIFICATION__MILSPEC__VALUE__VALUE_IMMEDIATE_VALUE;
    val->immediatevalue = iv;
    return val;
}

static MIL(Operation) * op_new(MIL(Block) * b, const char *type, const char *name) {
    MIL(Operation) *op = tnew(sizeof *op);
    core_ml__specification__milspec__operation__init(op);
    op->type = (char *)type;
    MIL(Operation__AttributesEntry) *e = tnew(sizeof *e);
    core_ml__specification__milspec__operation__attributes_entry__init(e);
    e->key = "name";
    e->value = val_string(name);
    PUSH(op->n_attributes, op->attributes, e);
    PUSH(b->n_operations, b->operations, op);
    return op;
}

static void op_attr(MIL(Operation) * op, const char *key, MIL(Value) * v) {
    MIL(Operation__AttributesEntry) *e = tnew(sizeof *e);
    core_ml__specification__milspec__operation__attributes_entry__init(e);
    e->key = (char *)key;
    e->value = v;
    PUSH(op->n_attributes, op->attributes, e);
}

static MIL(Argument) * op_param(MIL(Operation) * op, const char *key) {
    MIL(Operation__InputsEntry) *e = tnew(sizeof *e);
    core_ml__specification__milspec__operation__inputs_entry__init(e);
    e->key = (char *)key;
    e->value = tnew(sizeof *e->value);
    core_ml__specification__milspec__argument__init(e->value);
    PUSH(op->n_inputs, op->inputs, e);
    return e->value;
}

static void arg_name(MIL(Argument) * a, const char *name) {
    MIL(Argument__Binding) *b = tnew(sizeof *b);
    core_ml__specification__milspec__argument__binding__init(b);
    b->binding_case = CORE_ML__SPECIFICATION__MILSPEC__ARGUMENT__BINDING__BINDING_NAME;
    b->name = (char *)name;
    PUSH(a->n_arguments, a->arguments, b);
}

static void arg_value(MIL(Argument) * a, MIL(Value) * v) {
    MIL(Argument__Binding) *b = tnew(sizeof *b);
    core_ml__specification__milspec__argument__binding__init(b);
    b->binding_case = CORE_ML__SPECIFICATION__MILSPEC__ARGUMENT__BINDING__BINDING_VALUE;
    b->value = v;
    PUSH(a->n_arguments, a->arguments, b);
}

static MIL(NamedValueType) * nvt(const char *name, MIL(ValueType) * vt) {
    MIL(NamedValueType) *n = tnew(sizeof *n);
    core_ml__specification__milspec__named_value_type__init(n);
    n->name = (char *)name;
    n->type = vt;
    return n;
}

static void op_out(MIL(Operation) * op, const char *name, MIL(ValueType) * vt) {
    PUSH(op->n_outputs, op->outputs, nvt(name, vt));
}

static MIL(Block) * block_new(void) {
    MIL(Block) *b = tnew(sizeof *b);
    core_ml__specification__milspec__block__init(b);
    return b;
}

/* ---- feature builders ---- */

static SPEC(ArrayFeatureType) * array_ft(int dt, int rank, const int64_t *shape) {
    SPEC(ArrayFeatureType) *a = tnew(sizeof *a);
    core_ml__specification__array_feature_type__init(a);
    a->datatype = dt;
    a->shape = tnew(sizeof(int64_t) * (rank ? (size_t)rank : 1));
    memcpy(a->shape, shape, sizeof(int64_t) * (size_t)rank);
    a->n_shape = (size_t)rank;
    return a;
}

static SPEC(FeatureDescription) *
    feature(const char *name, SPEC(ArrayFeatureType) * a, bool state) {
    SPEC(FeatureDescription) *f = tnew(sizeof *f);
    core_ml__specification__feature_description__init(f);
    f->name = (char *)name;
    SPEC(FeatureType) *ft = tnew(sizeof *ft);
    core_ml__specification__feature_type__init(ft);
    if (state) {
        SPEC(StateFeatureType) *s = tnew(sizeof *s);
        core_ml__specification__state_feature_type__init(s);
        s->type_case = CORE_ML__SPECIFICATION__STATE_FEATURE_TYPE__TYPE_ARRAY_TYPE;
        s->arraytype = a;
        ft->type_case = CORE_ML__SPECIFICATION__FEATURE_TYPE__TYPE_STATE_TYPE;
        ft->statetype = s;
    } else {
        ft->type_case = CORE_ML__SPECIFICATION__FEATURE_TYPE__TYPE_MULTI_ARRAY_TYPE;
        ft->multiarraytype = a;
    }
    f->type = ft;
    return f;
}

static void add_enum_shape(SPEC(ArrayFeatureType) * a, int rank, const int64_t *shape) {
    if (a->shape_flexibility_case !=
        CORE_ML__SPECIFICATION__ARRAY_FEATURE_TYPE__SHAPE_FLEXIBILITY_ENUMERATED_SHAPES) {
        a->shape_flexibility_case =
            CORE_ML__SPECIFICATION__ARRAY_FEATURE_TYPE__SHAPE_FLEXIBILITY_ENUMERATED_SHAPES;
        a->enumeratedshapes = tnew(sizeof *a->enumeratedshapes);
        core_ml__specification__array_feature_type__enumerated_shapes__init(a->enumeratedshapes);
    }
    SPEC(ArrayFeatureType__Shape) *s = tnew(sizeof *s);
    core_ml__specification__array_feature_type__shape__init(s);
    s->shape = tnew(sizeof(int64_t) * (size_t)rank);
    memcpy(s->shape, shape, sizeof(int64_t) * (size_t)rank);
    s->n_shape = (size_t)rank;
    PUSH(a->enumeratedshapes->n_shapes, a->enumeratedshapes->shapes, s);
}

/* ---- the standard test model ---- */

struct tmodel {
    SPEC(Model) * model;
    SPEC(ModelDescription) * desc;
    SPEC(ArrayFeatureType) * x_feature;
    MIL(Program) * program;
    MIL(Function) * fn;
    MIL(Program__FunctionsEntry) * fn_entry;
    MIL(Function__BlockSpecializationsEntry) * spec_entry;
    MIL(Block) * block;
    MIL(Operation) * c_op; /* const c: fp16 [4] in bytes */
    MIL(Value) * c_val;
    MIL(Operation) * add_op;
    MIL(Operation) * w_op; /* const w: a blob value */
};

enum { MIL_FP16 = 10, MIL_FP32 = 11, MIL_FP64 = 12, MIL_BOOL = 1, MIL_INT8 = 21, MIL_INT32 = 23 };
enum { MIL_INT4 = 25, MIL_UINT4 = 35, MIL_UINT3 = 39, MIL_UINT16 = 32, MIL_INT64 = 24 };

static void build(struct tmodel *t, bool with_blob) {
    memset(t, 0, sizeof *t);
    SPEC(Model) *m = tnew(sizeof *m);
    core_ml__specification__model__init(m);
    m->specificationversion = 9;
    t->model = m;

    /* description: x fp16 [1, 4] (enumerated [1,4] / [2,4]), y fp16 [1, 4], state kv fp16 [2, 4] */
    SPEC(ModelDescription) *d = tnew(sizeof *d);
    core_ml__specification__model_description__init(d);
    static const int64_t s14[] = { 1, 4 }, s24[] = { 2, 4 };
    t->x_feature = array_ft(65552, 2, s14);
    add_enum_shape(t->x_feature, 2, s14);
    add_enum_shape(t->x_feature, 2, s24);
    PUSH(d->n_input, d->input, feature("x", t->x_feature, false));
    PUSH(d->n_output, d->output, feature("y", array_ft(65552, 2, s14), false));
    PUSH(d->n_state, d->state, feature("kv", array_ft(65552, 2, s24), true));
    SPEC(Metadata) *md = tnew(sizeof *md);
    core_ml__specification__metadata__init(md);
    md->author = "tester";
    md->versionstring = "1.2";
    const char *keys[] = { "k2", "k1" }, *vals[] = { "v2", "v1" };
    for (int i = 0; i < 2; i++) {
        SPEC(Metadata__UserDefinedEntry) *e = tnew(sizeof *e);
        core_ml__specification__metadata__user_defined_entry__init(e);
        e->key = (char *)keys[i];
        e->value = (char *)vals[i];
        PUSH(md->n_userdefined, md->userdefined, e);
    }
    d->metadata = md;
    m->description = d;
    t->desc = d;

    MIL(Program) *p = tnew(sizeof *p);
    core_ml__specification__milspec__program__init(p);
    p->version = 1;
    MIL(Program__AttributesEntry) *pa = tnew(sizeof *pa);
    core_ml__specification__milspec__program__attributes_entry__init(pa);
    pa->key = "buildInfo";
    pa->value = val_str_dict("coremltools-version", "9.0");
    PUSH(p->n_attributes, p->attributes, pa);
    m->type_case = CORE_ML__SPECIFICATION__MODEL__TYPE_ML_PROGRAM;
    m->mlprogram = p;
    t->program = p;

    MIL(Function) *fn = tnew(sizeof *fn);
    core_ml__specification__milspec__function__init(fn);
    static const int64_t xq[] = { -1, 4 };
    PUSH(fn->n_inputs, fn->inputs, nvt("x", vt_tensor(MIL_FP16, 2, xq)));
    MIL(ValueType) *st = tnew(sizeof *st);
    core_ml__specification__milspec__value_type__init(st);
    MIL(StateType) *sty = tnew(sizeof *sty);
    core_ml__specification__milspec__state_type__init(sty);
    sty->wrappedtype = vt_tensor(MIL_FP16, 2, s24);
    st->type_case = CORE_ML__SPECIFICATION__MILSPEC__VALUE_TYPE__TYPE_STATE_TYPE;
    st->statetype = sty;
    PUSH(fn->n_inputs, fn->inputs, nvt("kv", st));
    fn->opset = "CoreML8";
    MIL(Program__FunctionsEntry) *fe = tnew(sizeof *fe);
    core_ml__specification__milspec__program__functions_entry__init(fe);
    fe->key = "main";
    fe->value = fn;
    PUSH(p->n_functions, p->functions, fe);
    t->fn = fn;
    t->fn_entry = fe;

    MIL(Block) *b = block_new();
    MIL(Function__BlockSpecializationsEntry) *be = tnew(sizeof *be);
    core_ml__specification__milspec__function__block_specializations_entry__init(be);
    be->key = "CoreML8";
    be->value = b;
    PUSH(fn->n_block_specializations, fn->block_specializations, be);
    t->block = b;
    t->spec_entry = be;

    /* c = const fp16 [1, 2, -2, 0.5] (TensorValue.bytes, little-endian halves) */
    static const int64_t d4[] = { 4 };
    static const uint8_t c_bytes[] = { 0x00, 0x3c, 0x00, 0x40, 0x00, 0xc0, 0x00, 0x38 };
    t->c_op = op_new(b, "const", "c");
    op_out(t->c_op, "c", vt_tensor(MIL_FP16, 1, d4));
    t->c_val = val_bytes(vt_tensor(MIL_FP16, 1, d4), c_bytes, sizeof c_bytes);
    op_attr(t->c_op, "val", t->c_val);

    /* y = add(x = x, y = c) */
    t->add_op = op_new(b, "add", "add_0");
    arg_name(op_param(t->add_op, "x"), "x");
    arg_name(op_param(t->add_op, "y"), "c");
    op_out(t->add_op, "y", vt_tensor(MIL_FP16, 2, xq));

    /* constants exercising the other TensorValue fields (§7.6) */
    static const int64_t d3[] = { 3 }, d2[] = { 2 };
    static const uint8_t u4[] = { 0x21, 0x03 }; /* uint4 1, 2, 3 (§5.4 example) */
    static const uint8_t i4[] = { 0x7f };       /* int4 -1, 7 */
    static const uint8_t u3[] = { 0xd1, 0x00 }; /* uint3 1, 2, 3 */
    static const int32_t i8v[] = { -5, 7 };
    static const int64_t l64[] = { -3, 1LL << 40 };
    static const float fv[] = { 1.5f, -2.0f };
    static const double dv[] = { 0.25, -8.0 };
    static const protobuf_c_boolean bv[] = { 1, 0 };
    static const int32_t u16v[] = { 65535, 0 };
    struct {
        const char *name;
        int dtype;
        const int64_t *dims;
        MIL(Value) * v;
    } consts[] = {
        { "u4", MIL_UINT4, d3, NULL },  { "i4", MIL_INT4, d2, NULL },
        { "u3", MIL_UINT3, d3, NULL },  { "i8", MIL_INT8, d2, NULL },
        { "l64", MIL_INT64, d2, NULL }, { "f32", MIL_FP32, d2, NULL },
        { "h16", MIL_FP16, d2, NULL },  { "f64", MIL_FP64, d2, NULL },
        { "b", MIL_BOOL, d2, NULL },    { "u16", MIL_UINT16, d2, NULL },
    };
    consts[0].v = val_bytes(vt_tensor(MIL_UINT4, 1, d3), u4, sizeof u4);
    consts[1].v = val_bytes(vt_tensor(MIL_INT4, 1, d2), i4, sizeof i4);
    consts[2].v = val_bytes(vt_tensor(MIL_UINT3, 1, d3), u3, sizeof u3);
    consts[3].v = val_ints(vt_tensor(MIL_INT8, 1, d2), i8v, 2);
    consts[4].v = val_longs(vt_tensor(MIL_INT64, 1, d2), l64, 2);
    consts[5].v = val_floats(vt_tensor(MIL_FP32, 1, d2), fv, 2);
    consts[6].v = val_floats(vt_tensor(MIL_FP16, 1, d2), fv, 2); /* floats into fp16 */
    consts[7].v = val_doubles(vt_tensor(MIL_FP64, 1, d2), dv, 2);
    consts[8].v = val_bools(vt_tensor(MIL_BOOL, 1, d2), bv, 2);
    consts[9].v = val_ints(vt_tensor(MIL_UINT16, 1, d2), u16v, 2);
    for (size_t i = 0; i < sizeof consts / sizeof consts[0]; i++) {
        MIL(Operation) *op = op_new(b, "const", consts[i].name);
        op_out(op, consts[i].name, vt_tensor(consts[i].dtype, 1, consts[i].dims));
        op_attr(op, "val", consts[i].v);
    }

    /* z = concat(values = (y, y), axis = int32(0)) -- a tuple parameter and a literal */
    MIL(Operation) *cat = op_new(b, "concat", "cat");
    MIL(Argument) *vals_arg = op_param(cat, "values");
    arg_name(vals_arg, "y");
    arg_name(vals_arg, "y");
    static const int32_t zero = 0;
    arg_value(op_param(cat, "axis"), val_ints(vt_scalar(MIL_INT32), &zero, 1));
    static const int64_t zq[] = { -1, 4 };
    op_out(cat, "z", vt_tensor(MIL_FP16, 2, zq));

    /* an op with a nested block (control flow shape, §7.4) */
    MIL(Operation) *cond = op_new(b, "cond", "branch");
    arg_name(op_param(cond, "pred"), "b");
    MIL(Block) *inner = block_new();
    MIL(Operation) *idop = op_new(inner, "identity", "inner_id");
    arg_name(op_param(idop, "x"), "z");
    op_out(idop, "inner_out", vt_tensor(MIL_FP16, 2, zq));
    PUSH(inner->n_outputs, inner->outputs, "inner_out");
    PUSH(cond->n_blocks, cond->blocks, inner);
    op_out(cond, "w_out", vt_tensor(MIL_FP16, 2, zq));

    if (with_blob) {
        t->w_op = op_new(b, "const", "w");
        op_out(t->w_op, "w", vt_tensor(MIL_FP16, 1, d4));
        op_attr(t->w_op, "val",
                val_blob(vt_tensor(MIL_FP16, 1, d4), "@model_path/weights/weight.bin", 64));
    }
    PUSH(b->n_outputs, b->outputs, "y");
}

static uint8_t *pack(const struct tmodel *t, size_t *len) {
    size_t n = core_ml__specification__model__get_packed_size(t->model);
    uint8_t *buf = malloc(n ? n : 1);
    assert_non_null(buf);
    *len = core_ml__specification__model__pack(t->model, buf);
    assert_int_equal(*len, n);
    return buf;
}

static enum anml_status parse_bytes(const uint8_t *data, size_t len, struct anml_error *err,
                                    struct mil_program **keep) {
    struct mil_program *prog = anml__mil_program_new();
    assert_non_null(prog);
    memset(err, 0, sizeof *err);
    enum anml_status st = anml__mlpackage_parse_model(prog, data, len, "model.mlmodel", err);
    if (st != ANML_OK) {
        assert_int_equal(err->code, st);
        assert_true(err->msg[0] != '\0');
        assert_non_null(strstr(err->where, "model.mlmodel"));
    }
    if (keep && st == ANML_OK) {
        *keep = prog;
    } else {
        anml__mil_program_free(prog);
    }
    return st;
}

/* Packs t, parses it and expects `code` with `needle` in the message. */
static void expect_fail(const struct tmodel *t, enum anml_status code, const char *needle) {
    size_t len;
    uint8_t *buf = pack(t, &len);
    struct anml_error err;
    enum anml_status st = parse_bytes(buf, len, &err, NULL);
    free(buf);
    if (st != code || !strstr(err.msg, needle)) {
        fail_msg("expected %s with '%s', got %s: %s", anml_status_str(code), needle,
                 anml_status_str(st), err.msg);
    }
}

static void expect_fail_bytes(const uint8_t *b, size_t n, enum anml_status code,
                              const char *needle) {
    struct anml_error err;
    enum anml_status st = parse_bytes(b, n, &err, NULL);
    if (st != code || !strstr(err.msg, needle)) {
        fail_msg("expected %s with '%s', got %s: %s", anml_status_str(code), needle,
                 anml_status_str(st), err.msg);
    }
}

static const struct mil_op *find_op(const struct mil_block *b, const char *result) {
    for (int32_t i = 0; i < b->n_ops; i++) {
        if (b->ops[i].n_results > 0 && strcmp(b->ops[i].results[0].name, result) == 0) {
            return &b->ops[i];
        }
    }
    fail_msg("no op produces '%s'", result);
    return NULL;
}

static const struct mil_value *const_val(const struct mil_block *b, const char *name) {
    const struct mil_attr *a = anml__mil_op_attr(find_op(b, name), "val");
    assert_non_null(a);
    return a->value;
}

/* ---- valid model ---- */

static void test_valid_model(void **state) {
    (void)state;
    struct tmodel t;
    build(&t, true);
    size_t len;
    uint8_t *buf = pack(&t, &len);
    struct anml_error err;
    struct mil_program *prog = NULL;
    enum anml_status st = parse_bytes(buf, len, &err, &prog);
    if (st != ANML_OK) {
        fail_msg("%s: %s", err.where, err.msg);
    }
    free(buf);
    pool_free();

    assert_int_equal(prog->format, MIL_FORMAT_MLPACKAGE);
    assert_int_equal(prog->spec_version, 9);
    assert_int_equal(prog->n_attrs, 1);
    assert_string_equal(prog->attrs[0].name, "buildInfo");
    const struct mil_value *bi = prog->attrs[0].value;
    assert_int_equal(bi->kind, MIL_VALUE_DICT);
    assert_int_equal(bi->type->kind, MIL_TYPE_DICT);
    assert_int_equal(bi->n_items, 2);
    assert_string_equal(((char **)bi->items[0]->data)[0], "coremltools-version");
    assert_string_equal(((char **)bi->items[1]->data)[0], "9.0");

    assert_int_equal(prog->n_functions, 1);
    const struct mil_function *fn = &prog->functions[0];
    assert_string_equal(fn->name, "main");
    assert_int_equal(fn->opset, 8);
    assert_int_equal(fn->n_inputs, 2);
    assert_int_equal(fn->inputs[0].type->rank, 2);
    assert_int_equal(fn->inputs[0].type->dims[0], MIL_DIM_UNKNOWN);
    assert_int_equal(fn->inputs[0].type->dims[1], 4);
    assert_int_equal(fn->inputs[1].type->kind, MIL_TYPE_STATE);
    assert_int_equal(fn->inputs[1].type->elems[0]->dtype, ANML_DTYPE_F16);
    const struct mil_block *b = &fn->block;
    assert_int_equal(b->n_outputs, 1);
    assert_string_equal(b->outputs[0], "y");

    const struct mil_value *c = const_val(b, "c");
    assert_int_equal(c->kind, MIL_VALUE_TENSOR);
    assert_int_equal(c->n_elem, 4);
    const uint16_t *h = c->data;
    assert_int_equal(h[0], 0x3c00);
    assert_int_equal(h[1], 0x4000);
    assert_int_equal(h[2], 0xc000);
    assert_int_equal(h[3], 0x3800);

    const uint8_t *u4 = const_val(b, "u4")->data;
    assert_int_equal(u4[0], 1);
    assert_int_equal(u4[1], 2);
    assert_int_equal(u4[2], 3);
    const int8_t *i4 = const_val(b, "i4")->data;
    assert_int_equal(i4[0], -1);
    assert_int_equal(i4[1], 7);
    const uint8_t *u3 = const_val(b, "u3")->data;
    assert_int_equal(u3[0], 1);
    assert_int_equal(u3[1], 2);
    assert_int_equal(u3[2], 3);
    const int8_t *i8 = const_val(b, "i8")->data;
    assert_int_equal(i8[0], -5);
    assert_int_equal(i8[1], 7);
    const int64_t *l64 = const_val(b, "l64")->data;
    assert_int_equal(l64[0], -3);
    assert_int_equal(l64[1], 1LL << 40);
    const float *f32 = const_val(b, "f32")->data;
    assert_true(f32[0] == 1.5f && f32[1] == -2.0f);
    const uint16_t *h16 = const_val(b, "h16")->data;
    assert_int_equal(h16[0], 0x3e00);
    assert_int_equal(h16[1], 0xc000);
    const double *f64 = const_val(b, "f64")->data;
    assert_true(f64[0] == 0.25 && f64[1] == -8.0);
    const uint8_t *bo = const_val(b, "b")->data;
    assert_int_equal(bo[0], 1);
    assert_int_equal(bo[1], 0);
    const uint16_t *u16 = const_val(b, "u16")->data;
    assert_int_equal(u16[0], 65535);

    const struct mil_op *add = find_op(b, "y");
    assert_string_equal(add->type, "add");
    assert_int_equal(add->n_args, 2);
    assert_string_equal(add->args[0].name, "x");
    assert_string_equal(add->args[1].name, "y");
    assert_string_equal(add->args[1].bindings[0].name, "c");
    assert_int_equal(add->line, 0);
    assert_int_equal(add->col, 0);

    const struct mil_op *cat = find_op(b, "z");
    const struct mil_arg *values = anml__mil_op_arg(cat, "values");
    assert_int_equal(values->n_bindings, 2);
    const struct mil_arg *axis = anml__mil_op_arg(cat, "axis");
    assert_null(axis->bindings[0].name);
    assert_int_equal(axis->bindings[0].value->type->rank, 0);
    assert_int_equal(((const int32_t *)axis->bindings[0].value->data)[0], 0);

    const struct mil_op *cond = find_op(b, "w_out");
    assert_int_equal(cond->n_blocks, 1);
    assert_int_equal(cond->blocks[0].n_ops, 1);
    assert_string_equal(cond->blocks[0].ops[0].type, "identity");
    assert_string_equal(cond->blocks[0].outputs[0], "inner_out");

    const struct mil_value *w = const_val(b, "w");
    assert_int_equal(w->kind, MIL_VALUE_BLOB);
    assert_string_equal(w->blob_path, "@model_path/weights/weight.bin");
    assert_int_equal(w->blob_offset, 64);
    assert_int_equal(w->type->dtype, ANML_DTYPE_F16);

    const struct mil_model_desc *d = &prog->desc;
    assert_false(d->multifunction);
    assert_null(d->default_function);
    assert_int_equal(d->n_functions, 1);
    assert_string_equal(d->functions[0].name, "main");
    const struct mil_feature *x = &d->functions[0].inputs[0];
    assert_string_equal(x->name, "x");
    assert_string_equal(x->short_description, "");
    assert_int_equal(x->dtype, ANML_DTYPE_F16);
    assert_int_equal(x->n_enum_shapes, 2);
    assert_int_equal(x->enum_shapes[1][0], 2);
    assert_int_equal(d->functions[0].n_states, 1);
    assert_int_equal(d->functions[0].states[0].kind, MIL_FEATURE_STATE);
    assert_int_equal(d->functions[0].states[0].shape[0], 2);
    assert_string_equal(d->author, "tester");
    assert_string_equal(d->version, "1.2");
    assert_null(d->license);
    assert_null(d->short_description);
    assert_int_equal(d->n_user, 2);
    assert_string_equal(d->user_keys[0], "k2"); /* file order */
    assert_string_equal(d->user_values[1], "v1");
    anml__mil_program_free(prog);
}

static void test_multifunction_and_ranges(void **state) {
    (void)state;
    struct tmodel t;
    build(&t, false);
    /* a second function and a per-function description with a shape range */
    MIL(Program__FunctionsEntry) *fe2 = tnew(sizeof *fe2);
    core_ml__specification__milspec__program__functions_entry__init(fe2);
    fe2->key = "second";
    fe2->value = t.fn;
    PUSH(t.program->n_functions, t.program->functions, fe2);
    SPEC(FunctionDescription) *fd = tnew(sizeof *fd);
    core_ml__specification__function_description__init(fd);
    fd->name = "second";
    static const int64_t none[] = { 0 };
    SPEC(ArrayFeatureType) *a = array_ft(65568, 0, none);
    a->shape_flexibility_case =
        CORE_ML__SPECIFICATION__ARRAY_FEATURE_TYPE__SHAPE_FLEXIBILITY_SHAPE_RANGE;
    a->shaperange = tnew(sizeof *a->shaperange);
    core_ml__specification__array_feature_type__shape_range__init(a->shaperange);
    for (int i = 0; i < 2; i++) {
        SPEC(SizeRange) *r = tnew(sizeof *r);
        core_ml__specification__size_range__init(r);
        r->lowerbound = (uint64_t)(i + 1);
        r->upperbound = i == 0 ? -1 : 8;
        PUSH(a->shaperange->n_sizeranges, a->shaperange->sizeranges, r);
    }
    PUSH(fd->n_input, fd->input, feature("x", a, false));
    PUSH(t.desc->n_functions, t.desc->functions, fd);
    t.desc->defaultfunctionname = "second";

    size_t len;
    uint8_t *buf = pack(&t, &len);
    struct anml_error err;
    struct mil_program *prog = NULL;
    enum anml_status st = parse_bytes(buf, len, &err, &prog);
    if (st != ANML_OK) {
        fail_msg("%s: %s", err.where, err.msg);
    }
    free(buf);
    assert_int_equal(prog->n_functions, 2);
    assert_true(prog->desc.multifunction);
    assert_string_equal(prog->desc.default_function, "second");
    assert_string_equal(anml__mil_default_function(prog), "second");
    const struct mil_feature *x = &prog->desc.functions[0].inputs[0];
    assert_int_equal(x->dtype, ANML_DTYPE_F32);
    assert_true(x->has_range);
    assert_int_equal(x->rank, 2);
    assert_int_equal(x->shape[0], 1); /* default shape = lower bounds */
    assert_int_equal(x->range_lo[1], 2);
    assert_int_equal(x->range_hi[0], -1);
    assert_int_equal(x->range_hi[1], 8);
    anml__mil_program_free(prog);

    /* a default function that does not exist */
    t.desc->defaultfunctionname = "nope";
    expect_fail(&t, ANML_E_FORMAT, "defaultFunctionName 'nope'");
    /* a duplicate function name */
    fe2->key = "main";
    t.desc->defaultfunctionname = "main";
    fd->name = "main";
    expect_fail(&t, ANML_E_FORMAT, "'main' twice");
    pool_free();
}

/* ---- hostile bytes ---- */

static void test_truncated_at_every_offset(void **state) {
    (void)state;
    struct tmodel t;
    build(&t, true);
    size_t len;
    uint8_t *buf = pack(&t, &len);
    pool_free();
    assert_true(len > 300);
    for (size_t k = 0; k < len; k++) {
        /* a copy of exactly k bytes, so ASan sees any read past the end */
        uint8_t *cut = malloc(k ? k : 1);
        memcpy(cut, buf, k);
        struct anml_error err;
        enum anml_status st = parse_bytes(cut, k, &err, NULL);
        free(cut);
        /* Model's fields are 1, 2 (description) and 502 (the program): a prefix either cuts a
         * field (malformed) or drops the program (no model type) -- never valid */
        if (st != ANML_E_FORMAT) {
            fail_msg("prefix of %zu/%zu bytes: %s", k, len, anml_status_str(st));
        }
    }
    free(buf);
}

static void test_wire_errors(void **state) {
    (void)state;
    /* specificationVersion (varint) sent length-delimited */
    static const uint8_t wt1[] = { 0x0a, 0x01, 0x00 };
    expect_fail_bytes(wt1, sizeof wt1, ANML_E_FORMAT, "specificationVersion (#1) has wire type");
    /* mlProgram (message, 502) sent as a varint: tag 502 << 3 = 0xfb0 -> b0 1f */
    static const uint8_t wt2[] = { 0x08, 0x09, 0xb0, 0x1f, 0x05 };
    expect_fail_bytes(wt2, sizeof wt2, ANML_E_FORMAT, "mlProgram (#502) has wire type varint");
    /* description length 5 with one byte left */
    static const uint8_t past[] = { 0x08, 0x09, 0x12, 0x05, 0x00 };
    expect_fail_bytes(past, sizeof past, ANML_E_FORMAT, "past the end");
    /* a length that does not fit in 64 bits (11-byte varint) */
    static const uint8_t overlong[] = { 0x12, 0xff, 0xff, 0xff, 0xff, 0xff,
                                        0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
    expect_fail_bytes(overlong, sizeof overlong, ANML_E_FORMAT, "overlong");
    /* a huge length */
    static const uint8_t huge[] = { 0x12, 0xff, 0xff, 0xff, 0xff, 0x0f };
    expect_fail_bytes(huge, sizeof huge, ANML_E_FORMAT, "past the end");
    /* group wire types */
    static const uint8_t group[] = { 0x0b, 0x0c };
    expect_fail_bytes(group, sizeof group, ANML_E_FORMAT, "start-group");
    /* field number 0 */
    static const uint8_t zero[] = { 0x00, 0x01 };
    expect_fail_bytes(zero, sizeof zero, ANML_E_FORMAT, "invalid field number");
    /* a packed int64 run (ArrayFeatureType.shape) that ends inside a varint, nested:
     * Model.description{ input{ type{ multiArrayType{ shape: [0x80] } } } } */
    static const uint8_t packed[] = { 0x12, 0x09, 0x0a, 0x07, 0x1a, 0x05,
                                      0x2a, 0x03, 0x0a, 0x01, 0x80 };
    expect_fail_bytes(packed, sizeof packed, ANML_E_FORMAT, "Model.description.input.type");
    /* fixed32 field truncated inside an unknown field */
    static const uint8_t fx[] = { 0x1d, 0x01, 0x02 };
    expect_fail_bytes(fx, sizeof fx, ANML_E_FORMAT, "past the end");
    /* an empty buffer has no model type */
    expect_fail_bytes(NULL, 0, ANML_E_FORMAT, "no model type");
    /* where carries the offset of the bad field */
    struct anml_error err;
    parse_bytes(past, sizeof past, &err, NULL);
    assert_string_equal(err.where, "model.mlmodel@0x2");
}

static void test_deep_nesting(void **state) {
    (void)state;
    /* ValueType{ tupleType{ types: ValueType{ ... } } } nested n levels, as an op output type */
    for (int levels = 30; levels <= 300; levels += 270) {
        struct tmodel t;
        build(&t, false);
        MIL(ValueType) *vt = vt_scalar(MIL_FP16);
        for (int i = 0; i < levels; i++) {
            MIL(ValueType) *outer = tnew(sizeof *outer);
            core_ml__specification__milspec__value_type__init(outer);
            MIL(TupleType) *tu = tnew(sizeof *tu);
            core_ml__specification__milspec__tuple_type__init(tu);
            PUSH(tu->n_types, tu->types, vt);
            outer->type_case = CORE_ML__SPECIFICATION__MILSPEC__VALUE_TYPE__TYPE_TUPLE_TYPE;
            outer->tupletype = tu;
            vt = outer;
        }
        MIL(Operation) *op = op_new(t.block, "identity", "deep");
        arg_name(op_param(op, "x"), "x");
        op_out(op, "deep", vt);
        if (levels == 30) {
            size_t len;
            uint8_t *buf = pack(&t, &len);
            struct anml_error err;
            assert_int_equal(parse_bytes(buf, len, &err, NULL), ANML_OK);
            free(buf);
        } else {
            expect_fail(&t, ANML_E_FORMAT, "nested deeper than");
        }
        pool_free();
    }
}

/* ---- semantic errors ---- */

static void test_not_ml_program(void **state) {
    (void)state;
    /* specificationVersion 4, neuralNetwork (field 500, tag 0xfa2 -> a2 1f) with an empty body */
    static const uint8_t nn[] = { 0x08, 0x04, 0xa2, 0x1f, 0x00 };
    struct anml_error err;
    assert_int_equal(parse_bytes(nn, sizeof nn, &err, NULL), ANML_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "500"));
    assert_non_null(strstr(err.msg, "neuralNetwork"));
    /* pipeline (202) */
    static const uint8_t pl[] = { 0xd2, 0x0c, 0x00 };
    assert_int_equal(parse_bytes(pl, sizeof pl, &err, NULL), ANML_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "202 (pipeline)"));
}

static void test_missing_block_specialization(void **state) {
    (void)state;
    struct tmodel t;
    build(&t, false);
    t.spec_entry->key = "CoreML7";
    expect_fail(&t, ANML_E_FORMAT, "no block for its opset 'CoreML8'");
    t.spec_entry->key = "CoreML8";
    t.fn->opset = "CoreML42";
    expect_fail(&t, ANML_E_UNSUPPORTED, "opset 'CoreML42'");
    t.fn->opset = "";
    expect_fail(&t, ANML_E_FORMAT, "opset is empty");
    t.fn->opset = "CoreML8";
    t.fn_entry->value = NULL;
    expect_fail(&t, ANML_E_FORMAT, "has no value");
    t.fn_entry->value = t.fn;
    t.program->n_functions = 0;
    expect_fail(&t, ANML_E_FORMAT, "Program has no functions");
    pool_free();
}

static void test_element_count_mismatch(void **state) {
    (void)state;
    struct tmodel t;
    build(&t, false);
    /* fp16 [4] needs 8 bytes; give 6 */
    t.c_val->immediatevalue->tensor->bytes->values.len = 6;
    expect_fail(&t, ANML_E_FORMAT, "op 'c' (const): attribute 'val': TensorValue.bytes holds 6");
    t.c_val->immediatevalue->tensor->bytes->values.len = 8;
    /* a declared shape of 5 elements */
    t.c_val->type->tensortype->dimensions[0]->constant->size = 5;
    expect_fail(&t, ANML_E_FORMAT, "holds 8 bytes but tensor<fp16, [5]> needs 10");
    /* a tensor with an unknown dimension cannot carry immediate data */
    t.c_val->type = vt_tensor(MIL_FP16, 1, (const int64_t[]){ -1 });
    expect_fail(&t, ANML_E_FORMAT, "no fixed element count");
    pool_free();

    /* ints: out of range for int8, count mismatch, wrong field for the dtype */
    build(&t, false);
    static const int32_t big[] = { 300 };
    static const int64_t d1[] = { 1 }, d2[] = { 2 };
    MIL(Operation) *op = op_new(t.block, "const", "k");
    op_out(op, "k", vt_tensor(MIL_INT8, 1, d1));
    MIL(Operation__AttributesEntry) *val = tnew(sizeof *val);
    core_ml__specification__milspec__operation__attributes_entry__init(val);
    val->key = "val";
    val->value = val_ints(vt_tensor(MIL_INT8, 1, d1), big, 1);
    PUSH(op->n_attributes, op->attributes, val);
    expect_fail(&t, ANML_E_FORMAT, "op 'k' (const): attribute 'val': TensorValue.ints element 0");
    val->value = val_ints(vt_tensor(MIL_INT32, 1, d2), big, 1);
    expect_fail(&t, ANML_E_FORMAT, "TensorValue.ints holds 1 values but tensor<int32, [2]>");
    val->value = val_string("s");
    val->value->type = vt_scalar(MIL_FP16);
    expect_fail(&t, ANML_E_FORMAT, "TensorValue.strings cannot hold fp16");
    static const float f1[] = { 1.0f };
    val->value = val_floats(vt_scalar(MIL_INT32), f1, 1);
    expect_fail(&t, ANML_E_FORMAT, "TensorValue.floats cannot hold int32");
    /* a negative int32 cannot be a uint64 (only longInts carry uint64 bit patterns) */
    static const int32_t minus1[] = { -1 };
    val->value = val_ints(vt_tensor(34, 1, d1), minus1, 1);
    expect_fail(&t, ANML_E_FORMAT, "element 0 = -1 is out of range for uint64");
    /* ints into bool: only 0 and 1 */
    static const int32_t two[] = { 2 };
    val->value = val_ints(vt_tensor(MIL_BOOL, 1, d1), two, 1);
    expect_fail(&t, ANML_E_FORMAT, "element 0 = 2 is out of range for bool");
    /* uint4 [3] packed needs 2 bytes */
    static const uint8_t three[] = { 1, 2, 3 };
    val->value = val_bytes(vt_tensor(MIL_UINT4, 1, (const int64_t[]){ 3 }), three, 3);
    expect_fail(&t, ANML_E_FORMAT,
                "TensorValue.bytes holds 3 bytes but tensor<uint4, [3]> needs 2");
    /* no data at all */
    val->value = val_imm_tensor(vt_tensor(MIL_INT32, 1, d2), tv_new());
    expect_fail(&t, ANML_E_FORMAT, "TensorValue has no data");
    /* a duplicate attribute key */
    val->value = val_string("again");
    val->key = "name";
    expect_fail(&t, ANML_E_FORMAT, "has the key 'name' twice");
    pool_free();
}

static void test_unknown_dtype_enums(void **state) {
    (void)state;
    struct tmodel t;
    build(&t, false);
    t.c_val->type->tensortype->datatype = 99;
    expect_fail(&t, ANML_E_FORMAT, "TensorType.dataType 99");
    t.c_val->type->tensortype->datatype = CORE_ML__SPECIFICATION__MILSPEC__DATA_TYPE__FLOAT16;
    t.x_feature->datatype = 12345;
    expect_fail(&t, ANML_E_FORMAT, "feature 'x': ArrayFeatureType.dataType 12345");
    pool_free();
}

static void test_structural_errors(void **state) {
    (void)state;
    struct tmodel t;
    build(&t, false);
    MIL(Operation__InputsEntry) *in = t.add_op->inputs[0];
    /* a binding with neither name nor value */
    in->value->arguments[0]->binding_case =
        CORE_ML__SPECIFICATION__MILSPEC__ARGUMENT__BINDING__BINDING__NOT_SET;
    expect_fail(&t, ANML_E_FORMAT, "op 'add_0' (add): parameter 'x': binding 0 has neither");
    in->value->arguments[0]->binding_case =
        CORE_ML__SPECIFICATION__MILSPEC__ARGUMENT__BINDING__BINDING_NAME;
    /* a parameter without bindings */
    in->value->n_arguments = 0;
    expect_fail(&t, ANML_E_FORMAT, "parameter 'x' has no bindings");
    in->value->n_arguments = 1;
    /* the same parameter twice */
    t.add_op->inputs[1]->key = "x";
    expect_fail(&t, ANML_E_FORMAT, "parameter 'x' twice");
    t.add_op->inputs[1]->key = "y";
    /* an empty op type */
    t.add_op->type = "";
    expect_fail(&t, ANML_E_FORMAT, "Operation.type is empty");
    t.add_op->type = "add";
    /* rank / dimensions disagree */
    t.add_op->outputs[0]->type->tensortype->rank = 3;
    expect_fail(&t, ANML_E_FORMAT, "rank is 3 but 2 dimensions");
    t.add_op->outputs[0]->type->tensortype->rank = 2;
    /* a result without a type */
    t.add_op->outputs[0]->type = NULL;
    expect_fail(&t, ANML_E_FORMAT, "Operation.outputs 'y' has no type");
    t.add_op->outputs[0]->type = vt_tensor(MIL_FP16, 1, (const int64_t[]){ 4 });
    /* a Value without a type */
    t.c_val->type = NULL;
    expect_fail(&t, ANML_E_FORMAT, "Value has no type");
    t.c_val->type = vt_tensor(MIL_FP16, 1, (const int64_t[]){ 4 });
    /* a tuple-typed immediate tensor */
    MIL(ValueType) *tu = tnew(sizeof *tu);
    core_ml__specification__milspec__value_type__init(tu);
    tu->type_case = CORE_ML__SPECIFICATION__MILSPEC__VALUE_TYPE__TYPE_TUPLE_TYPE;
    tu->tupletype = tnew(sizeof *tu->tupletype);
    core_ml__specification__milspec__tuple_type__init(tu->tupletype);
    t.c_val->type = tu;
    expect_fail(&t, ANML_E_FORMAT, "immediate tensor value has a tuple type");
    t.c_val->type = vt_tensor(MIL_FP16, 1, (const int64_t[]){ 4 });
    /* enumerated shape of another rank */
    add_enum_shape(t.x_feature, 1, (const int64_t[]){ 3 });
    expect_fail(&t, ANML_E_FORMAT, "enumerated shape 2 has 1 dimensions");
    t.x_feature->enumeratedshapes->n_shapes = 2;
    /* a feature without a type */
    t.desc->output[0]->type = NULL;
    expect_fail(&t, ANML_E_FORMAT, "feature 'y': FeatureDescription has no type");
    pool_free();
}

/* ---- Manifest.json ---- */

static const char k_manifest_fmt[] =
    "{\n  \"fileFormatVersion\": \"%s\",\n  \"itemInfoEntries\": {\n"
    "    \"W\": {\"author\": \"com.apple.CoreML\", \"name\": \"weights\", "
    "\"path\": \"com.apple.CoreML/weights\"},\n"
    "    \"M\": {\"author\": \"com.apple.CoreML\", \"name\": \"model.mlmodel\", "
    "\"path\": \"%s\"}\n  },\n  \"rootModelIdentifier\": \"%s\"\n}\n";

/* Writes <tmp>/p.mlpackage with the given manifest text and the standard model (no blobs). */
static char *make_package(const char *manifest) {
    char *tmp = anml_test_tmpdir("mlpackage");
    assert_non_null(tmp);
    char path[4096];
    struct anml_error err;
    snprintf(path, sizeof path, "%s/p.mlpackage/Data/com.apple.CoreML", tmp);
    assert_int_equal(anml__mkdirs(path, &err), ANML_OK);
    struct tmodel t;
    build(&t, false);
    size_t len;
    uint8_t *buf = pack(&t, &len);
    pool_free();
    snprintf(path, sizeof path, "%s/p.mlpackage/Data/com.apple.CoreML/model.mlmodel", tmp);
    assert_int_equal(anml__write_file(path, buf, len, &err), ANML_OK);
    free(buf);
    snprintf(path, sizeof path, "%s/p.mlpackage/Manifest.json", tmp);
    if (manifest) {
        assert_int_equal(anml__write_file(path, manifest, strlen(manifest), &err), ANML_OK);
    }
    snprintf(path, sizeof path, "%s/p.mlpackage", tmp);
    free(tmp);
    return strdup(path);
}

static enum anml_status load_manifest(const char *manifest, struct anml_error *err) {
    char *pkg = make_package(manifest);
    struct mil_program *prog = anml__mil_program_new();
    memset(err, 0, sizeof *err);
    enum anml_status st = anml__mlpackage_load(prog, pkg, err);
    if (st == ANML_OK) {
        char want[4200];
        snprintf(want, sizeof want, "%s/Data/com.apple.CoreML", pkg);
        assert_string_equal(prog->model_dir, want);
        assert_int_equal(prog->format, MIL_FORMAT_MLPACKAGE);
        assert_int_equal(prog->n_functions, 1);
    } else {
        assert_true(err->msg[0] != '\0');
    }
    anml__mil_program_free(prog);
    free(pkg);
    return st;
}

static void expect_manifest(const char *version, const char *path, const char *root,
                            enum anml_status code, const char *needle) {
    char text[2048];
    snprintf(text, sizeof text, k_manifest_fmt, version, path, root);
    struct anml_error err;
    enum anml_status st = load_manifest(text, &err);
    if (st != code || (needle && !strstr(err.msg, needle))) {
        fail_msg("manifest (%s, %s, %s): expected %s with '%s', got %s: %s", version, path, root,
                 anml_status_str(code), needle ? needle : "", anml_status_str(st), err.msg);
    }
}

static void test_manifest(void **state) {
    (void)state;
    const char *model = "com.apple.CoreML/model.mlmodel";
    expect_manifest("1.0.0", model, "M", ANML_OK, NULL);
    expect_manifest("1.0", model, "M", ANML_OK, NULL);
    expect_manifest("0.9.9", model, "M", ANML_OK, NULL);
    expect_manifest("2.0.0", model, "M", ANML_E_UNSUPPORTED, "fileFormatVersion 2.0.0 is newer");
    expect_manifest("1.0.1", model, "M", ANML_E_UNSUPPORTED, "is newer than 1.0.0");
    expect_manifest("1.x", model, "M", ANML_E_FORMAT, "fileFormatVersion");
    expect_manifest("1.0.0", "../../etc/passwd", "M", ANML_E_FORMAT,
                    "'../../etc/passwd' is absolute or leaves");
    expect_manifest("1.0.0", "com.apple.CoreML/../../../x", "M", ANML_E_FORMAT, "leaves");
    expect_manifest("1.0.0", "/etc/passwd", "M", ANML_E_FORMAT, "absolute");
    expect_manifest("1.0.0", model, "NOPE", ANML_E_FORMAT,
                    "rootModelIdentifier 'NOPE' has no entry");
    expect_manifest("1.0.0", "com.apple.CoreML/missing.mlmodel", "M", ANML_E_IO, NULL);

    struct anml_error err;
    assert_int_equal(load_manifest("{ \"fileFormatVersion\": ", &err), ANML_E_FORMAT);
    assert_non_null(strstr(err.msg, "not valid JSON"));
    assert_non_null(strstr(err.where, "Manifest.json:1:"));
    assert_int_equal(load_manifest("[1, 2]", &err), ANML_E_FORMAT);
    assert_int_equal(
        load_manifest("{\"fileFormatVersion\": \"1.0.0\", \"itemInfoEntries\": {}}", &err),
        ANML_E_FORMAT);
    assert_non_null(strstr(err.msg, "rootModelIdentifier is missing"));
    assert_int_equal(load_manifest("{\"fileFormatVersion\": \"1.0.0\", "
                                   "\"rootModelIdentifier\": \"M\"}",
                                   &err),
                     ANML_E_FORMAT);
    assert_non_null(strstr(err.msg, "itemInfoEntries"));
    assert_int_equal(load_manifest("{\"fileFormatVersion\": \"1.0.0\", \"rootModelIdentifier\": "
                                   "\"M\", \"itemInfoEntries\": {\"M\": {\"path\": 3}}}",
                                   &err),
                     ANML_E_FORMAT);
    assert_non_null(strstr(err.msg, "no \"path\" string"));
    /* no Manifest.json at all */
    assert_int_equal(load_manifest(NULL, &err), ANML_E_IO);

    /* the whole loader picks the package up by its Manifest.json */
    char text[2048];
    snprintf(text, sizeof text, k_manifest_fmt, "1.0.0", model, "M");
    char *pkg = make_package(text);
    struct mil_program *prog = NULL;
    enum anml_status st = anml__mil_load(pkg, &prog, &err);
    if (st != ANML_OK) {
        fail_msg("%s: %s", err.where, err.msg);
    }
    assert_string_equal(prog->source_path, pkg);
    assert_int_equal(prog->format, MIL_FORMAT_MLPACKAGE);
    anml__mil_program_free(prog);
    free(pkg);
}

/* The fuzz seeds are hand-encoded by scripts/gen_proto_seeds.py, independently of protobuf-c:
 * the valid ones must decode, the broken ones must fail with the documented status. */
static void test_seed_corpus(void **state) {
    (void)state;
    static const struct {
        const char *file;
        enum anml_status code;
        const char *needle;
    } seeds[] = {
        { "valid_minimal.mlmodel", ANML_OK, NULL },
        { "valid_multifunction.mlmodel", ANML_OK, NULL },
        { "valid_values_states.mlmodel", ANML_OK, NULL },
        { "broken_truncated.mlmodel", ANML_E_FORMAT, "past the end" },
        { "broken_wire_type.mlmodel", ANML_E_FORMAT, "wire type" },
        { "broken_length.mlmodel", ANML_E_FORMAT, "past the end" },
        { "broken_neural_network.mlmodel", ANML_E_UNSUPPORTED, "neuralNetwork" },
        { "broken_no_block.mlmodel", ANML_E_FORMAT, "no block for its opset" },
        { "broken_count.mlmodel", ANML_E_FORMAT, "holds 3 bytes" },
        { "broken_dtype.mlmodel", ANML_E_FORMAT, "dataType 99" },
        { "broken_deep.mlmodel", ANML_E_FORMAT, "nested deeper" },
        { "broken_opset.mlmodel", ANML_E_UNSUPPORTED, "CoreML42" },
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/tests/fuzz/corpus/fuzz_mlpackage/%s", ANML_SOURCE_DIR,
                 seeds[i].file);
        size_t len = 0;
        char *data = anml_test_read_file(path, &len);
        if (!data) {
            fail_msg("missing seed %s", path);
        }
        struct anml_error err;
        struct mil_program *prog = NULL;
        enum anml_status st = parse_bytes((const uint8_t *)data, len, &err, &prog);
        free(data);
        if (st != seeds[i].code || (seeds[i].needle && !strstr(err.msg, seeds[i].needle))) {
            fail_msg("%s: expected %s '%s', got %s: %s", seeds[i].file,
                     anml_status_str(seeds[i].code), seeds[i].needle ? seeds[i].needle : "",
                     anml_status_str(st), err.msg);
        }
        if (prog) {
            assert_true(prog->n_functions >= 1);
            anml__mil_program_free(prog);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_model),
        cmocka_unit_test(test_multifunction_and_ranges),
        cmocka_unit_test(test_truncated_at_every_offset),
        cmocka_unit_test(test_wire_errors),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_not_ml_program),
        cmocka_unit_test(test_missing_block_specialization),
        cmocka_unit_test(test_element_count_mismatch),
        cmocka_unit_test(test_unknown_dtype_enums),
        cmocka_unit_test(test_structural_errors),
        cmocka_unit_test(test_manifest),
        cmocka_unit_test(test_seed_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
