"""``face2scene bench batch``: batch throughput with 1 and 2 workers (the process pool, and Ray
actors on a local cluster when Ray is installed), the Ray overhead per photo, peak memory per
worker. Prints a table and writes ``batch.json``.

Every run starts from an empty output folder, so the wall time includes starting the workers
(and the Ray cluster) and loading their models: what a user waits for. The Ray overhead per
photo compares a Ray run with the process pool at the same number of workers, with and without
the cluster's start. Photos: ``--photos`` from the development set (portraits and scenes) reduced
to ``--side`` px, restored with the references of one person; random noise without the set.

    face2scene bench batch [--photos 8] [--side 320] [--workers 1,2] [--ray local|none|ADDRESS]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

from .common import default_data, fmt, print_table


def register(p: argparse.ArgumentParser) -> None:
    """Adds the ``batch`` kind and its options to ``face2scene bench`` (after the others)."""
    kind = next(a for a in p._actions if a.dest == "kind")  # argparse keeps no public handle to it
    kind.choices = [*kind.choices, "batch"]
    p.add_argument("--photos", type=int, default=8, help="batch: number of photos")
    p.add_argument("--side", type=int, default=320, help="batch: photos reduced to this long side")
    p.add_argument("--workers", default="1,2", help="batch: worker counts, comma separated")
    p.add_argument("--ray", default="local",
                   help="batch: Ray rows too: local (a cluster started for each run), an ADDRESS, or none")
    others = p.get_default("func")
    p.set_defaults(func=lambda args: main(args) if args.kind == "batch" else others(args))


def make_photos(folder: Path, n: int, side: int, data: Optional[Path]) -> Dict[str, List[Path]]:
    """``n`` photos <= ``side`` px in ``folder`` (half portraits, half scenes), and the references
    of the portraits' first person ({} without the development set)."""
    import numpy as np
    from PIL import Image
    folder.mkdir(parents=True, exist_ok=True)
    srcs, people = [], {}
    if data is not None and (data / "identities").is_dir() and (data / "scenes").is_dir():
        ids = sorted(p for p in (data / "identities").iterdir() if p.is_dir())
        portraits = [q for p in ids for q in sorted(p.glob("*.jpg"))[2:4]]  # [:2]: the references
        scenes = sorted((data / "scenes").glob("*.png"))
        srcs = portraits[: n - n // 2] + scenes[: n // 2]
        if len(srcs) < n:
            srcs = []
        else:
            person = ids[0]
            refs = folder.parent / "refs"
            refs.mkdir(exist_ok=True)
            people[person.name] = []
            for q in sorted(person.glob("*.jpg"))[:2]:
                im = Image.open(q).convert("RGB")
                im.thumbnail((side, side))
                im.save(refs / q.name, quality=92)
                people[person.name].append(refs / q.name)
    for k in range(n):
        if srcs:
            im = Image.open(srcs[k]).convert("RGB")
        else:
            im = Image.fromarray((np.random.default_rng(k).random((side, side, 3)) * 255).astype(np.uint8))
        im.thumbnail((side, side))
        im.save(folder / f"p{k:03d}.png")
    return people


def _run(src: Path, dst: Path, config, people, workers: int, ray: Optional[str]) -> dict:
    from ..batch import gather_inputs, run_batch
    engine = None
    if ray:
        from ..batch_ray import RayEngine
        engine = RayEngine(ray)
    t0 = time.perf_counter()
    s = run_batch(gather_inputs([str(src)], dst), dst, config, people, workers=workers, engine=engine)
    wall = time.perf_counter() - t0
    rss = sorted(s.peak_rss_mb.values())
    return {"engine": "ray" if ray else "processes", "ray": ray, "workers": workers, "threads": s.threads,
            "photos": s.done, "failed": s.failed, "wall_s": round(wall, 2), "startup_s": round(s.startup_s, 2),
            "photos_per_min": round(60 * s.done / wall, 2) if wall > 0 else None,
            "worker_s_per_photo": s.stage_means.get("total"), "peak_rss_mb_per_worker": rss,
            "peak_rss_mb_max": max(rss) if rss else None}


def bench_batch(args) -> dict:
    from ..pipeline import PipelineConfig
    workers = [int(w) for w in str(args.workers).split(",") if w.strip()]
    if not workers or min(workers) < 1:
        raise ValueError(f"--workers: worker counts of at least 1, got {args.workers!r}")
    if args.photos < 1 or args.side < 16:
        raise ValueError("--photos must be at least 1 and --side at least 16")
    ray = None if str(args.ray).lower() in ("", "none", "off") else args.ray
    if ray:
        from ..batch_ray import RAY_HINT, ray_available
        if not ray_available():
            print(f"note: {RAY_HINT}; process pool only", file=sys.stderr)
            ray = None
    data = args.data or default_data()
    config = PipelineConfig(restorer=args.restorer, device="cpu", seed=args.seed)
    runs = []
    with tempfile.TemporaryDirectory(prefix="f2s-bench-batch-") as tmp:
        src = Path(tmp) / "src"
        people = make_photos(src, args.photos, args.side, data)
        print(f"{args.photos} photos <= {args.side} px ({'development set' if people else 'noise'}), "
              f"restorer {args.restorer}, {os.cpu_count()} CPU(s); every run from an empty folder")
        for w in workers:
            for engine in [None] + ([ray] if ray else []):
                dst = Path(tmp) / f"out-{'ray' if engine else 'pool'}-{w}"
                runs.append(_run(src, dst, config, people or None, w, engine))
                print(f"  {runs[-1]['engine']} x {w}: {runs[-1]['wall_s']:.1f} s", file=sys.stderr)
    pool = {r["workers"]: r for r in runs if r["engine"] == "processes"}
    for r in runs:
        base = pool.get(r["workers"])
        if r["engine"] == "ray" and base and r["photos"]:
            r["ray_overhead_s_per_photo"] = round((r["wall_s"] - base["wall_s"]) / r["photos"], 3)
            r["ray_overhead_s_per_photo_after_start"] = round(
                (r["wall_s"] - r["startup_s"] - base["wall_s"]) / r["photos"], 3)
    rows = [[r["engine"], str(r["workers"]), str(r["threads"]), fmt(r["wall_s"], 1), fmt(r["startup_s"], 1),
             fmt(r["photos_per_min"], 1), fmt(r["worker_s_per_photo"]),
             fmt(r.get("ray_overhead_s_per_photo")), fmt(r.get("ray_overhead_s_per_photo_after_start")),
             ", ".join(f"{v:.0f}" for v in r["peak_rss_mb_per_worker"]) or "—"] for r in runs]
    print_table(["engine", "workers", "threads", "wall s", "start s", "photos/min", "s/photo (worker)",
                 "Ray +s/photo", "(after start)", "peak MB per worker"], rows)
    return {"photos": args.photos, "side": args.side, "restorer": args.restorer, "cpus": os.cpu_count(),
            "data": bool(people), "runs": runs}


def main(args) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        result = bench_batch(args)
    except ValueError as e:
        print(f"face2scene bench batch: error: {e}", file=sys.stderr)
        return 2
    from ..io import save_json_atomic
    path = save_json_atomic(args.out / "batch.json", result)
    print(f"\nwrote {path}")
    return 0
