"""100 % crops (input | default restoration, no references) of real old photos from
../shared/data/old_photos, around the first face found, with what the estimate and the do-no-harm
step read and decided (noise, blur, grain, strength, why).

    PYTHONPATH=. python scripts/old_photo_crops.py                       # docs/old_photos_grain_gate_100pct.png
    PYTHONPATH=. python scripts/old_photo_crops.py --photos bopbtl_old_c.png,gfpgan_00.jpg --out /tmp/x.png
"""
import argparse
import json
import time

import cv2
import numpy as np

from face2scene.io import load_image
from face2scene.pipeline import Face2ScenePipeline, PipelineConfig

DEFAULT = "bopbtl_old_c.png,codeformer_03.jpg,gfpgan_00.jpg,bopbtl_old_d.png,gfpgan_10045.png"


def old_photos_dir(given=None) -> str:
    """``given``, else ../shared/data/old_photos found like the benches find the data (exits with
    an error when there is none)."""
    if given is not None:
        return given
    from face2scene.bench.common import default_data
    shared = default_data()
    if shared is None:
        raise SystemExit("error: no ../shared/data here; pass --data FOLDER")
    return str(shared / "old_photos")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="the old photos' folder (default ../shared/data/old_photos)")
    ap.add_argument("--photos", default=DEFAULT, help="comma separated file names in --data")
    ap.add_argument("--out", default="docs/old_photos_grain_gate_100pct.png")
    ap.add_argument("--json", default=None, help="also write the readings and decisions here")
    args = ap.parse_args()
    args.data = old_photos_dir(args.data)
    pipe = Face2ScenePipeline(PipelineConfig())
    rows, report = [], []
    for name in args.photos.split(","):
        rgb = load_image(f"{args.data}/{name}").rgb
        t0, c0 = time.time(), time.process_time()
        r = pipe.restore(rgb)
        d = r.degradation
        dnh = d.details.get("do_no_harm", {})
        g = d.details.get("grain", {})
        rec = {"photo": name, "shape": list(rgb.shape), "noise": round(d.noise_sigma, 2), "blur": round(d.blur_sigma, 2),
               "jpeg": d.jpeg_quality, "source": d.source, "grain": g, "gentle": d.details.get("gentle"),
               "strength": dnh.get("strength"), "reason": dnh.get("reason"),
               "changed_rms": round(float(np.sqrt(((r.image.astype(np.float32) - rgb) ** 2).mean())), 3)
               if r.image.shape == rgb.shape else None,
               "wall_s": round(time.time() - t0, 1), "cpu_s": round(time.process_time() - c0, 1)}
        report.append(rec)
        print(json.dumps(rec), flush=True)
        faces = [f.face.box for f in r.faces]
        if faces:
            x0, y0, x1, y1 = map(int, faces[0])
            cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        else:
            cy, cx = rgb.shape[0] // 2, rgb.shape[1] // 2
        h, w = min(160, rgb.shape[0]), min(200, rgb.shape[1])
        y0 = int(np.clip(cy - h // 2, 0, rgb.shape[0] - h))
        x0 = int(np.clip(cx - w // 2, 0, rgb.shape[1] - w))
        a, b = rgb[y0:y0 + h, x0:x0 + w], r.image[y0:y0 + h, x0:x0 + w]
        rows.append(np.concatenate([a, np.full((h, 6, 3), 255, np.uint8), b], 1))
    W = max(x.shape[1] for x in rows)
    img = np.concatenate([np.pad(x, ((0, 6), (0, W - x.shape[1]), (0, 0)), constant_values=255) for x in rows], 0)
    cv2.imwrite(args.out, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
