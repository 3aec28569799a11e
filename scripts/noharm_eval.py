"""Issue 9 reproduction: does the pipeline harm clean and near-clean photos?

Runs ``Face2ScenePipeline`` (default restorer unless --restorer) on a few identity photos
(references = that person's other photos, as ``face2scene bench quality`` does) and scenes, at
presets clean / near-clean / mild, and prints per photo and per preset: whole-photo PSNR gain over
the input, the estimate (noise, blur, JPEG, source) and the texture ratio (Laplacian energy of the
result / of the clean photo). ``--upscale-check`` also compares ``--upscale 2`` of clean photos
downscaled by 2 with bicubic.

    PYTHONPATH=. python scripts/noharm_eval.py --split dev --presets clean,near-clean,mild
    PYTHONPATH=. python scripts/noharm_eval.py --split val --mode new --json out.json

``--mode baseline`` runs the pipeline with ``do_no_harm=False`` (as before issue 9); ``--mode new``
(default) with the calibrated estimate and the do-no-harm step (face2scene.safeguard).
``--grain`` reads only the grain (``noise_stats.grain_noise``) of the same degraded photos (and,
with ``--all-photos``, of every identity photo and scene at ``--max-side``, plus the real old photos
at their own size) and counts where the gate would restore gently (``safeguard.grain_reason``):
cheap, and where it does not trigger the pipeline's output is the same as without the grain step.

    PYTHONPATH=. python scripts/noharm_eval.py --grain --split val --presets clean,near-clean,mild,old_photo --max-side 512
    PYTHONPATH=. python scripts/noharm_eval.py --grain --all-photos --presets clean,near-clean,mild,old_photo --max-side 512

``--compare BEFORE.json AFTER.json`` prints the two runs' per-preset summaries side by side
(median and worst gain, estimate medians) without running anything.

    PYTHONPATH=. python scripts/noharm_eval.py --compare base_val.json new_val.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

# the learned models' validation split (face2scene/weights/compact/split.json): persons and scenes
VAL_PERSONS = ("elon_musk", "scarlett_johansson")
VAL_SCENES = ("sunhays80_ruin_sun_booxopykmiqnsqbq.jpg", "sunhays80_building_facade_sun_bpaohzcfkhzodryb.jpg",
              "cbsd68_145086.png", "sunhays80_vineyard_sun_buwfkswrpuoxtfnt.jpg")
DEV_PERSONS = ("angelina_jolie", "jennifer_aniston", "katy_perry", "matt_damon", "george_clooney",
               "jack_dorsey", "mark_zuckerberg", "leonardo_dicaprio")
DEV_SCENES = ("sunhays80_monastery_outdoor_sun_bipqeqxnyqywgnqw.jpg", "sunhays80_house_sun_bgjytsucreqesmlo.jpg",
              "cbsd68_101087.png", "sunhays80_forest_path_sun_amolizervsrahvyf.jpg")


PSNR_CAP = 60.0


def lap_energy(rgb: np.ndarray) -> float:
    from face2scene.estimate.jpeg import luma
    lap = cv2.Laplacian(luma(rgb), cv2.CV_64F)
    return float((lap[4:-4, 4:-4] ** 2).mean())


def samples(data: Path, split: str, n_people: int, n_scenes: int, first: int = 0):
    """[(kind, name, clean path, {person: refs} or None)]: one photo per person first, then more."""
    persons = VAL_PERSONS if split == "val" else DEV_PERSONS
    files = {p: sorted(q for q in (data / "identities" / p).iterdir() if q.is_file()) for p in persons}
    out, k = [], first
    while len([o for o in out if o[0] == "person"]) < n_people and k < 20:
        for p in persons:
            if k < len(files[p]) and len([o for o in out if o[0] == "person"]) < n_people:
                f = files[p][k]
                out.append(("person", f"{p}/{f.name}", f, {p: [g for g in files[p] if g != f]}))
        k += 1
    scenes = VAL_SCENES if split == "val" else DEV_SCENES
    out += [("scene", s, data / "scenes" / s, None) for s in scenes[:n_scenes]]
    return out


def load(path: Path, max_side: int) -> np.ndarray:
    from face2scene.datasets import load_rgb
    return load_rgb(str(path), max_side, resample="area")


def make_pipeline(mode: str, restorer: str, upscale: int = 1):
    from face2scene.pipeline import Face2ScenePipeline, PipelineConfig
    # baseline: the pipeline as it was before issue 9 (no flat-block noise, no calibration, no back-off)
    return Face2ScenePipeline(PipelineConfig(device="cpu", restorer=restorer, upscale=upscale,
                                             do_no_harm=(mode == "new")))


def run(args) -> dict:
    from face2scene.degrade import degrade
    from face2scene.metrics import psnr
    pipe = make_pipeline(args.mode, args.restorer)
    recs = []
    todo = samples(args.data, args.split, args.people, args.scenes, args.first)
    for preset in args.presets:
        for i, (kind, name, path, people) in enumerate(todo):
            clean = load(path, args.max_side)
            deg, params = degrade(clean, preset, seed=args.seed * 1000 + i)
            t = time.perf_counter()
            res = pipe.restore(deg, people)
            secs = time.perf_counter() - t
            e = res.degradation
            r = {"preset": preset, "kind": kind, "name": name, "truth": params["summary"],
                 "psnr_in": psnr(clean, deg), "psnr_out": psnr(clean, res.image),
                 "tex": lap_energy(res.image) / max(lap_energy(clean), 1e-9),
                 "tex_in": lap_energy(deg) / max(lap_energy(clean), 1e-9),
                 "est": {"noise": e.noise_sigma, "blur": e.blur_sigma, "jpeg": e.jpeg_quality,
                         "scale": e.scale, "source": e.source, "conf": e.confidence},
                 "restorer": getattr(res.backends, "restorer", None), "seconds": secs,
                 "warnings": [w for w in res.warnings if "do-no-harm" in w or "estimate" in w][:3]}
            # capped at 60 dB (as bench learned does): an unchanged clean photo gains 0, not inf
            r["gain"] = min(r["psnr_out"], PSNR_CAP) - min(r["psnr_in"], PSNR_CAP)
            cal = e.details.get("calibration", {})
            r["est"].update({"raw_noise": cal.get("raw_noise"), "raw_blur": cal.get("raw_blur"),
                             "flat_noise": cal.get("flat_noise"), "face_blur": e.details.get("face_blur"),
                             "blind_blur": (e.details.get("blind") or {}).get("blur_sigma"),
                             "strength": (e.details.get("do_no_harm") or {}).get("strength")})
            recs.append(r)
            tr = params["summary"]
            print(f"{preset:10s} {name[:44]:44s} gain {r['gain']:+6.2f} dB  est n {e.noise_sigma:5.1f} "
                  f"b {e.blur_sigma:4.2f} q {e.jpeg_quality} s {e.scale:.2f} {e.source:5s} | true n "
                  f"{tr['noise_sigma']:4.1f} b {tr['blur_sigma']:4.2f} q {tr['jpeg_quality']} | tex "
                  f"{r['tex']:.2f} ({secs:.0f}s)", flush=True)
            for w in r["warnings"]:
                print("      ", w[:160])
    return {"records": recs, "summary": summarize(recs)}


def summarize(recs) -> dict:
    out = {}
    for preset in dict.fromkeys(r["preset"] for r in recs):
        for kind in ("all", "person", "scene"):
            rs = [r for r in recs if r["preset"] == preset and (kind == "all" or r["kind"] == kind)]
            if not rs:
                continue
            g = [r["gain"] for r in rs]
            out[f"{preset}/{kind}"] = {
                "n": len(rs), "median_gain": float(np.median(g)), "worst_gain": float(np.min(g)),
                "noise_est_median": float(np.median([r["est"]["noise"] for r in rs])),
                "blur_est_median": float(np.median([r["est"]["blur"] for r in rs])),
                "noise_err_median": float(np.median([abs(r["est"]["noise"] - r["truth"]["noise_sigma"]) for r in rs])),
                "tex_median": float(np.median([r["tex"] for r in rs]))}
    print(f"\n{'preset/kind':22s} {'n':>3s} {'med gain':>9s} {'worst':>8s} {'noise est':>9s} {'|Δnoise|':>8s} "
          f"{'blur est':>8s} {'texture':>8s}")
    for k, s in out.items():
        print(f"{k:22s} {s['n']:3d} {s['median_gain']:+9.2f} {s['worst_gain']:+8.2f} {s['noise_est_median']:9.2f} "
              f"{s['noise_err_median']:8.2f} {s['blur_est_median']:8.2f} {s['tex_median']:8.2f}")
    return out


def grain_check(args) -> dict:
    """The grain reading and the gate's gentle-restoration rule on degraded (and real old) photos."""
    from face2scene.degrade import degrade
    from face2scene.io import load_image
    from face2scene.noise_stats import grain_noise
    from face2scene.safeguard import grain_reason
    if args.all_photos:
        todo = [("person", f"{q.parent.name}/{q.name}", q, None) for q in sorted((args.data / "identities").glob("*/*"))]
        todo += [("scene", q.name, q, None) for q in sorted((args.data / "scenes").iterdir())]
    else:
        todo = samples(args.data, args.split, args.people, args.scenes, args.first)
    recs = []

    def one(preset, name, rgb, truth=None):
        g = grain_noise(rgb)
        why = grain_reason(g)
        r = {"preset": preset, "name": name, "level": round(g.level, 3), "chroma": round(g.chroma, 3),
             "chroma_ratio": round(g.chroma_ratio, 3), "gentle": why, "truth": truth}
        recs.append(r)
        if why or not args.all_photos:
            print(f"{preset:10s} {name[:40]:40s} level {g.level:5.2f} chroma {g.chroma:5.2f} ratio {g.chroma_ratio:5.2f} "
                  f"{'GENTLE' if why else '-'}", flush=True)

    for preset in args.presets:
        for i, (kind, name, path, people) in enumerate(todo):
            clean = load(path, args.max_side)
            deg, params = degrade(clean, preset, seed=args.seed * 1000 + i) if preset != "clean" else (clean, None)
            one(preset, name, deg, None if params is None else params["summary"])
    old = args.data / "old_photos"
    if args.all_photos and old.is_dir():
        for q in sorted(old.iterdir()):
            one("real-old", q.name, load_image(str(q)).rgb)
    print(f"\n{'preset':10s} {'n':>4s} {'gentle':>6s} {'max level':>9s} {'max ratio (chroma>=1)':>22s}")
    summary = {}
    for preset in dict.fromkeys(r["preset"] for r in recs):
        rs = [r for r in recs if r["preset"] == preset]
        hi = [r["chroma_ratio"] for r in rs if r["chroma"] >= 1.0]
        summary[preset] = {"n": len(rs), "gentle": sum(bool(r["gentle"]) for r in rs),
                           "max_level": max(r["level"] for r in rs), "max_ratio_chroma_ge_1": max(hi, default=None)}
        s = summary[preset]
        print(f"{preset:10s} {s['n']:4d} {s['gentle']:6d} {s['max_level']:9.2f} "
              f"{'—' if s['max_ratio_chroma_ge_1'] is None else format(s['max_ratio_chroma_ge_1'], '.2f'):>22s}")
    return {"records": recs, "summary": summary}


