#!/usr/bin/env bash
# Packs the benchmarks for the GPU machine (../shared/gpu/README.md): published self-contained with TorchSharp alone (no
# CPU libtorch), into .gpu/app.tar.xz at the repository root, which the device tool carries (`carry: [".gpu"]`).
#   benchmarks/gpu/pack.sh            then, on the device: bash benchmarks/gpu/run.sh [--quick]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
exclude=$(git -C "$root" rev-parse --path-format=absolute --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qx '/.gpu/' "$exclude" 2>/dev/null || echo '/.gpu/' >> "$exclude"
ForGpu=true bash "$root/../shared/gpu/pack.sh" "$root/benchmarks/Benchmarks.csproj" "$root/.gpu"
