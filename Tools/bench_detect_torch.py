#!/usr/bin/env python3
"""Times `odam bench detect` and torchvision's detectors in one run, and prints the ratios.

Usage: python3 Tools/bench_detect_torch.py [--odam .build/release/odam] [--threads 2] [--runs 5]
         [--models fcos_resnet50_fpn,...] [--sizes 800x1216,512x512]
As perf-anchors.md: random weights (weights=None, weights_backbone=None), eval mode, torch.inference_mode,
min_size/max_size set to the image's sides so the network runs at exactly HxW, PyTorch with the "tuned malloc"
settings (MALLOC_MMAP_MAX_=0, MALLOC_TRIM_THRESHOLD_=64 GiB).
Both sides get the caller's environment. Run the whole command with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset
(`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ...`) where OpenBLAS recognizes the CPU and picks its AVX-512 kernels,
or with OPENBLAS_CORETYPE=SkylakeX where it does not (this machine's virtual CPU reads as Prescott, about 2x slower
GEMMs); odam prints the kernels it got.
Peak memory: the peak RSS of a fresh process per model and size.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time


def torch_one(model_name, height, width, threads, runs):
    import torch
    import torchvision
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = getattr(torchvision.models.detection, model_name)(
        weights=None, weights_backbone=None, min_size=min(height, width), max_size=max(height, width)).eval()
    image = torch.rand(3, height, width)
    with torch.inference_mode():
        model([image])
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            model([image])
            samples.append(time.perf_counter() - start)
    samples.sort()
    return {"median": samples[len(samples) // 2], "peakRSS": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--odam", default=".build/release/odam")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--models", default="fcos_resnet50_fpn,retinanet_resnet50_fpn,fasterrcnn_resnet50_fpn")
    parser.add_argument("--sizes", default="800x1216,512x512")
    parser.add_argument("--torch-one", nargs=3)
    args = parser.parse_args()
    if args.torch_one:
        name, h, w = args.torch_one
        print(json.dumps(torch_one(name, int(h), int(w), args.threads, args.runs)))
        return
    env = dict(os.environ)  # OpenBLAS settings as the caller gives them (see the docstring)
    tuned = dict(env, MALLOC_MMAP_MAX_="0", MALLOC_TRIM_THRESHOLD_="68719476736")
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    print(f"{'model':26}{'size':10}{'odam s':>9}{'torch s':>9}{'odam/torch':>11}{'odam RSS GiB':>14}{'torch RSS GiB':>15}")
    for name in args.models.split(","):
        for h, w in sizes:
            # One fresh process per model and size on both sides, so peak RSS belongs to that measurement.
            odam = json.loads(subprocess.run(
                [args.odam, "bench", "detect", "--json", "--threads", str(args.threads), "--runs", str(args.runs),
                 "--models", name, "--sizes", f"{h}x{w}"], env=env, check=True, capture_output=True, text=True).stdout)[0]
            theirs = json.loads(subprocess.run(
                [sys.executable, __file__, "--torch-one", name, str(h), str(w), "--threads", str(args.threads), "--runs", str(args.runs)],
                env=tuned, check=True, capture_output=True, text=True).stdout)
            ours = odam["total"]["median"]
            print(f"{name:26}{f'{h}x{w}':10}{ours:9.3f}{theirs['median']:9.3f}{ours / theirs['median']:11.2f}"
                  f"{odam['peakResidentBytes'] / 2**30:14.2f}{theirs['peakRSS'] / 2**30:15.2f}")


if __name__ == "__main__":
    main()
