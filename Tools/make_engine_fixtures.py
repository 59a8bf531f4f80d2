#!/usr/bin/env python3
"""Writes the engine's golden fixtures: inputs, outputs and gradients of every op, computed by PyTorch.

Usage: python3 Tools/make_engine_fixtures.py   (needs torch, torchvision, safetensors)
Writes Tests/EngineTests/Fixtures/ops.json (the cases) and ops.safetensors (their tensors).
Each case names an op, its parameters, its inputs, and which inputs get gradients; the gradient is that of
sum(output * cotangent) for a random cotangent that is stored too.
"""
import json
import os

import torch
import torch.nn.functional as F
import torchvision
from safetensors.torch import save_file

torch.manual_seed(0)
ROOT = os.path.join(os.path.dirname(__file__), "..", "Tests", "EngineTests", "Fixtures")
tensors = {}
cases = []


def rnd(*shape, positive=False):
    t = torch.randn(tuple(shape), dtype=torch.float64).float()
    return t.abs() + 0.1 if positive else t


def add_case(name, op, params, inputs, fn, grad=None, int_inputs=None):
    """inputs: dict name -> float tensor; int_inputs: dict name -> int64 tensor; fn(**inputs) -> tensor or list."""
    grad = list(inputs) if grad is None else grad
    leaves = {k: v.clone().requires_grad_(k in grad) for k, v in inputs.items()}
    out = fn(**leaves, **(int_inputs or {}))
    outs = out if isinstance(out, (list, tuple)) else [out]
    float_outs = [o for o in outs if o.dtype == torch.float32]
    cots = [torch.randn_like(o) for o in float_outs]
    grads = {}
    if grad and any(o.requires_grad for o in float_outs):
        gs = torch.autograd.grad(float_outs, [leaves[k] for k in grad], cots, allow_unused=True)
        grads = {k: (g if g is not None else torch.zeros_like(inputs[k])) for k, g in zip(grad, gs)}
    for k, v in inputs.items():
        tensors[f"{name}.in.{k}"] = v.contiguous()
    for k, v in (int_inputs or {}).items():
        tensors[f"{name}.int.{k}"] = v.contiguous()
    for i, o in enumerate(outs):
        tensors[f"{name}.out.{i}"] = o.detach().contiguous()
    for i, c in enumerate(cots):
        tensors[f"{name}.cot.{i}"] = c.contiguous()
    for k, g in grads.items():
        tensors[f"{name}.grad.{k}"] = g.contiguous()
    cases.append({"name": name, "op": op, "params": params, "inputs": list(inputs), "intInputs": list(int_inputs or {}),
                  "outputs": len(outs), "grad": list(grads)})


