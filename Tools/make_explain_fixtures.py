#!/usr/bin/env python3
"""Writes ODAM reference maps computed with torch.autograd on the small random-weight FCOS of the detector fixtures.

Usage: python3 Tools/make_explain_fixtures.py   (after Tools/make_detector_fixtures.py; needs torch, torchvision)

Also odam_retinanet_small.* and odam_fasterrcnn_small.*: the same raw and normalized maps for RetinaNet (score
sigma(logit), logit, and the decoded box's -x1, -y1, x2, y2 after clipping, from the anchor and deltas) and for
Faster R-CNN (softmax probability, logit and decoded box edges of chosen RoIs, differentiated with respect to the FPN
level the RoI is pooled from, through RoIAlign and the box head).
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


def maps_entry(out, key, g, leaf, rows, cols, image_shape):
    raw = F.relu((g * leaf.detach()).sum(dim=1))[0, :rows, :cols]
    resized = F.interpolate(raw[None, None], size=image_shape, mode="bilinear", align_corners=False)[0, 0]
    normalized = (resized - resized.min()) / torch.clamp(resized.max() - resized.min(), min=torch.finfo(torch.float32).eps)
    out[f"{key}.raw"] = raw.contiguous()
    out[f"{key}.normalized"] = normalized[::4, ::4].contiguous()


def edge_targets(box):
    return {"x1": -box[0], "y1": -box[1], "x2": box[2], "y2": box[3]}


def retinanet(kind="retinanet"):
    """RetinaNet's maps; kind "retinanet_v2" for the v2 model (GroupNorm heads, P6 from C5)."""
    from torchvision.ops import boxes as box_ops
    torch.manual_seed(0)
    image = det.load_image(det.IMAGES[0])
    model = det.build(kind, 18, 16 if kind == "retinanet_v2" else 8, 64, 5, 64)
    model.load_state_dict(torch.load(os.path.join(det.SMALL_OUT, f"{kind}_small.pth")))
    model.eval()
    with torch.no_grad():
        batch, _ = model.transform([image])
        features = list(model.backbone(batch.tensors).values())
        anchors = model.anchor_generator(batch, features)[0]
    input_h, input_w = batch.image_sizes[0]
    padded_h, padded_w = batch.tensors.shape[-2:]
    per_cell = model.anchor_generator.num_anchors_per_location()[0]
    head = model.head
    out, predictions, offset = {}, [], 0
    for level, feature in enumerate(features):
        leaf = feature.detach().clone().requires_grad_(True)
        cls = head.classification_head.cls_logits(head.classification_head.conv(leaf))
        reg = head.regression_head.bbox_reg(head.regression_head.conv(leaf))
        _, channels, h, w = cls.shape
        classes = channels // per_cell
        rows, cols = math.ceil(input_h / (padded_h / h)), math.ceil(input_w / (padded_w / w))
        scores = torch.sigmoid(cls).reshape(per_cell, classes, h, w)[:, :, :rows, :cols].reshape(-1)
        for choice in [int(scores.argmax()), int(scores.numel() * 0.37)]:
            a, rest = divmod(choice, classes * rows * cols)
            label, rest = divmod(rest, rows * cols)
            row, col = divmod(rest, cols)
            index = len(predictions)
            predictions.append({"level": level, "row": row, "column": col, "label": label, "anchor": a})
            deltas = reg[0, a * 4:(a + 1) * 4, row, col]
            anchor = anchors[offset + (row * w + col) * per_cell + a]
            box = box_ops.clip_boxes_to_image(model.box_coder.decode_single(deltas[None], anchor[None]), (input_h, input_w))[0]
            logit = cls[0, a * classes + label, row, col]
            values = {"score": torch.sigmoid(logit), "logit": logit, **edge_targets(box)}
            for target in TARGETS:
                (g,) = torch.autograd.grad(values[target], leaf, retain_graph=True)
                maps_entry(out, f"{index}.{target}", g, leaf, rows, cols, tuple(image.shape[-2:]))
        offset += h * w * per_cell
    save_file(out, os.path.join(OUT, f"odam_{kind}_small.safetensors"))
    with open(os.path.join(OUT, f"odam_{kind}_small.json"), "w") as f:
        json.dump({"image": det.IMAGES[0], "model": f"{kind}_small", "targets": TARGETS, "predictions": predictions}, f, indent=1)
    print(len(predictions), "RetinaNet predictions")


def fasterrcnn_forward(image, kind="fasterrcnn"):
    """The small random-weight Faster R-CNN on one image: the model, the batch, FPN features and the proposals."""
    model = det.build(kind, 18, 8, 64, 5, 64)
    model.load_state_dict(torch.load(os.path.join(det.SMALL_OUT, f"{kind}_small.pth")))
    model.eval()
    with torch.no_grad():
        batch, _ = model.transform([image])
        features = model.backbone(batch.tensors)
        proposals = model.rpn(batch, features)[0][0]
    return model, batch, features, proposals


