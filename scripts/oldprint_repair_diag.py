"""Where the old-print defect error comes from, per defect class, without the rest of the pipeline
(issue 11): the bench's ``old_print`` photos (``oldprint_bench.py``'s samples and seeds), damage
detected (``detect_damage``, ``worth_repairing``) and filled (``repair``) on the degraded photo,
compared with the same degradation without its defects. Per class of the drawn masks (scratch,
dust, hair, crease incl. tears) and the halo (the bench's 5x5 zone around the defects, not
defect): recall of the repaired (grown) mask, and the class's share of the zone's summed |Y error|
split into missed and filled pixels; per photo the zone's mean error, the input's, an oracle (the
drawn masks filled) and the error outside the zone. Fast (about a second a photo): for choosing
detection rules on both bench sets before running ``oldprint_bench.py``.

    python scripts/oldprint_repair_diag.py [--per-person 0 --scenes 3 --seed 23] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import cv2
import numpy as np

from face2scene import degrade as D
from face2scene.damage import REPAIR_GROW, detect_damage, repair, worth_repairing
from face2scene.metrics import luma_y
from oldprint_bench import PRESETS, add_sample_args, samples  # noqa: E402  (scripts/ on the path)
from oldprint_detect_eval import load, without_defects  # noqa: E402

CLASSES = ("scratch", "dust", "hair", "crease")


def photo_row(clean: np.ndarray, seed: int, preset: str = "old_print") -> dict:
    deg, params, masks = D.degrade_with_masks(clean, preset, seed=seed)
    nodef = D.apply_params(clean, without_defects(params))
    t = time.process_time()
    det = detect_damage(deg)
    ok, _ = worth_repairing(det)
    rep = det.mask if ok else np.zeros_like(det.mask)
    filled = repair(deg, rep) if rep.any() else deg
    cpu = time.process_time() - t
    g = 2 * REPAIR_GROW + 1
    grown = cv2.dilate(rep.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (g, g))) > 0
    ref = luma_y(nodef)
    e, e0 = np.abs(luma_y(filled) - ref), np.abs(luma_y(deg) - ref)
    gt = np.logical_or.reduce(list(masks.values()))
    zone = cv2.dilate(gt.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    eo = np.abs(luma_y(repair(deg, gt)) - ref) if gt.any() else e0
    r = {"cpu_s": cpu, "damaged_print": bool(det.info["damaged_print"]), "repaired_fraction": float(rep.mean()),
         "zone_err": float(e[zone].mean()), "zone_err_input": float(e0[zone].mean()),
         "zone_err_oracle": float(eo[zone].mean()), "outside_err": float(e[~zone].mean())}
    for c in CLASSES:
        m = masks.get(c)
        if m is None or not m.any():
            continue
        hit = m & grown
        r[c] = {"px": int(m.sum()), "recall": float(hit.sum() / m.sum()),
                "sum_missed": float(e[m & ~grown].sum()), "sum_filled": float(e[hit].sum())}
    halo = zone & ~gt
    r["halo"] = {"px": int(halo.sum()), "recall": 0.0, "sum_missed": 0.0, "sum_filled": float(e[halo].sum())}
    return r


def per_class(rows) -> dict:
    tot = {}
    for r in rows:
        for c in CLASSES + ("halo",):
            if c in r:
                t = tot.setdefault(c, {"px": 0, "hit": 0.0, "missed": 0.0, "filled": 0.0})
                t["px"] += r[c]["px"]
                t["hit"] += r[c]["recall"] * r[c]["px"]
                t["missed"] += r[c]["sum_missed"]
                t["filled"] += r[c]["sum_filled"]
    total = sum(t["missed"] + t["filled"] for t in tot.values()) or 1.0
    return {c: {"px": t["px"], "recall": t["hit"] / max(t["px"], 1), "share_missed": t["missed"] / total,
                "share_filled": t["filled"] / total, "mean_err": (t["missed"] + t["filled"]) / max(t["px"], 1)}
            for c, t in tot.items()}


def main(argv=None):
    ap = argparse.ArgumentParser()
    add_sample_args(ap, per_person=2, scenes=2)
    a = ap.parse_args(argv)
    if not (a.data / "identities").is_dir():
        print(f"error: no development photos in {a.data}", file=sys.stderr)
        return 2
    rows = []
    for i, (name, path, _people) in enumerate(samples(a.data, a.per_person, a.scenes)):
        seed = a.seed * 1000 + 17 * i + PRESETS.index("old_print")  # as oldprint_bench.py
        r = {"photo": name, **photo_row(load(path, a.max_side), seed)}
        rows.append(r)
        rec = " ".join(f"{c} {r[c]['recall']:.2f}" for c in CLASSES if c in r)
        print(f"{name[:40]:40s} zone {r['zone_err']:5.1f} (input {r['zone_err_input']:5.1f}, oracle "
              f"{r['zone_err_oracle']:4.1f}) outside {r['outside_err']:.2f} damaged {int(r['damaged_print'])} "
              f"recall: {rec}", flush=True)
    summary = {"per_class": per_class(rows),
               **{f"mean_{k}": float(np.mean([r[k] for r in rows]))
                  for k in ("zone_err", "zone_err_input", "zone_err_oracle", "outside_err", "cpu_s")}}
    print(f"\n{'class':8s} {'px':>7s} {'recall':>7s} {'missed':>7s} {'filled':>7s} {'mean':>6s}  (shares of the zone's error)")
    for c, t in summary["per_class"].items():
        print(f"{c:8s} {t['px']:7d} {t['recall']:7.2f} {t['share_missed']:7.2f} {t['share_filled']:7.2f} {t['mean_err']:6.1f}")
    print(f"zone error {summary['mean_zone_err']:.2f} (input {summary['mean_zone_err_input']:.2f}, oracle "
          f"{summary['mean_zone_err_oracle']:.2f}), outside {summary['mean_outside_err']:.2f}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"command": " ".join(["scripts/oldprint_repair_diag.py"] + (argv or sys.argv[1:])),
                                      "rows": rows, "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
