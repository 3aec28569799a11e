#!/usr/bin/env bash
# Creates ./.venv (if missing) and installs Face2Scene into it, editable, with the extras given
# as arguments. CPU-only by default (constraints/cpu.txt pins the CPU build of torch); set
# F2S_TORCH=keep to keep a torch that is already installed in the venv (e.g. a CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
extras=${1:-}
spec="."
[ -n "$extras" ] && spec=".[${extras}]"
cons=(-c constraints/cpu.txt)
[ "${F2S_TORCH:-}" = keep ] && cons=()
.venv/bin/python -m pip install -q --disable-pip-version-check "${cons[@]}" -e "$spec"
