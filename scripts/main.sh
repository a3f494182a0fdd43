#!/usr/bin/env bash
# README command 1: set up, build, and run the main job (arguments are passed on to `peft`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
if (($# == 0)); then set -- info; fi
exec dotnet host/Peft.Host/bin/Release/net10.0/peft.dll "$@"
