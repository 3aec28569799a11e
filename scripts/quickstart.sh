#!/usr/bin/env bash
# One command: set up (first run only), then show the product on its sample.
#  - with a display ($DISPLAY or $WAYLAND_DISPLAY): the desktop app on a demo library of its own
#    (the sample photo, its person with a reference photo, her face named, the restoration queued,
#    then shown in the Compare view);
#  - without one (ssh, CI): the command-line demo, which writes its results to out/demo.
# F2S_QUICKSTART=cli forces the command-line demo.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${F2S_QUICKSTART:-}" != "cli" && ( -n "${DISPLAY:-}" || -n "${WAYLAND_DISPLAY:-}" ) ]]; then
    bash scripts/setup_env.sh desktop    # the app needs PySide6 (the "desktop" extra)
    exec .venv/bin/f2s-desktop --demo "$@"
fi
bash scripts/setup_env.sh
exec .venv/bin/face2scene demo -o out/demo "$@"
