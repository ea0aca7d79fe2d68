#!/usr/bin/python3
"""Maintainer tool (never run by the tests): torchvision 0.14 reference data for the detection networks.

    /usr/bin/python3 make_detection_fixtures.py OUTDIR      (the tests read Fixtures/detection)

Needs PyTorch + torchvision (../shared/peers/install.sh). For torchvision's retinanet_resnet50_fpn and fcos_resnet50_fpn
(weights=None, weights_backbone=None, so the backbone has ordinary BatchNorm2d; NUM_CLASSES = 10 classes to keep the
files small) it writes
  * ARCH.keys.json        every state-dict key with its shape (and the parameter count);
  * ARCH.io.safetensors   "input" (1x3x72x100: every level but the last has odd sides on one axis) and the eval-mode
                          head outputs "output", N x A x (K+4) for RetinaNet and N x A x (K+5) for FCOS: per anchor the
                          class logits, the box regression and (FCOS) the centerness, levels P3..P7 concatenated as the
                          heads return them; computed as model.head(model.backbone(input)), without the
                          GeneralizedRCNNTransform (no resizing, no normalisation).
The weights are the formula of make_torchvision_fixtures.py (TorchvisionFixture.Fill in C#).
"""
import json, math, os, struct, sys
import torch, torchvision
from torchvision.models import detection

NUM_CLASSES = 10
INPUT = (1, 3, 72, 100)

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
x = torch.randn(*INPUT)
for arch in ["retinanet_resnet50_fpn", "fcos_resnet50_fpn"]:
    m = getattr(detection, arch)(weights=None, weights_backbone=None, num_classes=NUM_CLASSES)
    sd = m.state_dict()
    with open(f"{out}/{arch}.keys.json", "w") as f:
        json.dump({"num_classes": NUM_CLASSES, "params": sum(p.numel() for p in m.parameters()),
                   "keys": [[k, list(v.shape)] for k, v in sd.items()]}, f)
    with torch.no_grad():
        for k, v in sd.items():
            if not k.endswith("num_batches_tracked"): v.copy_(formula(k, v))
    m.eval()
    with torch.no_grad():
        features = list(m.backbone(x).values())
        head = m.head(features)
    parts = [head["cls_logits"], head["bbox_regression"]] + ([head["bbox_ctrness"]] if "bbox_ctrness" in head else [])
    y = torch.cat(parts, dim=2)
    save_safetensors({"input": x, "output": y}, f"{out}/{arch}.io.safetensors")
    print(arch, [tuple(f.shape[-2:]) for f in features], tuple(y.shape), float(y.abs().max()))
