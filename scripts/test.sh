#!/usr/bin/env bash
# One command: set up (first run only) and run the whole test suite headless.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh desktop,test
export QT_QPA_PLATFORM=offscreen
exec .venv/bin/python -m pytest "$@"
