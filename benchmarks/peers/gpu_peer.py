#!/usr/bin/env python3
"""The PyTorch side of the `gpu` benchmark mode (benchmarks/GpuMeasurements.cs), on CUDA when PyTorch has it, else the CPU.

    gpu_peer.py loop resnet50 --size 224 --batch 64 --steps 30 --precision bfloat16
        torchvision's network on one batch already on the device: SGD (momentum 0.9, weight decay 5e-4), cross-entropy,
        float32 or bfloat16 autocast (PyTorch's mixed precision; float32 weights)
    gpu_peer.py files resnet50 --folder DIR --size 224 --batch 64 --workers 8 --precision float32
        ImageFolder + DataLoader(workers, pinned memory, shuffled), resize to size², normalise, three epochs

    gpu_peer.py small resnet20 --size 28 --batch 128 --rows 30000 --epochs 10 --precision float32
        CIFAR ResNet-20 (option A shortcuts, as the library's resnet20) on one-channel size² images held on the device,
        shuffled each epoch, SGD 0.1 (momentum 0.9, weight decay 5e-4) with a per-step cosine schedule: images/s over all epochs
    --channels-last (loop): the model and the batch in channels-last memory format

Prints one JSON line with "images_per_s" (files: the last epoch).
"""
import argparse, json, time
import torch
import torchvision

p = argparse.ArgumentParser()
p.add_argument("mode", choices=["loop", "files", "small"]); p.add_argument("arch")
p.add_argument("--size", type=int, default=224); p.add_argument("--batch", type=int, default=64)
p.add_argument("--steps", type=int, default=30); p.add_argument("--warmup", type=int, default=5)
p.add_argument("--precision", choices=["float32", "bfloat16"], default="float32")
p.add_argument("--folder"); p.add_argument("--workers", type=int, default=8)
p.add_argument("--channels-last", action="store_true")
p.add_argument("--rows", type=int, default=30000); p.add_argument("--epochs", type=int, default=10)
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


class CifarBlock(torch.nn.Module):
    """A basic block whose shortcut, when the shape changes, subsamples and pads channels with zeros (option A)."""
    def __init__(self, inputs, outputs, stride):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False); self.bn1 = torch.nn.BatchNorm2d(outputs)
        self.conv2 = torch.nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False); self.bn2 = torch.nn.BatchNorm2d(outputs)
        self.stride, self.extra = stride, outputs - inputs

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.stride == 1 and self.extra == 0 else torch.nn.functional.pad(
            x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
        return torch.relu(y + shortcut)


def resnet20(channels, classes):
    layers = [torch.nn.Conv2d(channels, 16, 3, 1, 1, bias=False), torch.nn.BatchNorm2d(16), torch.nn.ReLU()]
    width = 16
    for stage, outputs in enumerate([16, 32, 64]):
        for block in range(3):
            layers.append(CifarBlock(width, outputs, 2 if stage > 0 and block == 0 else 1)); width = outputs
    return torch.nn.Sequential(*layers, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(width, classes))


if a.mode == "small":
    model = resnet20(1, 10).to(device).train()
    images = torch.randint(0, 256, (a.rows, 1, a.size, a.size), device=device).float().div_(255).sub_(0.5).div_(0.5)
    labels = torch.randint(0, 10, (a.rows,), device=device)
    steps = a.epochs * (a.rows // a.batch)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    sync(); start = time.perf_counter()
    for epoch in range(a.epochs):
        order = torch.randperm(a.rows, device=device)
        for i in range(a.rows // a.batch):
            chosen = order[i * a.batch:(i + 1) * a.batch]
            step(model, optimizer, images[chosen], labels[chosen]); schedule.step()
    sync(); rate = a.epochs * (a.rows // a.batch) * a.batch / (time.perf_counter() - start)
elif a.mode == "loop":
    model = getattr(torchvision.models, a.arch)(num_classes=10).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(a.batch, 3, a.size, a.size, device=device); y = torch.randint(0, 10, (a.batch,), device=device)
    if a.channels_last:
        model = model.to(memory_format=torch.channels_last); x = x.contiguous(memory_format=torch.channels_last)
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
