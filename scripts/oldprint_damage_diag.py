"""Where the old-print defect error comes from (issue 11): the bench's photos (``oldprint_bench.py``
samples, ``old_print`` preset, same seeds) through the whole pipeline, and the error against the
clean photo split into

* ``missed``: defect pixels (the drawn masks) the repaired mask does not cover,
* ``filled``: defect pixels it covers (detected, then inpainted and restored),
* ``halo``: the ring of the bench's zone around the defects (its 5x5 dilation) that is not defect,
* ``outside``: the rest of the photo,

each as mean |Y error| and as its share of the zone's summed error; plus the fill alone (no
restorer): the inpainted photo against the same degradation without its defects, inside the
repaired mask. ``--oracle`` adds a run with the drawn masks as the repaired mask (the user's
edit), which bounds what better detection can give. Prints a table and writes JSON.

    python scripts/oldprint_damage_diag.py [--per-person 2 --scenes 2] [--oracle] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import cv2
import numpy as np

from face2scene import degrade as D
from face2scene.damage import REPAIR_GROW, repair
from face2scene.metrics import luma_y, psnr
from face2scene.pipeline import Face2ScenePipeline, PipelineConfig
from oldprint_bench import PRESETS, add_sample_args, samples  # noqa: E402  (scripts/ on the path)
from oldprint_detect_eval import load, without_defects  # noqa: E402


def split_error(out, clean, gt, repaired):
    """{category: (mean |dY|, summed |dY|, pixels)} for missed / filled / halo / outside."""
    e = np.abs(luma_y(out) - luma_y(clean))
    zone = cv2.dilate(gt.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    cats = {"missed": gt & ~repaired, "filled": gt & repaired, "halo": zone & ~gt, "outside": ~zone}
    return {k: (float(e[m].mean()) if m.any() else 0.0, float(e[m].sum()), int(m.sum())) for k, m in cats.items()}


def main(argv=None):
    ap = argparse.ArgumentParser()
    add_sample_args(ap, per_person=2, scenes=2)
    ap.add_argument("--preset", default="old_print")
    ap.add_argument("--oracle", action="store_true", help="also repair exactly the drawn defects")
    a = ap.parse_args(argv)
    pipe = Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical", seed=a.seed, old_print=True,
                                             print_tone="faces"))
    rows = []
    for i, (name, path, people) in enumerate(samples(a.data, a.per_person, a.scenes)):
        clean = load(path, a.max_side)
        seed = a.seed * 1000 + 17 * i + PRESETS.index(a.preset)  # as oldprint_bench.py
        deg, params, masks = D.degrade_with_masks(clean, a.preset, seed=seed)
        nodef = D.apply_params(clean, without_defects(params))
        gt = np.logical_or.reduce(list(masks.values()))
        variants = {"detected": None}
        if a.oracle:
            variants["oracle"] = np.where(gt, 1, -1).astype(np.int8)
        for vname, edit in variants.items():
            t, c = time.perf_counter(), time.process_time()
            res = pipe.restore(deg, people, damage_edit=edit)
            sec, cpu = time.perf_counter() - t, time.process_time() - c
            rep = res.damage_mask if res.damage_mask is not None else np.zeros(gt.shape, bool)
            g = 2 * REPAIR_GROW + 1  # the pixels the pipeline filled
            grown = cv2.dilate(rep.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (g, g))) > 0
            split = split_error(res.image, clean, gt, grown)
            zone_sum = sum(split[k][1] for k in ("missed", "filled", "halo"))
            zone_px = sum(split[k][2] for k in ("missed", "filled", "halo"))
            r = {"photo": name, "variant": vname, "gain": psnr(res.image, clean) - psnr(deg, clean),
                 "ratio": (zone_sum / max(zone_px, 1)) / max(split["outside"][0], 1e-6),
                 "repaired_fraction": float(rep.mean()), "gt_fraction": float(gt.mean()),
                 "recall": float((gt & grown).sum() / max(gt.sum(), 1)),
                 "false_px": float((grown & ~gt).mean()), "seconds": sec, "cpu_s": cpu}
            for k, (m, s, n) in split.items():
                r[f"{k}_err"] = m
                r[f"{k}_px"] = n
                if k != "outside":
                    r[f"{k}_share"] = s / max(zone_sum, 1e-6)
            # the fill alone: the repaired input (same inpainting as the pipeline) vs the same degradation
            # without its defects, inside the repaired mask
            if rep.any():
                filled = repair(deg, rep)
                d = np.abs(luma_y(filled) - luma_y(nodef))
                d0 = np.abs(luma_y(deg) - luma_y(nodef))
                r["fill_err"], r["fill_err_input"] = float(d[grown].mean()), float(d0[grown].mean())
            rows.append(r)
            print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}), flush=True)
    print()
    keys = ["gain", "ratio", "recall", "missed_err", "filled_err", "halo_err", "outside_err", "missed_share",
            "filled_share", "halo_share", "fill_err", "fill_err_input"]
    print(f"{'photo':42s} {'variant':9s} " + " ".join(f"{k[:12]:>12s}" for k in keys))
    for r in rows:
        print(f"{r['photo']:42s} {r['variant']:9s} " + " ".join(
            f"{r.get(k, float('nan')):12.3f}" for k in keys))
    summary = {}
    for v in dict.fromkeys(r["variant"] for r in rows):
        rr = [r for r in rows if r["variant"] == v]
        summary[v] = {"median_gain": float(np.median([r["gain"] for r in rr])),
                      **{f"mean_{k}": float(np.nanmean([r.get(k, np.nan) for r in rr])) for k in keys[1:]}}
        print(v, json.dumps({k: round(x, 3) for k, x in summary[v].items()}))
    if a.json:
        a.json.write_text(json.dumps({"command": " ".join(["scripts/oldprint_damage_diag.py"] + (argv or sys.argv[1:])),
                                      "rows": rows, "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
