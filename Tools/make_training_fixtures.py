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


if __name__ == "__main__":
    main()
