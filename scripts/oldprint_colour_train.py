"""Train the learned blind colour prior of old colour prints (``tone.learned_colour_prior``,
issue 11): training-split photos (``datasets.split_photos``; the bench's scenes left out) each
degraded as ``old_colour_print`` with several seeds, put through the tone step's levels
(``print_tone(..., levels_only=True)``), and the ridge map of their chroma to the clean photo's fitted
(``tone.fit_colour_prior``). The ridge strength is chosen by 4-fold cross-validation over photo
groups (a person's photos stay in one fold); the validation split (other seeds) is reported, never
fitted. Writes ``model.json`` (weights, the training features' mean and std, the command and the
numbers) to ``--out``.

    python scripts/oldprint_colour_train.py [--seeds 1,2,3,4,5,6] [--side 192]
                                            [--out face2scene/weights/colour_prior] [--json report.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from face2scene import degrade as D
from face2scene.datasets import list_photos, split_photos
from face2scene.tone import (LearnedColour, colour_features, fit_colour_prior, is_monochrome, print_tone,
                             _COLOUR_BASIS)
from oldprint_bench import SCENES, delta_e  # noqa: E402  (scripts/ is on the path when run as a script)
from oldprint_detect_eval import load  # noqa: E402


def samples(photos, seeds, side):
    """(group, clean, degraded, after the levels) per photo and seed."""
    out = []
    for i, p in enumerate(photos):
        clean = load(Path(p.path), side)
        for s in seeds:
            deg, _, _ = D.degrade_with_masks(clean, "old_colour_print", seed=s * 10000 + i)
            lev, _ = print_tone(deg, is_monochrome(deg), damaged=True, mode="auto", levels_only=True)
            out.append((p.group, clean, deg, lev))
    return out


def apply_w(img, w):
    f = colour_features(img)
    coef = (f[None, :, None] * w.reshape(_COLOUR_BASIS, len(f), 2)).sum(axis=1)
    return LearnedColour(coef=coef, confidence=1.0).apply(img)


def score(rows, w):
    """Mean ΔE2000 of the input, after the levels and after the map (and how often better)."""
    r = np.array([(delta_e(deg, clean), delta_e(lev, clean), delta_e(apply_w(lev, w), clean))
                  for _, clean, deg, lev in rows])
    m = r.mean(axis=0)
    return {"n": len(r), "de_in": m[0], "de_levels": m[1], "de_learned": m[2], "ratio_levels": m[1] / m[0],
            "ratio_learned": m[2] / m[0], "better_share": float(np.mean(r[:, 2] < r[:, 1]))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--seeds", default="1,2,3,4,5,6")
    ap.add_argument("--val-seed", type=int, default=7)
    ap.add_argument("--side", type=int, default=192)
    ap.add_argument("--lams", default="0.03,0.1,0.3,1")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "face2scene" / "weights" / "colour_prior")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    if not (a.data / "identities").is_dir():
        print(f"error: no development photos in {a.data}", file=sys.stderr)
        return 2
    t0, c0 = time.perf_counter(), time.process_time()
    train, val = split_photos(list_photos([a.data / "scenes", a.data / "identities"]))
    train = [p for p in train if not any(p.path.endswith(s) for s in SCENES)]
    rows = samples(train, [int(s) for s in a.seeds.split(",")], a.side)
    vrows = samples(val, [a.val_seed], 256)
    print(f"{len(rows)} training samples ({len(train)} photos), {len(vrows)} validation; "
          f"{time.perf_counter() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU", flush=True)
    groups = sorted({g for g, *_ in rows})
    folds = [set(groups[i::4]) for i in range(4)]
    cv = {}
    for lam in (float(v) for v in a.lams.split(",")):
        res = []
        for fo in folds:
            w = fit_colour_prior([(lev, clean) for g, clean, _, lev in rows if g not in fo], lam)
            res.append(score([r for r in rows if r[0] in fo], w))
        n = sum(r["n"] for r in res)
        cv[lam] = {k: sum(r[k] * r["n"] for r in res) / n for k in ("de_in", "de_levels", "de_learned", "better_share")}
        cv[lam]["ratio_learned"] = cv[lam]["de_learned"] / cv[lam]["de_in"]
        cv[lam]["ratio_levels"] = cv[lam]["de_levels"] / cv[lam]["de_in"]
        print(f"ridge {lam:g}: cross-validated ΔE {cv[lam]['de_in']:.2f} → levels {cv[lam]['de_levels']:.2f} "
              f"({cv[lam]['ratio_levels']:.3f}x) → learned {cv[lam]['de_learned']:.2f} ({cv[lam]['ratio_learned']:.3f}x), "
              f"better on {cv[lam]['better_share']:.2f}", flush=True)
    lam = min(cv, key=lambda k: cv[k]["de_learned"])
    w = fit_colour_prior([(lev, clean) for _, clean, _, lev in rows], lam)
    feats = np.array([colour_features(lev) for *_, lev in rows])
    v = score(vrows, w)
    print(f"chosen ridge {lam:g}; validation split (seed {a.val_seed}, 256 px): ΔE {v['de_in']:.2f} → levels "
          f"{v['de_levels']:.2f} ({v['ratio_levels']:.3f}x) → learned {v['de_learned']:.2f} ({v['ratio_learned']:.3f}x), "
          f"better on {v['better_share']:.2f}")
    report = {"command": "scripts/oldprint_colour_train.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "version": 1, "lam": lam, "train_photos": len(train), "train_samples": len(rows),
              "seeds": a.seeds, "side": a.side, "cv": {str(k): v_ for k, v_ in cv.items()}, "validation": v,
              "seconds_wall": round(time.perf_counter() - t0, 1), "seconds_cpu": round(time.process_time() - c0, 1)}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "model.json").write_text(json.dumps({**report, "W": np.round(w, 6).tolist(),
                                                  "mean": np.round(feats.mean(axis=0), 6).tolist(),
                                                  "std": np.round(feats.std(axis=0), 6).tolist()}, default=float))
    if a.json:
        a.json.write_text(json.dumps(report, indent=1, default=float))
    print(f"wrote {a.out / 'model.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
