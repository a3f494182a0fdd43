#!/usr/bin/env bash
# README command 1: set up, build, and run the main job: pre-train the small ViT on Fashion-MNIST
# classes 0-4 (once; cached in runs/pretrain), then adapt it to 1,000 images of the unseen classes
# 5-9 with the main job's method and recipe (configs/main-job.json: VAPT, 30 epochs) and report test
# accuracy. Arguments, when given, are passed to `peft` instead (e.g. `bash scripts/main.sh methods --describe`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
peft=(dotnet host/Peft.Host/bin/Release/net10.0/peft.dll)
if (($# > 0)); then exec "${peft[@]}" "$@"; fi
"${peft[@]}" info
"${peft[@]}" pretrain
"${peft[@]}" train --config configs/main-job.json
