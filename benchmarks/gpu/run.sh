#!/usr/bin/env bash
# On the GPU machine, from the repository root: unpacks .gpu/app.tar.xz (benchmarks/gpu/pack.sh) and runs the `gpu`
# benchmark mode against PyTorch (benchmarks/peers/gpu_peer.py with that machine's python3). Extra arguments go to the
# benchmark (e.g. --quick). The table ends the output and is copied to $OUT/gpu-table.md when $OUT is set.
set -euo pipefail
P=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')
mkdir -p /tmp/app && tar -xJf .gpu/app.tar.xz -C /tmp/app
export LD_LIBRARY_PATH=$P/lib:${LD_LIBRARY_PATH:-} DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
/tmp/app/out/Benchmarks gpu --python python3 --gpu-peer "$PWD/benchmarks/peers/gpu_peer.py" "$@" | tee /tmp/gpu-run.log
if [ -n "${OUT:-}" ]; then grep '^|' /tmp/gpu-run.log > "$OUT/gpu-table.md" || true; cp /tmp/gpu-run.log "$OUT/"; fi
