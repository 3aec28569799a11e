"""Calibrate facefix.SCENE_FACE_SHARE: how much of the refined face (face-fix) a paste over the
compact restorer's output should take. Development persons only (the validation persons stay
unseen); mild preset; each photo's second image (``--first 1``) with the person's others as
references. Per photo: face-box PSNR gain (clean photo's dlib box) of the scene restorer's face
blended with the pasted refined face at share t, and the whole-photo gain.

    PYTHONPATH=. python scripts/facefix_blend.py [--persons a,b,c] [--out bench_out/facefix_blend.json]

Session 5 (6 development persons, mild, 512 px, compact restorer; the scene as the pipeline pastes
over it: do-no-harm blended, detail equalised), face-box gain (dB) by share t of the refined face:

    photo                         t=0   0.25    0.5   0.75      1
    george_clooney/img39.jpg    +1.85  +2.12  +1.83  +1.09  +0.09
    jack_dorsey/img17.jpg       +2.49  +3.58  +4.00  +3.53  +2.41
    jennifer_aniston/img3.jpg   +2.06  +2.25  +2.19  +1.90  +1.43
    katy_perry/img27.jpg        +1.28  +1.36  +0.88  -0.01  -1.10
    leonardo_dicaprio/img35.jpg +4.18  +3.92  +3.33  +2.52  +1.61
    matt_damon/img30.jpg        +4.85  +5.28  +5.02  +4.18  +3.04
    median                      +2.28  +2.91  +2.76  +2.21  +1.52
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from face2scene.bench.common import capped_psnr, default_data
from face2scene.bench.quality import _face_box, _load, _samples
from face2scene.degrade import degrade
from face2scene.pipeline import Face2ScenePipeline, PipelineConfig

SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)
DEV = "jack_dorsey,katy_perry,matt_damon,george_clooney,jennifer_aniston,leonardo_dicaprio"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--persons", default=DEV)
    ap.add_argument("--max-side", type=int, default=512)
    ap.add_argument("--out", type=Path, default=Path("bench_out/facefix_blend.json"))
    args = ap.parse_args()
    persons = args.persons.split(",")
    data = default_data()
    if data is None:
        raise SystemExit("no development photos (../shared/data)")
    # the refined face pasted whole (share 1) and the scene restorer's output captured before it
    import face2scene.facefix as ff
    ff.SCENE_FACE_SHARE = {}
    pipe = Face2ScenePipeline(PipelineConfig(device="cpu", restorer="auto", seed=0))
    scene = {}
    real = pipe._refine_faces

    def refine(run, out, est):  # the scene (restored, do-no-harm blended, detail equalised) before the paste
        scene["img"] = out.copy()
        return real(run, out, est)
    pipe._refine_faces = refine
    recs = []
    for i, (person, path, refs) in enumerate(_samples(data, len(persons), 1, persons)):
        clean = _load(path, args.max_side)
        deg, _ = degrade(clean, "mild", seed=i)
        scene.clear()
        res = pipe.restore(deg, {person: refs})
        box, _ = _face_box(pipe.face_backend, clean)
        if box is None or "img" not in scene:
            continue
        x0, y0, x1, y1 = box
        fc = lambda im: im[y0:y1, x0:x1]
        d0 = capped_psnr(fc(clean), fc(deg), border=0)
        gains = {}
        for t in SHARES:
            b = np.clip(np.rint(t * res.image.astype(np.float32) + (1 - t) * scene["img"]), 0, 255).astype(np.uint8)
            gains[t] = capped_psnr(fc(clean), fc(b), border=0) - d0
        recs.append({"photo": f"{person}/{path.name}", "face_gain": gains,
                     "whole_gain": capped_psnr(clean, res.image) - capped_psnr(clean, deg)})
        print(f"{person}/{path.name:12s} " + "  ".join(f"t={t}: {g:+.2f}" for t, g in gains.items()), flush=True)
    med = {t: float(np.median([r["face_gain"][t] for r in recs])) for t in SHARES}
    print("median        " + "  ".join(f"t={t}: {g:+.2f}" for t, g in med.items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"records": recs, "median": med}, indent=1))


if __name__ == "__main__":
    main()
