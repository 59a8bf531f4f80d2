#!/usr/bin/env python3
"""Writes a small COCO annotation file with polygon, uncompressed-RLE and compressed-RLE masks, and the masks that
pycocotools decodes from it.

Usage: python3 Tools/make_coco_fixtures.py   (needs numpy, pycocotools, safetensors)
Tests/DetectionTests/Fixtures/coco_small.json and coco_masks.safetensors (annotation id -> uint8 [H, W]).
"""
import json
import os

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "DetectionTests", "Fixtures")


def main():
    rng = np.random.default_rng(5)
    h, w = 47, 61
    annotations = []
    blob = np.zeros((h, w), np.uint8)
    blob[10:30, 5:25] = 1
    blob[12:20, 30:50] = rng.integers(0, 2, (8, 20))
    compressed = mask_utils.encode(np.asfortranarray(blob))
    compressed["counts"] = compressed["counts"].decode("ascii")
    annotations.append({"id": 1, "image_id": 7, "category_id": 2, "bbox": [5, 10, 45, 20], "iscrowd": 0, "segmentation": compressed})
    raw = np.zeros((h, w), np.uint8)
    raw[3:9, 40:58] = 1
    flat = raw.flatten(order="F")
    counts, value, run = [], 0, 0
    for v in flat:
        if v != value:
            counts.append(run)
            value, run = v, 0
        run += 1
    counts.append(run)
    annotations.append({"id": 2, "image_id": 7, "category_id": 1, "bbox": [40, 3, 18, 6], "iscrowd": 1,
                        "segmentation": {"counts": counts, "size": [h, w]}})
    annotations.append({"id": 3, "image_id": 7, "category_id": 1, "bbox": [30.2, 25.5, 25.1, 18.4], "iscrowd": 0,
                        "segmentation": [[30.2, 25.5, 55.3, 27.0, 50.1, 43.9, 33.3, 40.2]]})
    data = {"images": [{"id": 7, "file_name": "scene.png", "width": w, "height": h}],
            "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "blob"}], "annotations": annotations}
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "coco_small.json")
    with open(path, "w") as f:
        json.dump(data, f)
    coco = COCO(path)
    # annToMask returns Fortran-ordered arrays; safetensors stores memory order, so make them C-contiguous.
    save_file({str(a["id"]): np.ascontiguousarray(coco.annToMask(a).astype(np.uint8)) for a in coco.loadAnns(coco.getAnnIds())},
              os.path.join(OUT, "coco_masks.safetensors"))


if __name__ == "__main__":
    main()
