#!/usr/bin/env python
"""What the damage brush's "Spare" does on a real photo: restore it as an old print, take the
``--largest`` biggest parts of the damage mask as the user's false finds (a lanyard, a rope:
look at the overlay PNG this writes to check that they are), erase them (``damage_edit`` = -1,
grown by 2 px, as a brush would cover them), restore again. Prints a table and writes JSON:
pixels repaired, and how much the photo changed inside the erased pixels (mean absolute
difference from the input, levels) — near zero when they are left alone.

    python scripts/oldprint_brush_check.py ../shared/data/old_photos/codeformer_00.jpg --largest 2
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photo")
    ap.add_argument("--largest", type=int, default=2, help="how many of the mask's largest parts to erase")
    ap.add_argument("--out", default="out/oldprint_brush", help="folder for the JSON and overlay PNGs")
    args = ap.parse_args()
    from face2scene.damage import EDIT_ERASE
    from face2scene.io import load_image
    from face2scene.pipeline import Face2ScenePipeline, PipelineConfig
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rgb = load_image(args.photo).rgb
    pipe = Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical", old_print=True))
    rows, results = [], {}
    t = time.process_time()
    auto = pipe.restore(rgb)
    results["auto"] = (auto, time.process_time() - t)
    n, lab, stats, _ = cv2.connectedComponentsWithStats(auto.damage_mask.astype(np.uint8), connectivity=8)
    parts = (np.argsort(-stats[1:, cv2.CC_STAT_AREA])[: args.largest] + 1).tolist() if n > 1 else []
    erased = cv2.dilate(np.isin(lab, parts).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    edit = np.where(erased, EDIT_ERASE, 0).astype(np.int8)
    t = time.process_time()
    spared = pipe.restore(rgb, damage_edit=edit)
    results["spared"] = (spared, time.process_time() - t)
    report = {"photo": str(args.photo), "size": [int(rgb.shape[1]), int(rgb.shape[0])],
              "erased_parts": [{"x": int(stats[i, 0]), "y": int(stats[i, 1]), "w": int(stats[i, 2]),
                                "h": int(stats[i, 3]), "px": int(stats[i, 4])} for i in parts],
              "erased_px": int(erased.sum()), "runs": {}}
    for name, (res, cpu) in results.items():
        change = float(np.abs(res.image.astype(np.float32) - rgb.astype(np.float32))[erased].mean()) if erased.any() else 0.0
        report["runs"][name] = {"repaired_px": int(res.damage_mask.sum()),
                                "repaired_in_erased_px": int((res.damage_mask & erased).sum()),
                                "mean_abs_change_in_erased": round(change, 2), "cpu_s": round(cpu, 2)}
        ov = rgb.copy()
        ov[res.damage_mask] = (255, 140, 0)
        ov[erased & ~res.damage_mask] = (40, 200, 255)
        cv2.imwrite(str(out / f"{Path(args.photo).stem}_{name}.png"), cv2.cvtColor(ov, cv2.COLOR_RGB2BGR))
        rows.append((name, report["runs"][name]))
    print(f"{Path(args.photo).name}: erased the {len(parts)} largest part(s) of the mask ({report['erased_px']} px)")
    print("| run | px repaired | of them in the erased area | mean abs change there (levels) | CPU s |")
    print("|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['repaired_px']} | {r['repaired_in_erased_px']} | {r['mean_abs_change_in_erased']} | {r['cpu_s']} |")
    (out / f"{Path(args.photo).stem}.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
