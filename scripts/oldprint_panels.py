"""Before / mask / after panels of real old prints (100 % crops) for docs/oldprints/.

After = damage repaired (detect_damage -> repair), blind tone (auto_levels, applied with its
confidence as strength), monochrome prints kept on their tone. No pipeline, no faces.

    python scripts/oldprint_panels.py [--data ../shared/data] [--out docs/oldprints]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from face2scene.damage import detect_damage, repair
from face2scene.io import load_image
from face2scene.tone import auto_levels, is_monochrome, keep_monochrome

PHOTOS = ["bopbtl_scratch_a.png", "bopbtl_scratch_b.png", "bopbtl_scratch_c.png", "bopbtl_scratch_d.png",
          "bopbtl_old_b.png", "bopbtl_old_f.png"]
CROP = 240


def restore(rgb):
    det = detect_damage(rgb)
    rep = repair(rgb, det.mask, grow=1)
    mono = is_monochrome(rgb)
    tm = auto_levels(rep)
    out = tm.apply(rep, strength=tm.confidence)
    if mono.mono:
        out = keep_monochrome(out, mono, keep_tone=True)
    return det, out, {"damage_%": round(100 * det.fraction, 3), "mono": mono.to_json(), "tone": tm.to_json()}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "oldprints")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    log = {}
    for name in PHOTOS:
        rgb = load_image(a.data / "old_photos" / name).rgb
        h, w = rgb.shape[:2]
        s = min(1.0, 768 / max(h, w))
        if s < 1:
            rgb = cv2.resize(rgb, (int(w * s), int(h * s)), interpolation=cv2.INTER_AREA)
            h, w = rgb.shape[:2]
        det, out, info = restore(rgb)
        # the 100 % crop with the most detected damage
        c = min(CROP, h, w)
        dens = cv2.boxFilter(det.mask.astype(np.float32), -1, (c, c), normalize=False)
        half = c // 2
        dens[:half, :] = dens[h - (c - half) + 1:, :] = -1
        dens[:, :half] = dens[:, w - (c - half) + 1:] = -1
        cy, cx = np.unravel_index(np.argmax(dens), dens.shape) if det.mask.any() else (h // 2, w // 2)
        y0, x0 = int(np.clip(cy - half, 0, h - c)), int(np.clip(cx - half, 0, w - c))
        sl = (slice(y0, y0 + c), slice(x0, x0 + c))
        over = rgb.copy()
        over[det.scratches] = (255, 0, 0)
        over[det.specks] = (0, 255, 0)
        gap = np.full((c, 4, 3), 255, np.uint8)
        panel = np.concatenate([rgb[sl], gap, over[sl], gap, out[sl]], 1)
        path = a.out / f"{Path(name).stem}.png"
        cv2.imwrite(str(path), cv2.cvtColor(panel, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
        info.update({"crop_xywh": [x0, y0, c, c], "size": [w, h], "bytes": path.stat().st_size})
        log[name] = info
        print(name, json.dumps({k: info[k] for k in ("damage_%", "crop_xywh", "bytes")}), flush=True)
    (a.out / "panels.json").write_text(json.dumps(log, indent=1))


if __name__ == "__main__":
    sys.exit(main())
