"""The command line: ``face2scene restore | batch | degrade | demo | bench | train``, one module per command.

Other tools script against these names and flags; keep them stable. Each module has
``register(subparsers)``; this one builds the parser and maps errors to exit codes.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence

from . import batch, bench, degrade, demo, restore, train

COMMANDS = (restore, batch, degrade, demo, bench, train)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    ap = argparse.ArgumentParser(prog="face2scene", description="Face2Scene: restore old photos, guided by "
                                 "reference photos of the people in them.")
    ap.add_argument("--version", action="version", version=f"face2scene {__version__}")
    ap.add_argument("-v", "--verbose", action="store_true", help="log details")
    sub = ap.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    # Library warnings (numpy's RuntimeWarning, Pillow's) are for developers: logged with -v,
    # never printed between a user's result lines otherwise.
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.WARNING if args.verbose else logging.ERROR)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
