#!/usr/bin/env python3
"""Writes the weights-I/O fixtures: real torch.save checkpoints and what PyTorch says they hold.

Usage: python3 Tools/make_weights_fixtures.py [--resnet50 PATH]   (needs torch, torchvision, safetensors)

Tests/WeightsIOTests/Fixtures/
  squeezenet1_1.pth          torch.save(torchvision.models.squeezenet1_1().state_dict()), random init, seed 0 (< 5 MB)
  squeezenet1_1.json         per tensor: shape, dtype and the FNV-1a 64 hash of its float32 bytes (bit-for-bit check)
  mixed.pth                  {"model": state_dict with float16/bfloat16/float64/int64/bool tensors, a transposed
                             (non-contiguous) tensor and views sharing one storage, "epoch": 3, "optimizer": {...}}
  mixed.safetensors          the same tensors converted to float32 by PyTorch, contiguous
  mixed.json                 dtypes by name
  hostile.pth                a torch-style zip whose pickle calls os.system (must be refused, never run)
With --resnet50 PATH it also writes resnet50().state_dict() there and PATH.json beside it (not committed: 100 MB).
"""
import io
import json
import os
import pickle
import sys
import zipfile

import torch
import torchvision
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(__file__), "..", "Tests", "WeightsIOTests", "Fixtures")


def fnv1a64(data: bytes) -> str:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def describe(state_dict):
    out = {}
    for name, t in state_dict.items():
        f32 = t.detach().to(torch.float32).contiguous().numpy().tobytes()
        out[name] = {"shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", ""), "fnv1a64": fnv1a64(f32)}
    return out


def main():
    torch.manual_seed(0)
    os.makedirs(ROOT, exist_ok=True)
    sd = torchvision.models.squeezenet1_1().state_dict()
    torch.save(sd, os.path.join(ROOT, "squeezenet1_1.pth"))
    with open(os.path.join(ROOT, "squeezenet1_1.json"), "w") as f:
        json.dump(describe(sd), f, indent=1, sort_keys=True)

    base = torch.randn(6, 5)
    mixed = {
        "conv.weight": torch.randn(4, 3, 3, 3),
        "half": torch.randn(7, 3).half(),
        "bfloat": torch.randn(5).bfloat16(),
        "double": torch.randn(2, 2).double(),
        "bn.num_batches_tracked": torch.tensor(12345678901, dtype=torch.int64),
        "mask": torch.rand(3, 4) > 0.5,
        "transposed": base.t(),
        "row_view": base[2],
        "column_slice": base[:, 1:3],
        "empty": torch.zeros(0, 3),
        "scalar": torch.tensor(2.5),
    }
    checkpoint = {"model": mixed, "epoch": 3, "optimizer": {"lr": 0.01, "momentum_buffer": [torch.ones(2)]}}
    torch.save(checkpoint, os.path.join(ROOT, "mixed.pth"))
    save_file({k: v.to(torch.float32).contiguous().clone() for k, v in mixed.items()}, os.path.join(ROOT, "mixed.safetensors"))
    with open(os.path.join(ROOT, "mixed.json"), "w") as f:
        json.dump({k: str(v.dtype).replace("torch.", "") for k, v in mixed.items()}, f, indent=1, sort_keys=True)

    class Exploit:
        def __reduce__(self):
            return (os.system, ("touch /tmp/odam-pickle-was-executed",))

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as z:
        z.writestr("hostile/data.pkl", pickle.dumps({"weight": Exploit()}, protocol=2))
        z.writestr("hostile/byteorder", "little")
        z.writestr("hostile/version", "3\n")
    with open(os.path.join(ROOT, "hostile.pth"), "wb") as f:
        f.write(buffer.getvalue())

    if "--resnet50" in sys.argv:
        path = sys.argv[sys.argv.index("--resnet50") + 1]
        sd = torchvision.models.resnet50().state_dict()
        torch.save(sd, path)
        with open(path + ".json", "w") as f:
            json.dump(describe(sd), f, indent=1, sort_keys=True)
    print("fixtures written to", ROOT)


if __name__ == "__main__":
    main()
