#!/usr/bin/python3
"""Maintainer tool: runs onnx.checker (full check, with shape inference) on every .onnx file in a folder.

    /usr/bin/python3 check_onnx.py FOLDER      (python3-onnx from ../shared/peers/install.sh)
"""
import glob, os, sys
import onnx
failed = 0
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.onnx"))):
    try:
        onnx.checker.check_model(path, full_check=True)
        model = onnx.load(path, load_external_data=False)
        print(f"ok    {os.path.basename(path):40} opset {model.opset_import[0].version} nodes {len(model.graph.node)}")
    except Exception as e:  # report every file, then fail
        failed += 1
        print(f"FAIL  {os.path.basename(path):40} {e}")
print(f"{failed} failed")
sys.exit(1 if failed else 0)
