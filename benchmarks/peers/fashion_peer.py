"""PyTorch side of the Fashion-MNIST comparison (issue 23, item 4): the CIFAR ResNet-20 of He et al. (option A
shortcuts, zero-initialised last BatchNorm of each residual branch, as our estimator builds it), trained with the recipe
samples/FashionMnist runs, on the same rows of the same IDX files, on the CPU. Prints one JSON line per epoch and one at
the end with the test accuracy and the training throughput (images per second over the whole training, data handling
included).

    /usr/bin/python3 benchmarks/peers/fashion_peer.py --data /usr/share/datasets/fashion-mnist --train-rows 20000 --epochs 6
"""
import argparse, gzip, json, math, os, struct, time

import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
p.add_argument("--train-rows", type=int, default=60000); p.add_argument("--test-rows", type=int, default=10000)
p.add_argument("--epochs", type=int, default=6); p.add_argument("--batch", type=int, default=128)
p.add_argument("--lr", type=float, default=0.1); p.add_argument("--momentum", type=float, default=0.9)
p.add_argument("--nesterov", action="store_true"); p.add_argument("--wd", type=float, default=5e-4)
p.add_argument("--warmup", type=float, default=0.0, help="linear warm-up in epochs, then cosine to zero (per step)")
p.add_argument("--augment", choices=["none", "crop+flip"], default="none")
p.add_argument("--threads", type=int, default=2); p.add_argument("--seed", type=int, default=1)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)


def idx(name):
    path = os.path.join(a.data, name)
    with (open(path, "rb") if os.path.exists(path) else gzip.open(path + ".gz", "rb")) as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return torch.frombuffer(bytearray(data[4 + 4 * dims:]), dtype=torch.uint8).reshape(shape)


train_x = idx("train-images-idx3-ubyte")[:a.train_rows].unsqueeze(1).float()
train_y = idx("train-labels-idx1-ubyte")[:a.train_rows].long()
test_x = idx("t10k-images-idx3-ubyte")[:a.test_rows].unsqueeze(1).float()
test_y = idx("t10k-labels-idx1-ubyte")[:a.test_rows].long()
# The estimator's normalisation for one channel: ImageNet's mean and deviation averaged over the three channels.
mean, std = 255 * (0.485 + 0.456 + 0.406) / 3, 255 * (0.229 + 0.224 + 0.225) / 3


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False); self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False); self.bn2 = nn.BatchNorm2d(cout)
        nn.init.zeros_(self.bn2.weight)
        self.pad = cout - cin if stride != 1 or cin != cout else None
        self.stride = stride

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        if self.pad is not None:  # option A: subsample and pad the new channels with zeros
            s = x[:, :, ::self.stride, ::self.stride]
            x = F.pad(s, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return F.relu(y + x)


class ResNet20(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, 1, 1, bias=False); self.bn1 = nn.BatchNorm2d(16)
        layers, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(3):
                layers.append(Block(cin, cout, stride if i == 0 else 1)); cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


model = ResNet20()
decay = [p for n, p in model.named_parameters() if p.ndim > 1]
no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]  # BatchNorm parameters and biases, as ours
opt = torch.optim.SGD([{"params": decay, "weight_decay": a.wd}, {"params": no_decay, "weight_decay": 0}],
                      lr=a.lr, momentum=a.momentum, nesterov=a.nesterov)
steps_per_epoch = math.ceil(a.train_rows / a.batch)
total, warm = steps_per_epoch * a.epochs, round(a.warmup * steps_per_epoch)


def rate(step):
    if step < warm:
        return a.lr * (step + 1) / warm
    return a.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def augment(x):
    if a.augment == "none":
        return x
    n = x.shape[0]
    padded = F.pad(x, (4, 4, 4, 4))
    dx, dy = torch.randint(0, 9, (n,)), torch.randint(0, 9, (n,))
    out = torch.stack([padded[i, :, dy[i]:dy[i] + 28, dx[i]:dx[i] + 28] for i in range(n)])
    flip = torch.rand(n) < 0.5
    out[flip] = out[flip].flip(3)
    return out


step, images, start = 0, 0, time.perf_counter()
for epoch in range(1, a.epochs + 1):
    model.train()
    order = torch.randperm(a.train_rows)
    loss_sum, correct = 0.0, 0
    for b in range(0, a.train_rows, a.batch):
        i = order[b:b + a.batch]
        x = (augment(train_x[i]) - mean) / std
        for g in opt.param_groups:
            g["lr"] = rate(step)
        out = model(x)
        loss = F.cross_entropy(out, train_y[i])
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        loss_sum += loss.item() * len(i); correct += (out.argmax(1) == train_y[i]).sum().item()
        step += 1; images += len(i)
    print(json.dumps({"epoch": epoch, "loss": loss_sum / a.train_rows, "trainAccuracy": correct / a.train_rows,
                      "seconds": round(time.perf_counter() - start, 1)}), flush=True)
seconds = time.perf_counter() - start
model.eval()
with torch.no_grad():
    predicted = torch.cat([model((test_x[b:b + 500] - mean) / std).argmax(1) for b in range(0, a.test_rows, 500)])
print(json.dumps({"testAccuracy": (predicted == test_y).float().mean().item(), "imagesPerSecond": images / seconds,
                  "trainSeconds": round(seconds, 1)}), flush=True)
