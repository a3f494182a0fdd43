#!/usr/bin/env bash
# Idempotent set-up shared by the two README commands: the system packages Peft needs (installed
# when run as root, otherwise the exact install command is printed), then a Release build of the
# solution. The engine (TorchSharp with libtorch 2.10) comes from NuGet with the build; the only
# system package is the main job's data, Debian's Fashion-MNIST. Arguments name extra Debian
# packages to install the same way (scripts/bench.sh asks for python3-torch).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PACKAGES=(dataset-fashion-mnist "$@")
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing system packages. Install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
dotnet build Peft.sln -c Release -nologo -clp:ErrorsOnly
