"""100 % crops of real old photos (../shared/data/old_photos): input | restored without keep grain |
restored with keep grain ("auto", the default; ``--mode on`` forces it), around the first face
found, with what the grain step read and added (face2scene/grain.py).

    PYTHONPATH=. python scripts/grain_crops.py                   # docs/grain_100pct.png (+ --json)
    PYTHONPATH=. python scripts/grain_crops.py --photos gfpgan_00.jpg --old-print --out /tmp/x.png
"""
import argparse
import json
import time

import cv2
import numpy as np

from face2scene.grain import describe_grain
from face2scene.io import load_image
from face2scene.pipeline import Face2ScenePipeline, PipelineConfig
from old_photo_crops import old_photos_dir  # scripts/ is on the path when a script runs

DEFAULT = "bopbtl_old_c.png,codeformer_03.jpg,gfpgan_00.jpg"
CROP = (220, 260)  # h, w at 100 %


def _crop_box(rgb, faces):
    if faces:
        x0, y0, x1, y1 = map(int, faces[0])
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    else:
        cy, cx = rgb.shape[0] // 2, rgb.shape[1] // 2
    h, w = min(CROP[0], rgb.shape[0]), min(CROP[1], rgb.shape[1])
    y0 = int(np.clip(cy - h // 2, 0, rgb.shape[0] - h))
    x0 = int(np.clip(cx - w // 2, 0, rgb.shape[1] - w))
    return y0, x0, h, w


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="the old photos' folder (default ../shared/data/old_photos)")
    ap.add_argument("--photos", default=DEFAULT, help="comma separated file names in --data")
    ap.add_argument("--mode", choices=["auto", "on"], default="auto", help="keep grain of the right-hand column")
    ap.add_argument("--old-print", action="store_true", help="restore as old prints (repair, tone)")
    ap.add_argument("--out", default="docs/grain_100pct.png")
    ap.add_argument("--json", default=None, help="also write what was read and added here")
    args = ap.parse_args()
    args.data = old_photos_dir(args.data)
    want = "auto" if args.mode == "auto" else True
    pipes = {kg: Face2ScenePipeline(PipelineConfig(keep_grain=kg, old_print=args.old_print)) for kg in (False, want)}
    pipes[want]._backend = pipes[False].face_backend
    rows, report = [], []
    for name in args.photos.split(","):
        rgb = load_image(f"{args.data}/{name}").rgb
        res, secs = {}, {}
        for kg, pipe in pipes.items():
            t0, c0 = time.time(), time.process_time()
            res[kg] = pipe.restore(rgb)
            secs[kg] = (round(time.time() - t0, 1), round(time.process_time() - c0, 1))
        info = res[want].degradation.details.get("keep_grain", {})
        rec = {"photo": name, "shape": list(rgb.shape), "keep_grain": info, "said": describe_grain(info) if info else "",
               "grain_step_s": round(res[want].timings.get("grain", 0.0), 2), "wall_cpu_s": secs,
               "strength": res[want].degradation.details.get("do_no_harm", {}).get("strength")}
        report.append(rec)
        print(f"{name}: {rec['said']} (grain step {rec['grain_step_s']} s; restore wall/cpu s {secs})", flush=True)
        y0, x0, h, w = _crop_box(rgb, [f.face.box for f in res[False].faces])
        cols = [rgb[y0:y0 + h, x0:x0 + w]] + [res[k].image[y0:y0 + h, x0:x0 + w] for k in (False, want)]
        gap = np.full((h, 6, 3), 255, np.uint8)
        rows.append(np.concatenate([cols[0], gap, cols[1], gap, cols[2]], 1))
    W = max(x.shape[1] for x in rows)
    img = np.concatenate([np.pad(x, ((0, 6), (0, W - x.shape[1]), (0, 0)), constant_values=255) for x in rows], 0)
    cv2.imwrite(args.out, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out}: per row input | keep grain off | keep grain {args.mode}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
