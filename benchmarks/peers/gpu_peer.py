#!/usr/bin/env python3
"""The PyTorch side of the `gpu` benchmark mode (benchmarks/GpuMeasurements.cs), on CUDA when PyTorch has it, else the CPU.

    gpu_peer.py loop resnet50 --size 224 --batch 64 --steps 30 --precision bfloat16
        torchvision's network on one batch already on the device: SGD (momentum 0.9, weight decay 5e-4), cross-entropy,
        float32 or bfloat16 autocast (PyTorch's mixed precision; float32 weights)
    gpu_peer.py files resnet50 --folder DIR --size 224 --batch 64 --workers 8 --precision float32
        ImageFolder + DataLoader(workers, pinned memory, shuffled), resize to size², normalise, three epochs

Prints one JSON line with "images_per_s" (files: the last epoch).
"""
import argparse, json, time
import torch
import torchvision

p = argparse.ArgumentParser()
p.add_argument("mode", choices=["loop", "files"]); p.add_argument("arch")
p.add_argument("--size", type=int, default=224); p.add_argument("--batch", type=int, default=64)
p.add_argument("--steps", type=int, default=30); p.add_argument("--warmup", type=int, default=5)
p.add_argument("--precision", choices=["float32", "bfloat16"], default="float32")
p.add_argument("--folder"); p.add_argument("--workers", type=int, default=8)
a = p.parse_args()
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
half = a.precision == "bfloat16"
torch.manual_seed(1)


def sync():
    if device.type == "cuda": torch.cuda.synchronize()


def step(model, optimizer, x, y):
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=half):
        logits = model(x)
    torch.nn.functional.cross_entropy(logits.float(), y).backward()
    optimizer.step()


if a.mode == "loop":
    model = getattr(torchvision.models, a.arch)(num_classes=10).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(a.batch, 3, a.size, a.size, device=device); y = torch.randint(0, 10, (a.batch,), device=device)
    for _ in range(a.warmup): step(model, optimizer, x, y)
    sync(); start = time.perf_counter()
    for _ in range(a.steps): step(model, optimizer, x, y)
    sync(); rate = a.batch * a.steps / (time.perf_counter() - start)
else:
    from torchvision import transforms as T
    data = torchvision.datasets.ImageFolder(a.folder, T.Compose([
        T.Resize((a.size, a.size)), T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])]))
    loader = torch.utils.data.DataLoader(data, batch_size=a.batch, shuffle=True, num_workers=a.workers,
                                         pin_memory=device.type == "cuda", drop_last=True, persistent_workers=a.workers > 0)
    model = getattr(torchvision.models, a.arch)(num_classes=len(data.classes)).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    for epoch in range(3):
        start = time.perf_counter(); seen = 0
        for x, y in loader:
            step(model, optimizer, x.to(device, non_blocking=True), y.to(device, non_blocking=True)); seen += len(y)
        sync(); rate = seen / (time.perf_counter() - start)
print(json.dumps({"peer": "pytorch", "version": torch.__version__, "device": device.type, "mode": a.mode, "arch": a.arch,
                  "precision": a.precision, "images_per_s": round(rate, 2)}))
