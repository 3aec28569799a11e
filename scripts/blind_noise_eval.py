"""Issue 9 item 5: how well does the photo alone say how noisy it is (no face, no references)?

Degrades photos without using their faces (the scenes of ``../shared/data`` and the identity
photos, treated as no-face photos) with the ``face2scene degrade`` presets, and compares three
noise readings with the true noise σ (``params["summary"]["noise_sigma"]``, colour-noise σ on
0..255 before compression):

* ``blind``    — ``estimate.blind_estimate(photo, jpeg)``: the whole-photo fit on its own (what the
  compact restorer, ``bench learned`` and ``do_no_harm=False`` use);
* ``flat``     — ``noise_stats.flat_noise(photo, q, offset)``: the photo's own, JPEG-aware noise
  reading (the do-no-harm bound);
* ``dct``      — ``estimate.noise.dct_noise``: the block-DCT reading with the quantisation modelled;
* ``pipeline`` — what ``Face2ScenePipeline`` reports for a photo without a face: the blind fit
  with the flat reading as known noise, then ``safeguard.calibrate_estimate``.

Prints |Δnoise| median / 90th percentile per preset and method (and the JPEG presets pooled) and
writes every record (photo, preset, seed, all logged degradation parameters, readings) as JSON.

    PYTHONPATH=. python scripts/blind_noise_eval.py --split val --json out/blind_noise_val.json
    PYTHONPATH=. python scripts/blind_noise_eval.py --split train --scenes 8 --people 4 --methods flat

Presets: the ``face2scene degrade`` ones named in ``--presets`` and ``jpeg-heavy``, defined here:
``degrade.simple_params`` with colour noise σ U(0, 20), blur U(0, 1) px and JPEG q U(30, 75)
(every draw logged). The split is the learned models' (``face2scene/weights/compact/split.json``).

Validation split, 10 scenes + 4 identity photos at 384 px, 14 photos per preset; median / 90th
percentile |Δσ|, before (main at 930ab1c) → after (``docs/bench/blind_noise_val_{before,after}.json``;
``--split val --scenes 10 --people 4 --max-side 384``):

    preset        blind (no known noise)          flat (pipeline's reading)    pipeline, no face
    clean         6.05/10.88 → 0.00/1.17          0.48/1.70 → 0.00/1.17         0.00/1.38 → 0.00/0.76
    near-clean    3.30/ 6.04 → 0.14/0.59          0.27/1.56 → 0.14/0.59         0.51/1.39 → 0.51/0.89
    mild          0.85/ 7.67 → 0.09/0.83          0.22/0.83 → 0.09/0.83         0.26/0.74 → 0.13/0.89
    jpeg-heavy    5.44/11.24 → 0.70/2.31          1.15/2.41 → 0.70/2.31         1.07/2.37 → 0.65/2.31
    old_photo     2.66/ 4.59 → 2.52/4.88          2.83/5.37 → 2.52/4.88         2.80/5.39 → 2.54/4.93
    s3diff        8.09/12.95 → 5.92/13.98         5.66/12.40 → 5.92/13.98       5.85/12.89 → 6.17/13.98
    realesrgan   15.90/25.65 → 15.87/24.14       14.17/22.16 → 15.87/24.14     14.61/22.36 → 15.92/24.16
    JPEG presets  5.96/15.30 → 2.51/16.69         2.32/13.94 → 2.51/16.69       2.19/14.24 → 2.54/16.69

s3diff and realesrgan add their noise at a reduced size and scale it back up (and filter it):
what is left is low-frequency, which a white-noise reading does not see, and their "true σ" is
the noise before that filtering. Neither reading solves them; they dominate the pooled row.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from noharm_eval import load  # the photo, its long side reduced (area) to max_side

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PRESETS = ("clean", "near-clean", "mild", "jpeg-heavy", "s3diff", "realesrgan", "old_photo")
METHODS = ("blind", "flat", "pipeline", "dct")
DEFAULT_METHODS = ("blind", "flat", "pipeline")


def split_photos(data: Path, split: str):
    """(kind, path) of the split's scenes and identity photos, scenes first."""
    spec = json.loads((ROOT / "face2scene" / "weights" / "compact" / "split.json").read_text())
    names = spec["val"] if split == "val" else spec["train"]
    paths = [data / Path(n).relative_to("../shared/data") for n in names]
    scenes = [("scene", p) for p in paths if p.parent.name == "scenes"]
    people = [("person", p) for p in paths if p.parent.parent.name == "identities"]
    return scenes, people


def degrade_photo(rgb: np.ndarray, preset: str, seed: int):
    """(degraded, params with every drawn value and the summary) for a preset of this script."""
    from face2scene.degrade import apply_params, degrade, simple_params
    if preset == "jpeg-heavy":
        rng = np.random.default_rng(seed)
        noise, blur, q = float(rng.uniform(0, 20)), float(rng.uniform(0, 1)), int(rng.integers(30, 76))
        params = simple_params(noise_sigma=noise, blur_sigma=blur, jpeg_quality=q, seed=seed,
                               size=(rgb.shape[1], rgb.shape[0]))
        params.update(preset="jpeg-heavy", seed=seed)
        return apply_params(rgb, params), params
    return degrade(rgb, preset, seed=seed)


