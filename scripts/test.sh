#!/usr/bin/env bash
# Installs everything, then runs the whole test suite (about four minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
python3 -m pytest "$@"
