#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/fuzz_mlpackage.c: small CoreML `Model` protobufs
(model.mlmodel files), valid ones and broken ones, hand-encoded here with the field numbers of
docs coreml-format.md §7 -- no protobuf library and no real model file involved.

    scripts/gen_proto_seeds.py [OUT_DIR]   (default: tests/fuzz/corpus/fuzz_mlpackage)
"""
import os
import struct
import sys

# ---- wire format ----


def varint(n):
    if n < 0:
        n &= (1 << 64) - 1  # int32/int64 negatives are 10-byte varints
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def tag(field, wt):
    return varint((field << 3) | wt)


def f_varint(field, n):
    return tag(field, 0) + varint(n)


def f_bytes(field, data):
    if isinstance(data, str):
        data = data.encode()
    return tag(field, 2) + varint(len(data)) + data


def f_msg(field, *parts):
    return f_bytes(field, b"".join(parts))


def f_packed_varints(field, values):
    return f_bytes(field, b"".join(varint(v) for v in values))


def f_packed_floats(field, values):
    return f_bytes(field, b"".join(struct.pack("<f", v) for v in values))


def f_packed_doubles(field, values):
    return f_bytes(field, b"".join(struct.pack("<d", v) for v in values))


def map_entry(field, key, value_msg):
    return f_msg(field, f_bytes(1, key), f_bytes(2, value_msg))


# ---- MIL (CoreML.Specification.MILSpec) ----

FP16, FP32, BOOL, STRING, INT8, INT32, INT64, UINT4, INT4, UINT3 = 10, 11, 1, 2, 21, 23, 24, 35, 25, 39


def dim(n):
    if n is None:  # Dimension.unknown = UnknownDimension{} (variadic false)
        return f_bytes(2, b"")
    return f_msg(1, f_varint(1, n))


def tensor_type(dtype, dims):
    body = f_varint(1, dtype)
    if dims:
        body += f_varint(2, len(dims))
    for d in dims:
        body += f_bytes(3, dim(d))
    return f_msg(1, body)  # ValueType.tensorType


def tuple_type(*vts):
    return f_msg(3, *(f_bytes(1, vt) for vt in vts))


def dict_type(k, v):
    return f_msg(4, f_bytes(1, k), f_bytes(2, v))


def list_type(elem, length):
    return f_msg(2, f_bytes(1, elem), f_bytes(2, dim(length)))


def state_type(wrapped):
    return f_msg(5, f_bytes(1, wrapped))


def value_tensor(vt, tv_field, payload):
    """Value{type, immediateValue{tensor{<tv_field>{payload}}}}"""
    tv = f_bytes(tv_field, payload)
    return f_bytes(2, vt) + f_msg(3, f_bytes(1, tv))


def v_string(s):
    return value_tensor(tensor_type(STRING, []), 4, f_bytes(1, s))


def v_fp16_bytes(dims, raw):
    return value_tensor(tensor_type(FP16, dims), 7, f_bytes(1, raw))


def v_ints(dtype, dims, values):
    return value_tensor(tensor_type(dtype, dims), 2, f_packed_varints(1, values))


def v_blob(vt, path, offset):
    return f_bytes(2, vt) + f_msg(5, f_bytes(1, path), f_varint(2, offset))


def v_dict_str(pairs):
    kvs = b"".join(f_msg(1, f_bytes(1, v_string(k)), f_bytes(2, v_string(v))) for k, v in pairs)
    vt = dict_type(tensor_type(STRING, []), tensor_type(STRING, []))
    return f_bytes(2, vt) + f_msg(3, f_bytes(4, kvs))


def v_tuple(vt, items):
    return f_bytes(2, vt) + f_msg(3, f_msg(2, *(f_bytes(1, it) for it in items)))


def v_list(vt, items):
    return f_bytes(2, vt) + f_msg(3, f_msg(3, *(f_bytes(1, it) for it in items)))


def named(name, vt):
    return f_bytes(1, name) + f_bytes(2, vt)


def op(op_type, name, inputs=(), outputs=(), attrs=(), blocks=()):
    body = f_bytes(1, op_type)
    for key, bindings in inputs:
        arg = b"".join(f_msg(1, b) for b in bindings)
        body += map_entry(2, key, arg)
    for oname, vt in outputs:
        body += f_bytes(3, named(oname, vt))
    for blk in blocks:
        body += f_bytes(4, blk)
    body += map_entry(5, "name", v_string(name))
    for key, val in attrs:
        body += map_entry(5, key, val)
    return body


def bind_name(n):
    return f_bytes(1, n)


def bind_value(v):
    return f_bytes(2, v)


def block(ops, outputs, inputs=()):
    body = b"".join(f_bytes(1, named(n, vt)) for n, vt in inputs)
    body += b"".join(f_bytes(2, o) for o in outputs)
    body += b"".join(f_bytes(3, o) for o in ops)
    return body


def function(inputs, opset, blk, spec_key=None):
    body = b"".join(f_bytes(1, named(n, vt)) for n, vt in inputs)
    body += f_bytes(2, opset)
    body += map_entry(3, spec_key or opset, blk)
    return body


def program(functions, attrs=()):
    body = f_varint(1, 1)
    for name, fn in functions:
        body += map_entry(2, name, fn)
    for key, val in attrs:
        body += map_entry(4, key, val)
    return body


# ---- Model / description (CoreML.Specification) ----

F16_A, F32_A, I32_A = 65552, 65568, 131104


def array_ft(dtype, shape, enum_shapes=None, ranges=None):
    body = f_packed_varints(1, shape) if shape else b""
    body += f_varint(2, dtype)
    if enum_shapes:
        body += f_msg(21, *(f_msg(1, f_packed_varints(1, s)) for s in enum_shapes))
    if ranges:
        body += f_msg(31, *(f_msg(1, f_varint(1, lo), f_varint(2, hi)) for lo, hi in ranges))
    return body


def feature(name, ft_body, state=False, optional=False):
    ftype = f_msg(8, f_bytes(1, ft_body)) if state else f_bytes(5, ft_body)
    if optional:
        ftype += f_varint(1000, 1)
    return f_bytes(1, name) + f_bytes(3, ftype)


def metadata(author, user):
    body = f_bytes(3, author) + f_bytes(2, "1.0")
    for k, v in user:
        body += f_msg(100, f_bytes(1, k), f_bytes(2, v))  # map<string, string> entry
    return body


def model(spec, desc, prog):
    out = f_varint(1, spec)
    if desc is not None:
        out += f_bytes(2, desc)
    if prog is not None:
        out += f_bytes(502, prog)
    return out


# ---- seeds ----


def seed_minimal():
    x = tensor_type(FP16, [1, 4])
    blk = block([
        op("const", "c", outputs=[("c", tensor_type(FP16, [4]))],
           attrs=[("val", v_fp16_bytes([4], bytes([0, 0x3C, 0, 0x40, 0, 0xC0, 0, 0x38])))]),
        op("add", "add_0", inputs=[("x", [bind_name("x")]), ("y", [bind_name("c")])],
           outputs=[("y", x)]),
    ], ["y"])
    desc = f_bytes(1, feature("x", array_ft(F16_A, [1, 4]))) + \
        f_bytes(10, feature("y", array_ft(F16_A, [1, 4])))
    return model(9, desc, program([("main", function([("x", x)], "CoreML8", blk))])), blk, x


def seed_multifunction():
    x = tensor_type(FP32, [1])
    fns = []
    descs = b""
    for name, arith, raw in (("mul_two", "mul", b"\x00\x40"), ("add_one", "add", b"\x00\x3c")):
        blk = block([
            op("const", "dt", outputs=[("dt", tensor_type(STRING, []))],
               attrs=[("val", v_string("fp16"))]),
            op("const", "k", outputs=[("k", tensor_type(FP16, []))],
               attrs=[("val", v_fp16_bytes([], raw))]),
            op("cast", "cast_1", inputs=[("x", [bind_name("x")]), ("dtype", [bind_name("dt")])],
               outputs=[("xh", tensor_type(FP16, [1]))]),
            op(arith, name + "_h", inputs=[("x", [bind_name("xh")]), ("y", [bind_name("k")])],
               outputs=[(name, tensor_type(FP16, [1]))]),
        ], [name])
        fns.append((name, function([("x", x)], "CoreML8", blk)))
        descs += f_msg(20, f_bytes(1, name), f_bytes(2, feature("x", array_ft(F32_A, [1]))),
                       f_bytes(3, feature(name, array_ft(F32_A, [1]))))
    desc = descs + f_bytes(21, "add_one") + f_bytes(100, metadata("seed", [("k", "v"), ("a", "b")]))
    return model(9, desc, program(fns))


def seed_values_and_states():
    kv = tensor_type(FP16, [2, 4])
    x = tensor_type(FP16, [None, 4])
    ids = tensor_type(INT32, [None])
    consts = [
        ("u4", value_tensor(tensor_type(UINT4, [3]), 7, f_bytes(1, b"\x21\x03"))),
        ("i4", value_tensor(tensor_type(INT4, [2]), 7, f_bytes(1, b"\x7f"))),
        ("u3", value_tensor(tensor_type(UINT3, [3]), 7, f_bytes(1, b"\xd1\x00"))),
        ("i8", v_ints(INT8, [2], [-5, 7])),
        ("l64", value_tensor(tensor_type(INT64, [2]), 5, f_packed_varints(1, [-3, 1 << 40]))),
        ("f32", value_tensor(tensor_type(FP32, [2]), 1, f_packed_floats(1, [1.5, -2.0]))),
        ("f64", value_tensor(tensor_type(12, [2]), 6, f_packed_doubles(1, [0.25, -8.0]))),
        ("b", value_tensor(tensor_type(BOOL, [2]), 3, f_packed_varints(1, [1, 0]))),
        ("w", v_blob(tensor_type(FP16, [4]), "@model_path/weights/weight.bin", 64)),
        ("tup", v_tuple(tuple_type(tensor_type(INT32, []), tensor_type(STRING, [])),
                        [v_ints(INT32, [], [3]), v_string("s")])),
        ("lst", v_list(list_type(tensor_type(INT32, []), 2),
                       [v_ints(INT32, [], [1]), v_ints(INT32, [], [2])])),
    ]
    ops = [op("const", n, outputs=[(n, tensor_type(FP16, [4]))], attrs=[("val", v)])
           for n, v in consts]
    ops.append(op("read_state", "rs", inputs=[("input", [bind_name("kv")])],
                  outputs=[("cache", kv)]))
    ops.append(op("concat", "cat", inputs=[("values", [bind_name("x"), bind_name("x")]),
                                           ("axis", [bind_value(v_ints(INT32, [], [0]))])],
                  outputs=[("z", x)]))
    inner = block([op("identity", "inner", inputs=[("x", [bind_name("z")])],
                      outputs=[("io", x)])], ["io"])
    ops.append(op("cond", "branch", inputs=[("pred", [bind_name("b")])],
                  outputs=[("out", x)], blocks=[inner, inner]))
    blk = block(ops, ["out"])
    fn = function([("x", x), ("ids", ids), ("kv", state_type(kv))], "CoreML8", blk)
    desc = f_bytes(1, feature("x", array_ft(F16_A, [1, 4], enum_shapes=[[1, 4], [2, 4]])))
    desc += f_bytes(1, feature("ids", array_ft(I32_A, [], ranges=[(1, -1)])))
    desc += f_bytes(10, feature("out", array_ft(F16_A, [])))
    desc += f_bytes(13, feature("kv", array_ft(F16_A, [2, 4]), state=True))
    desc += f_bytes(100, metadata("seed", [("com.example", "1")]))
    attrs = [("buildInfo", v_dict_str([("coremltools-version", "9.0"), ("x", "y")]))]
    return model(9, desc, program([("main", fn)], attrs))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fuzz", "corpus", "fuzz_mlpackage")
    os.makedirs(out, exist_ok=True)
    minimal, blk, x = seed_minimal()
    multi = seed_multifunction()
    values = seed_values_and_states()
    deep_vt = tensor_type(FP16, [])
    for _ in range(60):
        deep_vt = tuple_type(deep_vt)
    deep_op = op("identity", "d", inputs=[("x", [bind_name("x")])], outputs=[("d", deep_vt)])
    deep = model(9, None, program([("main", function([("x", x)], "CoreML8",
                                                     block([deep_op], ["d"])))]))
    short_op = op("const", "c", outputs=[("c", tensor_type(FP16, [4]))],
                  attrs=[("val", v_fp16_bytes([4], b"\x00\x3c\x00"))])
    count = model(9, None, program([("main", function([("x", x)], "CoreML8",
                                                      block([short_op], ["c"])))]))
    no_block = model(9, None, program([("main", function([("x", x)], "CoreML8", blk,
                                                         spec_key="CoreML7"))]))
    bad_dtype = model(9, None, program([("main", function([("x", tensor_type(99, [1]))],
                                                          "CoreML8", blk))]))
    bad_opset = model(9, None, program([("main", function([("x", x)], "CoreML42", blk))]))
    seeds = {
        "valid_minimal.mlmodel": minimal,
        "valid_multifunction.mlmodel": multi,
        "valid_values_states.mlmodel": values,
        "broken_truncated.mlmodel": values[: len(values) * 2 // 3],
        "broken_wire_type.mlmodel": f_bytes(1, b"\x00") + minimal[2:],
        "broken_length.mlmodel": f_varint(1, 9) + tag(2, 2) + varint(1000) + minimal[:40],
        "broken_neural_network.mlmodel": f_varint(1, 4) + f_bytes(500, b""),
        "broken_no_block.mlmodel": no_block,
        "broken_count.mlmodel": count,
        "broken_dtype.mlmodel": bad_dtype,
        "broken_deep.mlmodel": deep,
        "broken_opset.mlmodel": bad_opset,
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(seeds)} seeds to {out}")


if __name__ == "__main__":
    main()