# Elementwise binary ops with broadcasting.
for opname, fn in [("add", torch.add), ("sub", torch.sub), ("mul", torch.mul), ("div", torch.div),
                   ("maximum", torch.maximum), ("minimum", torch.minimum)]:
    for i, (sa, sb) in enumerate([((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (3, 1)), ((2, 1, 5), (1, 3, 1)), ((4, 5), ())]):
        b = rnd(*sb, positive=True) if opname == "div" else rnd(*sb)
        add_case(f"{opname}_{i}", opname, {}, {"a": rnd(*sa), "b": b}, lambda a, b, fn=fn: fn(a, b))

# Unary ops.
for opname, fn, positive in [("relu", torch.relu, False), ("sigmoid", torch.sigmoid, False), ("exp", torch.exp, False),
                             ("log", torch.log, True), ("sqrt", torch.sqrt, True), ("neg", torch.neg, False),
                             ("abs", torch.abs, False)]:
    add_case(f"{opname}_0", opname, {}, {"x": rnd(3, 5, 7, positive=positive)}, lambda x, fn=fn: fn(x))
add_case("clamp_0", "clamp", {"min": -0.5, "max": 0.7}, {"x": rnd(4, 9)}, lambda x: torch.clamp(x, -0.5, 0.7))
add_case("clamp_1", "clamp", {"min": 0.0}, {"x": rnd(4, 9)}, lambda x: torch.clamp(x, min=0.0))

# Softmax family.
for axis in [1, -1]:
    add_case(f"softmax_{axis}", "softmax", {"axis": axis}, {"x": rnd(3, 4, 6)}, lambda x, a=axis: F.softmax(x, dim=a))
    add_case(f"log_softmax_{axis}", "log_softmax", {"axis": axis}, {"x": rnd(3, 4, 6)}, lambda x, a=axis: F.log_softmax(x, dim=a))

# Reductions.
for i, (axes, keep) in enumerate([([1], False), ([0, 2], True), ([2], False), ([0, 1, 2], False)]):
    add_case(f"sum_{i}", "sum", {"axes": axes, "keep": keep}, {"x": rnd(3, 4, 5)}, lambda x, a=axes, k=keep: x.sum(dim=a, keepdim=k))
    add_case(f"mean_{i}", "mean", {"axes": axes, "keep": keep}, {"x": rnd(3, 4, 5)}, lambda x, a=axes, k=keep: x.mean(dim=a, keepdim=k))
    add_case(f"amax_{i}", "amax", {"axes": axes, "keep": keep}, {"x": rnd(3, 4, 5)}, lambda x, a=axes, k=keep: x.amax(dim=a, keepdim=k))

# Shape ops.
add_case("reshape_0", "reshape", {"shape": [6, -1]}, {"x": rnd(2, 3, 4)}, lambda x: x.reshape(6, -1))
add_case("permute_0", "permute", {"order": [2, 0, 1]}, {"x": rnd(2, 3, 4)}, lambda x: x.permute(2, 0, 1))
add_case("permute_1", "permute", {"order": [0, 2, 3, 1]}, {"x": rnd(2, 3, 4, 5)}, lambda x: x.permute(0, 2, 3, 1))
add_case("concat_0", "concat", {"axis": 1}, {"a": rnd(2, 3, 4), "b": rnd(2, 1, 4), "c": rnd(2, 2, 4)},
         lambda a, b, c: torch.cat([a, b, c], dim=1))
add_case("split_0", "split", {"sizes": [1, 3, 2], "axis": -1}, {"x": rnd(3, 2, 6)}, lambda x: list(torch.split(x, [1, 3, 2], dim=-1)))
add_case("slice_0", "slice", {"axis": 1, "start": 1, "end": 7, "step": 2}, {"x": rnd(2, 8, 3)}, lambda x: x[:, 1:7:2])
add_case("pad_0", "pad", {"pad": [1, 2, 0, 3], "value": 0.5}, {"x": rnd(2, 3, 4, 5)}, lambda x: F.pad(x, (1, 2, 0, 3), value=0.5))
add_case("pad_1", "pad", {"pad": [-1, 2], "value": 0.0}, {"x": rnd(3, 5)}, lambda x: F.pad(x, (-1, 2)))

# Indexing.
idx = torch.randint(0, 5, (3, 4, 2))
add_case("gather_0", "gather", {"axis": 1}, {"x": rnd(3, 5, 2)}, lambda x, i: torch.gather(x, 1, i), int_inputs={"i": idx})
add_case("index_select_0", "index_select", {"axis": 0, "indices": [2, 0, 2, 1]}, {"x": rnd(3, 4)},
         lambda x: torch.index_select(x, 0, torch.tensor([2, 0, 2, 1])))
sidx = torch.randint(0, 4, (5, 3))
add_case("scatter_add_0", "scatter_add", {"axis": 0}, {"x": rnd(4, 3), "src": rnd(5, 3)},
         lambda x, src, i: x.scatter_add(0, i, src), int_inputs={"i": sidx})
cond = (torch.rand(3, 4) > 0.5).float()
add_case("where_0", "where", {}, {"c": cond, "a": rnd(3, 4), "b": rnd(1, 4)}, lambda c, a, b: torch.where(c != 0, a, b), grad=["a", "b"])

# Sorting.
add_case("topk_0", "topk", {"k": 3, "axis": -1, "largest": True}, {"x": rnd(4, 7)}, lambda x: list(torch.topk(x, 3, dim=-1)))
add_case("topk_1", "topk", {"k": 2, "axis": 0, "largest": False}, {"x": rnd(5, 3)}, lambda x: list(torch.topk(x, 2, dim=0, largest=False)))
add_case("sort_0", "sort", {"axis": 1, "descending": True}, {"x": rnd(3, 6)}, lambda x: list(torch.sort(x, dim=1, descending=True)))
add_case("argmax_0", "argmax", {"axis": 1}, {"x": rnd(4, 6, 2)}, lambda x: [torch.argmax(x, dim=1)], grad=[])

# Matrix products.
add_case("matmul_0", "matmul", {}, {"a": rnd(5, 7), "b": rnd(7, 3)}, lambda a, b: torch.matmul(a, b))
add_case("matmul_1", "matmul", {}, {"a": rnd(2, 5, 7), "b": rnd(2, 7, 3)}, lambda a, b: torch.matmul(a, b))
add_case("matmul_2", "matmul", {}, {"a": rnd(2, 5, 7), "b": rnd(7, 3)}, lambda a, b: torch.matmul(a, b))
add_case("linear_0", "linear", {}, {"x": rnd(2, 3, 8), "w": rnd(5, 8), "b": rnd(5)}, lambda x, w, b: F.linear(x, w, b))
add_case("linear_1", "linear", {}, {"x": rnd(4, 8), "w": rnd(5, 8)}, lambda x, w: F.linear(x, w))

# Convolutions: odd sizes, strides, padding, dilation, groups, 1x1, and a 3x3 with enough channels for Winograd.
conv_specs = [
    ("conv_basic", (2, 3, 9, 11), (4, 3, 3, 3), dict(stride=1, padding=1, dilation=1, groups=1), True),
    ("conv_stride2", (1, 4, 10, 13), (6, 4, 3, 3), dict(stride=2, padding=1, dilation=1, groups=1), True),
    ("conv_dilated", (1, 3, 12, 10), (2, 3, 3, 3), dict(stride=1, padding=2, dilation=2, groups=1), True),
    ("conv_groups", (2, 6, 7, 8), (4, 3, 3, 3), dict(stride=1, padding=1, dilation=1, groups=2), True),
    ("conv_depthwise", (1, 4, 7, 8), (4, 1, 3, 3), dict(stride=1, padding=1, dilation=1, groups=4), False),
    # Depthwise 3x3 at stride 1 and 2, padded and not, odd and even sides (odam's row kernel), and a 5x5 (its sweep).
    ("conv_depthwise_s2", (1, 6, 9, 8), (6, 1, 3, 3), dict(stride=2, padding=1, dilation=1, groups=6), True),
    ("conv_depthwise_s2_pad0", (2, 5, 10, 11), (5, 1, 3, 3), dict(stride=2, padding=0, dilation=1, groups=5), False),
    ("conv_depthwise_pad0", (1, 3, 6, 9), (3, 1, 3, 3), dict(stride=1, padding=0, dilation=1, groups=3), False),
    ("conv_depthwise_rect", (1, 4, 5, 12), (4, 1, 3, 3), dict(stride=2, padding=(0, 1), dilation=1, groups=4), False),
    ("conv_depthwise_5x5", (1, 4, 9, 7), (4, 1, 5, 5), dict(stride=1, padding=2, dilation=1, groups=4), False),
    ("conv_1x1", (2, 8, 5, 6), (12, 8, 1, 1), dict(stride=1, padding=0, dilation=1, groups=1), True),
    ("conv_1x1_s2", (1, 8, 9, 7), (5, 8, 1, 1), dict(stride=2, padding=0, dilation=1, groups=1), False),
    ("conv_7x7_s2", (1, 3, 21, 19), (4, 3, 7, 7), dict(stride=2, padding=3, dilation=1, groups=1), True),
    ("conv_rect", (1, 3, 8, 9), (2, 3, 1, 5), dict(stride=(1, 2), padding=(0, 2), dilation=1, groups=1), False),
    ("conv_winograd", (2, 32, 13, 17), (48, 32, 3, 3), dict(stride=1, padding=1, dilation=1, groups=1), True),
    ("conv_winograd_pad0", (1, 32, 10, 9), (32, 32, 3, 3), dict(stride=1, padding=0, dilation=1, groups=1), False),
]
for name, xs, ws, opts, bias in conv_specs:
    inputs = {"x": rnd(*xs), "w": rnd(*ws) * 0.3}
    if bias:
        inputs["b"] = rnd(ws[0])
    params = {k: (list(v) if isinstance(v, tuple) else [v, v]) if k != "groups" else v for k, v in opts.items()}
    add_case(name, "conv2d", params, inputs, lambda x, w, b=None, o=opts: F.conv2d(x, w, b, **o))

# Normalization.
def frozen_bn(x, w, b, rm, rv):
    scale = w * (rv + 1e-5).rsqrt()
    return x * scale.reshape(1, -1, 1, 1) + (b - rm * scale).reshape(1, -1, 1, 1)
add_case("frozen_bn_0", "frozen_bn", {}, {"x": rnd(2, 4, 5, 3), "w": rnd(4), "b": rnd(4), "rm": rnd(4), "rv": rnd(4, positive=True)},
         frozen_bn, grad=["x"])
tv_frozen = torchvision.ops.FrozenBatchNorm2d(4)
rm0, rv0 = rnd(4), rnd(4, positive=True)
def bn_train(x, w, b):
    rm, rv = rm0.clone(), rv0.clone()
    y = F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.1, eps=1e-5)
    tensors["batch_norm_0.running_mean"] = rm.clone()
    tensors["batch_norm_0.running_var"] = rv.clone()
    return y
