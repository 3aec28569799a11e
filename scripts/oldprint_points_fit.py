"""Can a faded print's black and white points be told better than by the clean photos' prior?
(issue 11: "restored black and white points within 10 levels of the clean photo's").

The tone step sends a faded print's luma p0.5 / p99.5 to where clean photos have theirs
(``tone.CLEAN_BLACK`` / ``CLEAN_WHITE`` = 10 / 245). A faded print's luma is ``black + a * clean``
(and a gamma), so the clean photo's *own* points are not in the print: an original with lifted
blacks (haze, a low-key or flat photo) faded a little and a full-range original faded more give
the same print. This script measures the two sources of information that could do better:

* default: **learned points** -- ridge regressions and k-nearest-neighbours (numpy) from the
  print's statistics (luma percentiles, their span, normalised tails) to the clean photo's points,
  fitted on the training split (``datasets.split_photos``; the bench's photos excluded), each
  photo degraded as ``old_print`` and ``old_colour_print`` (``--seeds`` copies, the drawn damage
  left out: the pipeline inpaints it before its tone step) and prepared as ``tone.print_tone``
  does (its vignetting division); scored by 5-fold cross-validation over photos and on the
  validation split (other seeds; the bench's own 6 photos left out), against the constants and
  against the best constant on the training split. The points are realised by
  ``tone.auto_levels`` on the prepared print and compared with the clean photo's in the bench's
  studio-range luma (``metrics.luma_y``: 10 levels there = 11.6 full-range levels).
* ``--faces``: **the references' face tone as an anchor** -- on the clean identity photos (dlib
  faces, aligned 128 px, inner-face median luma), how far a photo's face luma is from the median
  of the same person's other photos (its references), and what a least-squares estimate of the
  points from the prior plus that anchor (the face's position in the print's range, after a
  random fade gamma 0.75-1.25 as ``old_print`` draws) would reach, for several anchor weights.

    python scripts/oldprint_points_fit.py [--side 256] [--seeds 2] [--cache /tmp/points.pkl] [--json docs/oldprints/points_fit.json]
    python scripts/oldprint_points_fit.py --faces [--json docs/oldprints/points_faces.json]
"""
from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np

from face2scene import degrade as D
from face2scene.tone import CLEAN_BLACK, CLEAN_WHITE, auto_levels, estimate_vignette
from oldprint_bench import PERSONS, SCENES  # noqa: E402
from oldprint_detect_eval import load, without_defects  # noqa: E402

_LUMA = np.array([0.299, 0.587, 0.114])
STUDIO = 219.0 / 255.0  # the bench's luma (metrics.luma_y) is studio range
PRESETS = ("old_print", "old_colour_print")
PCTS = (0.5, 2.0, 10.0, 25.0, 50.0, 75.0, 90.0, 98.0, 99.5)


def luma_points(rgb):
    y = rgb.reshape(-1, 3).astype(np.float64) @ _LUMA
    return float(np.percentile(y, 0.5)), float(np.percentile(y, 99.5))


def percentiles(rgb):
    y = rgb.reshape(-1, 3).astype(np.float64) @ _LUMA
    return np.percentile(y, PCTS)


def features(p, kind):
    """Regression inputs from the luma percentiles ``p`` (rows: prints, columns: PCTS)."""
    lo, hi = p[:, 0], p[:, -1]
    span = np.maximum(hi - lo, 1.0)
    q = (p[:, 1:-1] - lo[:, None]) / span[:, None]
    if kind == "raw":
        return p
    if kind == "normalised":
        return np.c_[lo, hi, span, q]
    if kind == "tails":
        return np.c_[lo, hi, np.log(q[:, 0] + 0.003), np.log(1.0 - q[:, -1] + 0.003)]
    raise ValueError(kind)


def ridge(x, y, lam):
    mu, sd = x.mean(0), x.std(0) + 1e-9
    z = np.c_[np.ones(len(x)), (x - mu) / sd]
    reg = lam * np.eye(z.shape[1])
    reg[0, 0] = 0.0
    w = np.linalg.solve(z.T @ z + reg, z.T @ y)
    return lambda xb: np.c_[np.ones(len(xb)), (xb - mu) / sd] @ w


def knn(x, y, k):
    mu, sd = x.mean(0), x.std(0) + 1e-9
    za = (x - mu) / sd

    def f(xb):
        d = ((((xb - mu) / sd)[:, None] - za[None]) ** 2).sum(-1)
        return np.median(y[np.argsort(d, 1)[:, :k]], 1)
    return f


def prepare(deg):
    """What ``print_tone`` gives ``auto_levels`` for a damaged print: the print with its
    estimated vignetting divided out (as far as the levels' confidence and the estimate's allow)."""
    strength = auto_levels(deg).confidence
    vig = estimate_vignette(deg)
    return vig.apply(deg, strength=strength * vig.confidence)


