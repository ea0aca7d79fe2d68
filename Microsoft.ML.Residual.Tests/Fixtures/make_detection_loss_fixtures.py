#!/usr/bin/python3
"""Maintainer tool (never run by the tests): torchvision 0.14's detection anchors, losses and post-processing, for the
parity tests of Microsoft.ML.Residual.Detection (Microsoft.ML.Residual.Tests/Detection).

    /usr/bin/python3 make_detection_loss_fixtures.py OUTDIR      (OUTDIR: Fixtures/detection)

Needs PyTorch + torchvision (../shared/peers/install.sh). Writes small safetensors files:
  * anchors.safetensors   "KIND.HxW": torchvision's AnchorGenerator anchors (RetinaNet's and FCOS's defaults) for the
                          input sizes and ResNet-FPN level sizes of ANCHOR_CASES;
  * KIND.safetensors      for RetinaNet (64x96 input) and FCOS (128x160): the deterministic head "outputs" (N x A x (K+4|5),
                          seed 0), the padded "targets" (N x M x 5: label, x1, y1, x2, y2; label -1 = padding), the "anchors",
                          the per-level anchor counts "levels" (int64), torchvision's "matched" (N x A, int64, the matcher's or
                          FCOS's assignment), its float32 losses "loss.classification", "loss.bbox_regression"
                          (, "loss.bbox_ctrness") and "gradient" (d sum(losses) / d outputs), and its postprocess_detections
                          "detect.OPTIONS.IMAGE.boxes|scores|labels" for OPTIONS "default" (torchvision's) and "small"
                          (score 0.3, NMS 0.3, 50 candidates per level, 40 detections).
Torchvision computes the losses from its own RetinaNet / FCOS objects (a stand-in backbone; the head's weights are unused):
model.compute_loss(targets, head_outputs, anchors[, num_anchors_per_level]), as their forward does in training.
"""
import json, os, struct, sys
import torch, torchvision
from torch import nn
from torchvision.models.detection import RetinaNet, FCOS
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.retinanet import _default_anchorgen

assert torchvision.__version__.startswith("0.14"), torchvision.__version__
DTYPES = {torch.float32: "F32", torch.int64: "I64"}

def save(tensors, path):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        b = t.detach().contiguous().numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(header).encode(); h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h)
        for b in blobs: f.write(b)

def stand_in_backbone():
    backbone = nn.Identity(); backbone.out_channels = 32  # FCOS's head has GroupNorm(32, channels)
    return backbone

def make(kind, num_classes):
    if kind == "retinanet": return RetinaNet(stand_in_backbone(), num_classes)
    return FCOS(stand_in_backbone(), num_classes)

def anchors_for(model, h, w, levels):
    images = ImageList(torch.zeros(1, 3, h, w), [(h, w)])
    features = [torch.zeros(1, 8, lh, lw) for lh, lw in levels]
    return model.anchor_generator(images, features)[0]

# (height, width, ResNet-FPN level sizes P3..P7 for that input: stride-2 convolutions with padding round up)
ANCHOR_CASES = [(96, 128, [(12, 16), (6, 8), (3, 4), (2, 2), (1, 1)]),
                (100, 75, [(13, 10), (7, 5), (4, 3), (2, 2), (1, 1)]),
                (64, 96, [(8, 12), (4, 6), (2, 3), (1, 2), (1, 1)]),
                (128, 160, [(16, 20), (8, 10), (4, 5), (2, 3), (1, 2)])]

def padded(image_targets, rows):
    t = torch.full((len(image_targets), rows, 5), -1.0)
    for i, boxes in enumerate(image_targets):
        for j, (label, *box) in enumerate(boxes):
            t[i, j, 0] = label; t[i, j, 1:] = torch.tensor(box, dtype=torch.float32)
    return t

def as_dicts(targets):
    result = []
    for t in targets:
        keep = t[:, 0] >= 0
        result.append({"labels": t[keep, 0].to(torch.int64), "boxes": t[keep, 1:].clone()})
    return result

