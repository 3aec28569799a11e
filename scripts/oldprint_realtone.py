"""The old-print tone step on the 22 real old photos: what it decided and how much colour it moved.

``--capture FILE``: runs every photo of ``old_photos`` (at most ``--max-side`` px) through the
pipeline as ``scripts/oldprint_panels.py`` does (``old_print=True``, ``print_tone="faces"``,
classical restorer; the DiCaprio photos with his references) and keeps the state just before
the tone step (the image, the monochrome reading, the damaged-print flag, the faces' crops).
``--replay FILE``: runs ``tone.print_tone`` on those states and prints, per photo, the step's
report (faded, levels applied, colour applied, the cast guard) and the colour it moved, in CIE
Lab before vs after the step: mean Δa, Δb, ΔC (chroma) and mean ΔE2000; ``--json`` writes it;
``--png DIR`` writes before/after PNGs of each photo's tone step (for looking at).
``--panel FILE --only NAME ...``: 100 % crops (240 px around the largest face, else the centre)
of the whole pipeline's result, before | main (the tone step without ``colour_guard``) | after,
with the colour the tone step applied written under each.

    PYTHONPATH=.:scripts python scripts/oldprint_realtone.py --capture /tmp/realtone/states.pkl
    PYTHONPATH=.:scripts python scripts/oldprint_realtone.py --replay /tmp/realtone/states.pkl --json out.json
    PYTHONPATH=.:scripts python scripts/oldprint_realtone.py --panel docs/oldprints/realtone_100pct.png \
        --only bopbtl_old_c.png bopbtl_scratch_a.png
"""
from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

import cv2
import numpy as np

import face2scene.tone as tone
from face2scene.pipeline import Face2ScenePipeline, PipelineConfig
from face2scene.tone import print_tone
from oldprint_panels import load_photo


def lab(rgb):
    """CIE Lab (L 0..100, a/b in their usual units) of uint8 sRGB."""
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float64)


def colour_shift(before, after):
    """Mean Δa, Δb, ΔC (Lab chroma) and mean ΔE2000 from ``before`` to ``after`` (same size)."""
    from skimage.color import deltaE_ciede2000
    la, lb = lab(before), lab(after)
    ca, cb = np.hypot(la[:, 1], la[:, 2]), np.hypot(lb[:, 1], lb[:, 2])
    return {"da": round(float((lb[:, 1] - la[:, 1]).mean()), 2), "db": round(float((lb[:, 2] - la[:, 2]).mean()), 2),
            "dC": round(float((cb - ca).mean()), 2), "dL": round(float((lb[:, 0] - la[:, 0]).mean()), 2),
            "dE": round(float(deltaE_ciede2000(la, lb).mean()), 2),
            "C_before": round(float(ca.mean()), 2)}


def capture(a) -> int:
    folder = a.data / "old_photos"
    if not folder.is_dir():
        print(f"error: no old photos in {folder}", file=sys.stderr)
        return 2
    pipe = Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical", old_print=True, print_tone="faces"))
    states = {}
    for path in sorted(folder.iterdir()):
        if a.only and path.name not in a.only:
            continue
        rgb, people = _load(a, path)
        got = {"input": rgb}
        orig = pipe._print_tone

        def hook(run, image, got=got, orig=orig):
            got["image"] = image.copy()
            got["mono"] = run.mono
            got["damaged"] = bool(run.print_info.get("damage", {}).get("damaged_print", False))
            got["faces"] = [(r.degraded_crop, [x.crop for x in run.aligned_refs.get(r.index, [])]) for r in run.jobs]
            got["landmarks"] = [np.asarray(r.face.landmarks, np.float32) for r in run.faces if r.face.usable]
            return orig(run, image)

        pipe._print_tone = hook
        t, c = time.perf_counter(), time.process_time()
        try:
            res = pipe.restore(rgb, people)
        finally:
            pipe._print_tone = orig
        got["output"] = res.image
        got["report"] = res.to_json()["old_print"]
        states[path.name] = got
        print(f"{path.name:24s} {rgb.shape[1]}x{rgb.shape[0]}  {time.perf_counter() - t:.1f} s wall "
              f"{time.process_time() - c:.1f} s CPU", flush=True)
    with open(a.capture, "wb") as f:
        pickle.dump(states, f)
    return 0


