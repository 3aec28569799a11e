"""Before/after panels of the real old photos with each scene restorer, for docs/old_photos_backends/:
input | classical | compact | gan | compact + old print, 100 % crops, one JPEG per photo.

Every column is the whole pipeline as a user runs it (``Face2ScenePipeline(PipelineConfig(restorer=...))``:
faces detected and restored by Ref-FR, pasted back, do-no-harm on, CPU); the fifth column is the
compact restorer with the "old print" option (``old_print=True``: descreen, scratch/dust repair,
tone). The GAN costs ~17 min per megapixel on this CPU, so each backend restores the same *window*
of the photo, not the whole photo: a ``--crop`` px square around the largest face (else the centre)
plus ``--margin`` px of context on each side (clipped to the photo); the panel shows the crop. When
the largest face is too big for the crop (side > ``--face-frac`` of it) the photo is first
downsized (area) so it fits; the scale is in the JSON and under the input tile. The two Leonardo
DiCaprio photos get his references (``oldprint_panels.REFS``), the others have none.

The JSON (``panels.json`` in ``--out``) has, per photo and column: wall and CPU seconds of the
restore call, the restorer that ran, the do-no-harm decision (strength, reason), the explicit
estimate, faces found/restored, warnings, how much the crop changed (RMS, grey levels) and the
detail ratio of the output crop against the input crop (Laplacian energy out / in: < 1 smoothed,
> 1 sharpened or invented). Results are cached per photo and column in ``--cache`` (an output
PNG + a JSON record, keyed by the window), so a rerun resumes where it stopped; at the end a
markdown table (decision / detail ratio / wall and CPU s per photo and column) is printed.
``--force`` runs the columns with do-no-harm off (own cache, panels in ``<out>/forced``), to show
what each backend does to the photos the safeguard leaves unchanged. Verdicts:
docs/old_photos_backends/README.md.

    nice -n 15 python scripts/backend_panels.py --weights runs/models [--only NAME ...] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_panel import _label, _row  # noqa: E402  (scripts/ helpers)

# column -> (restorer, old_print)
COLUMNS = {"classical": ("classical", False), "compact": ("compact", False), "gan": ("gan", False),
           "compact+print": ("compact", True)}


def largest_box(boxes):
    """The box (x0, y0, x1, y1) of largest area, or None."""
    boxes = [tuple(float(v) for v in b) for b in boxes]
    return max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1])) if boxes else None


def fit_scale(box, crop: int, face_frac: float) -> float:
    """The downsizing (<= 1) that makes the face box's longer side at most ``face_frac * crop``."""
    if box is None:
        return 1.0
    side = max(box[2] - box[0], box[3] - box[1])
    return 1.0 if side <= face_frac * crop else face_frac * crop / side


def crop_window(shape, box, crop: int, margin: int):
    """(crop box, window box) as (x0, y0, x1, y1): a ``crop`` px square (smaller if the photo is)
    centred on ``box`` (else on the photo's centre), shifted inside the photo, and the same square
    grown by ``margin`` px of context on each side, clipped to the photo."""
    h, w = shape[:2]
    if crop < 16 or margin < 0:
        raise ValueError(f"crop must be at least 16 px and margin at least 0, got {crop} and {margin}")
    cx, cy = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2) if box is not None else (w / 2, h / 2)
    cw, ch = min(crop, w), min(crop, h)
    x0 = int(np.clip(round(cx - cw / 2), 0, w - cw))
    y0 = int(np.clip(round(cy - ch / 2), 0, h - ch))
    c = (x0, y0, x0 + cw, y0 + ch)
    win = (max(0, x0 - margin), max(0, y0 - margin), min(w, x0 + cw + margin), min(h, y0 + ch + margin))
    return c, win


def make_panel(tiles) -> np.ndarray:
    """One row of labelled tiles: ``tiles`` is a list of (RGB uint8 image, [label lines])."""
    if not tiles:
        raise ValueError("a panel needs at least one tile")
    return _row([_label(np.ascontiguousarray(img), lines) for img, lines in tiles])


def _rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(((a.astype(np.float32) - b.astype(np.float32)) ** 2).mean()))


