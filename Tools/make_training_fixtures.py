#!/usr/bin/env python3
"""Writes the FCOS-loss fixture: torchvision's `FCOS.compute_loss` on random head outputs of a two-image batch, with
its gradients with respect to those outputs.

Usage: python3 Tools/make_training_fixtures.py   (needs torch, torchvision, safetensors)
Tests/TrainingTests/Fixtures/fcos_loss.safetensors and fcos_loss.json: per level the class logits [B, K, H, W],
box regression [B, 4, H, W] (after ReLU) and centerness [B, 1, H, W], the anchors of each level, the targets, the
three loss terms and the gradient of their sum with respect to every head output.
"""
import json
import os

import torch
import torchvision
from safetensors.torch import save_file
from torchvision.models.detection import FCOS
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "TrainingTests", "Fixtures")


def main():
    torch.manual_seed(0)
    classes = 4
    backbone = resnet_fpn_backbone(backbone_name="resnet18", weights=None, trainable_layers=5, returned_layers=[2, 3, 4],
                                   extra_blocks=LastLevelP6P7(256, 256))
    model = FCOS(backbone, classes, min_size=320, max_size=320)
    batch, height, width = 2, 320, 320
    images = torch.zeros(batch, 3, height, width)
    from torchvision.models.detection.image_list import ImageList
    image_list = ImageList(images, [(height, width)] * batch)
    sizes = [(40, 40), (20, 20), (10, 10), (5, 5), (3, 3)]
    features = [torch.zeros(batch, 1, h, w) for h, w in sizes]
    anchors = model.anchor_generator(image_list, features)
    num_anchors_per_level = [h * w for h, w in sizes]
    # Head outputs as torchvision's compute_loss takes them: [B, HWA, K], [B, HWA, 4], [B, HWA, 1], levels concatenated.
    gen = torch.Generator().manual_seed(3)
    per_level = []
    for h, w in sizes:
        per_level.append((torch.randn(batch, classes, h, w, generator=gen) - 2,
                          torch.relu(torch.randn(batch, 4, h, w, generator=gen) * 0.8 + 1.5),
                          torch.randn(batch, 1, h, w, generator=gen)))
    leaves = [(c.clone().requires_grad_(True), r.clone().requires_grad_(True), q.clone().requires_grad_(True)) for c, r, q in per_level]

    def flat(t):
        b, c, h, w = t.shape
        return t.permute(0, 2, 3, 1).reshape(b, h * w, c)

    head_outputs = {"cls_logits": torch.cat([flat(c) for c, _, _ in leaves], 1),
                    "bbox_regression": torch.cat([flat(r) for _, r, _ in leaves], 1),
                    "bbox_ctrness": torch.cat([flat(q) for _, _, q in leaves], 1)}
    targets = [
        {"boxes": torch.tensor([[30.0, 40.0, 90.0, 200.0], [70.0, 50.0, 130.0, 210.0], [200.0, 100.0, 310.0, 180.0],
                                [10.0, 250.0, 40.0, 300.0]]),
         "labels": torch.tensor([1, 1, 2, 3])},
        {"boxes": torch.tensor([[5.0, 5.0, 300.0, 310.0], [150.0, 150.0, 170.0, 175.0]]), "labels": torch.tensor([2, 1])},
    ]
    losses = model.compute_loss(targets, head_outputs, anchors, num_anchors_per_level)
    total = sum(losses.values())
    grads = torch.autograd.grad(total, [t for triple in leaves for t in triple])
    out = {}
    for level, (c, r, q) in enumerate(per_level):
        out[f"logits.{level}"], out[f"boxes.{level}"], out[f"centerness.{level}"] = c, r, q
        out[f"grad.logits.{level}"], out[f"grad.boxes.{level}"], out[f"grad.centerness.{level}"] = grads[3 * level:3 * level + 3]
        start = sum(num_anchors_per_level[:level])
        out[f"anchors.{level}"] = anchors[0][start:start + num_anchors_per_level[level]]
    os.makedirs(OUT, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in out.items()}, os.path.join(OUT, "fcos_loss.safetensors"))
    with open(os.path.join(OUT, "fcos_loss.json"), "w") as f:
        json.dump({"targets": [{"boxes": t["boxes"].tolist(), "labels": t["labels"].tolist()} for t in targets],
                   "losses": {k: float(v) for k, v in losses.items()}}, f, indent=1)
    print({k: float(v) for k, v in losses.items()})
    quality_fixture(per_level, anchors[0], num_anchors_per_level, targets)


