#!/usr/bin/env python3
"""Training throughput of the default model's architecture, odam and PyTorch side by side in one run.

Usage: python3 Tools/bench_train_torch.py [--odam .build/release/odam] [--threads 2] [--iterations 10] [--batch 8] [--size 320]
       [--rounds 3]   (rounds alternate odam and PyTorch; the medians over rounds are compared)

The architecture both sides train: FCOS on a ResNet-18 body at width 16 with batch norm in training mode
(torchvision's ResNet with every width scaled by 16/64), an FPN with 64 channels and P6/P7, torchvision's FCOS head
(GroupNorm towers) and loss, 4 classes; SGD with momentum 0.9 and weight decay 1e-4; one batch of `--batch` images
of `--size`x`--size` prepared beforehand (random pixels and 5 boxes per image on the PyTorch side, synthetic scenes on
odam's; the loss's assignment is a negligible share of a step). PyTorch runs with the "tuned malloc" settings of
perf-anchors.md.
Both sides get the caller's environment. Run the whole command with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset
(`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ...`) where OpenBLAS recognizes the CPU and picks its AVX-512 kernels,
or with OPENBLAS_CORETYPE=SkylakeX where it does not (this machine's virtual CPU reads as Prescott, about 2x slower
GEMMs); odam prints the kernels it got.
"""
import argparse
import json
import os
import subprocess
import sys
import time


def torch_side(threads, iterations, batch, size):
    import torch
    from torchvision.models.detection import FCOS
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.resnet import BasicBlock, ResNet
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7

    torch.set_num_threads(threads)
    torch.manual_seed(0)

    class NarrowResNet(ResNet):
        def __init__(self, base=16):
            super().__init__(BasicBlock, [2, 2, 2, 2], norm_layer=torch.nn.BatchNorm2d)
            self.inplanes = base
            self.conv1 = torch.nn.Conv2d(3, base, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = torch.nn.BatchNorm2d(base)
            self.layer1 = self._make_layer(BasicBlock, base, 2)
            self.layer2 = self._make_layer(BasicBlock, base * 2, 2, stride=2)
            self.layer3 = self._make_layer(BasicBlock, base * 4, 2, stride=2)
            self.layer4 = self._make_layer(BasicBlock, base * 8, 2, stride=2)
            del self.fc

    backbone = BackboneWithFPN(NarrowResNet(), {"layer2": "0", "layer3": "1", "layer4": "2"}, [32, 64, 128], 64,
                               extra_blocks=LastLevelP6P7(64, 64))
    model = FCOS(backbone, 4, min_size=size, max_size=size)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(1)
    images = [torch.rand(3, size, size, generator=gen) for _ in range(batch)]
    targets = []
    for _ in range(batch):
        xy = torch.rand(5, 2, generator=gen) * size * 0.6
        wh = 20 + torch.rand(5, 2, generator=gen) * size * 0.35
        targets.append({"boxes": torch.cat([xy, xy + wh], 1), "labels": torch.randint(1, 4, (5,), generator=gen)})

    def step():
        losses = model(images, targets)
        total = sum(losses.values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()

    for _ in range(2):
        step()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--odam", default=".build/release/odam")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--torch-only", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.torch_only:
        print(json.dumps({"median": torch_side(args.threads, args.iterations, args.batch, args.size)}))
        return
    env = dict(os.environ)  # OpenBLAS settings as the caller gives them (see the docstring)
    tuned = dict(env, MALLOC_MMAP_MAX_="0", MALLOC_TRIM_THRESHOLD_="68719476736")
    # Rounds alternate odam and PyTorch, so that a slow spell of the machine falls on both; medians are reported.
    odam_rounds, torch_rounds = [], []
    for _ in range(args.rounds):
        odam_rounds.append(json.loads(subprocess.run(
            [args.odam, "bench", "train", "--json", "--threads", str(args.threads), "--iterations", str(args.iterations),
             "--batch-size", str(args.batch), "--size", str(args.size)], env=env, check=True, capture_output=True,
            text=True).stdout))
        torch_rounds.append(json.loads(subprocess.run(
            [sys.executable, __file__, "--torch-only", "--threads", str(args.threads), "--iterations", str(args.iterations),
             "--batch", str(args.batch), "--size", str(args.size)], env=tuned, check=True, capture_output=True,
            text=True).stdout)["median"])

    def median(values):
        values = sorted(values)
        return values[len(values) // 2]

    torch_seconds = median(torch_rounds)
    torch_rate = args.batch / torch_seconds
    print(f"{args.rounds} alternating rounds; PyTorch s/iteration per round: {', '.join(f'{t:.3f}' for t in torch_rounds)}")
    print(f"{'training':14}{'s/iteration':>13}{'images/s':>10}{'vs PyTorch FCOS':>17}   per round")
    print(f"{'PyTorch FCOS':14}{torch_seconds:13.3f}{torch_rate:10.1f}{1.0:17.2f}")
    for index, row in enumerate(odam_rounds[0]):
        seconds = [rounds[index]["secondsPerIteration"] for rounds in odam_rounds]
        name = "odam " + ("Odam-Train" if row["odamTrain"] else "FCOS")
        rate = args.batch / median(seconds)
        print(f"{name:14}{median(seconds):13.3f}{rate:10.1f}{rate / torch_rate:17.2f}   "
              + ", ".join(f"{s:.3f}" for s in seconds))


if __name__ == "__main__":
    main()
