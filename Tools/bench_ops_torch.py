#!/usr/bin/env python3
"""Times `odam bench ops` and the same GEMM and convolutions in PyTorch, in one run, and prints the ratios.

Usage: python3 Tools/bench_ops_torch.py [--odam .build/release/odam] [--threads 2] [--runs 7]
Both sides get the caller's environment. Run the whole command with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset
(`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ...`) where OpenBLAS recognizes the CPU and picks its AVX-512 kernels,
or with OPENBLAS_CORETYPE=SkylakeX where it does not (this machine's virtual CPU reads as Prescott, about 2x slower
GEMMs); odam prints the kernels it got.
PyTorch runs with the "tuned malloc" settings of perf-anchors.md (MALLOC_MMAP_MAX_=0, MALLOC_TRIM_THRESHOLD_=64 GiB).
"""
import argparse
import json
import os
import subprocess
import sys
import time

CONVS = [  # name, input shape, out channels, kernel, padding, stride, groups (as odam bench ops)
    ("conv3x3 256->256 1x256x100x152", (1, 256, 100, 152), 256, 3, 1, 1, 1),
    ("conv3x3 64->64 1x64x200x304", (1, 64, 200, 304), 64, 3, 1, 1, 1),
    ("conv1x1 256->1024 1x256x100x152", (1, 256, 100, 152), 1024, 1, 0, 1, 1),
    ("conv1x1 1024->256 1x1024x50x76", (1, 1024, 50, 76), 256, 1, 0, 1, 1),
    # MobileNetV2 at 300x300 (the shipped SSDLite)
    ("dw3x3 32 1x32x150x150", (1, 32, 150, 150), 32, 3, 1, 1, 32),
    ("dw3x3 96 s2 1x96x150x150", (1, 96, 150, 150), 96, 3, 1, 2, 96),
    ("dw3x3 144 1x144x75x75", (1, 144, 75, 75), 144, 3, 1, 1, 144),
    ("dw3x3 576 1x576x19x19", (1, 576, 19, 19), 576, 3, 1, 1, 576),
    ("conv1x1 16->96 1x16x150x150", (1, 16, 150, 150), 96, 1, 0, 1, 1),
    ("conv1x1 144->24 1x144x75x75", (1, 144, 75, 75), 24, 1, 0, 1, 1),
    ("conv1x1 96->576 1x96x19x19", (1, 96, 19, 19), 576, 1, 0, 1, 1),
]


def torch_rows(threads, runs):
    import torch
    torch.set_num_threads(threads)

    def timed(fn):
        fn()
        samples = []
        for _ in range(runs):
            t = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t)
        samples.sort()
        return samples[len(samples) // 2]

    rows = {}
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    rows[("sgemm 2048^3", "forward")] = 2 * 2048**3 / 1e9 / timed(lambda: torch.matmul(a, b))
    for name, shape, cout, k, pad, stride, groups in CONVS:
        x = torch.randn(*shape, requires_grad=True)
        w = torch.randn(cout, shape[1] // groups, k, k, requires_grad=True)

        def conv():
            return torch.nn.functional.conv2d(x, w, padding=pad, stride=stride, groups=groups)

        with torch.no_grad():
            y = conv()
            flop = 2 * y.numel() * (shape[1] // groups) * k * k / 1e9
            rows[(name, "forward")] = flop / timed(conv)
        y = conv()
        g = torch.randn_like(y)
        rows[(name, "input-gradient")] = flop / timed(lambda: torch.autograd.grad(y, x, g, retain_graph=True))
        rows[(name, "weight-gradient")] = flop / timed(lambda: torch.autograd.grad(y, w, g, retain_graph=True))
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--odam", default=".build/release/odam")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--torch-only", action="store_true")
    args = parser.parse_args()
    env = dict(os.environ)  # OpenBLAS settings as the caller gives them (see the docstring)
    if args.torch_only:
        print(json.dumps({f"{k[0]}|{k[1]}": v for k, v in torch_rows(args.threads, args.runs).items()}))
        return
    odam = json.loads(subprocess.run([args.odam, "bench", "ops", "--json", "--threads", str(args.threads), "--runs", str(args.runs)],
                                     env=env, check=True, capture_output=True, text=True).stdout)
    tuned = dict(env, MALLOC_MMAP_MAX_="0", MALLOC_TRIM_THRESHOLD_="68719476736")
    torch_out = subprocess.run([sys.executable, __file__, "--torch-only", "--threads", str(args.threads), "--runs", str(args.runs)],
                               env=tuned, check=True, capture_output=True, text=True).stdout
    torch_gflops = {tuple(k.split("|")): v for k, v in json.loads(torch_out).items()}
    sgemm = next(r for r in odam["rows"] if r["name"].startswith("sgemm"))
    sgemm_rate = sgemm["gflop"] / sgemm["timing"]["median"]
    print(f"threads {odam['threads']}, odam OpenBLAS kernels {odam['blasCore']}")
    print(f"{'op':34}{'pass':17}{'odam GFLOP/s':>13}{'x odam sgemm':>14}{'torch GFLOP/s':>15}{'odam/torch':>12}")
    for r in odam["rows"]:
        rate = r["gflop"] / r["timing"]["median"]
        theirs = torch_gflops.get((r["name"], r["pass"]))
        print(f"{r['name']:34}{r['pass']:17}{rate:13.1f}{rate / sgemm_rate:14.2f}{theirs or 0:15.1f}{(rate / theirs) if theirs else 0:12.2f}")


if __name__ == "__main__":
    main()
