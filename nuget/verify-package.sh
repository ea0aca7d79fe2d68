#!/usr/bin/env bash
# Checks the NuGet package as a user gets it: packs Microsoft.ML.Residual into a local folder, creates a fresh console
# project that references it with TorchSharp-cpu and Microsoft.ML.OnnxRuntime (from the configured NuGet feeds), and
# runs nuget/verify/Program.cs in it: a tiny classifier trains, evaluates, saves model.zip, loads it and predicts.
# Needs only the .NET SDK and the NuGet feeds; no manual step (the package's buildTransitive targets apply the
# libstdc++ fix on Debian 12 / Ubuntu 22.04). Usage: nuget/verify-package.sh [--keep]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d -t residualml-package-XXXXXX)"
# A version of its own per run, so that the global packages folder never serves an older build of the same version;
# that version's copy there is removed at the end with the work folder (unless --keep).
version="0.1.0-verify.$(date +%Y%m%d%H%M%S)"
global="$(dotnet nuget locals global-packages --list | sed 's/^global-packages: //')"
if [[ "${1:-}" != "--keep" ]]; then
  trap 'rm -rf "$work" "$global/microsoft.ml.residual/$version"' EXIT
else
  echo "work folder: $work; package copy: $global/microsoft.ml.residual/$version"
fi
# The consumer takes the backend versions the repository builds with (Directory.Build.props), not copies of them.
property() { dotnet msbuild "$repo/Microsoft.ML.Residual/Microsoft.ML.Residual.csproj" -nologo -getProperty:"$1"; }
torchsharp="$(property TorchSharpVersion)"
onnxruntime="$(property OnnxRuntimeVersion)"
echo "== packing Microsoft.ML.Residual $version (consumer: TorchSharp-cpu $torchsharp, Microsoft.ML.OnnxRuntime $onnxruntime)"
dotnet pack "$repo/Microsoft.ML.Residual/Microsoft.ML.Residual.csproj" -c Release -o "$work/feed" -p:Version="$version" --nologo -v quiet
package="$work/feed/Microsoft.ML.Residual.$version.nupkg"
[[ -f "$package" ]] || { echo "no package at $package" >&2; exit 1; }
[[ -f "$work/feed/Microsoft.ML.Residual.$version.snupkg" ]] || { echo "no symbols package next to $package" >&2; exit 1; }
# Plots are in Microsoft.ML.Residual.Plots: the core package must not pull ScottPlot (nor its HarfBuzz text shaping).
nuspec="$repo/Microsoft.ML.Residual/obj/Release/Microsoft.ML.Residual.$version.nuspec"
[[ -f "$nuspec" ]] || { echo "no nuspec at $nuspec (dotnet pack writes it there)" >&2; exit 1; }
if grep -Eiq 'id="(ScottPlot|SkiaSharp\.HarfBuzz|HarfBuzzSharp)' "$nuspec"; then
  echo "the package depends on ScottPlot or HarfBuzz: $(grep -Eio 'id="[^"]*' "$nuspec" | tr '\n' ' ')" >&2
  exit 1
fi
echo "   dependencies: $(grep -Eo 'id="[^"]*' "$nuspec" | sed 's/id="//' | sort -u | tr '\n' ' ')"

echo "== consumer project"
mkdir -p "$work/consumer"
cd "$work/consumer"
cat > nuget.config <<CONFIG
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="residualml-local" value="$work/feed" />
  </packageSources>
</configuration>
CONFIG
cat > Consumer.csproj <<PROJECT
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
    <ImplicitUsings>disable</ImplicitUsings>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="Microsoft.ML.Residual" Version="$version" />
    <PackageReference Include="TorchSharp-cpu" Version="$torchsharp" />
    <PackageReference Include="Microsoft.ML.OnnxRuntime" Version="$onnxruntime" />
  </ItemGroup>
</Project>
PROJECT
cp "$repo/nuget/verify/Program.cs" Program.cs

echo "== build and run"
dotnet build -c Release --nologo -v quiet
dotnet run -c Release --no-build
