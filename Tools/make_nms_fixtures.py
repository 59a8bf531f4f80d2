#!/usr/bin/env python3
"""Writes NMS fixtures: torchvision's nms/batched_nms on random box sets, and NumPy references of Odam-NMS and
Soft-NMS written out here.

Usage: python3 Tools/make_nms_fixtures.py   (needs torch, torchvision, numpy, safetensors)
Tests/DetectionTests/Fixtures/nms.safetensors and nms.json (the cases).
"""
import json
import os

import numpy as np
import torch
import torchvision
from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "DetectionTests", "Fixtures")


def random_boxes(rng, n, clusters):
    centres = rng.uniform(50, 950, size=(clusters, 2))
    pick = rng.integers(0, clusters, size=n)
    xy = centres[pick] + rng.normal(0, 12, size=(n, 2))
    wh = rng.uniform(20, 120, size=(n, 2))
    return np.concatenate([xy - wh / 2, xy + wh / 2], axis=1).astype(np.float32)


def iou(a, b):
    area = lambda x: (x[2] - x[0]) * (x[3] - x[1])
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = np.float32(w) * np.float32(h)
    return inter / (area(a) + area(b) - inter)


def odam_nms(boxes, scores, labels, maps, t_iou, t_low, t_high, limit):
    """Algorithm 1: per class, greedy by score; j is a duplicate of kept i if (IoU >= T_iou and corr > T_l) or
    (IoU < T_iou and corr > T_h), corr the dot product of L2-normalized maps."""
    h = maps / np.maximum(np.linalg.norm(maps, axis=1, keepdims=True), 1e-12)
    order = sorted(range(len(scores)), key=lambda k: (-scores[k], k))
    suppressed, keep = set(), []
    for rank, i in enumerate(order):
        if i in suppressed:
            continue
        keep.append(i)
        for j in order[rank + 1:]:
            if j in suppressed or labels[j] != labels[i]:
                continue
            o, c = iou(boxes[i], boxes[j]), float(h[i] @ h[j])
            if (o >= t_iou and c > t_low) or (o < t_iou and c > t_high):
                suppressed.add(j)
    return keep[:limit]


def soft_nms(boxes, scores, labels, decay, parameter, threshold):
    current = scores.astype(np.float64).copy()
    remaining = list(range(len(scores)))
    kept, kept_scores = [], []
    while remaining:
        best = min(remaining, key=lambda k: (-current[k], k))
        remaining.remove(best)
        if current[best] <= threshold:
            continue
        kept.append(best)
        kept_scores.append(current[best])
        for j in remaining:
            if labels[j] != labels[best]:
                continue
            o = float(iou(boxes[best], boxes[j]))
            if decay == "linear":
                if o > parameter:
                    current[j] *= 1 - o
            else:
                current[j] *= np.exp(-o * o / parameter)
    return kept, kept_scores


def main():
    rng = np.random.default_rng(0)
    tensors, cases = {}, []
    for n, clusters in [(50, 5), (300, 20), (3000, 80), (5000, 60)]:
        boxes = random_boxes(rng, n, clusters)
        scores = rng.uniform(0, 1, size=n).astype(np.float32)
        labels = rng.integers(0, 5, size=n)
        for threshold in [0.5, 0.7]:
            name = f"nms_{n}_{threshold}"
            keep = torchvision.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), threshold).numpy()
            batched = torchvision.ops.batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(labels), threshold).numpy()
            tensors.update({f"{name}.boxes": boxes, f"{name}.scores": scores, f"{name}.labels": labels.astype(np.int64),
                            f"{name}.keep": keep.astype(np.int64), f"{name}.batched": batched.astype(np.int64)})
            cases.append({"name": name, "kind": "nms", "threshold": threshold})
    # Odam-NMS on maps with planted duplicates: every third candidate copies an earlier one's map with noise.
    for n in [60, 400]:
        boxes = random_boxes(rng, n, max(3, n // 20))
        scores = rng.uniform(0, 1, size=n).astype(np.float32)
        labels = rng.integers(0, 2, size=n)
        maps = rng.uniform(0, 1, size=(n, 50)).astype(np.float32) ** 4
        for k in range(2, n, 3):
            maps[k] = maps[k - 2] + rng.uniform(0, 0.05, size=50).astype(np.float32)
        for t in [(0.5, 0.2, 0.8), (0.6, 0.3, 0.7)]:
            name = f"odam_{n}_{t[0]}"
            keep = odam_nms(boxes, scores, labels, maps, *t, 500)
            tensors.update({f"{name}.boxes": boxes, f"{name}.scores": scores, f"{name}.labels": labels.astype(np.int64),
                            f"{name}.maps": maps, f"{name}.keep": np.array(keep, dtype=np.int64)})
            cases.append({"name": name, "kind": "odam", "iou": t[0], "low": t[1], "high": t[2]})
    for decay, parameter in [("gaussian", 0.5), ("linear", 0.3)]:
        n = 200
        boxes = random_boxes(rng, n, 10)
        scores = rng.uniform(0, 1, size=n).astype(np.float32)
        labels = rng.integers(0, 3, size=n)
        kept, kept_scores = soft_nms(boxes, scores, labels, decay, parameter, 0.05)
        name = f"softnms_{decay}"
        tensors.update({f"{name}.boxes": boxes, f"{name}.scores": scores, f"{name}.labels": labels.astype(np.int64),
                        f"{name}.keep": np.array(kept, dtype=np.int64), f"{name}.kept_scores": np.array(kept_scores, dtype=np.float32)})
        cases.append({"name": name, "kind": "softnms", "decay": decay, "parameter": parameter, "threshold": 0.05})
    os.makedirs(OUT, exist_ok=True)
    save_file(tensors, os.path.join(OUT, "nms.safetensors"))
    with open(os.path.join(OUT, "nms.json"), "w") as f:
        json.dump(cases, f, indent=1)
    print(len(cases), "cases")


if __name__ == "__main__":
    main()