def fasterrcnn(kind="fasterrcnn"):
    """Faster R-CNN's maps; kind "fasterrcnn_v2" for the v2 model (batch-norm FPN, conv box head)."""
    from torchvision.ops import boxes as box_ops
    torch.manual_seed(0)
    image = det.load_image(det.IMAGES[0])
    model, batch, features, proposals = fasterrcnn_forward(image, kind)
    input_h, input_w = batch.image_sizes[0]
    padded_h, padded_w = batch.tensors.shape[-2:]
    names = ["0", "1", "2", "3"]
    # torchvision's level mapper: k = floor(4 + log2(sqrt(area) / 224) + 1e-6), clamped to P2..P5.
    areas = (proposals[:, 2] - proposals[:, 0]) * (proposals[:, 3] - proposals[:, 1])
    levels = torch.clamp(torch.floor(4 + torch.log2(torch.sqrt(areas) / 224) + 1e-6), 2, 5).long() - 2
    chosen = []
    for level in range(4):
        members = torch.nonzero(levels == level).flatten().tolist()
        chosen += members[:2]
    chosen = chosen[:8]
    leaves = {n: features[n].detach().clone().requires_grad_(True) for n in names}
    rois = proposals[chosen]
    pooled = model.roi_heads.box_roi_pool({**leaves, "pool": features["pool"]}, [rois], batch.image_sizes)
    logits, regression = model.roi_heads.box_predictor(model.roi_heads.box_head(pooled))
    probabilities = F.softmax(logits, dim=-1)
    out, predictions = {}, []
    for i, roi in enumerate(chosen):
        level = int(levels[roi])
        label = int(probabilities[i, 1:].argmax()) + 1
        predictions.append({"level": level, "roi": i, "label": label, "proposal": rois[i].tolist()})
        box = model.roi_heads.box_coder.decode_single(regression[i, label * 4:(label + 1) * 4][None], rois[i][None])
        box = box_ops.clip_boxes_to_image(box, (input_h, input_w))[0]
        values = {"score": probabilities[i, label], "logit": logits[i, label], **edge_targets(box)}
        leaf = leaves[names[level]]
        h, w = leaf.shape[-2:]
        rows, cols = math.ceil(input_h / (padded_h / h)), math.ceil(input_w / (padded_w / w))
        for target in TARGETS:
            (g,) = torch.autograd.grad(values[target], leaf, retain_graph=True)
            maps_entry(out, f"{i}.{target}", g, leaf, rows, cols, tuple(image.shape[-2:]))
    save_file(out, os.path.join(OUT, f"odam_{kind}_small.safetensors"))
    with open(os.path.join(OUT, f"odam_{kind}_small.json"), "w") as f:
        json.dump({"image": det.IMAGES[0], "model": f"{kind}_small", "targets": TARGETS, "predictions": predictions}, f, indent=1)
    print(len(predictions), "Faster R-CNN predictions")


def roi_align_inv(roi_map, box, scale, h, w):
    """The official projection of a PxP RoI map into the level grid (ODAM model/rcnn_odamTrain/network.py,
    roi_align_inv, as odam-official-code.md section 2.2 describes it): cells p in [floor(x1 s), ceil(x2 s)], clamped
    to the map, read the map bilinearly at u = (p - x1 s) / (w s) * (P - 1); zero where floor(u) or ceil(u) leaves
    [0, P - 1]."""
    side = roi_map.shape[0]
    x1, y1, x2, y2 = [float(v) * scale for v in box]
    grid = torch.zeros(h, w)
    for y in range(max(math.floor(y1), 0), min(math.ceil(y2), h - 1) + 1):
        v = (y - y1) / max(y2 - y1, 1e-6) * (side - 1)
        if math.floor(v) < 0 or math.ceil(v) > side - 1:
            continue
        v0, v1 = math.floor(v), math.ceil(v)
        for x in range(max(math.floor(x1), 0), min(math.ceil(x2), w - 1) + 1):
            u = (x - x1) / max(x2 - x1, 1e-6) * (side - 1)
            if math.floor(u) < 0 or math.ceil(u) > side - 1:
                continue
            u0, u1 = math.floor(u), math.ceil(u)
            fu, fv = u - u0, v - v0
            top = roi_map[v0, u0] * (1 - fu) + roi_map[v0, u1] * fu
            bottom = roi_map[v1, u0] * (1 - fu) + roi_map[v1, u1] * fu
            grid[y, x] = top * (1 - fv) + bottom * fv
    return grid


