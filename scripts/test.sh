#!/usr/bin/env bash
# One command: set up (first run only) and run the whole test suite headless.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh desktop,test,ray  # ray: `face2scene batch --ray` (tests/test_batch_ray.py)
# The packaging tests validate the .desktop entry and AppStream metadata with Debian's
# validators; install them where we can (root with apt), otherwise those two tests skip.
if ! command -v desktop-file-validate >/dev/null || ! command -v appstreamcli >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq desktop-file-utils appstream) \
      >/dev/null 2>&1 || echo "note: could not install desktop-file-utils/appstream; their tests will skip"
  fi
fi
export QT_QPA_PLATFORM=offscreen
exec .venv/bin/python -m pytest "$@"
