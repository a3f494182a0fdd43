#!/usr/bin/env bash
# Proves the GPU path on a machine with an NVIDIA GPU, its driver and the .NET SDK (CI never runs it):
#   1. builds Peft with TorchSharp's CUDA backend (dotnet build -p:TorchBackend=cuda: libtorch-cuda-12.8 from nuget.org);
#   2. runs the main job on cuda and on cpu and checks that test top-1 agrees within 0.5 points;
#   3. prints ViT-B/16 training images/s per method at batch 64, in fp32 and bf16, on cuda.
# Exits 1 when a step fails or the accuracies disagree. Usage: bash scripts/gpu-check.sh [cuda:N]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
device=${1:-cuda}
bash scripts/setup.sh >/dev/null
echo "gpu-check: building the CUDA backend"
dotnet build Peft.sln -c Release -p:TorchBackend=cuda -nologo -clp:ErrorsOnly
peft=(dotnet host/Peft.Host/bin/Release/net10.0/peft.dll)
bench=(dotnet host/Peft.Bench/bin/Release/net10.0/peft-bench.dll)
"${peft[@]}" info

# A JSON number after a key, without a JSON tool: the first "key": value in the file.
number() { grep -o "\"$1\": *[-0-9.eE+]*" "$2" | head -1 | sed 's/.*: *//'; }

echo "gpu-check: the main job on $device and on cpu"
"${peft[@]}" pretrain Run:Device="$device"
for d in "$device" cpu; do
  "${peft[@]}" train --config configs/main-job.json Run:Device="$d" Run:Name="gpu-check-${d/:/-}" Run:Resume=false
done
gpu=$(grep -A3 '"lastEpoch"' "runs/gpu-check-${device/:/-}/results.json" | grep -o '"test": *[0-9.]*' | sed 's/.*: *//')
cpu=$(grep -A3 '"lastEpoch"' runs/gpu-check-cpu/results.json | grep -o '"test": *[0-9.]*' | sed 's/.*: *//')
awk -v g="$gpu" -v c="$cpu" 'BEGIN {
  d = (g - c) * 100; if (d < 0) d = -d
  printf "gpu-check: test top-1 %.2f%% on the GPU, %.2f%% on the CPU (difference %.2f points, limit 0.5)\n", 100 * g, 100 * c, d
  exit (d <= 0.5 ? 0 : 1) }' || { echo "gpu-check: FAILED: the GPU and CPU runs disagree" >&2; exit 1; }

echo "gpu-check: ViT-B/16 training images/s at batch 64 on $device"
printf '%-12s %10s %10s\n' method fp32 bf16
for entry in linear:linear full:full bias:bias vpt-shallow:vpt:Method:Options:Mode=shallow vpt-deep:vpt:Method:Options:Mode=deep \
             gated:gated vapt:vapt davpt:davpt davpt+:davpt+; do
  IFS=: read -r label method rest <<< "$entry"
  extra=(); [ -n "${rest:-}" ] && extra=("${rest%%=*}=${rest#*=}")
  [[ $method == davpt* ]] && extra+=("Method:Options:ClassMeanSamples=2")
  row=()
  for precision in fp32 bf16; do
    out="runs/gpu-check-speed/$label-$precision.json"
    mkdir -p runs/gpu-check-speed
    "${bench[@]}" step Method:Name="$method" "${extra[@]}" SpeedBench:Model=vit-b16 SpeedBench:Method="$label" SpeedBench:BatchSize=64 \
      SpeedBench:Steps=10 SpeedBench:WarmupSteps=3 SpeedBench:EvalSteps=3 SpeedBench:RunsDir=runs/gpu-check-speed \
      SpeedBench:StepOutput="$out" Run:Device="$device" Run:Precision="$precision" > "${out%.json}.log" 2>&1 \
      || { echo "gpu-check: FAILED: $label $precision (see ${out%.json}.log)" >&2; exit 1; }
    row+=("$(number trainImagesPerSecond "$out")")
  done
  printf '%-12s %10.1f %10.1f\n' "$label" "${row[0]}" "${row[1]}"
done
echo "gpu-check: passed"
