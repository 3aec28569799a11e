"""``face2scene degrade``: synthetic degradation of one photo, with the exact parameters used.

Usage::

    face2scene degrade INPUT -o OUT [--preset NAME] [--seed N] [--params PARAMS.json]
                                    [--replay PARAMS.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import degrade as _degrade
from ..io import ImageLoadError, load_image, save_image_atomic, save_json_atomic


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``degrade`` subcommand to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "degrade", help="degrade a photo synthetically and log the exact parameters",
        description="Degrade a photo with a synthetic preset and write the parameters used "
                    "(JSON) so the degradation can be reproduced exactly.")
    p.add_argument("input", type=Path, help="the photo to degrade")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="degraded image (.png keeps the pixels exactly; .jpg adds compression)")
    p.add_argument("--preset", default="mild", choices=sorted(_degrade.PRESETS),
                   help="degradation preset (default: mild)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--params", type=Path, default=None,
                   help="where to write the parameters used (default: OUTPUT with .json suffix)")
    p.add_argument("--replay", type=Path, default=None,
                   help="apply the parameters from this JSON file instead of sampling new ones")
    p.add_argument("--masks", type=Path, default=None,
                   help="where to write the damage label map when the preset draws damage (default: "
                        "OUTPUT.mask.png; 0 none, 1 scratch, 2 dust, 3 hair, 4 crease/tear)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; returns the process exit code (0 ok, 2 bad input)."""
    try:
        img = load_image(args.input)
    except ImageLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.replay is not None:
            params = json.loads(Path(args.replay).read_text(encoding="utf-8"))
            out, params = _degrade.run_params(img.rgb, params)
        else:
            out, params = _degrade.degrade(img.rgb, args.preset, args.seed)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: {args.replay or args.input}: cannot degrade ({exc})", file=sys.stderr)
        return 2
    params_path = args.params or Path(args.output).with_suffix(".json")
    labels = _degrade.defect_label_map(_degrade.defect_masks(params))
    masks_path = args.masks or Path(args.output).with_suffix(".mask.png")
    try:
        save_image_atomic(args.output, out, protect=args.input)
        save_json_atomic(params_path, params)
        if labels.any():
            save_image_atomic(masks_path, labels, protect=args.input)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    s = params["summary"]
    print(f"{args.output}: noise σ {s['noise_sigma']:.1f}, blur σ {s['blur_sigma']:.2f} px, "
          f"JPEG {s['jpeg_quality']}, scale {s['scale']:.2f}; parameters in {params_path}"
          + (f"; damage labels in {masks_path}" if labels.any() else ""))
    return 0
