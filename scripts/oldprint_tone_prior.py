"""Where clean photos have their black and white points, and how faded prints differ (issue 11,
tone): the prior behind ``tone.CLEAN_BLACK`` / ``CLEAN_WHITE`` and ``tone.fading_evidence``.

For every photo of ``<data>/scenes`` and ``<data>/identities`` (<= 256 px): luma and per-channel
p0.5 / p99.5, and the chroma's p90; then, for every third photo, the same photo through the
``old_colour_print`` degradation, and ``fading_evidence`` of both (how many clean photos it
calls faded, how many faded ones it catches); and the blind vignetting estimate
(``tone.estimate_vignette``) on both: what it reads on clean photos (their own darker corners)
and its error against the degradation's logged ``vignette`` stage. ``--split train`` (default)
uses the training split only (``datasets.split_photos``: the validation persons and scenes held
out) and leaves out the photos of ``oldprint_bench.py``. Prints a table, writes JSON.

    python scripts/oldprint_tone_prior.py [--data ../shared/data] [--split train|all] [--json docs/oldprints/tone_prior.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from face2scene import degrade as D
from face2scene.datasets import list_photos, split_photos
from face2scene.tone import auto_levels, estimate_vignette, fading_evidence
from oldprint_bench import SCENES  # noqa: E402
from oldprint_detect_eval import load  # noqa: E402  (scripts/ is on the path when run as a script)

_LUMA = np.array([0.299, 0.587, 0.114])
_CHROMA = np.array([[-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
QS = (5, 10, 25, 50, 75, 90, 95)


def stats(rgb: np.ndarray, params=None) -> dict:
    px = rgb.reshape(-1, 3).astype(np.float64)
    lum = px @ _LUMA
    lo, hi = np.percentile(px, 0.5, axis=0), np.percentile(px, 99.5, axis=0)
    return {"luma_p0.5": float(np.percentile(lum, 0.5)), "luma_p99.5": float(np.percentile(lum, 99.5)),
            "r_p0.5": lo[0], "g_p0.5": lo[1], "b_p0.5": lo[2], "r_p99.5": hi[0], "g_p99.5": hi[1], "b_p99.5": hi[2],
            "chroma_p90": float(np.percentile(np.hypot(*(px @ _CHROMA.T).T), 90)),
            "fading_evidence": fading_evidence(rgb),
            # what old_print's tone step would apply to a colour photo not called damaged
            "levels_strength": auto_levels(rgb).confidence * fading_evidence(rgb), **vignette_stats(rgb, params)}


def vignette_stats(rgb: np.ndarray, params=None) -> dict:
    """The blind vignetting estimate, and (degraded photos) its error against the logged stage."""
    v = estimate_vignette(rgb)
    out = {"vignette_strength": v.strength, "vignette_confidence": v.confidence,
           "vignette_applied": v.strength * v.confidence}
    if params is not None:
        true = next((s for s in params["stages"] if s["op"] == "vignette"), None)
        t = float(true["strength"]) if true else 0.0
        out["vignette_true"] = t
        out["vignette_error"] = v.strength - t
        out["vignette_applied_error"] = v.strength * v.confidence - t
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--max-side", type=int, default=256)
    ap.add_argument("--seed", type=int, default=500)
    ap.add_argument("--split", choices=("train", "all"), default="train")
    a = ap.parse_args(argv)
    if not (a.data / "scenes").is_dir() or not (a.data / "identities").is_dir():
        print(f"error: no development photos in {a.data}", file=sys.stderr)
        return 2
    photos = list_photos([a.data / "scenes", a.data / "identities"])
    if a.split == "train":
        photos = [p for p in split_photos(photos)[0] if not any(p.path.endswith(s) for s in SCENES)]
    files = [Path(p.path) for p in photos]
    clean, faded = [], []
    for i, f in enumerate(files):
        x = load(f, a.max_side)
        clean.append(stats(x))
        if i % 3 == 0:
            y, params, _ = D.degrade_with_masks(x, "old_colour_print", seed=a.seed + i)
            faded.append(stats(y, params))
    out = {"split": a.split, "photos": len(clean), "faded_photos": len(faded), "quantiles": list(QS), "clean": {}, "faded": {}}
    print(f"{len(clean)} clean photos, {len(faded)} of them also as old_colour_print (<= {a.max_side} px)")
    print(f"{'':18s} {'quantiles ' + str(QS):>44s}")
    for k in faded[0]:
        for name, rows in (("clean", clean), ("faded", faded)):
            if k not in rows[0]:
                continue
            q = [round(float(v), 3) for v in np.percentile([r[k] for r in rows], QS)]
            out[name][k] = q
            print(f"{k:16s} {name:6s} {q}")
    out["clean_called_faded"] = float(np.mean([r["fading_evidence"] > 0.5 for r in clean]))
    out["faded_caught"] = float(np.mean([r["fading_evidence"] > 0.5 for r in faded]))
    out["clean_levels_applied"] = float(np.mean([r["levels_strength"] > 0.1 for r in clean]))
    out["faded_levels_applied"] = float(np.mean([r["levels_strength"] > 0.1 for r in faded]))
    print(f"fading evidence > 0.5: clean photos {out['clean_called_faded']:.1%}, old_colour_print {out['faded_caught']:.1%}")
    print(f"levels applied (strength > 0.1) without damage evidence: clean photos {out['clean_levels_applied']:.1%}, "
          f"old_colour_print {out['faded_levels_applied']:.1%}")
    out["faded_vignette_abs_error_median"] = float(np.median([abs(r["vignette_applied_error"]) for r in faded]))
    out["faded_vignette_abs_error_raw_median"] = float(np.median([abs(r["vignette_error"]) for r in faded]))
    print(f"vignetting (strength x confidence): clean photos median {np.median([r['vignette_applied'] for r in clean]):.3f}; "
          f"old_colour_print |error| median {out['faded_vignette_abs_error_median']:.3f} "
          f"(strength alone {out['faded_vignette_abs_error_raw_median']:.3f})")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"command": " ".join(["scripts/oldprint_tone_prior.py"] + (argv or sys.argv[1:])),
                                      **out}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
