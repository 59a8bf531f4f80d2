#!/usr/bin/env python3
"""Writes detector fixtures: torchvision detectors with random weights, their checkpoints and their outputs.

Usage: python3 Tools/make_detector_fixtures.py [--full DIR]   (needs torch, torchvision, safetensors, pillow)

For each model (FCOS, RetinaNet, Faster R-CNN) it builds torchvision's detector with random weights (seed 0;
batch-norm statistics calibrated on the images so activations stay in range; head weights drawn wider than
torchvision's init so scores do not tie), runs it on two of ../shared/data/sample-images at min_size 320 /
max_size 512 with a low score threshold, and saves:
  NAME.pth                  the checkpoint (torch.save of the state dict)
  NAME.safetensors          per image i: input.i (every 4th pixel of the normalized, resized, padded batch),
                            fpn.i.L (pyramid levels, image 0 only), head.i.KEY (torchvision's concatenated head
                            outputs, image 0 only), candidates.i.{boxes,scores,labels} (the pre-NMS list handed to
                            batched_nms), detections.i.{boxes,scores,labels}; Faster R-CNN also proposals.i
  NAME.json                 the model spec odam builds the same network from
Small configurations (ResNet-18 at an eighth of the width, 64 FPN channels, 5 classes) go to
Tests/DetectionTests/Fixtures. With --full DIR the ResNet-50-FPN models with torchvision's default widths and 91
classes go to DIR (about 130 MB each; not committed).
"""
import json
import os
import sys
from collections import OrderedDict
from functools import partial

import numpy as np
import torch
import torchvision
from PIL import Image
from safetensors.torch import save_file
from torchvision.models.detection import FCOS, FasterRCNN, RetinaNet
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead, FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.models.detection.rpn import RPNHead
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet
from torchvision.ops import boxes as box_ops
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLES = os.path.join(HERE, "..", "..", "shared", "data", "sample-images")
SMALL_OUT = os.path.join(HERE, "..", "Tests", "DetectionTests", "Fixtures")
IMAGES = ["chelsea.png", "coffee.png"]


class NarrowResNet(ResNet):
    """torchvision's ResNet with every width scaled by base/64 (same blocks, same state-dict names)."""

    def __init__(self, block, layers, base=64):
        super().__init__(block, layers, norm_layer=torch.nn.BatchNorm2d)
        self.inplanes = base
        self.conv1 = torch.nn.Conv2d(3, base, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(base)
        self.layer1 = self._make_layer(block, base, layers[0])
        self.layer2 = self._make_layer(block, base * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, base * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, base * 8, layers[3], stride=2)
        del self.fc


def backbone(depth, base, returned, fpn_channels, extra, norm_layer=None):
    block, layers = {18: (BasicBlock, [2, 2, 2, 2]), 50: (Bottleneck, [3, 4, 6, 3])}[depth]
    body = NarrowResNet(block, layers, base)
    expansion = block.expansion
    in_channels = [base * 2 ** (i - 1) * expansion for i in returned]
    return_layers = {f"layer{k}": str(v) for v, k in enumerate(returned)}
    return BackboneWithFPN(body, return_layers, in_channels, fpn_channels, extra_blocks=extra, norm_layer=norm_layer)


def build(kind, depth, base, fpn, classes, representation):
    kwargs = dict(min_size=320, max_size=512)
    if kind == "fcos":
        model = FCOS(backbone(depth, base, [2, 3, 4], fpn, LastLevelP6P7(fpn, fpn)), classes, score_thresh=0.05, **kwargs)
    elif kind == "retinanet":
        model = RetinaNet(backbone(depth, base, [2, 3, 4], fpn, LastLevelP6P7(fpn, fpn)), classes, score_thresh=0.05, **kwargs)
    elif kind == "retinanet_v2":
        # retinanet_resnet50_fpn_v2: P6 from C5, GroupNorm heads (Conv2dNormActivation without conv bias).
        c5 = base * 8 * {18: 1, 50: 4}[depth]
        assert c5 != fpn, "LastLevelP6P7 reads P5 when C5 has the FPN's width; pick another base width"
        head = RetinaNetHead(fpn, 9, classes, norm_layer=partial(torch.nn.GroupNorm, 32))
        model = RetinaNet(backbone(depth, base, [2, 3, 4], fpn, LastLevelP6P7(c5, fpn)), classes, head=head, score_thresh=0.05, **kwargs)
    elif kind == "fasterrcnn_v2":
        # fasterrcnn_resnet50_fpn_v2: batch-norm FPN blocks, two RPN convs, FastRCNNConvFCHead with batch-norm.
        bb = backbone(depth, base, [1, 2, 3, 4], fpn, LastLevelMaxPool(), norm_layer=torch.nn.BatchNorm2d)
        model = FasterRCNN(bb, None, rpn_head=RPNHead(fpn, 3, conv_depth=2),
                           box_head=FastRCNNConvFCHead((fpn, 7, 7), [fpn] * 4, [representation], norm_layer=torch.nn.BatchNorm2d),
                           box_predictor=FastRCNNPredictor(representation, classes), box_score_thresh=0.01, **kwargs)
    else:
        bb = backbone(depth, base, [1, 2, 3, 4], fpn, LastLevelMaxPool())
        model = FasterRCNN(bb, None, box_head=TwoMLPHead(fpn * 49, representation), box_predictor=FastRCNNPredictor(representation, classes),
                           box_score_thresh=0.01, **kwargs)
    return model


def load_image(name):
    array = np.asarray(Image.open(os.path.join(SAMPLES, name)).convert("RGB"))
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255


@torch.no_grad()
def randomize(model, images, kind):
    # Calibrate batch-norm statistics on the images (cumulative averages), then freeze them.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
            m.reset_running_stats()
    model.train()
    batch = model.transform(images)[0]
    model.backbone.body(batch.tensors)
    model.eval()
    # Wider head weights than torchvision's init, so that scores spread out and do not tie.
    gen = torch.Generator().manual_seed(1)
    norms = {n for n, m in model.named_modules() if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.GroupNorm))}
    for name, p in model.named_parameters():
        if kind.endswith("_v2") and name.rsplit(".", 1)[0] in norms:
            continue  # a v2 head's norm keeps its identity init
        if name.startswith("head.") or name.startswith("rpn.") or name.startswith("roi_heads."):
            fan_in = p[0].numel() if p.dim() > 1 else 1
            std = 0.6 / fan_in ** 0.5 if p.dim() > 1 else 0.3
            p.copy_(torch.randn(p.shape, generator=gen) * std)
        if kind.startswith("fasterrcnn") and name == "roi_heads.box_predictor.cls_score.bias":
            p.copy_(torch.randn(p.shape, generator=gen))


