"""``face2scene bench speed``: seconds per megapixel per stage and peak memory, each size in a
fresh process so peak memory is that size's own (see :mod:`face2scene.bench`)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict

import numpy as np

from ..options import STAGES
from .common import fmt, print_table


def _speed_child(mp: float, restorer: str) -> Dict:
    """Runs in a fresh process: one photo of ``mp`` megapixels through the whole pipeline."""
    import cv2
    from ..degrade import apply_params, simple_params
    from ..pipeline import Face2ScenePipeline, PipelineConfig
    from ..samples import load_sample

    clean = load_sample()
    side = int(round(np.sqrt(mp * 1e6)))
    big = cv2.resize(clean, (side, side), interpolation=cv2.INTER_CUBIC)
    degraded = apply_params(big, simple_params(noise_sigma=10, blur_sigma=1.0, jpeg_quality=70, seed=1))
    del big
    ref = np.ascontiguousarray(clean[:, ::-1])
    pipe = Face2ScenePipeline(PipelineConfig(device="cpu", restorer=restorer))
    # Loading the models (torch, diffusers and the weights for a learned restorer; dlib's) is a
    # once-per-process cost, the same at any photo size: timed on its own, not per megapixel.
    t, c = time.perf_counter(), time.process_time()
    pipe.restorer, pipe.face_backend  # noqa: B018 (loaded on first use)
    load_s, load_cpu_s = time.perf_counter() - t, time.process_time() - c
    # Peak memory of the restoration itself: reset the kernel's high-water mark after making
    # the test photo (Linux); elsewhere the whole process's peak is reported.
    reset = _reset_peak_rss()
    stage_cpu = _StageCPU()
    t, c = time.perf_counter(), time.process_time()
    res = pipe.restore(degraded, {"sample": [ref]}, progress=stage_cpu)
    total, cpu = time.perf_counter() - t, time.process_time() - c
    peak_mb = _peak_rss_mb()
    return {"megapixels": side * side / 1e6, "total_s": total, "cpu_s": cpu, "load_s": load_s,
            "load_cpu_s": load_cpu_s, "stages": res.timings, "stages_cpu": stage_cpu.seconds,
            "load_avg": os.getloadavg()[0],
            "peak_rss_mb": peak_mb, "peak_scope": "restore" if reset else "process",
            "input_mb": degraded.nbytes / 2 ** 20, "faces": len(res.faces), "restorer": res.backends.restorer}


class _StageCPU:
    """A progress callback that adds up each stage's CPU time (all threads) between the start
    (fraction 0, no message) and "done" reports every stage gives: on a shared machine the wall
    time per stage says more about the neighbours than about the code."""

    def __init__(self) -> None:
        self.seconds: Dict[str, float] = {}
        self._start: Dict[str, float] = {}

    def __call__(self, stage: str, fraction: float, message: str = "") -> None:
        if fraction == 0.0 and not message:
            self._start[stage] = time.process_time()
        elif fraction == 1.0 and message == "done" and stage in self._start:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.process_time() - self._start.pop(stage)


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_speed(args) -> Dict:
    sizes = [float(s) for s in args.sizes.split(",") if s.strip()]
    results = []
    for mp in sizes:
        print(f"running {mp:g} MP in a fresh process...", flush=True)
        code = ("import json,sys; from face2scene.bench.speed import _speed_child; "
                f"print('@@'+json.dumps(_speed_child({mp}, {args.restorer!r})))")
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        line = [l for l in proc.stdout.splitlines() if l.startswith("@@")]
        if proc.returncode != 0 or not line:
            print(f"error: {mp} MP run failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        results.append(json.loads(line[0][2:]))
    stages = STAGES
    header = (["MP", "total s/MP", "CPU s/MP"] + [f"{s} s/MP" for s in stages] +
              ["load s (CPU)", "with load s/MP", "peak RSS MB", "load avg"])
    rows = [[fmt(r["megapixels"], 1), fmt(r["total_s"] / r["megapixels"]), fmt(r["cpu_s"] / r["megapixels"])] +
            [fmt(r["stages"].get(s, 0.0) / r["megapixels"]) for s in stages] +
            [f"{r['load_s']:.1f} ({r['load_cpu_s']:.1f})", fmt((r["total_s"] + r["load_s"]) / r["megapixels"]),
             fmt(r["peak_rss_mb"], 0), fmt(r["load_avg"], 1)] for r in results]
    print(f"\nspeed: restorer {args.restorer}, {os.cpu_count()} CPU cores (total: one photo with the models "
          "loaded; CPU: all threads' CPU time; load: loading the models once per process; load avg: the "
          "machine's 1-minute load at the end)")
    table = print_table(header, rows)
    print("\nCPU seconds per megapixel per stage (all threads; what the stage costs, whatever the load):")
    cpu_table = print_table(["MP"] + [f"{s} CPU s/MP" for s in stages],
                            [[fmt(r["megapixels"], 1)] + [fmt(r.get("stages_cpu", {}).get(s, 0.0) / r["megapixels"])
                                                          for s in stages] for r in results])
    mem = {f"{r['megapixels']:.0f}": r["peak_rss_mb"] for r in results}
    ratio = None
    if len(results) >= 2:
        by = sorted(results, key=lambda r: r["megapixels"])
        ratio = by[-1]["peak_rss_mb"] / by[-2]["peak_rss_mb"]
        print(f"peak memory ratio {by[-1]['megapixels']:.0f} MP / {by[-2]['megapixels']:.0f} MP: {ratio:.2f}")
    _plot_speed(results, args.out / "speed.png")
    return {"kind": "speed", "results": results, "peak_ratio_last_two": ratio, "table": table, "cpu_table": cpu_table,
            "peak_rss_mb": mem}


def _plot_speed(results, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    if not results:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    stages = STAGES
    bottom = np.zeros(len(results))
    x = [f"{r['megapixels']:.0f} MP" for r in results]
    for s in stages:
        v = np.array([r["stages"].get(s, 0.0) / r["megapixels"] for r in results])
        ax[0].bar(x, v, bottom=bottom, label=s)
        bottom += v
    ax[0].set_ylabel("seconds per megapixel")
    ax[0].legend()
    ax[1].plot([r["megapixels"] for r in results], [r["peak_rss_mb"] for r in results], "o-")
    ax[1].set_xlabel("megapixels")
    ax[1].set_ylabel("peak RSS (MB)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
