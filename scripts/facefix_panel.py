"""A 100 % crop panel of faces from ``scripts/facefix_faces.py``'s cache: per face (one row),
degraded input / the scene restorer's face (before the face step) / the result (after the face
step) / clean, each the clean photo's face box with a margin, no resampling, and the face-box
PSNR gain over the input printed under it.

    PYTHONPATH=. python scripts/facefix_panel.py --cache /tmp/ffv --photos mild_elon_musk_img18,mild_scarlett_johansson_img47 --out docs/faces_100pct.png
"""
from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import cv2
import numpy as np


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((22, tile.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([tile, bar], axis=0)


def face_row(rec: dict, margin: float = 0.25) -> np.ndarray:
    from face2scene.bench.common import capped_psnr
    x0, y0, x1, y1 = rec["box"]
    c = rec["clean"]
    p0 = capped_psnr(c[y0:y1, x0:x1], rec["degraded"][y0:y1, x0:x1], border=0)
    mx, my = int((x1 - x0) * margin), int((y1 - y0) * margin)
    h, w = c.shape[:2]
    X0, Y0, X1, Y1 = max(0, x0 - mx), max(0, y0 - my), min(w, x1 + mx), min(h, y1 + my)
    tiles = []
    for key, name in (("degraded", "degraded"), ("scene", "scene restorer"), ("final", "result"), ("clean", "clean")):
        img = rec[key]
        gain = "" if key in ("degraded", "clean") else f" {capped_psnr(c[y0:y1, x0:x1], img[y0:y1, x0:x1], border=0) - p0:+.2f} dB"
        tiles.append(_label(np.ascontiguousarray(img[Y0:Y1, X0:X1]), name + gain))
        tiles.append(np.full((tiles[-1].shape[0], 4, 3), 255, np.uint8))
    return np.concatenate(tiles[:-1], axis=1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--photos", required=True, help="cache entries (file stems), comma separated")
    ap.add_argument("--out", type=Path, default=Path("docs/faces_100pct.png"))
    args = ap.parse_args()
    rows = []
    for stem in args.photos.split(","):
        f = args.cache / f"{stem}.pkl"
        if not f.is_file():
            raise SystemExit(f"no such cache entry: {f}")
        with open(f, "rb") as fh:
            rec = pickle.load(fh)
        if rec["box"] is None:
            raise SystemExit(f"{stem}: no face in the clean photo")
        rows.append(face_row(rec))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 6), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
