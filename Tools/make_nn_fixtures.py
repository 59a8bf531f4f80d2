#!/usr/bin/env python3
"""Writes the training-parts fixtures: SGD steps, gradient clipping and a module's state dict, from PyTorch.

Usage: python3 Tools/make_nn_fixtures.py   (needs torch, safetensors)
Writes Tests/NNTests/Fixtures/nn.safetensors.
"""
import os

import torch
from safetensors.torch import save_file

torch.manual_seed(0)
ROOT = os.path.join(os.path.dirname(__file__), "..", "Tests", "NNTests", "Fixtures")
out = {}

# SGD: 3 steps with fixed gradients, for plain momentum and Nesterov.
for variant, nesterov in [("momentum", False), ("nesterov", True)]:
    w = torch.randn(4, 3, requires_grad=True)
    b = torch.randn(3, requires_grad=True)
    out[f"sgd.{variant}.w0"] = w.detach().clone()
    out[f"sgd.{variant}.b0"] = b.detach().clone()
    opt = torch.optim.SGD([w, b], lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=nesterov)
    for step in range(3):
        gw, gb = torch.randn(4, 3), torch.randn(3)
        out[f"sgd.{variant}.gw{step}"] = gw
        out[f"sgd.{variant}.gb{step}"] = gb
        w.grad, b.grad = gw.clone(), gb.clone()
        opt.step()
        out[f"sgd.{variant}.w{step + 1}"] = w.detach().clone()
        out[f"sgd.{variant}.b{step + 1}"] = b.detach().clone()

# clip_grad_norm_.
p1, p2 = torch.zeros(5, requires_grad=True), torch.zeros(2, 3, requires_grad=True)
p1.grad, p2.grad = torch.randn(5) * 3, torch.randn(2, 3) * 3
out["clip.g1"], out["clip.g2"] = p1.grad.clone(), p2.grad.clone()
norm = torch.nn.utils.clip_grad_norm_([p1, p2], max_norm=1.5)
out["clip.norm"] = norm.reshape(1)
out["clip.c1"], out["clip.c2"] = p1.grad.clone(), p2.grad.clone()

# A Sequential of conv, batch-norm (two training steps) and linear: the state dict and an output.
model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))
model.train()
for _ in range(2):
    model(torch.randn(2, 3, 6, 5))
model.eval()
x = torch.randn(2, 3, 6, 5)
for k, v in model.state_dict().items():
    out[f"seq.state.{k}"] = v.float().clone() if v.dtype != torch.float32 else v.clone()
out["seq.x"] = x
with torch.no_grad():
    out["seq.y"] = model(x)

os.makedirs(ROOT, exist_ok=True)
save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(ROOT, "nn.safetensors"))
print(len(out), "tensors")