def samples(photos, side, seeds, seed0):
    rows = []
    for i, p in enumerate(photos):
        clean = load(Path(p.path), side)
        for preset in PRESETS:
            for k in range(seeds):
                seed = seed0 + 97 * i + 13 * k + PRESETS.index(preset)
                params = D.sample_params(preset, np.random.default_rng(seed), (clean.shape[1], clean.shape[0]))
                base = prepare(D.apply_params(clean, without_defects(params)))
                rows.append({"photo": p.path, "preset": preset, "seed": seed, "target": luma_points(clean),
                             "pcts": percentiles(base).tolist(), "base": base})
    return rows


def realised(rows, pts):
    """Bench error (studio levels) of each print with its levels sent to ``pts`` (n x 2)."""
    err = []
    for r, (b, w) in zip(rows, pts):
        out = auto_levels(r["base"], black=float(b), white=float(w)).apply(r["base"])
        o = luma_points(out)
        err.append(STUDIO * max(abs(o[0] - r["target"][0]), abs(o[1] - r["target"][1])))
    return np.array(err)


def stats(err, rows):
    out = {"n": len(err), "within_10": int((err <= 10).sum()), "share": round(float((err <= 10).mean()), 3),
           "median": round(float(np.median(err)), 2), "p90": round(float(np.percentile(err, 90)), 2)}
    for preset in PRESETS:
        sel = np.array([r["preset"] == preset for r in rows])
        out[preset] = f"{int((err[sel] <= 10).sum())}/{int(sel.sum())}"
    return out


def blind(a, train, val) -> dict:
    t0, c0 = time.perf_counter(), time.process_time()
    if a.cache is not None and a.cache.exists():
        with open(a.cache, "rb") as f:
            tr, va = pickle.load(f)
    else:
        tr, va = samples(train, a.side, a.seeds, 5000), samples(val, a.side, a.seeds, 8000)
        if a.cache is not None:
            with open(a.cache, "wb") as f:
                pickle.dump((tr, va), f)
    print(f"{len(train)} training photos ({len(tr)} prints), {len(val)} validation photos ({len(va)} prints): "
          f"{time.perf_counter() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU", flush=True)
    pt, pv = np.array([r["pcts"] for r in tr]), np.array([r["pcts"] for r in va])
    yt = np.array([r["target"] for r in tr])
    photos = sorted({r["photo"] for r in tr})
    fold_of = dict(zip(photos, np.random.default_rng(0).integers(0, 5, len(photos))))
    folds = np.array([fold_of[r["photo"]] for r in tr])
    # the constant that puts most training prints within 10 levels (the clean photos' own points,
    # no print needed): a grid around the prior
    grid = [(b, w) for b in np.arange(4.0, 22.0) for w in np.arange(232.0, 256.0)]
    hit = [float((STUDIO * np.abs(np.array([b, w]) - yt).max(1) <= 10).mean()) for b, w in grid]
    best = grid[int(np.argmax(hit))]
    res = {"constant": {"points": [CLEAN_BLACK, CLEAN_WHITE]}, "best_constant": {"points": list(best)}}
    for name, pts in (("constant", (CLEAN_BLACK, CLEAN_WHITE)), ("best_constant", best)):
        res[name]["cv"] = stats(realised(tr, [pts] * len(tr)), tr)
        res[name]["val"] = stats(realised(va, [pts] * len(va)), va)
    for kind in ("raw", "normalised", "tails"):
        for mname, make, params in (("ridge", ridge, (1.0, 10.0, 100.0)), ("knn", knn, (10, 25, 50))):
            for p in params:
                pred = np.zeros_like(yt)
                for f in range(5):
                    m = make(features(pt[folds != f], kind), yt[folds != f], p)
                    pred[folds == f] = m(features(pt[folds == f], kind))
                pval = make(features(pt, kind), yt, p)(features(pv, kind))
                res[f"{mname}({p}) {kind}"] = {"cv": stats(realised(tr, pred), tr), "val": stats(realised(va, pval), va)}
    print(f"\n{'targets':28s} {'cv within 10':>14s} {'old/colour':>12s} {'median':>7s} {'p90':>6s}   "
          f"{'val within 10':>14s} {'old/colour':>12s} {'median':>7s} {'p90':>6s}")
    for k, v in res.items():
        c, w = v["cv"], v["val"]
        print(f"{k:28s} {c['within_10']:5d}/{c['n']:<4d} {c['share']:4.2f} {c['old_print']:>6s} {c['old_colour_print']:>6s}"
              f" {c['median']:7.1f} {c['p90']:6.1f}   {w['within_10']:5d}/{w['n']:<4d} {w['share']:4.2f}"
              f" {w['old_print']:>6s} {w['old_colour_print']:>6s} {w['median']:7.1f} {w['p90']:6.1f}")
    print(f"{time.perf_counter() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU")
    return {"results": res, "train": photos, "val": sorted({r["photo"] for r in va})}


