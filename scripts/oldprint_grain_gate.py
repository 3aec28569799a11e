"""The heavy-grain real prints ``bopbtl_old_d`` / ``_h`` (issue 11, item 3 of the real-tone
round): should do-no-harm let the restorer touch them? 100 % crops (200 px) of the input, the
pipeline as a user gets it (classical restorer, do-no-harm on: the estimate reads noise 0, the
photo is left unchanged) and the classical restorer told the film grain *is* noise (sigma = the
grain's own amplitude from ``grain.estimate_grain``, and twice that).

    PYTHONPATH=.:scripts python scripts/oldprint_grain_gate.py \\
        --out docs/oldprints/heavy_grain_100pct.png --json docs/oldprints/heavy_grain_100pct.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from face2scene.grain import estimate_grain
from face2scene.io import load_image
from face2scene.pipeline import Face2ScenePipeline, PipelineConfig
from face2scene.restorers.classical import ClassicalRestorer
from face2scene.types import DegradationEstimate

CROP = 200
CENTRES = {"bopbtl_old_d.png": (0.45, 0.55), "bopbtl_old_h.png": (0.5, 0.42)}  # fractions of width, height


def _tile(im, x0, y0, label):
    t = cv2.cvtColor(np.ascontiguousarray(im[y0:y0 + CROP, x0:x0 + CROP]), cv2.COLOR_RGB2BGR)
    t = np.concatenate([t, np.full((18, t.shape[1], 3), 255, np.uint8)], 0)
    cv2.putText(t, label, (3, t.shape[0] - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    pipe = Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical"))
    rows, log = [], {}
    for name, (fx, fy) in CENTRES.items():
        path = a.data / "old_photos" / name
        if not path.exists():
            print(f"error: {path} not found", file=sys.stderr)
            return 2
        rgb = load_image(path).rgb
        h, w = rgb.shape[:2]
        grain = estimate_grain(rgb)
        res = pipe.restore(rgb)
        deg = res.to_json()["degradation"]
        x0, y0 = int(np.clip(fx * w - CROP / 2, 0, w - CROP)), int(np.clip(fy * h - CROP / 2, 0, h - CROP))
        tiles = [_tile(rgb, x0, y0, "input"), _tile(res.image, x0, y0, "pipeline (left as is)")]
        for s in (grain.amplitude, 2 * grain.amplitude):
            est = DegradationEstimate(noise_sigma=float(s), blur_sigma=0.0, jpeg_quality=None, source="given",
                                      confidence=1.0)
            tiles.append(_tile(ClassicalRestorer().restore_array(rgb, est), x0, y0, f"classical, noise {s:.1f}"))
        gap = np.full((tiles[0].shape[0], 4, 3), 255, np.uint8)
        rows.append(np.concatenate([x for t in tiles for x in (t, gap)][:-1], 1))
        log[name] = {"grain": {"amplitude": round(grain.amplitude, 3), "size": round(grain.size, 3),
                               "rho": round(grain.rho, 3), "confidence": round(grain.confidence, 3)},
                     "estimate": {k: deg.get(k) for k in ("noise_sigma", "blur_sigma", "jpeg_quality", "source")},
                     "do_no_harm": deg.get("details", {}).get("do_no_harm"), "crop_xywh": [x0, y0, CROP, CROP]}
        print(name, json.dumps(log[name]), flush=True)
    gap = np.full((6, rows[0].shape[1], 3), 255, np.uint8)
    cv2.imwrite(str(a.out), np.concatenate([rows[0], gap, rows[1]], 0))
    if a.json:
        a.json.write_text(json.dumps(log, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
