"""``face2scene bench quality``: synthetic degradations (logged, seeded) of real photos through the
pipeline; references are *other* photos of the same person (see :mod:`face2scene.bench`)."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Dict

import numpy as np

from . import common
from .common import fmt, print_table

ROWS = ("degraded", "opencv", "blind", "face", "true")


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
    from ..degrade import degrade
    from ..io import load_image
    from ..metrics import psnr, ssim
    from ..pipeline import Face2ScenePipeline, PipelineConfig
    from ..restorers.classical import opencv_baseline
    from ..types import DegradationEstimate

    data = args.data or common.default_data()
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
    rows = [[labels[r], fmt(s["psnr"]), fmt(s["psnr_gain"]), fmt(s["ssim"], 3), fmt(s["face_psnr"]),
             fmt(s["face_ssim"], 3), fmt(s["identity"], 3), fmt(s["identity_dist"], 3), fmt(s["err_noise"]),
             fmt(s["err_blur"]), fmt(s["err_jpeg"], 1)]
            for r, s in summary.items()]
    print(f"\nquality: {len(records)} photos from {data}, preset {args.preset}, restorer {args.restorer}")
    table = print_table(header, rows)
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