tensors["batch_norm_0.rm0"] = rm0
tensors["batch_norm_0.rv0"] = rv0
add_case("batch_norm_0", "batch_norm_train", {}, {"x": rnd(3, 4, 5, 6), "w": rnd(4), "b": rnd(4)}, bn_train)
add_case("batch_norm_eval", "batch_norm_eval", {}, {"x": rnd(2, 4, 5, 3), "w": rnd(4), "b": rnd(4), "rm": rnd(4), "rv": rnd(4, positive=True)},
         lambda x, w, b, rm, rv: F.batch_norm(x, rm, rv, w, b, training=False), grad=["x", "w", "b"])
add_case("group_norm_0", "group_norm", {"groups": 4}, {"x": rnd(2, 8, 5, 7) * 2 + 1, "w": rnd(8), "b": rnd(8)},
         lambda x, w, b: F.group_norm(x, 4, w, b, eps=1e-5))
add_case("group_norm_1", "group_norm", {"groups": 32}, {"x": rnd(1, 64, 6, 5), "w": rnd(64), "b": rnd(64)},
         lambda x, w, b: F.group_norm(x, 32, w, b, eps=1e-5))

# Pooling.
add_case("max_pool_0", "max_pool", {"kernel": [3, 3], "stride": [2, 2], "padding": [1, 1]}, {"x": rnd(2, 3, 11, 9)},
         lambda x: F.max_pool2d(x, 3, 2, 1))
