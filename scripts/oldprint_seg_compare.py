"""Damage detection on real old photos, the classical rules alone against the rules + the learned
gate (issue 11): how many detections (components, pixels) each keeps, and a panel per photo for
by-eye verdicts. Detection only (no restoration), photos at most 768 px, descreened when a
halftone screen is found (as the pipeline does); faces are not detected, so catchlights are not
protected here (the pipeline protects the eyes).

Each panel (JPEG, ``seg_<name>.jpg``): the whole photo with the rules' detections (red lines,
green specks) | the same with the gate: kept in red/green, dropped in blue; below, a 100 % crop
(240 px) of the area with the most *dropped* detections: photo | rules | gated.

    python scripts/oldprint_seg_compare.py [--data ../shared/data] [--out docs/oldprints] [--only NAME ...]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from face2scene.damage import _components, detect_damage
from face2scene.halftone import descreen, detect_screen
from face2scene.io import load_image
from oldprint_panels import hstack, thumb, vstack  # scripts/ is on the path when run as a script

NAMES = ["bopbtl_old_f.png", "codeformer_00.jpg", "codeformer_02.png", "gfpgan_00.jpg", "gfpgan_10045.png",
         "bopbtl_scratch_b.png", "bopbtl_scratch_d.png"]
CROP = 240
THUMB = 420


def overlay(rgb, det, dropped=None):
    out = rgb.copy()
    if dropped is not None:
        out[dropped] = (40, 90, 255)
    out[det.scratches] = (255, 0, 0)
    out[det.specks] = (0, 255, 0)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "oldprints")
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--max-side", type=int, default=768)
    a = ap.parse_args(argv)
    folder = a.data / "old_photos"
    if not folder.is_dir():
        print(f"error: no old photos in {folder}", file=sys.stderr)
        return 2
    a.out.mkdir(parents=True, exist_ok=True)
    log = {}
    for name in a.only or NAMES:
        rgb = load_image(folder / name).rgb
        h, w = rgb.shape[:2]
        s = min(1.0, a.max_side / max(h, w))
        if s < 1:
            rgb = cv2.resize(rgb, (int(round(w * s)), int(round(h * s))), interpolation=cv2.INTER_AREA)
        screen = detect_screen(rgb)
        src = descreen(rgb, screen) if screen.found else rgb
        t = time.perf_counter()
        rules = detect_damage(src, learned=False)
        t1 = time.perf_counter()
        gated = detect_damage(src, learned=True)
        t2 = time.perf_counter()
        dropped = rules.mask & ~gated.mask
        h, w = src.shape[:2]
        c = min(CROP, h, w)
        focus = dropped if dropped.any() else rules.mask
        dens = cv2.boxFilter(focus.astype(np.float32), -1, (c, c), normalize=False)
        half = c // 2
        dens[:half, :] = dens[h - (c - half) + 1:, :] = -1
        dens[:, :half] = dens[:, w - (c - half) + 1:] = -1
        cy, cx = np.unravel_index(np.argmax(dens), dens.shape) if focus.any() else (h // 2, w // 2)
        y0, x0 = int(np.clip(cy - half, 0, h - c)), int(np.clip(cx - half, 0, w - c))
        sl = (slice(y0, y0 + c), slice(x0, x0 + c))
        o_rules, o_gated = overlay(src, rules), overlay(src, gated, dropped)
        img = vstack(hstack([thumb(o_rules, THUMB), thumb(o_gated, THUMB)]), hstack([src[sl], o_rules[sl], o_gated[sl]]))
        dst = a.out / f"seg_{Path(name).stem}.jpg"
        cv2.imwrite(str(dst), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
        r = {}
        for key, det in (("rules", rules), ("gated", gated)):
            r[key] = {"scratches": _components(det.scratches)[0] - 1, "specks": _components(det.specks)[0] - 1,
                      "pixels": int(det.mask.sum()), "fraction_%": round(100 * det.fraction, 3)}
        r.update(crop_xywh=[x0, y0, c, c], size=[w, h], seconds_rules=round(t1 - t, 2),
                 seconds_gated=round(t2 - t1, 2), damaged_print=rules.info["damaged_print"])
        log[name] = r
        print(f"{name:22s} rules: {r['rules']['scratches']:3d} lines {r['rules']['specks']:3d} specks "
              f"{r['rules']['pixels']:6d} px | gated: {r['gated']['scratches']:3d} lines {r['gated']['specks']:3d} specks "
              f"{r['gated']['pixels']:6d} px  ({t2 - t1:.1f} s)", flush=True)
    (a.out / "seg_compare.json").write_text(json.dumps(log, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
