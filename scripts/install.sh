#!/usr/bin/env bash
# Installs selfsup and what it needs on a fresh machine: the CPU build of PyTorch first (a plain
# `torch` requirement would pull a multi-GB CUDA build), then the package, then Fashion-MNIST from
# Debian's package when apt is available (offline-friendly; otherwise selfsup downloads it), and
# Debian's chromium and chromium-driver for the tests that open a report and an explore page in a
# headless browser (selenium drives them).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
if ! "$PYTHON" -c "import torch" 2>/dev/null; then
  "$PYTHON" -m pip install -q "torch==2.13.0" || "$PYTHON" -m pip install -q "torch>=2.1,<3" --index-url https://download.pytorch.org/whl/cpu
fi
"$PYTHON" -m pip install -q -e ".[test]"
if [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 \
    || echo "note: could not install dataset-fashion-mnist; selfsup will try to download Fashion-MNIST" >&2
fi
if ! { command -v chromium && command -v chromedriver; } >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null 2>&1 \
    || echo "note: could not install chromium; the browser tests will be skipped" >&2
fi
