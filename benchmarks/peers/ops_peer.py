#!/usr/bin/python3
"""The PyTorch side of the per-operation comparison (benchmarks `ops` mode): the convolutions, BatchNorm, ReLU and max
pooling of ResNet-18 at 32² (ImageNet stem), batch 64, forward and backward, on a given number of threads.

    ops_peer.py --threads 2

Prints one JSON line: {"peer": "pytorch", "threads": T, "ops": {name: milliseconds, ...}}.
"""
import argparse, json, time
import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=2); p.add_argument("--repeats", type=int, default=20)
a = p.parse_args()
torch.set_num_threads(a.threads); torch.manual_seed(0)
BATCH = 64


def timed(step):
    for _ in range(3): step()
    start = time.perf_counter()
    for _ in range(a.repeats): step()
    return (time.perf_counter() - start) / a.repeats * 1000


def conv(cin, cout, k, s, hw):
    x = torch.randn(BATCH, cin, hw, hw, requires_grad=True); w = torch.randn(cout, cin, k, k, requires_grad=True)
    return timed(lambda: F.conv2d(x, w, None, s, k // 2).sum().backward())


def batch_norm(c, hw):
    x = torch.randn(BATCH, c, hw, hw, requires_grad=True); w = torch.ones(c, requires_grad=True); b = torch.zeros(c, requires_grad=True)
    mean, var = torch.zeros(c), torch.ones(c)
    return timed(lambda: F.batch_norm(x, mean, var, w, b, True, 0.1, 1e-5).sum().backward())


x_relu = torch.randn(BATCH, 64, 16, 16, requires_grad=True)
x_pool = torch.randn(BATCH, 64, 16, 16, requires_grad=True)
ops = {
    "conv 3→64 7×7/2 @32²": conv(3, 64, 7, 2, 32),
    "conv 64→64 3×3 @8²": conv(64, 64, 3, 1, 8),
    "conv 64→128 3×3/2 @8²": conv(64, 128, 3, 2, 8),
    "conv 64→128 1×1/2 @8²": conv(64, 128, 1, 2, 8),
    "conv 128→128 3×3 @4²": conv(128, 128, 3, 1, 4),
    "conv 256→256 3×3 @2²": conv(256, 256, 3, 1, 2),
    "conv 512→512 3×3 @1²": conv(512, 512, 3, 1, 1),
    "batchnorm 64 @16²": batch_norm(64, 16),
    "batchnorm 128 @4²": batch_norm(128, 4),
    "relu 64 @16²": timed(lambda: F.relu(x_relu).sum().backward()),
    "maxpool 3×3/2 64 @16²": timed(lambda: F.max_pool2d(x_pool, 3, 2, 1).sum().backward()),
}
print(json.dumps({"peer": "pytorch", "version": torch.__version__, "threads": a.threads, "ops": {k: round(v, 3) for k, v in ops.items()}}))
