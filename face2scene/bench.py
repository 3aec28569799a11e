"""``face2scene bench quality|speed``: the numbers behind the method's claims.

quality: synthetic degradations (logged, seeded) of real photos; references are *other* photos
of the same person. Rows: the degraded input, a plain OpenCV baseline, the pipeline with the
blind estimate, with the face-derived estimate, and with the true parameters (upper bound).
speed: seconds per megapixel per stage and peak memory at 1, 4 and 16 MP, each size in a fresh
process so peak memory is that size's own.

Both print a table and write JSON and a PNG plot. Neither is a test: tests assert behaviour.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

ROWS = ("degraded", "opencv", "blind", "face", "true")


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", choices=["quality", "speed", "learned"],
                   help="quality/speed: the pipeline with --restorer; learned: FaDeX code separation and the "
                        "compact restorer against the classical one on the learned models' held-out split")
    p.add_argument("--data", type=Path, default=None, help="development photos (default: ../shared/data)")
    p.add_argument("--out", type=Path, default=Path("bench_out"), help="folder for JSON and plots")
    p.add_argument("--samples", type=int, default=20, help="quality: number of photos")
    p.add_argument("--first", type=int, default=0,
                   help="quality: start at each person's N-th photo (use another N for held-out photos)")
    p.add_argument("--preset", default=None,
                   help="degradation preset (quality: default mild; learned: default simple, the training model)")
    p.add_argument("--max-side", type=int, default=768, help="quality: photos are reduced to this long side")
    p.add_argument("--sizes", default="1,4,16", help="speed: megapixels, comma separated")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--restorer", default="classical", help="restorer to benchmark")
    p.add_argument("--weights", type=Path, default=None,
                   help="learned: a compact weights folder (default: the shipped face2scene/weights/compact)")
    p.add_argument("--per-photo", type=int, default=2, help="learned: degradations per held-out photo")


def default_data() -> Optional[Path]:
    env = os.environ.get("F2S_SHARED_DATA")
    cands = [Path(env)] if env else []
    cands += [Path.cwd().parent / "shared" / "data", Path(__file__).resolve().parents[2] / "shared" / "data"]
    for c in cands:
        if (c / "identities").is_dir():
            return c
    return None


def _fmt(v, nd=2):
    return "—" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{nd}f}"


def _print_table(header: List[str], rows: List[List[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
    text = "\n".join([line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows])
    print(text)
    return text


# ---------------------------------------------------------------------------------------------
# quality


def _samples(data: Path, n: int, first: int = 0):
    """(person, clean path, reference paths) triples, cycling over people and photos."""
    people = {p.name: sorted(q for q in p.iterdir() if q.is_file()) for p in sorted((data / "identities").iterdir()) if p.is_dir()}
    out, k = [], first
    while len(out) < n and k < 50:
        for name, files in people.items():
            if k < len(files) and len(out) < n:
                out.append((name, files[k], [f for f in files if f != files[k]]))
        k += 1
    return out


def _face_box(backend, rgb):
    faces = [f for f in backend.detect(rgb) if f.usable]
    if not faces:
        return None, None
    f = faces[0]
    x0, y0, x1, y1 = (int(round(v)) for v in f.box)
    return (max(0, x0), max(0, y0), min(rgb.shape[1], x1), min(rgb.shape[0], y1)), f


def _identity(backend, rgb, clean_face):
    """(cosine similarity, backend distance) of the identity embeddings of the restored and the
    clean face, embedded at the clean face's landmarks. dlib's 128-d vectors are not centred, so
    their cosine stays near 1; the Euclidean distance (same person < 0.6) separates better."""
    if clean_face is None:
        return None, None
    e = backend.embed(rgb, clean_face)
    c = clean_face.embedding
    return float(e @ c / (np.linalg.norm(e) * np.linalg.norm(c) + 1e-12)), backend.distance(e, c)


def bench_quality(args) -> Dict:
    import cv2
    from .degrade import degrade
    from .io import load_image
    from .metrics import psnr, ssim
    from .pipeline import Face2ScenePipeline, PipelineConfig
    from .restore import opencv_baseline
    from .types import DegradationEstimate

    data = args.data or default_data()
    if data is None or not (data / "identities").is_dir():
        print("error: no development photos found (pass --data DIR with identities/<person>/...)", file=sys.stderr)
        return {}
    cfg = PipelineConfig(device="cpu", restorer=args.restorer, seed=args.seed)
    pipes = {"face": Face2ScenePipeline(cfg)}
    pipes["blind"] = Face2ScenePipeline(PipelineConfig(**{**cfg.__dict__, "estimate_mode": "blind"}))
    backend = pipes["face"].face_backend
    records = []
    samples = _samples(data, args.samples, args.first)
    for i, (person, clean_path, refs) in enumerate(samples):
        clean = load_image(clean_path).rgb
        f = args.max_side / max(clean.shape[:2])
        if f < 1:
            clean = cv2.resize(clean, (round(clean.shape[1] * f), round(clean.shape[0] * f)), interpolation=cv2.INTER_AREA)
        box, clean_face = _face_box(backend, clean)
        degraded, params = degrade(clean, args.preset, seed=args.seed * 1000 + i)
        truth = params["summary"]
        people = {person: refs}
        outs, ests, times = {"degraded": degraded, "opencv": opencv_baseline(degraded)}, {}, {}
        for row in ("blind", "face"):
            t = time.perf_counter()
            res = pipes[row].restore(degraded, people)
            times[row] = time.perf_counter() - t
            outs[row], ests[row] = res.image, res.degradation
        given = DegradationEstimate(truth["noise_sigma"], truth["blur_sigma"], truth["jpeg_quality"], truth["scale"], "given", 1.0)
        true_pipe = Face2ScenePipeline(PipelineConfig(**{**cfg.__dict__, "estimate": given}))
        true_pipe._index_cache = pipes["face"]._index_cache  # share the analysed references
        outs["true"] = true_pipe.restore(degraded, people).image
        rec = {"person": person, "photo": clean_path.name, "size": [clean.shape[1], clean.shape[0]], "truth": truth,
               "estimates": {k: v.to_json() for k, v in ests.items()}, "seconds": times, "rows": {}}
        for row, img in outs.items():
            r = {"psnr": psnr(clean, img), "ssim": ssim(clean, img)}
            if box is not None:
                x0, y0, x1, y1 = box
                r["face_psnr"] = psnr(clean[y0:y1, x0:x1], img[y0:y1, x0:x1], border=0)
                r["face_ssim"] = ssim(clean[y0:y1, x0:x1], img[y0:y1, x0:x1], border=0)
                r["identity"], r["identity_dist"] = _identity(backend, img, clean_face)
            rec["rows"][row] = r
        for row, e in ests.items():
            jq = 100.0 if e.jpeg_quality is None else e.jpeg_quality
            tq = 100.0 if truth["jpeg_quality"] is None else truth["jpeg_quality"]
            rec["rows"][row].update({"err_noise": abs(e.noise_sigma - truth["noise_sigma"]),
                                     "err_blur": abs(e.blur_sigma - truth["blur_sigma"]),
                                     "err_jpeg": abs(jq - tq), "source": e.source})
        records.append(rec)
        print(f"[{i + 1}/{len(samples)}] {person}/{clean_path.name}: " + ", ".join(
            f"{row} {rec['rows'][row]['psnr']:.2f}" for row in ROWS) + " dB", flush=True)

    def med(row, key):
        vals = [r["rows"][row].get(key) for r in records if r["rows"][row].get(key) is not None]
        return float(np.median(vals)) if vals else None

    summary = {}
    for row in ROWS:
        summary[row] = {k: med(row, k) for k in ("psnr", "ssim", "face_psnr", "face_ssim", "identity",
                                                   "identity_dist", "err_noise", "err_blur", "err_jpeg")}
        summary[row]["psnr_gain"] = float(np.median([r["rows"][row]["psnr"] - r["rows"]["degraded"]["psnr"] for r in records]))
    labels = {"degraded": "degraded input", "opencv": "OpenCV NLM (h=10)", "blind": "pipeline, blind estimate",
              "face": "pipeline, face-derived estimate", "true": "pipeline, true parameters"}
    header = ["row (median)", "PSNR", "gain", "SSIM", "face PSNR", "face SSIM", "id cos", "id dist",
              "|Δnoise|", "|Δblur|", "|ΔJPEG q|"]
    rows = [[labels[r], _fmt(s["psnr"]), _fmt(s["psnr_gain"]), _fmt(s["ssim"], 3), _fmt(s["face_psnr"]),
             _fmt(s["face_ssim"], 3), _fmt(s["identity"], 3), _fmt(s["identity_dist"], 3), _fmt(s["err_noise"]),
             _fmt(s["err_blur"]), _fmt(s["err_jpeg"], 1)]
            for r, s in summary.items()]
    print(f"\nquality: {len(records)} photos from {data}, preset {args.preset}, restorer {args.restorer}")
    table = _print_table(header, rows)
    out = {"kind": "quality", "preset": args.preset, "samples": len(records), "summary": summary, "records": records,
           "command": " ".join(sys.argv)}
    _plot_quality(records, summary, args.out / "quality.png")
    return {**out, "table": table}


def _plot_quality(records, summary, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    gains = {row: [r["rows"][row]["psnr"] - r["rows"]["degraded"]["psnr"] for r in records] for row in ROWS[1:]}
    ax[0].boxplot(list(gains.values()), tick_labels=list(gains.keys()))
    ax[0].axhline(0, color="k", lw=0.5)
    ax[0].set_title("PSNR gain over the degraded input (dB)")
    for j, (key, name) in enumerate((("noise_sigma", "noise σ"), ("blur_sigma", "blur σ (px)"))):
        a = ax[1 + j]
        t = [r["truth"][key] for r in records]
        for row, m in (("blind", "x"), ("face", "o")):
            a.scatter(t, [r["estimates"][row][key] for r in records], marker=m, label=row)
        lim = max(max(t), 1e-3) * 1.2
        a.plot([0, lim], [0, lim], "k--", lw=0.7)
        a.set_xlabel(f"true {name}")
        a.set_ylabel(f"estimated {name}")
        a.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# speed


def _speed_child(mp: float, restorer: str) -> Dict:
    """Runs in a fresh process: one photo of ``mp`` megapixels through the whole pipeline."""
    import cv2
    from .degrade import simple_params, apply_params
    from .pipeline import Face2ScenePipeline, PipelineConfig
    from .samples import load_sample

    clean = load_sample()
    side = int(round(np.sqrt(mp * 1e6)))
    big = cv2.resize(clean, (side, side), interpolation=cv2.INTER_CUBIC)
    degraded = apply_params(big, simple_params(noise_sigma=10, blur_sigma=1.0, jpeg_quality=70, seed=1))
    del big
    ref = np.ascontiguousarray(clean[:, ::-1])
    pipe = Face2ScenePipeline(PipelineConfig(device="cpu", restorer=restorer))
    # Peak memory of the restoration itself: reset the kernel's high-water mark after making
    # the test photo (Linux); elsewhere the whole process's peak is reported.
    reset = _reset_peak_rss()
    t = time.perf_counter()
    res = pipe.restore(degraded, {"sample": [ref]})
    total = time.perf_counter() - t
    peak_mb = _peak_rss_mb()
    return {"megapixels": side * side / 1e6, "total_s": total, "stages": res.timings,
            "peak_rss_mb": peak_mb, "peak_scope": "restore" if reset else "process",
            "input_mb": degraded.nbytes / 2 ** 20, "faces": len(res.faces), "restorer": res.backends["restorer"]}


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
        code = ("import json,sys; from face2scene.bench import _speed_child; "
                f"print('@@'+json.dumps(_speed_child({mp}, {args.restorer!r})))")
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        line = [l for l in proc.stdout.splitlines() if l.startswith("@@")]
        if proc.returncode != 0 or not line:
            print(f"error: {mp} MP run failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        results.append(json.loads(line[0][2:]))
    stages = ["faces", "people", "ref-fr", "fadex", "restore", "paste"]
    header = ["MP", "total s/MP"] + [f"{s} s/MP" for s in stages] + ["peak RSS MB"]
    rows = [[_fmt(r["megapixels"], 1), _fmt(r["total_s"] / r["megapixels"])] +
            [_fmt(r["stages"].get(s, 0.0) / r["megapixels"]) for s in stages] + [_fmt(r["peak_rss_mb"], 0)] for r in results]
    print(f"\nspeed: restorer {args.restorer}, {os.cpu_count()} CPU cores")
    table = _print_table(header, rows)
    mem = {f"{r['megapixels']:.0f}": r["peak_rss_mb"] for r in results}
    ratio = None
    if len(results) >= 2:
        by = sorted(results, key=lambda r: r["megapixels"])
        ratio = by[-1]["peak_rss_mb"] / by[-2]["peak_rss_mb"]
        print(f"peak memory ratio {by[-1]['megapixels']:.0f} MP / {by[-2]['megapixels']:.0f} MP: {ratio:.2f}")
    _plot_speed(results, args.out / "speed.png")
    return {"kind": "speed", "results": results, "peak_ratio_last_two": ratio, "table": table, "peak_rss_mb": mem}


def _plot_speed(results, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    if not results:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    stages = ["faces", "people", "ref-fr", "fadex", "restore", "paste"]
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


def bench_learned_cmd(args) -> int:
    data = args.data or default_data()
    if data is None or not Path(data).is_dir():
        print("face2scene bench learned: error: no photo folder (give --data DIR or set F2S_SHARED_DATA)",
              file=sys.stderr)
        return 1
    from .models.bench_learned import bench_learned
    from .models.restorer_backend import WeightsNotFoundError
    try:
        bench_learned(data, weights=args.weights, per_photo=args.per_photo, seed=args.seed, out_dir=args.out,
                      presets=(args.preset or "simple",))
    except WeightsNotFoundError as e:
        print(f"face2scene bench learned: error: {e}", file=sys.stderr)
        return 1
    return 0


def main(args) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    if args.kind == "learned":
        return bench_learned_cmd(args)
    args.preset = args.preset or "mild"
    result = bench_quality(args) if args.kind == "quality" else bench_speed(args)
    if not result:
        return 1
    from .io import save_json_atomic
    path = save_json_atomic(args.out / f"{args.kind}.json", result)
    print(f"\nwrote {path} and {args.out / (args.kind + '.png')}")
    return 0
