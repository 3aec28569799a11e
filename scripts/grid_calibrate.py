"""Issue 9: the resized-JPEG block grid (``estimate.jpeg.resized_grid``) on many photos, for its
threshold ``safeguard.GRID_MIN``. The gate acts on the grid only where the JPEG reader reads no
quality, so that is the population that counts: per preset, the photos with no JPEG read, their
grid strengths (max, 95th percentile, median) and how many reach the threshold. Clean and
near-clean photos must have none; s3diff/realesrgan ones that do are the photos the cue rescues.

    PYTHONPATH=. python scripts/grid_calibrate.py --per-person 4 --scenes 40 --max-side 512 --json out/grid512.json

Photos: the learned models' training split (``face2scene/weights/compact/split.json``): the first
``--per-person`` photos of each person and the first ``--scenes`` scenes; photo k degraded with
seed 1000 + k. Not a test.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gate_readings import data_and_presets  # noqa: E402


def main(argv=None) -> int:
    from face2scene import safeguard
    from face2scene.bench import quality as Q
    from face2scene.degrade import degrade
    from face2scene.estimate.jpeg import estimate_jpeg_quality, resized_grid
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-person", type=int, default=4)
    ap.add_argument("--scenes", type=int, default=40)
    ap.add_argument("--presets", default="clean,near-clean,s3diff,realesrgan")
    ap.add_argument("--max-side", type=int, default=512)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    data, presets = data_and_presets(a.presets)
    train = [Path(data) / p.split("shared/data/", 1)[1] for p in json.loads(Q.SPLIT_JSON.read_text())["train"]]
    people: dict = {}
    for p in train:
        if p.parent.parent.name == "identities":
            people.setdefault(p.parent.name, []).append(p)
    photos = [q for v in people.values() for q in sorted(v)[:a.per_person]]
    photos += sorted(p for p in train if p.parent.name == "scenes")[:a.scenes]
    out, t0 = [], time.process_time()
    for k, path in enumerate(photos):
        clean = Q._load(path, a.max_side)
        for preset in presets:
            deg, params = (clean, {"summary": {}}) if preset == "clean" else degrade(clean, preset, seed=1000 + k)
            strength, period = resized_grid(deg)
            out.append({"photo": str(path.relative_to(data)), "preset": preset, "truth": params["summary"],
                        "grid": round(strength, 3), "period": round(period, 3), "jpeg": estimate_jpeg_quality(deg)[0]})
    print(f"{len(photos)} photos at {a.max_side} px, GRID_MIN {safeguard.GRID_MIN:g}, {time.process_time() - t0:.0f} s CPU")
    print(f"{'preset':10s}  photos  no JPEG read  grid max  p95   median  >= GRID_MIN")
    summary = {}
    for p in presets:
        rs = [r for r in out if r["preset"] == p]
        g = np.array([r["grid"] for r in rs if r["jpeg"] is None] or [np.nan])
        s = {"photos": len(rs), "no_jpeg": int(np.isfinite(g).sum()), "max": float(np.nanmax(g)),
             "p95": float(np.nanpercentile(g, 95)), "median": float(np.nanmedian(g)),
             "at_least_min": int((g >= safeguard.GRID_MIN).sum())}
        summary[p] = s
        print(f"{p:10s}  {s['photos']:6d}  {s['no_jpeg']:12d}  {s['max']:8.1f}  {s['p95']:4.1f}  {s['median']:6.1f}  "
              f"{s['at_least_min']:11d}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"max_side": a.max_side, "grid_min": safeguard.GRID_MIN, "summary": summary,
                                      "records": out}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
