"""``face2scene bench quality|speed|learned``: the numbers behind the method's claims.

- :mod:`.quality` — synthetic degradations (logged, seeded) of real photos; references are *other*
  photos of the same person. Rows: the degraded input, a plain OpenCV baseline, the pipeline with
  the blind estimate, with the face-derived estimate, and with the true parameters (upper bound).
- :mod:`.speed` — seconds per megapixel per stage and peak memory at 1, 4 and 16 MP, each size in
  a fresh process so peak memory is that size's own.
- :mod:`.learned` — the learned models on their held-out split (FaDeX code separation; compact vs
  classical restorer).

Each prints a table and writes JSON and a PNG plot. None is a test: tests assert behaviour.
PSNR is :func:`face2scene.metrics.psnr` everywhere (Y of BT.601 studio range, borders cropped).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..options import RESTORERS
from . import common


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", choices=["quality", "speed", "learned"],
                   help="quality/speed: the pipeline with --restorer; learned: FaDeX code separation and the "
                        "compact restorer against the classical one on the learned models' held-out split")
    p.add_argument("--data", type=Path, default=None, help="development photos (default: ../shared/data)")
    p.add_argument("--out", type=Path, default=Path("bench_out"), help="folder for JSON and plots")
    p.add_argument("--samples", type=int, default=20, help="quality: number of identity photos (see --scenes for photos without faces)")
    p.add_argument("--first", type=int, default=0,
                   help="quality: start at each person's N-th photo (use another N for held-out photos)")
    p.add_argument("--preset", default=None,
                   help="degradation preset (quality: default mild, several comma separated, e.g. clean,near-clean,mild; "
                        "learned: default simple, the training model)")
    p.add_argument("--max-side", type=int, default=768, help="quality: photos are reduced to this long side")
    p.add_argument("--sizes", default="1,4,16", help="speed: megapixels, comma separated")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--restorer", default="classical", choices=RESTORERS, help="restorer to benchmark")
    p.add_argument("--weights", type=Path, default=None,
                   help="learned: a compact weights folder (default: the shipped face2scene/weights/compact); "
                        "quality: the models folder, as restore --weights (DIR/compact/ replaces the shipped "
                        "compact weights, DIR/gan/ ...)")
    p.add_argument("--per-photo", type=int, default=2, help="learned: degradations per held-out photo")


def bench_learned_cmd(args) -> int:
    data = args.data or common.default_data()
    if data is None or not Path(data).is_dir():
        print("face2scene bench learned: error: no photo folder (give --data DIR or set F2S_SHARED_DATA)",
              file=sys.stderr)
        return 1
    from ..errors import WeightsError
    from .learned import bench_learned
    try:
        bench_learned(data, weights=args.weights, per_photo=args.per_photo, seed=args.seed, out_dir=args.out,
                      presets=(args.preset or "simple",))
    except WeightsError as e:
        print(f"face2scene bench learned: error: {e}", file=sys.stderr)
        return 1
    return 0


def main(args) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    if args.kind == "learned":
        return bench_learned_cmd(args)
    args.preset = args.preset or "mild"
    if args.kind == "quality":
        from .quality import bench_quality
        result = bench_quality(args)
    else:
        from .speed import bench_speed
        result = bench_speed(args)
    if not result:
        return 1
    from ..io import save_json_atomic
    path = save_json_atomic(args.out / f"{args.kind}.json", result)
    print(f"\nwrote {path} and {args.out / (args.kind + '.png')}")
    return 0