add_case("max_pool_1", "max_pool", {"kernel": [1, 1], "stride": [2, 2], "padding": [0, 0]}, {"x": rnd(1, 2, 7, 6)},
         lambda x: F.max_pool2d(x, 1, 2, 0))
add_case("avg_pool_0", "avg_pool", {"kernel": [3, 2], "stride": [2, 1], "padding": [1, 1]}, {"x": rnd(2, 3, 9, 8)},
         lambda x: F.avg_pool2d(x, (3, 2), (2, 1), (1, 1)))
add_case("adaptive_avg_pool_0", "adaptive_avg_pool", {"size": [3, 2]}, {"x": rnd(2, 3, 8, 7)}, lambda x: F.adaptive_avg_pool2d(x, (3, 2)))
add_case("adaptive_avg_pool_1", "adaptive_avg_pool", {"size": [1, 1]}, {"x": rnd(2, 3, 5, 4)}, lambda x: F.adaptive_avg_pool2d(x, 1))

# Interpolation.
for i, (size, mode, ac) in enumerate([((13, 17), "nearest", None), ((4, 3), "nearest", None), ((13, 17), "bilinear", False),
                                      ((13, 17), "bilinear", True), ((3, 5), "bilinear", False), ((3, 5), "bilinear", True),
                                      ((14, 12), "nearest", None)]):
    kwargs = {} if ac is None else {"align_corners": ac}
    add_case(f"interpolate_{i}", "interpolate", {"size": list(size), "mode": mode, "alignCorners": bool(ac)},
             {"x": rnd(2, 3, 7, 6)}, lambda x, s=size, m=mode, kw=kwargs: F.interpolate(x, size=s, mode=m, **kw))

