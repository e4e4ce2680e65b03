#!/usr/bin/env bash
# Set up genre-daemon on a fresh Debian/Ubuntu machine (or reuse what is there):
# system packages (ffmpeg, libsndfile, libsystemd headers, chromium for the browser tests, zsh and fish for the
# completion tests), a virtualenv in .venv, torch 2.13.0
# (CPU build) and the package itself with its extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
[ -e /usr/include/systemd/sd-daemon.h ] || need+=(libsystemd-dev)
ldconfig -p 2>/dev/null | grep -q libsndfile || need+=(libsndfile1)
# The review page's browser tests drive Debian's chromium (never a browser Playwright downloads).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# The completion tests check the zsh and fish scripts with the real shells (bash is there already).
command -v zsh >/dev/null 2>&1 || need+=(zsh)
command -v fish >/dev/null 2>&1 || need+=(fish)
if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing ${need[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "setup: please install: ${need[*]}" >&2
  fi
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip 2>/dev/null || true
# Exactly 2.13.0: an open range would pull the newest CUDA build (gigabytes) from PyPI.
.venv/bin/python -m pip install -q "torch==2.13.0"
extras="test"
if [ "$(uname -s)" = "Linux" ]; then extras="test,systemd,ray"; else extras="test,ray"; fi
.venv/bin/python -m pip install -q -e ".[$extras]"
# The musicnn 0.1.0 wheel (ISC), so tests/model/test_musicnn.py can check models/musicnn/*.safetensors
# against its TF checkpoints bit for bit; best effort: offline, those checks skip and say why.
.venv/bin/python -m pip download -q --no-deps musicnn==0.1.0 -d .cache/wheels || true
echo "setup: ready (.venv/bin/genre-daemon)" >&2