def run(kind, model, images, out):
    calls = []
    original = box_ops.batched_nms

    def recorder(boxes, scores, idxs, iou_threshold):
        calls.append((boxes.clone(), scores.clone(), idxs.clone()))
        return original(boxes, scores, idxs, iou_threshold)

    box_ops.batched_nms = recorder
    try:
        for i, image in enumerate(images):
            calls.clear()
            captured = {}
            hooks = [model.backbone.register_forward_hook(lambda m, inp, o: captured.__setitem__("fpn", o)),
                     model.transform.register_forward_hook(lambda m, inp, o: captured.__setitem__("input", o[0].tensors))]
            if kind.startswith("fasterrcnn"):
                hooks.append(model.rpn.register_forward_hook(lambda m, inp, o: captured.__setitem__("proposals", o[0][0])))
                hooks.append(model.roi_heads.box_predictor.register_forward_hook(lambda m, inp, o: captured.__setitem__("head", o)))
            else:
                hooks.append(model.head.register_forward_hook(lambda m, inp, o: captured.__setitem__("head", o)))
            with torch.no_grad():
                detections = model([image])[0]
            for h in hooks:
                h.remove()
            out[f"input.{i}"] = captured["input"][0, :, ::4, ::4].contiguous()
            if i == 0:
                for level, feature in enumerate(captured["fpn"].values()):
                    out[f"fpn.{i}.{level}"] = feature[0]
                head = captured["head"]
                if kind.startswith("fasterrcnn"):
                    out[f"head.{i}.class_logits"], out[f"head.{i}.box_regression"] = head
                else:
                    for key, value in head.items():
                        out[f"head.{i}.{key}"] = value[0]
            boxes, scores, labels = calls[-1]
            out[f"candidates.{i}.boxes"], out[f"candidates.{i}.scores"] = boxes, scores
            out[f"candidates.{i}.labels"] = labels.float()
            if kind.startswith("fasterrcnn"):
                out[f"proposals.{i}"] = captured["proposals"]
            out[f"detections.{i}.boxes"] = detections["boxes"]
            out[f"detections.{i}.scores"] = detections["scores"]
            out[f"detections.{i}.labels"] = detections["labels"].float()
            print(f"  {kind} image {i}: {len(scores)} candidates, {len(detections['scores'])} detections")
    finally:
        box_ops.batched_nms = original


def main():
    torch.manual_seed(0)
    images = [load_image(name) for name in IMAGES]
    configs = [("small", 18, 8, 64, 5, 64, SMALL_OUT)]
    if "--full" in sys.argv:
        configs.append(("r50", 50, 64, 256, 91, 1024, sys.argv[sys.argv.index("--full") + 1]))
    kinds = ["fcos", "retinanet", "fasterrcnn", "retinanet_v2", "fasterrcnn_v2"]
    if "--only" in sys.argv:
        kinds = sys.argv[sys.argv.index("--only") + 1].split(",")
    for tag, depth, base, fpn, classes, representation, directory in configs:
        os.makedirs(directory, exist_ok=True)
        for kind in kinds:
            torch.manual_seed(0)
            # The v2 RetinaNet needs C5 wider than the FPN (else torchvision's P6 reads P5): base 16 for the small one.
            width = 16 if kind == "retinanet_v2" and depth == 18 else base
            model = build(kind, depth, width, fpn, classes, representation)
            randomize(model, images, kind)
            name = f"{kind}_{tag}"
            torch.save(model.state_dict(), os.path.join(directory, name + ".pth"))
            out = {}
            run(kind, model, images, out)
            save_file({k: v.detach().float().contiguous().clone() for k, v in out.items()}, os.path.join(directory, name + ".safetensors"))
            spec = {"architecture": kind.removesuffix("_v2"), "backbone": f"resnet{depth}", "baseWidth": width, "fpnChannels": fpn, "classCount": classes,
                    "representationSize": representation, "minSize": 320, "maxSize": 512,
                    "scoreThreshold": 0.01 if kind.startswith("fasterrcnn") else 0.05, "images": IMAGES}
            if kind.endswith("_v2"):
                spec["version"] = 2
            with open(os.path.join(directory, name + ".json"), "w") as f:
                json.dump(spec, f, indent=1)


if __name__ == "__main__":
    main()