CASES = {
    # RetinaNet, 64x96: image 0 has two overlapping boxes and a 6x6 box below the matcher's 0.4 for every anchor (matched only by
    # the low-quality rule); image 1 has none; image 2 has an image-sized box, a small one and a padding row.
    "retinanet": dict(h=64, w=96, levels=ANCHOR_CASES[2][2], classes=3, targets=[
        [(0, 10, 8, 42, 40), (2, 20, 16, 60, 50), (1, 70, 30, 76, 36)],
        [],
        [(1, 0, 0, 96, 64), (0, 30, 20, 50, 44)]]),
    # FCOS, 128x160: boxes of every scale range that fits (max centre-to-side distance below 64, 64-128, 128-256), nested boxes
    # (the smaller area wins), an image without boxes.
    "fcos": dict(h=128, w=160, levels=ANCHOR_CASES[3][2], classes=3, targets=[
        [(0, 10, 12, 40, 44), (1, 40, 20, 140, 110), (2, 60, 40, 90, 70)],
        [],
        [(1, 0, 0, 160, 128), (0, 100, 60, 130, 100)]]),
}

def main(out):
    os.makedirs(out, exist_ok=True)
    anchors = {}
    for h, w, levels in ANCHOR_CASES:
        anchors[f"retinanet.{h}x{w}"] = anchors_for(make("retinanet", 3), h, w, levels)
        anchors[f"fcos.{h}x{w}"] = anchors_for(make("fcos", 3), h, w, levels)
    save(anchors, f"{out}/anchors.safetensors")

    for kind, case in CASES.items():
        torch.manual_seed(0)
        model = make(kind, case["classes"]); model.train()
        h, w, levels, k = case["h"], case["w"], case["levels"], case["classes"]
        a = anchors_for(model, h, w, levels)
        per_location = 9 if kind == "retinanet" else 1
        counts = [lh * lw * per_location for lh, lw in levels]
        n = len(case["targets"])
        if kind == "retinanet":
            outputs = torch.cat([torch.randn(n, a.shape[0], k) * 1.5 - 2.5, torch.randn(n, a.shape[0], 4) * 0.3], dim=2)
        else:
            outputs = torch.cat([torch.randn(n, a.shape[0], k) * 1.5 - 1.0, torch.relu(torch.randn(n, a.shape[0], 4) * 0.5 + 0.8),
                                 torch.randn(n, a.shape[0], 1)], dim=2)
        outputs.requires_grad_(True)
        head = {"cls_logits": outputs[:, :, :k], "bbox_regression": outputs[:, :, k:k + 4]}
        if kind == "fcos": head["bbox_ctrness"] = outputs[:, :, k + 4:]
        targets = padded(case["targets"], 3)
        dicts = as_dicts(targets)

        captured = {}
        original = model.head.compute_loss
        def capture(t, ho, an, matched_idxs):
            captured["matched"] = torch.stack(matched_idxs)
            return original(t, ho, an, matched_idxs)
        model.head.compute_loss = capture
        image_anchors = [a] * n
        losses = model.compute_loss(dicts, head, image_anchors) if kind == "retinanet" else model.compute_loss(dicts, head, image_anchors, counts)
        sum(losses.values()).backward()

        tensors = {"outputs": outputs.detach(), "targets": targets, "anchors": a, "levels": torch.tensor(counts, dtype=torch.int64),
                   "matched": captured["matched"], "gradient": outputs.grad}
        for name, value in losses.items(): tensors[f"loss.{name}"] = value.detach().reshape(1)

        model.eval()
        with torch.no_grad():
            split = {key: list(value.detach().split(counts, dim=1)) for key, value in head.items()}
            split_anchors = [list(a.split(counts)) for _ in range(n)]
            for options, (score, nms, topk, detections) in [("default", (model.score_thresh, model.nms_thresh, model.topk_candidates, model.detections_per_img)), ("small", (0.3, 0.3, 50, 40))]:
                model.score_thresh, model.nms_thresh, model.topk_candidates, model.detections_per_img = score, nms, topk, detections
                result = model.postprocess_detections(split, split_anchors, [(h, w)] * n)
                for i, d in enumerate(result):
                    tensors[f"detect.{options}.{i}.boxes"] = d["boxes"]
                    tensors[f"detect.{options}.{i}.scores"] = d["scores"]
                    tensors[f"detect.{options}.{i}.labels"] = d["labels"]
                print(kind, options, [len(d["scores"]) for d in result])
        print(kind, {name: float(v) for name, v in losses.items()}, "foreground per image", (captured["matched"] >= 0).sum(1).tolist())
        save(tensors, f"{out}/{kind}.safetensors")
    for name in sorted(os.listdir(out)): print(name, os.path.getsize(f"{out}/{name}"))

if __name__ == "__main__":
    main(sys.argv[1])
