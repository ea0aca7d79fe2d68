#!/usr/bin/python3
"""Maintainer tool: regenerates the weights fixtures in Fixtures/weights/. Tests never run it.

Needs PyTorch (on the build machines, Debian's /usr/bin/python3 has torch 1.13; the pyenv python3 on PATH
does not). Run from the repository root:

    /usr/bin/python3 Microsoft.ML.Residual.Tests/Fixtures/make_weights_fixtures.py

It writes, all deterministic and a few KB in total:
  tensors.pth              torch.save of a dict covering every storage dtype, a Parameter, views sharing one
                           storage (a column, a transpose, a row at an offset), 0-d and empty tensors
  tensors_protocol4.pth    the same dict saved with pickle_protocol=4 (FRAME, MEMOIZE, STACK_GLOBAL opcodes)
  tensors.safetensors      the same values, written by the small safetensors writer below, for comparison
  sequential.pth           state_dict() of Sequential(Conv2d(3,4,3), BatchNorm2d(4), Flatten(), Linear(4,2))
                           after one training-mode step (so running stats and num_batches_tracked are set)
  sequential.safetensors   the same state dict, written by the writer below
  sequential_io.safetensors  an input batch and the module's eval-mode output computed by PyTorch
"""
import collections
import json
import os
import struct

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")

DTYPE_NAMES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}


def write_safetensors(path, tensors, metadata=None):
    """The safetensors layout from the format description, in insertion order (independent of the C# writer)."""
    header = collections.OrderedDict()
    if metadata:
        header["__metadata__"] = metadata
    blobs = []
    offset = 0
    for name, tensor in tensors.items():
        data = tensor.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b""
        header[name] = {"dtype": DTYPE_NAMES[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def tensors_dict():
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    d = collections.OrderedDict()
    d["f32"] = torch.tensor([[0.1, -2.5, 3.0], [1e-8, float("inf"), -0.0]], dtype=torch.float32)
    d["f16"] = torch.tensor([0.5, -1.25, 65504.0, 0.0001], dtype=torch.float16)
    d["bf16"] = torch.tensor([1.0, -3.140625, 2.0 ** 100], dtype=torch.bfloat16)
    d["f64"] = torch.tensor([1.0 / 3.0, -1e300], dtype=torch.float64)
    d["i64"] = torch.tensor([-(2 ** 62), 0, 2 ** 40 + 7], dtype=torch.int64)
    d["i32"] = torch.tensor([-(2 ** 31), 2 ** 31 - 1], dtype=torch.int32)
    d["i16"] = torch.tensor([-300, 300], dtype=torch.int16)
    d["i8"] = torch.tensor([-128, 127], dtype=torch.int8)
    d["u8"] = torch.tensor([0, 255], dtype=torch.uint8)
    d["bool"] = torch.tensor([True, False, True])
    d["param"] = torch.nn.Parameter(torch.tensor([1.5, -2.0]))
    d["base"] = base
    d["column"] = base[:, 1]          # shares base's storage: offset 1, stride 4
    d["transposed"] = base.t()        # shares base's storage: strides (1, 4)
    d["row"] = base[2]                # shares base's storage: offset 8
    d["scalar_i64"] = torch.tensor(7)
    d["scalar_f32"] = torch.tensor(2.5)
    d["empty"] = torch.zeros(0, 3)
    return d


def main():
    os.makedirs(OUT, exist_ok=True)
    d = tensors_dict()
    torch.save(d, os.path.join(OUT, "tensors.pth"))
    torch.save(d, os.path.join(OUT, "tensors_protocol4.pth"), pickle_protocol=4)
    write_safetensors(os.path.join(OUT, "tensors.safetensors"),
                      collections.OrderedDict((k, v.detach().clone()) for k, v in d.items()), {"format": "pt"})

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(), torch.nn.Linear(4, 2))
    model.train()
    with torch.no_grad():
        model(torch.randn(5, 3, 3, 3))   # one step: running_mean/var move, num_batches_tracked = 1
    model.eval()
    state = model.state_dict()
    torch.save(state, os.path.join(OUT, "sequential.pth"))
    write_safetensors(os.path.join(OUT, "sequential.safetensors"), state, {"format": "pt"})
    x = torch.randn(2, 3, 3, 3)
    with torch.no_grad():
        y = model(x)
    write_safetensors(os.path.join(OUT, "sequential_io.safetensors"),
                      collections.OrderedDict([("input", x), ("output", y)]))
    for name in sorted(os.listdir(OUT)):
        print(name, os.path.getsize(os.path.join(OUT, name)))


if __name__ == "__main__":
    main()
