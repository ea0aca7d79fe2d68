#!/usr/bin/python3
"""Maintainer tool (never run by the tests): COCOeval's box metrics on random cases, for DetectionMetricsTests.

    /usr/bin/python3 make_coco_eval_fixtures.py OUTDIR

Writes OUTDIR/coco_eval_cases.json: 60 seeded random cases of 1-5 images and 3 classes (integer and half-pixel
boxes so that IoUs are computed alike in both languages, about 1 in 8 objects a crowd region, detections jittered
from the objects plus strays, scores rounded to 0.1 so that ties occur, maxDets 100, 2 or 1), each with pycocotools'
AP@[.50:.95], AP50, AP75, AR@maxDets and per-class AP (area range "all"; null where COCOeval reports -1).

Needs numpy and pycocotools. Where pycocotools cannot be installed, set PYCOCOTOOLS_SOURCE to the PythonAPI folder of
a cocodataset/cocoapi checkout: its coco.py and cocoeval.py are imported from there, and the C extension is replaced
by bbox_iou below (maskApi's bbIou: float64, x, y, w, h boxes, a crowd's union being the detection's area), the
only part of it that box evaluation calls.
"""
import contextlib, io, json, os, random, sys, types

import numpy as np


def bbox_iou(dts, gts, iscrowd):
    d = np.asarray(dts, dtype=np.float64).reshape(-1, 4)
    g = np.asarray(gts, dtype=np.float64).reshape(-1, 4)
    out = np.zeros((len(d), len(g)))
    for j in range(len(g)):
        gx, gy, gw, gh = g[j]
        for i in range(len(d)):
            dx, dy, dw, dh = d[i]
            w = min(dx + dw, gx + gw) - max(dx, gx)
            h = min(dy + dh, gy + gh) - max(dy, gy)
            if w <= 0 or h <= 0:
                continue
            inter = w * h
            out[i, j] = inter / (dw * dh if iscrowd[j] else dw * dh + gw * gh - inter)
    return out


def import_cocoeval():
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
        return COCO, COCOeval
    except ImportError:
        source = os.environ.get("PYCOCOTOOLS_SOURCE")
        if not source:
            sys.exit("pycocotools is missing: install it, or set PYCOCOTOOLS_SOURCE to cocoapi's PythonAPI folder")
    for name in ["matplotlib", "matplotlib.pyplot", "matplotlib.collections", "matplotlib.patches"]:
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["matplotlib.collections"].PatchCollection = object
    sys.modules["matplotlib.patches"].Polygon = object
    package = types.ModuleType("pycocotools")
    package.__path__ = [os.path.join(source, "pycocotools")]
    mask = types.ModuleType("pycocotools.mask")
    mask.iou = bbox_iou
    sys.modules["pycocotools"] = package
    sys.modules["pycocotools.mask"] = mask
    if not hasattr(np, "float"):
        np.float = float  # old cocoeval.py casts with np.float
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    return COCO, COCOeval


def make_case(rng, classes):
    images = []
    for _ in range(rng.randint(1, 5)):
        truth = []
        for _ in range(rng.randint(0, 6)):
            x, y = float(rng.randint(0, 40)), float(rng.randint(0, 40))
            w, h = float(rng.randint(2, 20)), float(rng.randint(2, 20))
            truth.append([rng.randrange(classes), x, y, x + w, y + h, 1 if rng.random() < 0.12 else 0])
        found = []
        for g in truth:
            for _ in range(rng.choice([0, 1, 1, 1, 2])):
                jitter = lambda: rng.choice([-2, -1, -0.5, 0, 0, 0.5, 1, 2])
                x1, y1 = g[1] + jitter(), g[2] + jitter()
                x2, y2 = max(x1 + 1, g[3] + jitter()), max(y1 + 1, g[4] + jitter())
                label = g[0] if rng.random() < 0.85 else rng.randrange(classes)
                found.append([label, round(rng.random(), 1), x1, y1, x2, y2])
        for _ in range(rng.randint(0, 3)):
            x, y = float(rng.randint(0, 45)), float(rng.randint(0, 45))
            found.append([rng.randrange(classes), round(rng.random(), 1), x, y, x + rng.randint(2, 15), y + rng.randint(2, 15)])
        images.append({"truth": truth, "detections": found})
    if not any(image["detections"] for image in images):
        images[0]["detections"].append([0, 0.5, 1.0, 1.0, 5.0, 5.0])  # loadRes needs one result
    return images


def evaluate(COCO, COCOeval, images, classes, max_dets):
    gt = {"images": [{"id": i + 1, "width": 64, "height": 64} for i in range(len(images))],
          "categories": [{"id": k + 1, "name": str(k)} for k in range(classes)], "annotations": []}
    results = []
    for i, image in enumerate(images):
        for label, x1, y1, x2, y2, crowd in image["truth"]:
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": i + 1, "category_id": label + 1,
                                      "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": crowd})
        for label, score, x1, y1, x2, y2 in image["detections"]:
            results.append({"image_id": i + 1, "category_id": label + 1, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score})
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        evaluation = COCOeval(coco, coco.loadRes(results), "bbox")
        evaluation.params.maxDets = [1, 10, 100] if max_dets == 100 else [max_dets] * 3
        evaluation.evaluate()
        evaluation.accumulate()
    precision = evaluation.eval["precision"][:, :, :, 0, -1]  # IoU threshold x recall x class, area all, maxDets[-1]
    recall = evaluation.eval["recall"][:, :, 0, -1]

    def mean(values):
        values = values[values > -1]
        return float(np.mean(values)) if values.size else None

    return {"map": mean(precision), "map50": mean(precision[0]), "map75": mean(precision[5]), "ar": mean(recall),
            "perClass": [mean(precision[:, :, k]) for k in range(classes)]}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    COCO, COCOeval = import_cocoeval()
    rng, classes, cases = random.Random(12345), 3, []
    for _ in range(60):
        images = make_case(rng, classes)
        max_dets = rng.choice([100, 100, 2, 1])
        cases.append({"maxDetections": max_dets, "images": images, **evaluate(COCO, COCOeval, images, classes, max_dets)})
    with open(os.path.join(out, "coco_eval_cases.json"), "w") as f:
        json.dump(cases, f, separators=(",", ":"))
    print(len(cases), "cases written")


if __name__ == "__main__":
    main()
