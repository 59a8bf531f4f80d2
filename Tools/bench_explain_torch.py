#!/usr/bin/env python3
"""Times ODAM per prediction with torch.autograd on torchvision's FCOS-R50 and `odam bench explain`, in one run.

Usage: python3 Tools/bench_explain_torch.py [--odam .build/release/odam] [--threads 2] [--sizes 800x1216,512x512]
         [--counts 1,10] [--runs 3]
The PyTorch side follows perf-anchors.md §2: random weights, eval mode, grad enabled; a forward hook keeps the five
FPN maps (retain_grad), a head hook the raw class logits; prediction i is the class logit (37i+1) mod 91 at a
golden-ratio cell of level i mod 5 (N=1: the centre of P3). Per prediction: one torch.autograd.grad with respect
to the prediction's own level ("seq-level") or to all five levels ("seq", one backward per prediction), then the map
ReLU(Σ g·A). The grad-enabled forward is paid once per image and not counted; odam's exact path counts its
per-level recorded head pass. Tuned malloc settings.
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


def torch_side(height, width, counts, threads, runs):
    import torch
    import torchvision
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torchvision.models.detection.fcos_resnet50_fpn(weights=None, weights_backbone=None, min_size=min(height, width),
                                                            max_size=max(height, width)).eval()
    captured = {}
    model.backbone.register_forward_hook(lambda m, i, o: captured.__setitem__("fpn", list(o.values())))
    model.head.classification_head.register_forward_hook(lambda m, i, o: captured.__setitem__("logits", o))
    image = torch.rand(3, height, width)
    model([image])
    feats = captured["fpn"]
    for f in feats:
        f.retain_grad()
    logits = captured["logits"]
    sizes = [f.shape[2] * f.shape[3] for f in feats]
    offsets = [sum(sizes[:k]) for k in range(len(sizes))]
    results = {}
    for count in counts:
        picks = []
        for i in range(count):
            level = i % 5
            h, w = feats[level].shape[2:]
            pos = (h // 2) * w + w // 2 if count == 1 else int(((i * 0.61803398875) % 1) * h * w)
            picks.append((level, offsets[level] + pos, (37 * i + 1) % 91))
        for mode in ["seq", "seq-level"]:
            samples = []
            for _ in range(runs):
                start = time.perf_counter()
                for level, index, label in picks:
                    y = logits[0, index, label]
                    inputs = [feats[level]] if mode == "seq-level" else feats
                    grads = torch.autograd.grad(y, inputs, retain_graph=True)
                    with torch.no_grad():
                        g = grads[0] if mode == "seq-level" else grads[level]
                        torch.relu((g * feats[level]).sum(dim=1))
                samples.append((time.perf_counter() - start) / count)
            samples.sort()
            results[f"{mode}|{count}"] = samples[len(samples) // 2]
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--odam", default=".build/release/odam")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", default="800x1216,512x512")
    parser.add_argument("--counts", default="1,10")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--torch-side", nargs=2)
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    if args.torch_side:
        print(json.dumps(torch_side(int(args.torch_side[0]), int(args.torch_side[1]), counts, args.threads, args.runs)))
        return
    env = dict(os.environ)  # OpenBLAS settings as the caller gives them (see the docstring)
    tuned = dict(env, MALLOC_MMAP_MAX_="0", MALLOC_TRIM_THRESHOLD_="68719476736")
    print(f"{'size':10}{'N':>6}{'odam exact ms':>15}{'torch seq ms':>14}{'torch seq-level ms':>20}{'odam/seq':>10}{'odam/seq-level':>16}{'odam approx ms':>16}")
    for size in args.sizes.split(","):
        h, w = (int(v) for v in size.split("x"))
        odam = json.loads(subprocess.run(
            [args.odam, "bench", "explain", "--json", "--threads", str(args.threads), "--sizes", size, "--counts", args.counts,
             "--exact-counts", args.counts, "--verified-counts", "", "--agreement-per-level", "0", "--runs", str(args.runs)],
            env=env, check=True, capture_output=True, text=True).stdout)["paths"]
        theirs = json.loads(subprocess.run([sys.executable, __file__, "--torch-side", str(h), str(w), "--counts", args.counts,
                                            "--threads", str(args.threads), "--runs", str(args.runs)],
                                           env=tuned, check=True, capture_output=True, text=True).stdout)
        for count in counts:
            exact = next(r for r in odam if r["path"] == "exact" and r["predictions"] == count)["millisecondsPerPrediction"]
            fast = next(r for r in odam if r["path"] == "approximate" and r["predictions"] == count)["millisecondsPerPrediction"]
            seq, seq_level = theirs[f"seq|{count}"] * 1000, theirs[f"seq-level|{count}"] * 1000
            print(f"{size:10}{count:6}{exact:15.1f}{seq:14.1f}{seq_level:20.1f}{exact / seq:10.2f}{exact / seq_level:16.2f}{fast:16.2f}")


if __name__ == "__main__":
    main()
