"""100 % crops (degraded | before | after | clean) of two validation photos under the mild preset,
the default pipeline (compact restorer) before and after session 5's texture work (the detail
equaliser, detail.py, and the refined face's share over the compact restorer, facefix.py):
docs/texture_100pct.png. "Before" is the same code with both switched off (``detail=False``,
the refined face pasted whole), which is what main did; "after" has both on.

    PYTHONPATH=. python scripts/texture_crops.py
"""
import cv2
import numpy as np

import face2scene.facefix as ff
from face2scene.bench.common import capped_psnr, default_data, texture_ratio
from face2scene.bench.quality import _load
from face2scene.degrade import degrade
from face2scene.pipeline import Face2ScenePipeline, PipelineConfig

data = default_data()
person = "scarlett_johansson"
files = sorted((data / "identities" / person).iterdir())
photos = [(files[0], {person: files[1:]}, 1), (data / "scenes" / "sunhays80_building_facade_sun_bpaohzcfkhzodryb.jpg", None, 5)]
share = dict(ff.SCENE_FACE_SHARE)
before = Face2ScenePipeline(PipelineConfig(device="cpu", detail=False))
after = Face2ScenePipeline(PipelineConfig(device="cpu", detail=True))  # the equaliser is opt-in
rows = []
for path, people, seed in photos:
    clean = _load(path, 512)
    deg, params = degrade(clean, "mild", seed=seed)
    ff.SCENE_FACE_SHARE = {}
    b = before.restore(deg, people)
    ff.SCENE_FACE_SHARE = share
    a = after.restore(deg, people)
    print(path.name, {k: round(v, 2) if isinstance(v, float) else v for k, v in params["summary"].items()})
    for name, img in (("degraded", deg), ("before", b.image), ("after", a.image)):
        print(f"  {name:8s} PSNR {capped_psnr(clean, img):.2f} dB, texture {texture_ratio(clean, img):.2f}")
    if b.faces:
        x0, y0, x1, y1 = map(int, b.faces[0].face.box)
        cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
    else:
        cy, cx = clean.shape[0] // 2, clean.shape[1] // 2
    h, w = 160, 160
    y0 = int(np.clip(cy - h // 2, 0, clean.shape[0] - h))
    x0 = int(np.clip(cx - w // 2, 0, clean.shape[1] - w))
    tiles = [im[y0:y0 + h, x0:x0 + w] for im in (deg, b.image, a.image, clean)]
    gap = np.full((h, 6, 3), 255, np.uint8)
    rows.append(np.concatenate(sum(([t, gap] for t in tiles), [])[:-1], 1))
img = np.concatenate([np.pad(r, ((0, 6), (0, 0), (0, 0)), constant_values=255) for r in rows], 0)
cv2.imwrite("docs/texture_100pct.png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
print("docs/texture_100pct.png: degraded | before | after | clean")
