#!/usr/bin/env python3
"""Writes the runner's exact-map goldens: ODAM maps of the shipped models' predictions by torch.autograd through the
real (unfrozen) network, on synthetic 320x320 crowd scenes.

Usage: python3 Tools/make_exact_map_fixtures.py SCENE.png [SCENE.png ...]
  (scenes from `odam synth --out DIR --count 10 --seed 7373`, DIR/val/images/*.png; they are copied into the fixtures)

Tests/ExplainTests/Fixtures/exact_maps_{model}.safetensors and .json, for each shipped model (the FCOS trained
without and with Odam-Train) and scene: per FPN level the predictions whose score sqrt(sigmoid(cls)*sigmoid(ctr))
exceeds 0.3 (the runner's candidates, at most 40 per level by score), and at least the 6 best of the level, so that
every level counts. For each: the class-logit map (what Odam-NMS compares) as the raw map ReLU(sum_c g_c*A_c) on the
level grid cropped to the unpadded input, and the same resized bilinearly (align_corners=False) to the candidate grid
(H_in//16, W_in//16) and L2-normalized; for the 4 best of each level also the score and l, t, r, b (x1, y1, x2, y2)
maps, the maps the runner stores. One torch.autograd.grad per prediction and target, GroupNorm statistics included.
"""
import json
import math
import os
import shutil
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_detector_fixtures as det  # noqa: E402

MODELS = os.path.join(HERE, "..", "Sources", "DefaultModel", "Models")
OUT = os.path.join(HERE, "..", "Tests", "ExplainTests", "Fixtures")
FINAL_TARGETS = ["score", "x1", "y1", "x2", "y2"]


def shipped(name):
    spec = json.load(open(os.path.join(MODELS, name + ".json")))
    model = det.build("fcos", 18, spec["baseWidth"], spec["fpnChannels"], spec["classCount"], spec["representationSize"])
    model.transform.min_size = (spec["minSize"],)
    model.transform.max_size = spec["maxSize"]
    state = load_file(os.path.join(MODELS, name + ".safetensors"))
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all("num_batches_tracked" in k for k in missing), (missing, unexpected)
    return model.eval()


def main():
    scenes = sys.argv[1:]
    assert scenes, __doc__
    os.makedirs(OUT, exist_ok=True)
    names = []
    for index, path in enumerate(scenes):
        name = f"exact_maps_scene{index}.png"
        shutil.copyfile(path, os.path.join(OUT, name))
        names.append(name)
    for model_name in ["fcos_synth_baseline", "fcos_synth_odamtrain"]:
        model = shipped(model_name)
        out, manifest = {}, {"model": model_name, "scenes": []}
        for scene, name in enumerate(names):
            array = np.asarray(Image.open(os.path.join(OUT, name)).convert("RGB"))
            image = torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255
            with torch.no_grad():
                batch, _ = model.transform([image])
                features = list(model.backbone(batch.tensors).values())
            input_h, input_w = batch.image_sizes[0]
            padded_h, padded_w = batch.tensors.shape[-2:]
            grid = (max(input_h // 16, 1), max(input_w // 16, 1))
            predictions = []
            for level, feature in enumerate(features):
                leaf = feature.detach().clone().requires_grad_(True)
                head = model.head
                cls = head.classification_head.cls_logits(head.classification_head.conv(leaf))
                reg_features = head.regression_head.conv(leaf)
                boxes = F.relu(head.regression_head.bbox_reg(reg_features))
                ctr = head.regression_head.bbox_ctrness(reg_features)
                score = torch.sqrt(torch.sigmoid(cls) * torch.sigmoid(ctr))
                _, classes, h, w = cls.shape
                rows, cols = math.ceil(input_h / (padded_h / h)), math.ceil(input_w / (padded_w / w))
                flat = score[0, :, :rows, :cols].reshape(-1).detach()
                order = torch.argsort(flat, descending=True, stable=True).tolist()
                chosen = [i for i in order if flat[i] > 0.3][:40]
                chosen += [i for i in order[:6] if i not in chosen]
                for rank, choice in enumerate(chosen):
                    label, rest = divmod(choice, rows * cols)
                    row, col = divmod(rest, cols)
                    index = len(predictions)
                    targets = ["logit"] + (FINAL_TARGETS if rank < 4 else [])
                    predictions.append({"level": level, "row": row, "column": col, "label": label, "score": float(flat[choice]),
                                        "targets": targets})
                    values = {"score": score[0, label, row, col], "logit": cls[0, label, row, col], "x1": boxes[0, 0, row, col],
                              "y1": boxes[0, 1, row, col], "x2": boxes[0, 2, row, col], "y2": boxes[0, 3, row, col]}
                    for target in targets:
                        (g,) = torch.autograd.grad(values[target], leaf, retain_graph=True)
                        raw = F.relu((g * leaf.detach()).sum(dim=1))[0, :rows, :cols]
                        out[f"{scene}.{index}.{target}.raw"] = raw.contiguous()
                        if target == "logit":
                            resized = F.interpolate(raw[None, None], size=grid, mode="bilinear", align_corners=False)[0, 0]
                            out[f"{scene}.{index}.logit.candidate"] = F.normalize(resized.reshape(-1), dim=0).reshape(grid).contiguous()
            manifest["scenes"].append({"image": name, "grid": list(grid), "predictions": predictions})
            per_level = [sum(p["level"] == l for p in predictions) for l in range(len(features))]
            print(model_name, name, "predictions per level", per_level)
        save_file(out, os.path.join(OUT, f"exact_maps_{model_name}.safetensors"))
        with open(os.path.join(OUT, f"exact_maps_{model_name}.json"), "w") as f:
            json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
