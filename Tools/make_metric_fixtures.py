#!/usr/bin/env python3
"""Writes explanation-metric fixtures: random heat maps, boxes and masks, and the metrics computed with NumPy by the
official evaluation code's definitions (eval_pointgame.py, eval_odi.py, eval_mask_IoU.py), written out here.

Usage: python3 Tools/make_metric_fixtures.py   (needs numpy, safetensors)
Writes Tests/ExplainTests/Fixtures/metrics.safetensors.
"""
import math
import os

import numpy as np
from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "ExplainTests", "Fixtures")


def box_region(box, h, w):
    m = np.zeros((h, w), bool)
    m[max(0, math.floor(box[1])):min(h, math.ceil(box[3])), max(0, math.floor(box[0])):min(w, math.ceil(box[2]))] = True
    return m


def main():
    rng = np.random.default_rng(3)
    out = {}
    for case in range(6):
        h, w = 37 + 3 * case, 53 - 2 * case
        yy, xx = np.mgrid[0:h, 0:w]
        cx, cy = rng.uniform(10, w - 10), rng.uniform(10, h - 10)
        heat = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * rng.uniform(3, 9) ** 2)) + rng.uniform(0, 0.2, (h, w))
        heat = ((heat - heat.min()) / max(heat.max() - heat.min(), np.finfo(np.float32).eps)).astype(np.float32)
        boxes = []
        for _ in range(3):
            x1, y1 = rng.uniform(0, w - 12), rng.uniform(0, h - 12)
            boxes.append([x1, y1, x1 + rng.uniform(6, 20), y1 + rng.uniform(6, 20)])
        boxes = np.array(boxes, np.float32)
        mask = (rng.uniform(0, 1, (h, w)) > 0.4) & box_region(boxes[0], h, w)
        py, px = np.argwhere(heat == heat.max())[0]
        b = boxes[0]
        point = float(b[0] < px < b[2] and b[1] < py < b[3])
        energy_box = (heat * box_region(b, h, w)).sum() / (heat.sum() + 1e-10)
        energy_mask = (heat * mask).sum() / (heat.sum() + 1e-10)
        bw, bh = b[2] - b[0], b[3] - b[1]
        compact = math.sqrt((heat * ((xx - px) ** 2 + (yy - py) ** 2)).sum() / (((bw ** 2 + bh ** 2) / 4) * heat.sum()))
        others = box_region(boxes[1], h, w) | box_region(boxes[2], h, w)
        odi = (heat * others).sum() / ((heat * (others | box_region(b, h, w))).sum() + 1e-10)
        vea = [float(((heat > t) & mask).sum() / max(((heat > t) | mask).sum(), 1)) for t in np.arange(1, 10) / 10]
        out.update({f"{case}.map": heat, f"{case}.boxes": boxes, f"{case}.mask": mask.astype(np.uint8),
                    f"{case}.metrics": np.array([point, energy_box, energy_mask, compact, odi] + vea, np.float64)})
    os.makedirs(OUT, exist_ok=True)
    save_file(out, os.path.join(OUT, "metrics.safetensors"))


if __name__ == "__main__":
    main()
