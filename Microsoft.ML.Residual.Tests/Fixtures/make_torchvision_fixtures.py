#!/usr/bin/python3
"""Maintainer tool (never run by the tests): torchvision reference data small enough to commit.

    /usr/bin/python3 make_torchvision_fixtures.py OUTDIR

Needs PyTorch + torchvision (../shared/peers/install.sh). A torchvision state dict is tens of MB, so
instead of storing weights we fill every tensor with a deterministic formula that the C# tests
reproduce (TorchvisionFixture.Fill), and store only:
  * ARCH.keys.json       every state-dict key with its shape, for every torchvision ResNet and DenseNet name;
  * ARCH.io.safetensors  "input" (2x3x64x64) and the eval-mode "logits" for the formula weights.
The formula, for element i of tensor NAME (flattened; integer hash, exact in both languages):
  h = (sum over characters k of (k+1)*ord(NAME[k])) * 1000003 mod 2^32
  x = (i + h) mod 2^32;  x = ((x ^ (x >> 16)) * 0x45d9f3b) mod 2^32  (twice);  x = x ^ (x >> 16)
  u = x / 2^32 (float64), then
  running_var: 0.5+u   running_mean, 1-D bias: 0.2*u-0.1   1-D weight: 0.5+u
  weight with fan_in = numel/shape[0]: sqrt(6/fan_in)*(2u-1)        num_batches_tracked: untouched
"""
import json, math, os, struct, sys
import torch, torchvision

KEY_ONLY = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet50_2",
            "wide_resnet101_2", "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d",
            "densenet121", "densenet161", "densenet169", "densenet201"]
WITH_LOGITS = ["resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2", "densenet121"]

def formula(name, t):
    m32 = 0xFFFFFFFF
    h = sum((k + 1) * ord(c) for k, c in enumerate(name)) * 1000003 & m32
    x = (torch.arange(t.numel(), dtype=torch.int64) + h) & m32
    for _ in range(2): x = ((x ^ (x >> 16)) * 0x45d9f3b) & m32
    x = x ^ (x >> 16)
    u = x.to(torch.float64) / 2.0**32
    if name.endswith("running_var"): v = 0.5 + u
    elif name.endswith("running_mean") or (t.dim() == 1 and name.endswith("bias")): v = 0.2 * u - 0.1
    elif t.dim() == 1 and name.endswith("weight"): v = 0.5 + u
    else: v = math.sqrt(6.0 / (t.numel() // t.shape[0])) * (2 * u - 1)
    return v.to(torch.float32).reshape(t.shape)

def save_safetensors(tensors, path):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        b = t.detach().contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(header).encode(); h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h)
        for b in blobs: f.write(b)

out = sys.argv[1]; os.makedirs(out, exist_ok=True); torch.manual_seed(0)
x = torch.randn(2, 3, 64, 64)
for arch in KEY_ONLY:
    m = getattr(torchvision.models, arch)(num_classes=10)
    sd = m.state_dict()
    with open(f"{out}/{arch}.keys.json", "w") as f:
        json.dump({"params": sum(p.numel() for p in m.parameters()),
                   "params_1000": sum(p.numel() for p in getattr(torchvision.models, arch)().parameters()),
                   "keys": [[k, list(v.shape)] for k, v in sd.items()]}, f)
    if arch in WITH_LOGITS:
        with torch.no_grad():
            for k, v in sd.items():
                if not k.endswith("num_batches_tracked"): v.copy_(formula(k, v))
        m.eval()
        with torch.no_grad(): y = m(x)
        save_safetensors({"input": x, "logits": y}, f"{out}/{arch}.io.safetensors")
        print(arch, tuple(y.shape), float(y.abs().max()))
