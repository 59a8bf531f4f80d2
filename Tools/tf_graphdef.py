"""A reader of TensorFlow's frozen GraphDef (protobuf wire format) without TensorFlow: the nodes with their op,
inputs and attributes, and the constant tensors. Used by Tools/convert_ssdlite.py.

Protobuf fields read: GraphDef.node=1; NodeDef name=1, op=2, input=3, attr=5 (map<string, AttrValue>); AttrValue
list=1, s=2, i=3, f=4, b=5, type=6, tensor=8; TensorProto dtype=1, tensor_shape=2, tensor_content=4, float_val=5,
int_val=7; TensorShapeProto dim=2, Dim.size=1.
"""
import collections
import struct
import sys

def packed_varints(b):
    """The integers of a packed repeated varint field."""
    values, i = [], 0
    while i < len(b):
        value, i = varint(b, i)
        values.append(value)
    return values


def varint(b, i):
    r = s = 0
    while True:
        c = b[i]; i += 1; r |= (c & 0x7f) << s; s += 7
        if c < 0x80: return r, i
def fields(b):
    i = 0; n = len(b)
    while i < n:
        key, i = varint(b, i); f, w = key >> 3, key & 7
        if w == 0: v, i = varint(b, i)
        elif w == 1: v = b[i:i+8]; i += 8
        elif w == 2:
            l, i = varint(b, i); v = b[i:i+l]; i += l
        elif w == 5: v = b[i:i+4]; i += 4
        else: raise ValueError(w)
        yield f, w, v
def nodes(b):
    for f, w, v in fields(b):
        if f == 1:
            node = {"input": [], "attr": {}}
            for nf, nw, nv in fields(v):
                if nf == 1: node["name"] = nv.decode()
                elif nf == 2: node["op"] = nv.decode()
                elif nf == 3: node["input"].append(nv.decode())
                elif nf == 5:
                    key = None; val = None
                    for af, aw, av in fields(nv):
                        if af == 1: key = av.decode()
                        elif af == 2: val = av
                    node["attr"][key] = val
            yield node

def attr_value(v):
    """AttrValue: s=2, i=3, f=4, b=5, type=6, shape=7, tensor=8, list=1."""
    out = {}
    for f, w, val in fields(v):
        if f == 2: out["s"] = val.decode(errors="replace")
        elif f == 3: out["i"] = val
        elif f == 4: out["f"] = struct.unpack("<f", val)[0]
        elif f == 5: out["b"] = val
        elif f == 6: out["type"] = val
        elif f == 8: out["tensor"] = val
        elif f == 1:
            ints = []
            for lf, lw, lv in fields(val):
                if lf == 3:
                    ints += packed_varints(lv) if lw == 2 else [lv]
            out["list"] = ints
    return out

def tensor(v):
    """TensorProto: dtype=1, tensor_shape=2, tensor_content=4, float_val=5, int_val=7."""
    import numpy as np
    dtype = 1; shape = []; content = None; floats = []; ints = []
    for f, w, val in fields(v):
        if f == 1: dtype = val
        elif f == 2:
            for sf, sw, sv in fields(val):
                if sf == 2:
                    for df, dw, dv in fields(sv):
                        if df == 1: shape.append(dv)
        elif f == 4: content = val
        elif f == 5:
            if w == 2: floats += list(struct.unpack("<%df" % (len(val)//4), val))
            else: floats.append(struct.unpack("<f", val)[0])
        elif f == 7:
            ints += packed_varints(val) if w == 2 else [val]
    np_type = {1: np.float32, 3: np.int32, 9: np.int64}.get(dtype)
    if content is not None and np_type is not None:
        return np.frombuffer(content, np_type).reshape(shape)
    n = int(np.prod(shape)) if shape else 1
    if floats: return np.full(shape, floats[0], np.float32) if len(floats) == 1 and n > 1 else np.array(floats, np.float32).reshape(shape)
    if ints: return np.full(shape, ints[0], np.int32) if len(ints) == 1 and n > 1 else np.array(ints, np.int32).reshape(shape)
    return np.zeros(shape, np_type or np.float32)


if __name__ == "__main__":
    graph = list(nodes(open(sys.argv[1], "rb").read()))
    print(len(graph), "nodes:", collections.Counter(n["op"] for n in graph).most_common())
