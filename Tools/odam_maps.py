#!/usr/bin/env python3
"""Rebuilds a heat map from an odam maps file (format odam-maps/2) at the image's resolution, with numpy and
safetensors only: the ten lines of `odam_map` and `resize` are all a reader needs (README, "Reading the maps").

usage: python3 Tools/odam_maps.py maps.safetensors RANK TARGET OUT.npy   (TARGET: score, logit, x1, y1, x2, y2)
"""
import json
import sys

import numpy as np
from safetensors import safe_open


def odam_map(path, rank, target):
    """The raw map of detection `rank` for `target`, [height, width] float32, as `odam explain --raw` (unnormalized)."""
    with safe_open(path, "np") as f:
        meta, crop = f.metadata(), f.get_tensor(f"d{rank}.{target}").astype(np.float32)
    detection = json.loads(meta["detections"])[rank]
    (row, column), scale = detection["maps"][target]["offset"], detection["maps"][target]["scale"]
    grid = np.zeros(detection["grid"], np.float32)
    grid[row : row + crop.shape[0], column : column + crop.shape[1]] = crop * scale
    return resize(grid, int(meta["height"]), int(meta["width"]))


def resize(a, height, width):
    """Bilinear with half-pixel centres: torch.nn.functional.interpolate(..., mode="bilinear", align_corners=False)."""
    y = np.maximum((np.arange(height) + 0.5) * a.shape[0] / height - 0.5, 0)
    x = np.maximum((np.arange(width) + 0.5) * a.shape[1] / width - 0.5, 0)
    y0, x0 = np.minimum(y.astype(int), a.shape[0] - 1), np.minimum(x.astype(int), a.shape[1] - 1)
    y1, x1 = np.minimum(y0 + 1, a.shape[0] - 1), np.minimum(x0 + 1, a.shape[1] - 1)
    wy, wx = (y - y0)[:, None], (x - x0)[None, :]
    top, bottom = a[y0][:, x0] * (1 - wx) + a[y0][:, x1] * wx, a[y1][:, x0] * (1 - wx) + a[y1][:, x1] * wx
    return np.ascontiguousarray(top * (1 - wy) + bottom * wy, dtype=np.float32)


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    np.save(sys.argv[4], odam_map(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
