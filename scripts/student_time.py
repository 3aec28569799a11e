"""Restore-stage time of the shipped compact restorer and a student (same architecture) on the same
degraded photo: CPU seconds (process time, all threads) and wall seconds per megapixel, JSON.

    python scripts/student_time.py --weights runs/student --side 640 --json docs/bench/student_restore_time.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

DEFAULT_PHOTO = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "scenes" / \
    "sunhays80_ruin_sun_booxopykmiqnsqbq.jpg"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", required=True, help="models folder holding the student's compact/")
    ap.add_argument("--photo", default=str(DEFAULT_PHOTO))
    ap.add_argument("--side", type=int, default=640, help="long side of the photo")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    import torch
    from face2scene.datasets import load_rgb
    from face2scene.degrade import degrade
    from face2scene.restorers import load_restorer
    from face2scene.types import DegradationEstimate
    torch.set_num_threads(args.threads)
    try:
        clean = load_rgb(args.photo, args.side, resample="area")
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    deg, _ = degrade(clean, "mild", seed=0)
    est = DegradationEstimate(8.0, 1.2, 70, source="given")
    out = {"photo": args.photo, "size": list(deg.shape[:2]), "threads": args.threads}
    for name, models in (("compact", None), ("student", args.weights)):
        r, warn = load_restorer("compact", models_dir=models)
        if warn:
            print(f"error: {warn}", file=sys.stderr)
            return 2
        r.restore(deg[:128, :128], est)  # warm-up (first-call allocations)
        t, c = time.perf_counter(), time.process_time()
        r.restore(deg, est)
        mp = deg.shape[0] * deg.shape[1] / 1e6
        out[name] = {"wall_s_per_MP": (time.perf_counter() - t) / mp, "cpu_s_per_MP": (time.process_time() - c) / mp}
        print(f"{name:8s} {out[name]['cpu_s_per_MP']:7.1f} CPU-s/MP {out[name]['wall_s_per_MP']:7.1f} wall-s/MP")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
