#!/usr/bin/python3
"""Maintainer tool: torchvision logits in float64 for TorchvisionParity.

    /usr/bin/python3 make_float64_reference.py FOLDER ARCH [ARCH ...]

Reads FOLDER/ARCH.pth and FOLDER/ARCH.io.safetensors (written by ../shared/peers/torchvision_reference.py)
and writes FOLDER/ARCH.io64.safetensors: the same input and torchvision's eval-mode logits in float64.
"""
import sys, json, struct, torch, torchvision
folder = sys.argv[1]
def load_st(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n)); data = f.read()
    return {k: torch.frombuffer(bytearray(data[v["data_offsets"][0]:v["data_offsets"][1]]), dtype=torch.float32).reshape(v["shape"]) for k, v in h.items() if k != "__metadata__"}
def save_st(tensors, path):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        b = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": "F64", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}; blobs.append(b); off += len(b)
    h = json.dumps(header).encode(); h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h); [f.write(b) for b in blobs]
for arch in sys.argv[2:]:
    io = load_st(f"{folder}/{arch}.io.safetensors")
    m = getattr(torchvision.models, arch)(num_classes=io["logits"].shape[1])
    m.load_state_dict(torch.load(f"{folder}/{arch}.pth")); m.double().eval()
    with torch.no_grad(): y = m(io["input"].double())
    save_st({"input": io["input"].double(), "logits": y}, f"{folder}/{arch}.io64.safetensors")
    d = (y.float() - io["logits"]).abs().max().item()
    print(arch, "torchvision f32 vs f64: max|d|", d, "max|y|", y.abs().max().item())
