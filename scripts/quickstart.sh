#!/usr/bin/env bash
# One command: set up (first run only) and restore the bundled public-domain sample end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
exec .venv/bin/face2scene demo -o out/demo "$@"