def replay(a) -> int:
    with open(a.replay, "rb") as f:
        states = pickle.load(f)
    rows = {}
    backend = Face2ScenePipeline(PipelineConfig(device="cpu")).face_backend
    print(f"{'photo':24s} {'mono':>5s} {'dmg':>4s} {'faded':>6s} {'lev':>5s} {'col':>5s} {'kept':>5s} "
          f"{'da':>6s} {'db':>6s} {'dC':>6s} {'dL':>6s} {'dE':>5s}  colour source")
    for name, st in states.items():
        if a.only and name not in a.only:
            continue
        if "landmarks" not in st:  # a capture made before the landmarks were kept: the faces found again
            st["landmarks"] = [f.landmarks for f in backend.detect(st["image"], with_embeddings=False) if f.usable]
        out, info = print_tone(st["image"], st["mono"], damaged=st["damaged"], faces=st["faces"], mode="faces",
                               landmarks=st["landmarks"], guard=not a.no_guard)
        sh = colour_shift(st["image"], out)
        lev, col = info.get("levels", {}), info.get("colour") or {}
        guard = info.get("colour_guard") or {}
        rows[name] = {"monochrome": bool(st["mono"].mono), "toned": bool(st["mono"].toned), "damaged": st["damaged"],
                      "faded": lev.get("faded"), "levels_applied": lev.get("applied"),
                      "colour_applied": col.get("applied"), "colour_source": col.get("source"),
                      "colour_guard": guard, "shift": sh}
        print(f"{name:24s} {str(st['mono'].mono)[0]:>5s} {str(st['damaged'])[0]:>4s} {lev.get('faded', 0):6.2f} "
              f"{lev.get('applied', 0):5.2f} {col.get('applied', 0) or 0:5.2f} {guard.get('kept', float('nan')):5.2f} "
              f"{sh['da']:6.2f} {sh['db']:6.2f} {sh['dC']:6.2f} {sh['dL']:6.2f} {sh['dE']:5.2f}  {col.get('source', '-')}")
        if a.png:
            a.png.mkdir(parents=True, exist_ok=True)
            pair = np.concatenate([st["image"], np.full((st["image"].shape[0], 6, 3), 255, np.uint8), out], 1)
            cv2.imwrite(str(a.png / f"{Path(name).stem}.png"), cv2.cvtColor(pair, cv2.COLOR_RGB2BGR))
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1, default=str))
    return 0


def _load(a, path):
    return load_photo(a.data, path, a.max_side)


def panel(a) -> int:
    """Before | main | after, 100 % crops, one row per photo (``--only``)."""
    if not a.only:
        print("error: --panel needs --only NAME ...", file=sys.stderr)
        return 2
    pipe = Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical", old_print=True, print_tone="faces"))
    real = tone.print_tone
    rows, log, c = [], {}, 240
    for name in a.only:
        rgb, people = _load(a, a.data / "old_photos" / name)
        outs = {}
        for label, guard in (("main", False), ("after", True)):
            tone.print_tone = (lambda *x, guard=guard, **k: real(*x, **{**k, "guard": guard}))
            try:
                res = pipe.restore(rgb, people)
            finally:
                tone.print_tone = real
            info = res.to_json()["old_print"]
            outs[label] = (res.image, info)
        faces = [f.face for f in res.faces if f.face.usable]
        h, w = rgb.shape[:2]
        if faces:
            lm = max(faces, key=lambda f: np.ptp(f.landmarks[:, 0])).landmarks
            cx, cy = lm.mean(axis=0)
        else:
            cx, cy = w / 2, h / 2
        x0, y0 = int(np.clip(cx - c / 2, 0, max(0, w - c))), int(np.clip(cy - c / 2, 0, max(0, h - c)))
        tiles = []
        for label, im, info in (("before", rgb, {}), ("main", *outs["main"]), ("after", *outs["after"])):
            t = cv2.cvtColor(np.ascontiguousarray(im[y0:y0 + c, x0:x0 + c]), cv2.COLOR_RGB2BGR)
            col = (info.get("colour") or {}).get("applied")
            sh = colour_shift(rgb, im)
            text = f"{label}" + (f"  colour {col:.2f}" if col is not None else "") + (f"  dE {sh['dE']:.1f}" if label != "before" else "")
            t = np.concatenate([t, np.full((18, t.shape[1], 3), 255, np.uint8)], 0)
            cv2.putText(t, text, (3, t.shape[0] - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
            tiles += [t, np.full((t.shape[0], 4, 3), 255, np.uint8)]
        rows.append(np.concatenate(tiles[:-1], 1))
        log[name] = {"crop_xywh": [x0, y0, c, c], "main": {"colour": outs["main"][1].get("colour"),
                                                             "shift": colour_shift(rgb, outs["main"][0])},
                     "after": {"colour": outs["after"][1].get("colour"), "colour_guard": outs["after"][1].get("colour_guard"),
                               "shift": colour_shift(rgb, outs["after"][0])}}
        print(name, json.dumps(log[name]["after"]["shift"]), flush=True)
    width = max(r.shape[1] for r in rows)
    rows = [np.concatenate([r, np.full((r.shape[0], width - r.shape[1], 3), 255, np.uint8)], 1) for r in rows]
    out = np.concatenate([x for r in rows for x in (r, np.full((6, width, 3), 255, np.uint8))][:-1], 0)
    cv2.imwrite(str(a.panel), out)
    a.panel.with_suffix(".json").write_text(json.dumps(log, indent=1, default=str))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--capture", type=Path, default=None)
    ap.add_argument("--replay", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--png", type=Path, default=None)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--no-guard", action="store_true", help="replay without tone.colour_guard (main's step)")
    ap.add_argument("--max-side", type=int, default=768)
    ap.add_argument("--panel", type=Path, default=None)
    a = ap.parse_args(argv)
    if a.panel:
        return panel(a)
    if a.capture:
        return capture(a)
    if a.replay:
        return replay(a)
    ap.error("give --capture FILE, --replay FILE or --panel FILE")
    return 2


if __name__ == "__main__":
    sys.exit(main())