def upscale_check(args) -> dict:
    """--upscale 2 of clean photos downscaled by 2 (area) against bicubic, PSNR to the original."""
    from face2scene.metrics import psnr
    pipe = make_pipeline(args.mode, args.restorer, upscale=2)
    recs = []
    for i, (kind, name, path, people) in enumerate(samples(args.data, args.split, args.people, args.scenes,
                                                               args.first)):
        clean = load(path, args.max_side)
        h, w = clean.shape[0] // 2 * 2, clean.shape[1] // 2 * 2
        clean = clean[:h, :w]
        small = cv2.resize(clean, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        bic = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        res = pipe.restore(small, people)
        r = {"name": name, "bicubic": psnr(clean, bic), "pipeline": psnr(clean, res.image),
             "est": res.degradation.to_json()}
        recs.append(r)
        print(f"x2 {name[:44]:44s} bicubic {r['bicubic']:.2f} pipeline {r['pipeline']:.2f} "
              f"({r['pipeline'] - r['bicubic']:+.2f}) est n {res.degradation.noise_sigma:.1f} "
              f"b {res.degradation.blur_sigma:.2f}", flush=True)
    d = [r["pipeline"] - r["bicubic"] for r in recs]
    print(f"upscale x2 vs bicubic: median {np.median(d):+.2f} dB, worst {np.min(d):+.2f} dB")
    return {"records": recs, "median": float(np.median(d)), "worst": float(np.min(d))}


def compare(before: Path, after: Path) -> dict:
    """Per preset/kind: median and worst gain, noise and blur estimate medians, before -> after."""
    a, b = (json.loads(Path(p).read_text())["summary"] for p in (before, after))
    print(f"{'preset/kind':22s} {'n':>5s} {'median gain':>15s} {'worst gain':>17s} {'noise est':>13s} {'blur est':>13s}")
    rows = {}
    for k in dict.fromkeys(list(a) + list(b)):
        x, y = a.get(k), b.get(k)
        if x is None or y is None:
            continue
        rows[k] = {"before": x, "after": y}
        print(f"{k:22s} {x['n']:2d}/{y['n']:<2d} {x['median_gain']:+6.2f} > {y['median_gain']:+6.2f} "
              f"{x['worst_gain']:+7.2f} > {y['worst_gain']:+7.2f} {x['noise_est_median']:5.2f} > {y['noise_est_median']:5.2f} "
              f"{x['blur_est_median']:5.2f} > {y['blur_est_median']:5.2f}")
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--split", choices=["dev", "val"], default="dev")
    ap.add_argument("--presets", default="clean,near-clean,mild")
    ap.add_argument("--people", type=int, default=8)
    ap.add_argument("--scenes", type=int, default=4)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--max-side", type=int, default=768)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--restorer", default="auto")
    ap.add_argument("--mode", choices=["baseline", "new"], default="new")
    ap.add_argument("--upscale-check", action="store_true")
    ap.add_argument("--grain", action="store_true", help="only the grain reading and the gentle-restoration rule")
    ap.add_argument("--all-photos", action="store_true", help="--grain: every identity photo and scene, and the old photos")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--compare", type=Path, nargs=2, metavar=("BEFORE", "AFTER"), default=None)
    args = ap.parse_args(argv)
    if args.compare:
        compare(*args.compare)
        return 0
    args.presets = [p for p in args.presets.split(",") if p]
    if not (args.data / "identities").is_dir():
        print(f"no photos at {args.data}", file=sys.stderr)
        return 1
    out = grain_check(args) if args.grain else upscale_check(args) if args.upscale_check else run(args)
    out["args"] = {k: str(v) for k, v in vars(args).items()}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
