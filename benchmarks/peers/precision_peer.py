#!/usr/bin/python3
"""The PyTorch side of the mixed-precision comparison (benchmarks `precision` mode): torchvision's network trained on one
fixed random batch with SGD (momentum 0.9, weight decay 5e-4), in float32 or under CPU autocast in bfloat16 (PyTorch's
mixed precision: convolutions and matrix products in bfloat16, float32 weights).

    precision_peer.py resnet18 --precision bfloat16 --size 64 --batch 32 --steps 10 --threads 2

Prints one JSON line: {"peer": "pytorch", "precision", "arch", "size", "batch", "images_per_s"}.
"""
import argparse, json, time
import torch
import torchvision

p = argparse.ArgumentParser()
p.add_argument("arch"); p.add_argument("--precision", choices=["float32", "bfloat16"], default="float32")
p.add_argument("--size", type=int, default=64); p.add_argument("--batch", type=int, default=32)
p.add_argument("--steps", type=int, default=10); p.add_argument("--threads", type=int, default=2)
p.add_argument("--warmup", type=int, default=3)
a = p.parse_args()
torch.set_num_threads(a.threads); torch.manual_seed(0)
m = getattr(torchvision.models, a.arch)(num_classes=10)
x = torch.randn(a.batch, 3, a.size, a.size); y = torch.randint(0, 10, (a.batch,))
opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
half = a.precision == "bfloat16"


def step():
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=half):
        logits = m(x)
    torch.nn.functional.cross_entropy(logits.float(), y).backward()
    opt.step()


for _ in range(a.warmup): step()
t = time.perf_counter()
for _ in range(a.steps): step()
seconds = time.perf_counter() - t
print(json.dumps({"peer": "pytorch", "version": torch.__version__, "precision": a.precision, "arch": a.arch, "size": a.size,
                  "batch": a.batch, "threads": a.threads, "images_per_s": round(a.batch * a.steps / seconds, 2)}))
