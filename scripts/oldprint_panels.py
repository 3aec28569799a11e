"""Before / damage mask / after panels of the real old prints (all of ``old_photos``) for
docs/oldprints/: the whole pipeline as a user runs it (``Face2ScenePipeline(old_print=True,
print_tone="faces")``, classical restorer, CPU), photos at most 768 px.

Each panel (JPEG): top row the whole photo before | after (downscaled); bottom row a 100 % crop
(the 240 px square with the most detected damage) before | detections (red: lines, green:
specks) | after. The young Leonardo DiCaprio of ``codeformer_05``/``06`` gets his references
from ``identities/leonardo_dicaprio``; the others have none.

    python scripts/oldprint_panels.py [--data ../shared/data] [--out docs/oldprints] [--only NAME ...]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from face2scene.damage import detect_damage, eyes_protect_mask
from face2scene.halftone import descreen, detect_screen
from face2scene.io import load_image
from face2scene.pipeline import Face2ScenePipeline, PipelineConfig

CROP = 240
THUMB = 360  # px, the long side of each whole-photo view
REFS = {"codeformer_05.jpg": "leonardo_dicaprio", "codeformer_06.png": "leonardo_dicaprio"}


def load_photo(data: Path, path: Path, max_side: int):
    """One real old photo, at most ``max_side`` px (area), and its people: ``{person: reference
    paths}`` for the photos in :data:`REFS`, else None."""
    rgb = load_image(path).rgb
    h, w = rgb.shape[:2]
    s = min(1.0, max_side / max(h, w))
    if s < 1:
        rgb = cv2.resize(rgb, (int(round(w * s)), int(round(h * s))), interpolation=cv2.INTER_AREA)
    person = REFS.get(path.name)
    people = {person: sorted(p for p in (data / "identities" / person).iterdir() if p.is_file())} if person else None
    return rgb, people


def damage_of(rgb, res):
    """The mask the pipeline's print step inpainted: the same detection on the same input
    (descreened when a screen was found), eyes of the detected faces protected."""
    screen = detect_screen(rgb)
    src = descreen(rgb, screen) if screen.found else rgb
    protect = eyes_protect_mask([r.face.landmarks for r in res.faces], rgb.shape)
    return detect_damage(src, protect=protect)


def thumb(img, side):
    h, w = img.shape[:2]
    s = side / max(h, w)
    return cv2.resize(img, (max(1, int(round(w * s))), max(1, int(round(h * s)))), interpolation=cv2.INTER_AREA)


def hstack(parts, gap=4):
    h = max(p.shape[0] for p in parts)
    out = []
    for k, p in enumerate(parts):
        if p.shape[0] < h:
            p = np.concatenate([p, np.full((h - p.shape[0], p.shape[1], 3), 255, np.uint8)], 0)
        out.append(p)
        if k < len(parts) - 1:
            out.append(np.full((h, gap, 3), 255, np.uint8))
    return np.concatenate(out, 1)


def vstack(a, b, gap=4):
    w = max(a.shape[1], b.shape[1])
    pad = [np.concatenate([p, np.full((p.shape[0], w - p.shape[1], 3), 255, np.uint8)], 1) if p.shape[1] < w else p
           for p in (a, b)]
    return np.concatenate([pad[0], np.full((gap, w, 3), 255, np.uint8), pad[1]], 0)


def panel(rgb, out, det):
    h, w = rgb.shape[:2]
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
    top = hstack([thumb(rgb, THUMB), thumb(out, THUMB)])
    bottom = hstack([rgb[sl], over[sl], out[sl]])
    return vstack(top, bottom), [x0, y0, c, c]


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
    pipe = Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical", old_print=True, print_tone="faces"))
    log_path = a.out / "panels.json"
    log = json.loads(log_path.read_text()) if (a.only and log_path.exists()) else {}
    for path in sorted(folder.iterdir()):
        if a.only and path.name not in a.only:
            continue
        rgb, people = load_photo(a.data, path, a.max_side)
        person = REFS.get(path.name)
        t = time.perf_counter()
        res = pipe.restore(rgb, people)
        sec = time.perf_counter() - t
        det = damage_of(rgb, res)
        img, crop = panel(rgb, res.image, det)
        dst = a.out / f"{path.stem}.jpg"
        cv2.imwrite(str(dst), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
        info = res.to_json()
        log[path.name] = {"size": [rgb.shape[1], rgb.shape[0]], "crop_xywh": crop, "seconds": round(sec, 1),
                          "references": person, "faces": len(res.faces),
                          "faces_restored": sum(f.restored_crop is not None for f in res.faces),
                          "old_print": info["old_print"], "warnings": res.warnings,
                          "do_no_harm": info["degradation"]["details"].get("do_no_harm"),
                          "bytes": dst.stat().st_size}
        print(f"{path.name:24s} damage {100 * det.fraction:.2f}%  {sec:.1f}s  -> {dst.name} "
              f"({dst.stat().st_size // 1024} kB)", flush=True)
    log_path.write_text(json.dumps(log, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
