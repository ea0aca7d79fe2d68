#!/usr/bin/python3
"""The PyTorch side for unet_resnet18, which torchvision does not have: the same U-Net as ResidualML's
(a torchvision ResNet encoder; decoder blocks of nearest 2x upsampling, concatenation with the encoder's stage output
at that resolution, then two 3x3 conv-BN-ReLU; channels 256, 128, 64, 32, 16; a 3x3 convolution as the head).

    unet_peer.py train unet_resnet18 --size 64 --batch 8 --steps 20 [--threads 2] [--classes 10]

Prints one JSON line shaped like ../shared/peers/pytorch_bench.py's, so the benchmark program reads both alike.
"""
import argparse, json, time
import torch, torchvision
from torch import nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, skip, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin + skip, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x, skip):
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], 1)
        x = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return F.relu(self.bn2(self.conv2(x)), inplace=True)


class UNet(nn.Module):
    def __init__(self, encoder_name, classes):
        super().__init__()
        self.encoder = getattr(torchvision.models, encoder_name)(num_classes=1)
        e = self.encoder
        def out_channels(layer):
            last = layer[-1]
            return (last.conv3 if hasattr(last, "conv3") else last.conv2).out_channels

        stage_channels = [e.conv1.out_channels] + [out_channels(l) for l in (e.layer1, e.layer2, e.layer3, e.layer4)]
        skips = [stage_channels[3], stage_channels[2], stage_channels[1], stage_channels[0], 0]
        cin = stage_channels[4]
        blocks = []
        for skip, cout in zip(skips, (256, 128, 64, 32, 16)):
            blocks.append(Block(cin, skip, cout))
            cin = cout
        self.decoder = nn.ModuleList(blocks)
        self.segmentation_head = nn.Conv2d(cin, classes, 3, padding=1)

    def forward(self, x):
        e = self.encoder
        stem = e.relu(e.bn1(e.conv1(x)))
        l1 = e.layer1(e.maxpool(stem)); l2 = e.layer2(l1); l3 = e.layer3(l2); l4 = e.layer4(l3)
        y = l4
        for block, skip in zip(self.decoder, (l3, l2, l1, stem, None)):
            y = block(y, skip)
        return self.segmentation_head(y)


p = argparse.ArgumentParser()
p.add_argument("mode", choices=["train"]); p.add_argument("arch")
p.add_argument("--size", type=int, default=64); p.add_argument("--batch", type=int, default=8)
p.add_argument("--steps", type=int, default=10); p.add_argument("--threads", type=int, default=2)
p.add_argument("--classes", type=int, default=10); p.add_argument("--warmup", type=int, default=3)
p.add_argument("--parameters", action="store_true", help="print the parameter count and exit")
a = p.parse_args()
if not a.arch.startswith("unet_"):
    raise SystemExit(f"unet_peer.py builds U-Nets (unet_<torchvision resnet>); got {a.arch}")
torch.set_num_threads(a.threads); torch.manual_seed(0)
m = UNet(a.arch[len("unet_"):], a.classes)
del m.encoder.fc, m.encoder.avgpool
if a.parameters:
    print(sum(t.numel() for t in m.parameters())); raise SystemExit(0)
x = torch.randn(a.batch, 3, a.size, a.size); y = torch.randint(0, a.classes, (a.batch, a.size, a.size))
opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)


def step():
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(m(x), y).backward(); opt.step()


for _ in range(a.warmup): step()
t = time.perf_counter()
for _ in range(a.steps): step()
ms = (time.perf_counter() - t) / a.steps * 1000
print(json.dumps({"peer": "pytorch", "version": torch.__version__, "mode": a.mode, "arch": a.arch, "size": a.size,
                  "batch": a.batch, "threads": a.threads, "ms_per_step": round(ms, 2),
                  "images_per_s": round(a.batch * 1000 / ms, 2)}))
