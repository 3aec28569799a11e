"""Batch throughput with 1 and 2 workers and peak memory per worker, on ~8 small photos.

    PYTHONPATH=. python scripts/bench_batch.py [--photos 8] [--side 256] [--restorer classical]

Photos: shared/data (identities + scenes) reduced to --side px, noise images without it. Each
run starts from an empty output folder, so the wall time includes starting the workers and
loading their models (what a user waits for).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_photos(folder: Path, n: int, side: int) -> list:
    import numpy as np
    from PIL import Image
    data = Path(os.environ.get("F2S_SHARED_DATA", REPO.parent / "shared" / "data"))
    srcs = sorted((data / "identities").glob("*/img*.jpg"))[::7] + sorted((data / "scenes").glob("*.png"))
    srcs = srcs[: n // 2] + srcs[-(n - n // 2):] if len(srcs) >= n else []
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(n):
        if srcs:
            im = Image.open(srcs[k]).convert("RGB")
        else:
            im = Image.fromarray((np.random.default_rng(k).random((side, side, 3)) * 255).astype(np.uint8))
        im.thumbnail((side, side))
        p = folder / f"p{k}.png"
        im.save(p)
        out.append(p)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=8)
    ap.add_argument("--side", type=int, default=256)
    ap.add_argument("--restorer", default="classical")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    a = ap.parse_args()
    from face2scene.batch import gather_inputs, run_batch
    from face2scene.pipeline import PipelineConfig
    with tempfile.TemporaryDirectory(prefix="f2s-bench-batch-") as tmp:
        src = Path(tmp) / "src"
        make_photos(src, a.photos, a.side)
        print(f"{a.photos} photos <= {a.side} px, restorer {a.restorer}, {os.cpu_count()} CPU(s)")
        print(f"{'workers':>7} {'wall s':>7} {'photos/min':>10} {'s/photo (worker)':>16} {'peak MB/worker':>15}")
        for w in a.workers:
            dst = Path(tmp) / f"out{w}"
            t0 = time.perf_counter()
            s = run_batch(gather_inputs([str(src)], dst), dst, PipelineConfig(restorer=a.restorer, device="cpu"),
                          workers=w)
            wall = time.perf_counter() - t0
            peak = ", ".join(f"{v:.0f}" for v in s.peak_rss_mb.values())
            print(f"{w:>7} {wall:>7.1f} {60 * s.done / wall:>10.1f} {s.stage_means.get('total', 0):>16.2f} {peak:>15}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
