#!/usr/bin/env python3
"""Writes ODAM reference maps computed with torch.autograd on the small random-weight FCOS of the detector fixtures.

Usage: python3 Tools/make_explain_fixtures.py   (after Tools/make_detector_fixtures.py; needs torch, torchvision)
Tests/ExplainTests/Fixtures/odam_fcos_small.safetensors and .json: for predictions chosen on every FPN level (the
highest-scoring cell and class of the level, and one more), and each target (score, logit, x1, y1, x2, y2): the
gradient of the target with respect to the level's FPN map (one autograd.grad per prediction and target), the raw map
ReLU(Σ_c g_c·A_c) on the grid cropped to the unpadded input, and the normalized map (bilinear to the original size,
align_corners=False, min-max with float32 epsilon; every 4th pixel in each direction is stored). For the score
target also the Grad-CAM and Grad-CAM++ raw maps from the same gradient.
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_detector_fixtures as det  # noqa: E402

OUT = os.path.join(HERE, "..", "Tests", "ExplainTests", "Fixtures")
TARGETS = ["score", "logit", "x1", "y1", "x2", "y2"]


def main():
    torch.manual_seed(0)
    images = [det.load_image(n) for n in det.IMAGES]
    model = det.build("fcos", 18, 8, 64, 5, 64)
    model.load_state_dict(torch.load(os.path.join(det.SMALL_OUT, "fcos_small.pth")))
    model.eval()
    image = images[0]
    with torch.no_grad():
        batch, _ = model.transform([image])
        features = list(model.backbone(batch.tensors).values())
    input_h, input_w = batch.image_sizes[0]
    padded_h, padded_w = batch.tensors.shape[-2:]
    out, predictions = {}, []
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
        flat = score[0, :, :rows, :cols].reshape(-1)
        choices = [int(flat.argmax()), int(flat.numel() * 0.37)]
        for choice in choices:
            label, rest = divmod(choice, rows * cols)
            row, col = divmod(rest, cols)
            index = len(predictions)
            predictions.append({"level": level, "row": row, "column": col, "label": label})
            for target in TARGETS:
                y = {"score": score[0, label, row, col], "logit": cls[0, label, row, col], "x1": boxes[0, 0, row, col],
                     "y1": boxes[0, 1, row, col], "x2": boxes[0, 2, row, col], "y2": boxes[0, 3, row, col]}[target]
                (g,) = torch.autograd.grad(y, leaf, retain_graph=True)
                raw = F.relu((g * leaf.detach()).sum(dim=1))[0, :rows, :cols]
                resized = F.interpolate(raw[None, None], size=tuple(image.shape[-2:]), mode="bilinear", align_corners=False)[0, 0]
                normalized = (resized - resized.min()) / torch.clamp(resized.max() - resized.min(), min=torch.finfo(torch.float32).eps)
                out[f"{index}.{target}.raw"] = raw.contiguous()
                if target == "score":
                    # Baselines on the same gradient: Grad-CAM (spatial-mean weights) and Grad-CAM++ (pytorch-grad-cam's
                    # alpha, eps 1e-7), each ReLU(sum_c w_c A_c) on the cropped grid.
                    a, gg = leaf.detach()[0], g[0]
                    cam = F.relu((gg.mean(dim=(1, 2))[:, None, None] * a).sum(dim=0))[:rows, :cols]
                    g2, g3 = gg ** 2, gg ** 3
                    alpha = g2 / (2 * g2 + a.sum(dim=(1, 2))[:, None, None] * g3 + 1e-7)
                    alpha = torch.where(gg != 0, alpha, torch.zeros_like(alpha))
                    weights = (F.relu(gg) * alpha).sum(dim=(1, 2))
                    campp = F.relu((weights[:, None, None] * a).sum(dim=0))[:rows, :cols]
                    out[f"{index}.gradcam.raw"] = cam.contiguous()
                    out[f"{index}.gradcampp.raw"] = campp.contiguous()
                out[f"{index}.{target}.normalized"] = normalized[::4, ::4].contiguous()  # every 4th pixel keeps the fixture small
    os.makedirs(OUT, exist_ok=True)
    save_file(out, os.path.join(OUT, "odam_fcos_small.safetensors"))
    with open(os.path.join(OUT, "odam_fcos_small.json"), "w") as f:
        json.dump({"image": det.IMAGES[0], "model": "fcos_small", "targets": TARGETS, "predictions": predictions}, f, indent=1)
    print(len(predictions), "predictions")


if __name__ == "__main__":
    main()
