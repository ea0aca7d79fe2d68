"""The peer of `benchmarks input`: PyTorch's DataLoader on the same work as our input pipeline.

Files: PIL decodes each image, converts it to RGB, resizes it to SIZE x SIZE (bicubic, as ML.NET 6's ResizeImages
resizes with a cubic filter), flips it with probability 0.5 and makes it a float32 C x H x W tensor of 0-255 values;
memory: the same flip over float32 pixels held in one tensor. Batches of BATCH, shuffled, WORKERS worker processes.
Prints one JSON line with the images/s of the epochs after the first (--epochs of them; the first starts everything
up), as the C# side measures.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset


class Files(Dataset):
    def __init__(self, folder, size):
        with open(os.path.join(folder, "files.txt")) as listing:
            self.paths = [os.path.join(folder, line.strip()) for line in listing if line.strip()]
        self.size = size

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as image:
            image = image.convert("RGB").resize((self.size, self.size), Image.BICUBIC)
            pixels = torch.from_numpy(np.asarray(image, dtype=np.float32).transpose(2, 0, 1).copy())
        if torch.rand(1).item() < 0.5:
            pixels = pixels.flip(2)
        return pixels, i % 10


class Pixels(Dataset):
    def __init__(self, rows, size):
        self.pixels = torch.randint(0, 256, (rows, 3, size, size)).float()

    def __len__(self):
        return self.pixels.shape[0]

    def __getitem__(self, i):
        pixels = self.pixels[i]
        if torch.rand(1).item() < 0.5:
            pixels = pixels.flip(2)
        return pixels, i % 10


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("source", choices=["files", "memory"])
    parser.add_argument("--folder")
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=1, help="epochs timed after the first")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = Files(args.folder, args.size) if args.source == "files" else Pixels(args.rows, args.size)
    loader = DataLoader(data, batch_size=args.batch, shuffle=True, num_workers=args.workers)

    def epoch():
        images = 0
        for pixels, _ in loader:
            images += pixels.shape[0]
        return images

    epoch()
    start = time.perf_counter()
    images = sum(epoch() for _ in range(args.epochs))
    print(json.dumps({"images_per_s": images / (time.perf_counter() - start)}))


if __name__ == "__main__":
    main()
