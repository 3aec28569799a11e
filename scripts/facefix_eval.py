"""Issue 9 item 3: does restoring the face again with the estimate (face2scene.facefix) beat the
Ref-FR paste in the face box?

Step 1 (``--cache``) runs the pipeline up to the paste on synthetic degradations of identity
photos (references = that person's other photos, as ``face2scene bench quality`` does) and keeps
what the paste sees (faces, aligned references, estimate, scene-restored photo). Step 2 pastes
the faces in several ways from that cache and prints, per photo and as medians: whole-photo and
face-box PSNR gain over the input and the identity distance to the clean face.

    PYTHONPATH=. python scripts/facefix_eval.py --split dev --preset mild --cache /tmp/ff
    PYTHONPATH=. python scripts/facefix_eval.py --split dev --preset mild --cache /tmp/ff --eval
"""
from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from facefix_faces import face_metrics  # noqa: E402
from noharm_eval import DEV_PERSONS, VAL_PERSONS  # noqa: E402


def _samples(data: Path, persons, n: int):
    files = {p: sorted(q for q in (data / "identities" / p).iterdir() if q.is_file()) for p in persons}
    out, k = [], 0
    while len(out) < n and k < 20:
        for p in persons:
            if k < len(files[p]) and len(out) < n:
                f = files[p][k]
                out.append((p, f, [g for g in files[p] if g != f]))
        k += 1
    return out


def build_cache(args) -> None:
    from face2scene.bench.quality import _face_box
    from face2scene.degrade import degrade
    from face2scene.io import load_image
    from face2scene.pipeline import Face2ScenePipeline, PipelineConfig

    grabbed = {}

    class Grab(Face2ScenePipeline):
        def _refine_faces(self, run, out, estimate):  # the paste step; the Ref-FR paste it replaced, kept
            grabbed.update(run=run, scene=out.copy(), estimate=estimate,
                           refpaste=self._paste_faces(run, out.copy(), estimate))
            return super()._refine_faces(run, out, estimate)

    pipe = Grab(PipelineConfig(device="cpu", restorer="classical", seed=0))
    persons = VAL_PERSONS if args.split == "val" else DEV_PERSONS
    args.cache.mkdir(parents=True, exist_ok=True)
    for i, (person, path, refs) in enumerate(_samples(args.data, persons, args.samples)):
        f = args.cache / f"{args.preset}_{person}_{path.stem}.pkl"
        if f.exists():
            continue
        clean = load_image(path).rgb
        s = args.max_side / max(clean.shape[:2])
        if s < 1:
            clean = cv2.resize(clean, (round(clean.shape[1] * s), round(clean.shape[0] * s)), interpolation=cv2.INTER_AREA)
        box, clean_face = _face_box(pipe.face_backend, clean)
        degraded, params = degrade(clean, args.preset, seed=i)
        grabbed.clear()
        res = pipe.restore(degraded, {person: refs})
        run = grabbed.get("run")
        rec = {"person": person, "photo": path.name, "clean": clean, "degraded": degraded, "box": box,
               "clean_face": clean_face, "truth": params["summary"], "old": grabbed.get("refpaste"),
               "scene": grabbed.get("scene"), "estimate": grabbed.get("estimate"),
               "jobs": [] if run is None else run.jobs, "aligned": {} if run is None else run.aligned_refs,
               "gains": {} if run is None else run.gains,
               "strength": 1.0 if run is None or run.decision is None else run.decision.strength}
        with open(f, "wb") as fh:
            pickle.dump(rec, fh)
        print(f"cached {f.name}: {len(rec['jobs'])} face(s), estimate {res.degradation.to_json()['noise_sigma']}"
              f"/{res.degradation.to_json()['blur_sigma']}, truth {params['summary']}", flush=True)


def facefix_paste(rec, detail: float = 0.5) -> np.ndarray:
    """What the pipeline's paste step does now (Face2ScenePipeline._refine_faces), on a cached run."""
    from face2scene.facefix import paste_mask, refine_face
    from face2scene.faces.align import affine_scale, paste_back, warp_to_crop
    out = rec["scene"].copy()
    occupied = np.zeros(out.shape[:2], np.float32)
    for r in rec["jobs"]:
        size = r.degraded_crop.shape[0]
        scene, mask = warp_to_crop(out, r.affine, size), paste_mask(size)
        fix = refine_face(r.degraded_crop, rec["estimate"], rec["aligned"].get(r.index, []), affine_scale(r.affine),
                          scene, detail, mask)
        if "skipped" not in fix.info:
            face = scene + rec["strength"] * (fix.crop.astype(np.float32) - scene)
            paste_back(out, np.clip(np.rint(face), 0, 255).astype(np.uint8), r.affine, occupied, crop_mask=mask)
    return out


def evaluate(args) -> None:
    from face2scene.faces import get_face_backend
    backend = get_face_backend("dlib")
    rows = {"scene": lambda r: r["scene"], "Ref-FR paste": lambda r: r["old"], "face-fix": facefix_paste}
    res = {k: [] for k in rows}
    for f in sorted(args.cache.glob(f"{args.preset}_*.pkl")):
        with open(f, "rb") as fh:
            rec = pickle.load(fh)
        if rec["box"] is None or rec["scene"] is None:
            continue
        m0 = face_metrics(rec, rec["degraded"], backend)
        line = f"{rec['person'][:14]:14s}"
        for k, fn in rows.items():
            m = face_metrics(rec, fn(rec), backend)
            res[k].append((m[0] - m0[0], m[1] - m0[1], m[2] - m0[2]))
            line += f" | {k}: whole {m[0] - m0[0]:+.2f} face {m[1] - m0[1]:+.2f} id {m[2] - m0[2]:+.3f}"
        print(line, flush=True)
    print(f"\npreset {args.preset}, {len(res['scene'])} photos (median gains over the degraded input, dB; "
          "id: change of the dlib distance to the clean face, negative = closer)")
    for k, v in res.items():
        a = np.array(v)
        print(f"{k:14s} whole {np.median(a[:, 0]):+.2f}  face box {np.median(a[:, 1]):+.2f}  "
              f"face - whole {np.median(a[:, 1]) - np.median(a[:, 0]):+.2f}  id closer {(a[:, 2] < 0).sum()}/{len(a)}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--split", default="dev", choices=["dev", "val"])
    ap.add_argument("--preset", default="mild")
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--max-side", type=int, default=768)
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--eval", action="store_true", help="compare the pastes on the cached runs")
    args = ap.parse_args()
    build_cache(args)
    if args.eval:
        evaluate(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