# RoIAlign.
feat = rnd(2, 3, 12, 14)
boxes = torch.tensor([[0, 1.3, 2.2, 30.5, 20.1], [1, 10.0, 4.0, 52.0, 40.0], [0, -4.0, -3.0, 8.0, 9.0], [1, 40.0, 30.0, 41.0, 30.5]])
for i, (aligned, ratio) in enumerate([(True, 2), (False, 2), (True, -1), (False, 0)]):
    add_case(f"roi_align_{i}", "roi_align", {"size": [5, 4], "scale": 0.25, "samplingRatio": ratio, "aligned": aligned},
             {"x": feat, "boxes": boxes},
             lambda x, boxes, a=aligned, r=ratio: torchvision.ops.roi_align(x, boxes, (5, 4), 0.25, r, a), grad=["x"])
from collections import OrderedDict
levels = OrderedDict([("0", rnd(1, 2, 32, 40)), ("1", rnd(1, 2, 16, 20)), ("2", rnd(1, 2, 8, 10)), ("3", rnd(1, 2, 4, 5))])
msboxes = torch.tensor([[2.0, 3.0, 20.0, 25.0], [10.0, 10.0, 120.0, 100.0], [0.0, 0.0, 127.0, 159.0], [30.0, 40.0, 90.0, 70.0]])
pooler = torchvision.ops.MultiScaleRoIAlign(["0", "1", "2", "3"], 3, 2)
def multiscale(l0, l1, l2, l3, boxes):
    return pooler(OrderedDict([("0", l0), ("1", l1), ("2", l2), ("3", l3)]), [boxes], [(128, 160)])
add_case("multiscale_roi_align_0", "multiscale_roi_align", {"size": [3, 3], "samplingRatio": 2, "scales": [0.25, 0.125, 0.0625, 0.03125]},
         {"l0": levels["0"], "l1": levels["1"], "l2": levels["2"], "l3": levels["3"], "boxes": msboxes}, multiscale,
         grad=["l0", "l1", "l2", "l3"])

os.makedirs(ROOT, exist_ok=True)
save_file({k: v.detach().clone().contiguous() for k, v in tensors.items()}, os.path.join(ROOT, "ops.safetensors"))
with open(os.path.join(ROOT, "ops.json"), "w") as f:
    json.dump({"generator": "Tools/make_engine_fixtures.py", "torch": torch.__version__, "cases": cases}, f, indent=1)
print(f"{len(cases)} cases, {len(tensors)} tensors")