def readings(deg: np.ndarray, methods, seed: int = 0) -> dict:
    """Noise readings of a degraded photo by the methods asked for (the pipeline's own calls)."""
    from face2scene import safeguard
    from face2scene.estimate import blind_estimate, estimate_jpeg_quality
    from face2scene.noise_stats import flat_noise
    jpeg = estimate_jpeg_quality(deg)
    out = {"jpeg_estimate": jpeg[0]}
    flat = None
    if "flat" in methods or "pipeline" in methods:
        t = time.perf_counter()
        flat = flat_noise(deg, jpeg[0], tuple(jpeg[2].get("offset", (0, 0))), seed=seed)
        out["flat"] = float(flat.sigma)
        out["flat_seconds"] = time.perf_counter() - t
    if "dct" in methods:
        from face2scene.estimate.noise import dct_noise
        t = time.perf_counter()
        out["dct"] = float(dct_noise(deg, jpeg[0], tuple(jpeg[2].get("offset", (0, 0)))).sigma)
        out["dct_seconds"] = time.perf_counter() - t
    if "blind" in methods:
        t = time.perf_counter()
        out["blind"] = float(blind_estimate(deg, jpeg, seed=seed).noise_sigma)
        out["blind_seconds"] = time.perf_counter() - t
    if "pipeline" in methods:  # as Face2ScenePipeline._estimate does for a photo without a face
        known = flat.sigma if safeguard.noise_bound(flat) is not None else None
        b = blind_estimate(deg, jpeg, seed=seed, known_noise=known)
        out["pipeline"] = float(safeguard.calibrate_estimate(b, flat).noise_sigma)
    return out


def summarize(recs, methods, presets) -> dict:
    jpeg_presets = [p for p in presets if p not in ("clean", "near-clean")]
    groups = {p: [r for r in recs if r["preset"] == p] for p in presets}
    groups["JPEG presets"] = [r for r in recs if r["preset"] in jpeg_presets]
    out = {}
    for g, rs in groups.items():
        if not rs:
            continue
        out[g] = {"n": len(rs), "true_median": float(np.median([r["truth"]["noise_sigma"] for r in rs]))}
        for m in methods:
            err = np.array([abs(r[m] - r["truth"]["noise_sigma"]) for r in rs if m in r])
            est = np.array([r[m] for r in rs if m in r])
            out[g][m] = {"median": float(np.median(err)), "p90": float(np.percentile(err, 90)),
                         "est_median": float(np.median(est)), "est_max": float(est.max())}
    return out


def print_summary(summary, methods) -> None:
    head = f"{'preset':14s} {'n':>3s} {'true σ':>7s} " + " ".join(f"{m + ' |Δ| med/p90':>22s}" for m in methods)
    print("\n" + head)
    for g, s in summary.items():
        cells = " ".join(f"{s[m]['median']:10.2f} / {s[m]['p90']:9.2f}" for m in methods if m in s)
        print(f"{g:14s} {s['n']:3d} {s['true_median']:7.2f} {cells}")
    print("(|Δnoise| = |estimated − true colour-noise σ|, 0..255; 'JPEG presets' pools every preset but "
          "clean and near-clean)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--split", choices=("val", "train"), default="val")
    ap.add_argument("--scenes", type=int, default=1000, help="at most this many scenes of the split")
    ap.add_argument("--people", type=int, default=1000, help="at most this many identity photos of the split")
    ap.add_argument("--presets", default=",".join(DEFAULT_PRESETS))
    ap.add_argument("--methods", default=",".join(DEFAULT_METHODS), help=f"any of {','.join(METHODS)}")
    ap.add_argument("--max-side", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"error: no data folder {args.data}", file=sys.stderr)
        return 2
    presets = [p for p in args.presets.split(",") if p]
    methods = [m for m in args.methods.split(",") if m]
    bad = [m for m in methods if m not in METHODS]
    if bad:
        print(f"error: unknown method(s) {bad}; choose from {METHODS}", file=sys.stderr)
        return 2
    scenes, people = split_photos(args.data, args.split)
    todo = scenes[:args.scenes] + people[:args.people]
    recs = []
    for i, (kind, path) in enumerate(todo):
        clean = load(path, args.max_side)
        for preset in presets:
            seed = args.seed * 1000 + i
            deg, params = degrade_photo(clean, preset, seed)
            r = {"photo": str(path.relative_to(args.data)), "kind": kind, "preset": preset, "seed": seed,
                 "size": [clean.shape[1], clean.shape[0]], "truth": params["summary"], "params": params}
            r.update(readings(deg, methods, seed=0))
            recs.append(r)
            print(f"{preset:11s} {path.name[:40]:40s} true {r['truth']['noise_sigma']:5.1f} q "
                  f"{r['truth']['jpeg_quality']} | " + "  ".join(f"{m} {r[m]:5.1f}" for m in methods), flush=True)
    summary = summarize(recs, methods, presets)
    print_summary(summary, methods)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"command": " ".join(sys.argv), "args": {k: str(v) for k, v in vars(args).items()},
                                         "summary": summary, "records": recs}, indent=1, default=str))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
