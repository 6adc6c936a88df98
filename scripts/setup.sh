#!/usr/bin/env bash
# Sets up everything `cargo build` / `cargo test` need, idempotently:
#   - a project-local Python venv (.venv) with torch==2.11.0 (the libtorch that tch 0.24 links against)
#   - a stable link `.libtorch` -> the torch package inside that venv (include/ and lib/),
#     which .cargo/config.toml hands to torch-sys as LIBTORCH and build.rs bakes in as an rpath.
# Safe to re-run: it only does what is missing.
#   CHECK=1 scripts/setup.sh     # only report what is missing (exit 1 if anything is), change nothing
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_VERSION="2.11.0"
PY="${PYTHON:-python3}"
CHECK=${CHECK:-}
missing=0
# in CHECK mode: say what would be done, and do nothing
todo() {
  echo "setup: $1"
  if [ -n "$CHECK" ]; then missing=1; return 1; fi
}

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust (https://rustup.rs) first" >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  if todo "creating .venv with $($PY --version 2>&1)"; then "$PY" -m venv .venv; fi
fi

have=$(.venv/bin/python -c 'import numpy, torch; print(torch.__version__.split("+")[0])' 2>/dev/null || true)
if [ "$have" != "$TORCH_VERSION" ]; then
  if todo "installing torch==$TORCH_VERSION into .venv (a few GB, about a minute)"; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet "torch==$TORCH_VERSION" numpy
  fi
fi

# TensorBoard's own event reader checks the event files in the tests; safetensors loads the
# exported weights into python/neuroevo_torch.py's modules
if ! .venv/bin/python -c 'import tensorboard, safetensors' 2>/dev/null; then
  if todo "installing tensorboard and safetensors into .venv"; then
    .venv/bin/python -m pip install --quiet tensorboard safetensors
  fi
fi

if [ -n "$CHECK" ] && [ "$missing" = 1 ]; then
  exit 1
fi
torch_dir=$(.venv/bin/python -c 'import torch, os; print(os.path.dirname(torch.__file__))')
# the same directory through another link is fine
if [ "$(cd .libtorch 2>/dev/null && pwd -P || true)" != "$(cd "$torch_dir" && pwd -P)" ]; then
  if todo "linking .libtorch -> $torch_dir"; then ln -sfn "$torch_dir" .libtorch; else exit 1; fi
fi
echo "setup: libtorch $TORCH_VERSION at $torch_dir (linked as .libtorch)"
