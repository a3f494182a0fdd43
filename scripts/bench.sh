#!/usr/bin/env bash
# The benchmarks (peft-bench, host/Peft.Bench), one command each (results and how to read them: benchmarks/README.md):
#   bash scripts/bench.sh vtab [--quick] [Key=Value ...]   mini VTAB-1k accuracy (full: about 2 h on 2 cores; quick: under 15 min)
#   bash scripts/bench.sh speed [Key=Value ...]            speed and memory against PyTorch eager (ViT-S/16, ViT-B/16, 224 px)
#   bash scripts/bench.sh engine                           the engine's per-op cost and GEMM throughput through TorchSharp
# Each sets up what it needs: the build (scripts/setup.sh), scikit-learn's digits.csv.gz taken out of Debian's
# python3-sklearn package without installing it (vtab), Debian's python3-torch (speed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
what=${1:-}
shift || true
if [ "$what" = speed ]; then bash scripts/setup.sh python3-torch python3-numpy; else bash scripts/setup.sh; fi
bench=(dotnet host/Peft.Bench/bin/Release/net10.0/peft-bench.dll)

case "$what" in
  vtab)
    digits=runs/vtab-mini/digits.csv.gz
    installed=/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz
    if [ ! -s "$digits" ] && [ -s "$installed" ]; then mkdir -p runs/vtab-mini && cp "$installed" "$digits"; fi
    if [ ! -s "$digits" ]; then
      mkdir -p runs/vtab-mini/deb
      if ! (cd runs/vtab-mini/deb && apt-get download python3-sklearn >/dev/null 2>&1); then
        [ "$(id -u)" = 0 ] && apt-get update -qq
        (cd runs/vtab-mini/deb && apt-get download python3-sklearn >/dev/null)
      fi
      dpkg-deb --fsys-tarfile runs/vtab-mini/deb/python3-sklearn_*.deb |
        tar -x -O --wildcards '*/sklearn/datasets/data/digits.csv.gz' > "$digits.tmp"
      mv "$digits.tmp" "$digits"
    fi
    exec "${bench[@]}" vtab "$@" ;;
  speed)
    exec "${bench[@]}" speed "$@" ;;
  engine)
    exec "${bench[@]}" engine "$@" ;;
  *)
    echo "usage: bash scripts/bench.sh vtab [--quick] | speed | engine  [Key=Value ...]" >&2
    exit 2 ;;
esac
