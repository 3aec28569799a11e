"""100 % crops (input | default restoration, no references) of three real old photos from
../shared/data/old_photos, around the first face found: docs/old_photos_default_100pct_dec.png.

    PYTHONPATH=. python scripts/old_photo_crops.py
"""
import cv2, numpy as np
from face2scene.io import load_image
from face2scene.pipeline import Face2ScenePipeline, PipelineConfig
pipe = Face2ScenePipeline(PipelineConfig())
rows = []
for name in ("bopbtl_old_c.png", "codeformer_03.jpg", "gfpgan_00.jpg"):
    rgb = load_image(f"/work/shared/data/old_photos/{name}").rgb
    r = pipe.restore(rgb)
    d = r.degradation
    print(name, rgb.shape, f"noise {d.noise_sigma:.1f} blur {d.blur_sigma:.2f} jpeg {d.jpeg_quality} src {d.source}", r.warnings[:2])
    faces = [f.face.box for f in r.faces]
    if faces:
        x0, y0, x1, y1 = map(int, faces[0]); cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    else:
        cy, cx = rgb.shape[0] // 2, rgb.shape[1] // 2
    h = 160; w = 200
    y0 = int(np.clip(cy - h // 2, 0, rgb.shape[0] - h)); x0 = int(np.clip(cx - w // 2, 0, rgb.shape[1] - w))
    a, b = rgb[y0:y0 + h, x0:x0 + w], r.image[y0:y0 + h, x0:x0 + w]
    rows.append(np.concatenate([a, np.full((h, 6, 3), 255, np.uint8), b], 1))
W = max(x.shape[1] for x in rows)
img = np.concatenate([np.pad(x, ((0, 6), (0, W - x.shape[1]), (0, 0)), constant_values=255) for x in rows], 0)
cv2.imwrite("docs/old_photos_default_100pct_dec.png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
