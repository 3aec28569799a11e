"""100 % crops of the scene restorers side by side, for docs/: degraded | classical | compact | gan | clean.

Two photos of held-out people (the learned models' validation split), each at most ``--max-side``
px, degraded with each ``--preset`` (default ``near-clean`` and ``mild``: a nearly clean photo must
come back unharmed, a degraded one restored), then restored by the whole pipeline with each
restorer (references: the person's other photos; CPU) on a ``--crop`` px square around the clean
photo's face, cut from the degraded photo (the GAN costs ~17 min per megapixel on a 2-core CPU, so
only the shown pixels are restored; the face is inside, so faces, estimate and code work as on the
whole photo). Faces are *not* pasted back
(``paste_faces=False``): every restorer gets the same Ref-FR faces, so pasting them would hide what
the scene restorer itself does to skin, hair and fabric. Tiles are shown at 100 % (enlarged
x``--zoom`` by nearest neighbour only for viewing).

Under each tile: PSNR / GMSD / detail ratio of the crop against the clean crop (detail ratio:
Laplacian energy restored / clean; 1 = the clean photo's detail, < 1 smoothed, > 1 sharpened or
invented). The GAN needs its weights (``--weights DIR`` holding or receiving ``gan/``; see
``face2scene.restorers.gan``); without them the pipeline falls back and the JSON's warnings say so. Writes
``<out>.jpg`` (quality 90) and ``<out>.json``
(every measure and the restore time, wall and CPU, of each restorer).

    python scripts/gan_panel.py --weights /path/to/models --out docs/gan_panel
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

RESTORERS = ("classical", "compact", "gan")


def _label(img: np.ndarray, lines, scale: float = 0.38) -> np.ndarray:
    h = 13 * len(lines) + 4
    band = np.full((h, img.shape[1], 3), 255, np.uint8)
    for k, text in enumerate(lines):
        cv2.putText(band, text, (2, 12 + 13 * k), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([img, band], 0)


def _row(tiles, gap: int = 4) -> np.ndarray:
    h = max(t.shape[0] for t in tiles)
    parts = []
    for k, t in enumerate(tiles):
        t = np.concatenate([t, np.full((h - t.shape[0], t.shape[1], 3), 255, np.uint8)], 0) if t.shape[0] < h else t
        parts += [t] + ([np.full((h, gap, 3), 255, np.uint8)] if k < len(tiles) - 1 else [])
    return np.concatenate(parts, 1)


def _crop_box(clean: np.ndarray, size: int):
    from face2scene.datasets import detect_face_box
    h, w = clean.shape[:2]
    box = detect_face_box(clean)
    cx, cy = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2) if box else (w / 2, h / 2)
    size = min(size, h, w)
    x0 = int(np.clip(round(cx - size / 2), 0, w - size))
    y0 = int(np.clip(round(cy - size / 2), 0, h - size))
    return x0, y0, x0 + size, y0 + size


def main(argv=None) -> int:
    from face2scene.bench import common
    from face2scene.bench.quality import _samples, _val_split
    from face2scene.datasets import load_rgb
    from face2scene.degrade import degrade
    from face2scene.metrics import detail_ratio, gmsd, psnr
    from face2scene.pipeline import Face2ScenePipeline, PipelineConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="the photo collection (default ../shared/data)")
    ap.add_argument("--weights", type=Path, default=None, help="models folder for the GAN (holds or receives gan/)")
    ap.add_argument("--preset", default="near-clean,mild")
    ap.add_argument("--photos", type=int, default=2)
    ap.add_argument("--max-side", type=int, default=192)
    ap.add_argument("--crop", type=int, default=112)
    ap.add_argument("--zoom", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("docs/gan_panel"))
    args = ap.parse_args(argv)
    data = args.data or common.default_data()
    if data is None or not (data / "identities").is_dir():
        print("error: no photo collection (pass --data DIR with identities/<person>/...)", file=sys.stderr)
        return 2
    persons = _val_split()["persons"]
    items = _samples(data, args.photos, 0, persons)
    pipes = {r: Face2ScenePipeline(PipelineConfig(device="cpu", restorer=r, models_dir=args.weights,
                                                  paste_faces=False, seed=args.seed)) for r in RESTORERS}
    rows, record = [], {"command": " ".join(sys.argv), "max_side": args.max_side, "crop": args.crop,
                        "paste_faces": False, "photos": []}
    for i, (person, path, refs) in enumerate(items):
        clean = load_rgb(str(path), args.max_side, resample="area")
        x0, y0, x1, y1 = _crop_box(clean, args.crop)
        cc = clean[y0:y1, x0:x1]
        for preset in [p.strip() for p in args.preset.split(",") if p.strip()]:
            deg, params = degrade(clean, preset, seed=args.seed * 1000 + i)
            deg = np.ascontiguousarray(deg[y0:y1, x0:x1])
            outs = {"degraded": deg}
            rec = {"person": person, "photo": path.name, "preset": preset, "truth": params["summary"],
                   "size": [clean.shape[1], clean.shape[0]], "crop_box": [x0, y0, x1, y1], "tiles": {}}
            for r, pipe in pipes.items():
                t, c = time.perf_counter(), time.process_time()
                res = pipe.restore(deg, {person: refs})
                rec["tiles"][r] = {"seconds": round(time.perf_counter() - t, 2),
                                   "cpu_seconds": round(time.process_time() - c, 2),
                                   "restorer_ran": res.backends.restorer,
                                   "warnings": [str(w) for w in res.warnings]}
                outs[r] = res.image
                print(f"{person}/{path.name} {preset} {r}: {rec['tiles'][r]['seconds']} s "
                      f"(cpu {rec['tiles'][r]['cpu_seconds']} s)", flush=True)
            outs["clean"] = cc
            tiles = []
            for name, oc in outs.items():
                m = {"psnr": round(min(psnr(cc, oc), 60.0), 2), "gmsd": round(gmsd(cc, oc), 4),
                     "detail": None if detail_ratio(cc, oc) is None else round(detail_ratio(cc, oc), 3)}
                rec["tiles"].setdefault(name, {}).update(m)
                view = cv2.resize(oc, None, fx=args.zoom, fy=args.zoom, interpolation=cv2.INTER_NEAREST)
                text = [f"{name}" + (f" ({preset})" if name == "degraded" else "")]
                if name != "clean":
                    text.append(f"{m['psnr']:.1f} dB  GMSD {m['gmsd']:.3f}")
                    text.append(f"detail {m['detail'] if m['detail'] is not None else '-'}")
                tiles.append(_label(view, text))
            rows.append(_row(tiles))
            record["photos"].append(rec)
    gap = np.full((6, max(r.shape[1] for r in rows), 3), 255, np.uint8)
    panel = np.concatenate([x for r in rows for x in (r, gap)][:-1], 0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out.with_suffix(".jpg")), cv2.cvtColor(panel, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 90])
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=2, default=str))
    print(f"wrote {args.out.with_suffix('.jpg')} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