def quality_assignment(locations, strides, logits, pred_boxes, gt_boxes, gt_labels, radius=1.5, alpha=0.8, dynk=5):
    """The official ODAM code's assignment (fcos_target_in_r with quality_assign, then assign_with_quality), written
    out in torch: returns each location's object index or -1."""
    m, n = locations.shape[0], gt_boxes.shape[0]
    x, y = locations[:, 0:1], locations[:, 1:2]
    inside = torch.stack([x - gt_boxes[:, 0], y - gt_boxes[:, 1], gt_boxes[:, 2] - x, gt_boxes[:, 3] - y], 2).min(2)[0] > 0
    s = strides.view(m, 1)
    centers = (gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2
    snapped_x = (centers[:, 0].view(1, n) / s).int().float() * s + s / 2
    snapped_y = (centers[:, 1].view(1, n) / s).int().float() * s + s / 2
    near = ((x - snapped_x).abs() <= s * radius) & ((y - snapped_y).abs() <= s * radius)
    candidates = inside & near
    valid = candidates.sum(0) > 0
    result = torch.full((m,), -1, dtype=torch.int64)
    if valid.sum() == 0:
        return result
    objects = torch.nonzero(valid).view(-1)
    candidates = candidates[:, objects]
    probability = logits.sigmoid()[:, gt_labels[objects]]
    ious = torchvision.ops.box_iou(pred_boxes, gt_boxes[objects])
    quality = probability ** (1 - alpha) * ious ** alpha
    quality[~candidates] = -1
    k = ious.topk(dynk, dim=0)[0].sum(0).abs().clamp(min=1.0)
    best, column = quality.max(1)
    kept = torch.zeros_like(quality)
    kept[torch.arange(m), column] = best
    threshold = torch.sort(kept, dim=0, descending=True)[0][k.ceil().long(), torch.arange(len(objects))]
    positive = (kept >= threshold) & (kept > 0)
    for i, j in torch.nonzero(positive).tolist():
        result[i] = objects[j]
    return result


def quality_fixture(per_level, anchors, num_anchors_per_level, targets):
    """quality_assignment.safetensors: each image's assignment of the fcos_loss fixture's outputs and targets."""
    centers = (anchors[:, :2] + anchors[:, 2:]) / 2
    strides = anchors[:, 2] - anchors[:, 0]
    out = {}
    for image, target in enumerate(targets):
        logits = torch.cat([c[image].permute(1, 2, 0).reshape(-1, c.shape[1]) for c, _, _ in per_level])
        distances = torch.cat([r[image].permute(1, 2, 0).reshape(-1, 4) for _, r, _ in per_level]) * strides.view(-1, 1)
        pred = torch.stack([centers[:, 0] - distances[:, 0], centers[:, 1] - distances[:, 1], centers[:, 0] + distances[:, 2],
                            centers[:, 1] + distances[:, 3]], 1)
        assigned = quality_assignment(centers, strides, logits, pred, target["boxes"], target["labels"])
        out[f"assigned.{image}"] = assigned
        print(f"image {image}: {(assigned >= 0).sum().item()} positives by quality")
    save_file(out, os.path.join(OUT, "quality_assignment.safetensors"))


if __name__ == "__main__":
    main()