def anchor_estimate(t, m_ref, sigma_face, sigma_black=13.0, sigma_white=18.0):
    """Least-squares points: the prior (``CLEAN_BLACK`` / ``CLEAN_WHITE`` with the training
    split's spread of clean photos' points, 13 / 18 levels) and the face at position ``t`` of the
    print's range landing on the references' face luma ``m_ref`` (weight ``1 / sigma_face``)."""
    a = np.array([[1 / sigma_black, 0.0], [0.0, 1 / sigma_white], [(1 - t) / sigma_face, t / sigma_face]])
    b = np.array([CLEAN_BLACK / sigma_black, CLEAN_WHITE / sigma_white, m_ref / sigma_face])
    return np.linalg.lstsq(a, b, rcond=None)[0]


def faces(a) -> dict:
    from face2scene.faces import estimate_affine, get_face_backend, inner_face_mask
    from face2scene.faces.align import warp_to_crop
    t0, c0 = time.perf_counter(), time.process_time()
    backend = get_face_backend("dlib")
    mask = inner_face_mask(128) > 0.5
    rows = []
    for d in sorted((a.data / "identities").iterdir()):
        for f in sorted(p for p in d.iterdir() if p.is_file()):
            rgb = load(f, 384)
            found = [x for x in backend.detect(rgb, with_embeddings=False) if x.usable]
            if not found:
                continue
            crop = warp_to_crop(rgb, estimate_affine(found[0].landmarks, 128), 128)
            lo, hi = luma_points(rgb)
            rows.append({"person": d.name, "photo": f.name, "lo": lo, "hi": hi,
                         "face": float(np.median((crop.astype(np.float64) @ _LUMA)[mask]))})
    per = {}
    for r in rows:
        per.setdefault(r["person"], []).append(r)
    for r in rows:
        others = [q["face"] for q in per[r["person"]] if q is not r]
        r["ref_face"] = float(np.median(others)) if others else None
    rows = [r for r in rows if r["ref_face"] is not None]
    diff = np.array([r["face"] - r["ref_face"] for r in rows])
    rng = np.random.default_rng(a.seed)
    res = {"photos": len(rows), "persons": len(per), "face_minus_refs_mean": round(float(diff.mean()), 2),
           "face_minus_refs_std": round(float(diff.std()), 2), "anchor": {}}
    print(f"{len(rows)} identity photos with a face and references ({len(per)} persons): the face's median luma "
          f"minus its references' median: mean {diff.mean():+.1f}, std {diff.std():.1f} levels")
    for sigma in (None, 30.0, 20.0, 15.0, 10.0):
        err = []
        for _ in range(20):
            for r in rows:
                g = rng.uniform(0.75, 1.25)  # old_print's fade gamma moves the face within the range

                def fade(v):
                    return (v / 255.0) ** g
                t = (fade(r["face"]) - fade(r["lo"])) / (fade(r["hi"]) - fade(r["lo"]))
                b, w = (CLEAN_BLACK, CLEAN_WHITE) if sigma is None else anchor_estimate(t, r["ref_face"], sigma)
                err.append(STUDIO * max(abs(b - r["lo"]), abs(w - r["hi"])))
        err = np.array(err)
        key = "prior only" if sigma is None else f"face anchor sigma {sigma:g}"
        res["anchor"][key] = {"within_10": round(float((err <= 10).mean()), 3), "median": round(float(np.median(err)), 2)}
        print(f"   {key:26s} within 10 levels {(err <= 10).mean():.3f}, median error {np.median(err):.1f}")
    print(f"{time.perf_counter() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU")
    return res


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--side", type=int, default=256)
    ap.add_argument("--seeds", type=int, default=2, help="degraded copies of each photo per preset")
    ap.add_argument("--seed", type=int, default=0, help="--faces: the random fade gammas")
    ap.add_argument("--faces", action="store_true", help="the references' face tone as an anchor (clean identity photos)")
    ap.add_argument("--cache", type=Path, default=None, help="keep the prepared prints here (re-fits in seconds)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    if not (a.data / "identities").is_dir():
        print(f"error: no development photos in {a.data}", file=sys.stderr)
        return 2
    if a.faces:
        out = faces(a)
    else:
        from face2scene.datasets import list_photos, split_photos
        train, val = split_photos(list_photos([a.data / "scenes", a.data / "identities"]))
        bench = {p.path for p in train + val if any(p.path.endswith(s) for s in SCENES)}
        for person in PERSONS:  # the bench's: the first two photos of each validation person
            bench.update(sorted(q.path for q in val if f"/{person}/" in q.path)[:2])
        out = blind(a, [p for p in train if p.path not in bench], [p for p in val if p.path not in bench])
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"command": "scripts/oldprint_points_fit.py " + " ".join(argv or sys.argv[1:]),
                                      **out}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