def feature_sources():
    """FCOS maps on backbone stage C4 (through the FPN and head) and Faster R-CNN maps on RoI features projected
    back into the proposal, for the score and x1 targets."""
    from torchvision.ops import boxes as box_ops
    torch.manual_seed(0)
    image = det.load_image(det.IMAGES[0])
    out, manifest = {}, {"image": det.IMAGES[0], "fcos": [], "fasterrcnn": []}
    model = det.build("fcos", 18, 8, 64, 5, 64)
    model.load_state_dict(torch.load(os.path.join(det.SMALL_OUT, "fcos_small.pth")))
    model.eval()
    with torch.no_grad():
        batch, _ = model.transform([image])
        body = model.backbone.body(batch.tensors)
    input_h, input_w = batch.image_sizes[0]
    padded_h, padded_w = batch.tensors.shape[-2:]
    leaf = body["1"].detach().clone().requires_grad_(True)
    pyramid = list(model.backbone.fpn({"0": body["0"].detach(), "1": leaf, "2": body["2"].detach()}).values())
    head = model.head
    h, w = leaf.shape[-2:]
    rows, cols = math.ceil(input_h / (padded_h / h)), math.ceil(input_w / (padded_w / w))
    # P5 and above do not depend on C4 (P6 is made from P5).
    for index, level in enumerate([0, 1]):
        cls = head.classification_head.cls_logits(head.classification_head.conv(pyramid[level]))
        reg_features = head.regression_head.conv(pyramid[level])
        boxes = F.relu(head.regression_head.bbox_reg(reg_features))
        ctr = head.regression_head.bbox_ctrness(reg_features)
        score = torch.sqrt(torch.sigmoid(cls) * torch.sigmoid(ctr))
        lh, lw = cls.shape[-2:]
        lrows, lcols = math.ceil(input_h / (padded_h / lh)), math.ceil(input_w / (padded_w / lw))
        flat = score[0, :, :lrows, :lcols].reshape(-1)
        label, rest = divmod(int(flat.argmax()), lrows * lcols)
        row, col = divmod(rest, lcols)
        manifest["fcos"].append({"level": level, "row": row, "column": col, "label": label})
        for target, y in [("score", score[0, label, row, col]), ("x1", boxes[0, 0, row, col])]:
            (g,) = torch.autograd.grad(y, leaf, retain_graph=True)
            out[f"fcos.{index}.{target}.raw"] = F.relu((g * leaf.detach()).sum(dim=1))[0, :rows, :cols].contiguous()

    model, batch, features, proposals = fasterrcnn_forward(image)
    input_h, input_w = batch.image_sizes[0]
    padded_h, padded_w = batch.tensors.shape[-2:]
    rois = proposals[:3]
    areas = (rois[:, 2] - rois[:, 0]) * (rois[:, 3] - rois[:, 1])
    levels = (torch.clamp(torch.floor(4 + torch.log2(torch.sqrt(areas) / 224) + 1e-6), 2, 5).long() - 2).tolist()
    pooled = model.roi_heads.box_roi_pool(features, [rois], batch.image_sizes).detach().requires_grad_(True)
    logits, regression = model.roi_heads.box_predictor(model.roi_heads.box_head(pooled))
    probabilities = F.softmax(logits, dim=-1)
    for i in range(len(rois)):
        label = int(probabilities[i, 1:].argmax()) + 1
        level = levels[i]
        feature = features[str(level)]
        h, w = feature.shape[-2:]
        scale = 2.0 ** round(math.log2(h / input_h))  # as MultiScaleRoIAlign infers it
        rows, cols = math.ceil(input_h / (padded_h / h)), math.ceil(input_w / (padded_w / w))
        manifest["fasterrcnn"].append({"level": level, "roi": i, "label": label, "proposal": rois[i].tolist()})
        box = box_ops.clip_boxes_to_image(
            model.roi_heads.box_coder.decode_single(regression[i, label * 4:(label + 1) * 4][None], rois[i][None]), (input_h, input_w))[0]
        for target, y in [("score", probabilities[i, label]), ("x1", -box[0])]:
            (g,) = torch.autograd.grad(y, pooled, retain_graph=True)
            roi_map = F.relu((g[i] * pooled.detach()[i]).sum(dim=0))
            out[f"fasterrcnn.{i}.{target}.raw"] = roi_align_inv(roi_map, rois[i].tolist(), scale, h, w)[:rows, :cols].contiguous()
    save_file(out, os.path.join(OUT, "odam_feature_sources.safetensors"))
    with open(os.path.join(OUT, "odam_feature_sources.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print("feature-source fixtures written")


if __name__ == "__main__":
    if "--v2" in sys.argv:
        retinanet("retinanet_v2")
        fasterrcnn("fasterrcnn_v2")
        sys.exit(0)
    if "--only-two" not in sys.argv and "--feature-sources" not in sys.argv:
        main()
    if "--feature-sources" not in sys.argv:
        retinanet()
        fasterrcnn()
    feature_sources()