def _record(res, wall: float, cpu: float) -> dict:
    info = res.to_json()
    deg = info["degradation"]
    dnh = deg["details"].get("do_no_harm") or {}
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "restorer_ran": res.backends.restorer,
            "backends": info["backends"],
            "strength": dnh.get("strength"), "reason": dnh.get("reason"),
            "estimate": {k: deg.get(k) for k in ("source", "noise_sigma", "blur_sigma", "jpeg_quality", "scale",
                                                 "confidence")},
            "faces": len(res.faces), "faces_restored": sum(f.restored_crop is not None for f in res.faces),
            "old_print": info.get("old_print"), "warnings": [str(w) for w in res.warnings]}


def _tile_lines(name: str, rec: dict) -> list:
    s = rec.get("strength")
    decision = "left unchanged" if s == 0 else ("do-no-harm off" if s is None else f"strength {s:.2f}")
    return [f"{name}  {rec['wall_s']:.0f} s (cpu {rec['cpu_s']:.0f})", decision,
            f"detail {rec['detail']:.2f}  rms {rec['changed_rms']:.1f}" if rec.get("detail") is not None
            else f"detail -  rms {rec['changed_rms']:.1f}"]


def summary_table(photos: dict) -> str:
    """A markdown table: per photo and column, the decision (strength; "=" left unchanged, "off"
    do-no-harm off), the detail ratio and the wall / CPU seconds."""
    cols = list(dict.fromkeys(c for rec in photos.values() for c in rec["columns"]))
    lines = ["| photo | scale | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for name, rec in photos.items():
        cells = []
        for c in cols:
            r = rec["columns"].get(c)
            if r is None:
                cells.append("")
                continue
            s = r.get("strength")
            dec = "off" if s is None else ("=" if s == 0 else f"{s:.2f}")
            det = "-" if r.get("detail") is None else f"{r['detail']:.2f}"
            cells.append(f"{dec} / {det} / {r['wall_s']:.0f} s ({r['cpu_s']:.0f})")
        lines.append(f"| {name} | {rec['scale']:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_photo(path: Path, pipes: dict, people, args, cache: Path) -> dict:
    """Restore one photo's window with every column (cached), write its panel; its JSON record."""
    from face2scene.io import load_image
    from face2scene.metrics import detail_ratio

    rgb = load_image(path).rgb
    h0, w0 = rgb.shape[:2]
    detector = next(iter(pipes.values()))
    box = largest_box([f.box for f in detector.detect_faces(rgb)])
    scale = fit_scale(box, args.crop, args.face_frac)
    if scale < 1:
        rgb = cv2.resize(rgb, (max(1, round(w0 * scale)), max(1, round(h0 * scale))), interpolation=cv2.INTER_AREA)
        box = None if box is None else tuple(v * scale for v in box)
    c, win = crop_window(rgb.shape, box, args.crop, args.margin)
    window = np.ascontiguousarray(rgb[win[1]:win[3], win[0]:win[2]])
    inner = (slice(c[1] - win[1], c[3] - win[1]), slice(c[0] - win[0], c[2] - win[0]))
    inp = window[inner]
    key = {"photo": path.name, "scale": round(scale, 4), "window": list(win), "crop": list(c)}
    if args.force:
        key["do_no_harm"] = False
    rec = dict(key, size=[w0, h0], face_box=None if box is None else [round(v, 1) for v in box],
               references=None if not people else list(people), columns={})
    tiles = [(inp, ["input" + (f" (x{scale:.2f})" if scale < 1 else "") + f"  {w0}x{h0}",
                    "face" if box is not None else "no face: centre", f"crop {c[2] - c[0]}x{c[3] - c[1]}"])]
    for name, pipe in pipes.items():
        d = cache / ("forced" if args.force else "") / path.stem
        png, js = d / f"{name}.png", d / f"{name}.json"
        cached = json.loads(js.read_text()) if js.is_file() and png.is_file() else None
        if cached is not None and cached.get("key") == key:
            out, r = cv2.cvtColor(cv2.imread(str(png)), cv2.COLOR_BGR2RGB), cached["record"]
        else:
            t, cpu = time.perf_counter(), time.process_time()
            res = pipe.restore(window, people)
            r = _record(res, time.perf_counter() - t, time.process_time() - cpu)
            out = res.image
            dr = detail_ratio(inp, out[inner])
            r.update(detail=None if dr is None else round(dr, 3), changed_rms=round(_rms(inp, out[inner]), 2))
            d.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(png), cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
            js.write_text(json.dumps({"key": key, "record": r}, indent=1, default=str))
        print(f"{path.name:24s} {name:14s} {r['wall_s']:7.1f} s (cpu {r['cpu_s']:6.1f})  "
              f"strength {r['strength']}  detail {r['detail']}  {r['reason'] or ''}", flush=True)
        rec["columns"][name] = r
        tiles.append((out[inner], _tile_lines(name, r)))
    dst = args.out / f"{path.stem}.jpg"
    cv2.imwrite(str(dst), cv2.cvtColor(make_panel(tiles), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return rec


def main(argv=None) -> int:
    import torch

    from face2scene.bench.common import default_data
    from face2scene.pipeline import Face2ScenePipeline, PipelineConfig
    from oldprint_panels import REFS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="the photo collection (default ../shared/data)")
    ap.add_argument("--weights", type=Path, default=None, help="models folder for the GAN (holds or receives gan/)")
    ap.add_argument("--out", type=Path, default=Path("docs/old_photos_backends"))
    ap.add_argument("--cache", type=Path, default=Path("runs/backend_panels"))
    ap.add_argument("--only", nargs="*", default=None, help="file names in old_photos")
    ap.add_argument("--columns", default=",".join(COLUMNS), help=f"comma separated, of {', '.join(COLUMNS)}")
    ap.add_argument("--crop", type=int, default=160)
    ap.add_argument("--margin", type=int, default=8)
    ap.add_argument("--face-frac", type=float, default=0.7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--force", action="store_true",
                    help="do-no-harm off (every backend runs at full strength; shows what it does to photos "
                         "the safeguard leaves unchanged); its own cache, and the panels go to <out>/forced")
    a = ap.parse_args(argv)
    if a.crop < 16 or a.margin < 0 or not 0 < a.face_frac <= 1 or a.threads < 1:
        print(f"error: need --crop >= 16, --margin >= 0, 0 < --face-frac <= 1 and --threads >= 1 "
              f"(got {a.crop}, {a.margin}, {a.face_frac}, {a.threads})", file=sys.stderr)
        return 2
    cols = [x.strip() for x in a.columns.split(",") if x.strip()]
    bad = [x for x in cols if x not in COLUMNS]
    if bad or not cols:
        print(f"error: unknown column(s) {bad}; choose from {', '.join(COLUMNS)}", file=sys.stderr)
        return 2
    data = a.data or default_data()
    folder = None if data is None else data / "old_photos"
    if folder is None or not folder.is_dir():
        print(f"error: no old photos in {folder} (pass --data DIR holding old_photos/)", file=sys.stderr)
        return 2
    torch.set_num_threads(max(1, a.threads))
    pipes = {n: Face2ScenePipeline(PipelineConfig(device="cpu", restorer=COLUMNS[n][0], old_print=COLUMNS[n][1],
                                                  models_dir=a.weights, do_no_harm=not a.force)) for n in cols}
    if a.force:
        a.out = a.out / "forced"
    a.out.mkdir(parents=True, exist_ok=True)
    log_path = a.out / "panels.json"
    log = json.loads(log_path.read_text()) if log_path.is_file() else {}
    log["command"] = " ".join(["python"] + sys.argv)
    photos = log.setdefault("photos", {})
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")):
        if a.only and path.name not in a.only:
            continue
        person = REFS.get(path.name)
        people = None
        if person and (data / "identities" / person).is_dir():
            people = {person: sorted(p for p in (data / "identities" / person).iterdir() if p.is_file())}
        photos[path.name] = run_photo(path, pipes, people, a, a.cache)
        log_path.write_text(json.dumps(log, indent=1, default=str))
    print("strength (= left unchanged, off: do-no-harm off) / detail ratio out:in / wall s (CPU s)")
    print(summary_table(photos))
    return 0


if __name__ == "__main__":
    sys.exit(main())
