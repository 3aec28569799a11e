"""The default pipeline's row of ``face2scene bench quality`` alone (a third of its cost: no blind
or true-parameter rows), same photos, degradations, seeds and measures, for the texture work of
issue 9. ``--before`` runs main's behaviour instead (the refined face pasted whole over every
restorer); ``--detail`` adds the detail equaliser (off by default).

    PYTHONPATH=. python scripts/texture_eval.py --preset mild [--before] [--detail] [--reinject 0.5,1] [--out bench_out/texture_eval.json]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from face2scene.bench.common import default_data, fmt, print_table
from face2scene.bench.quality import _face_box, _load, _samples, _scenes, _val_split, row_metrics
from face2scene.degrade import degrade
from face2scene.pipeline import Face2ScenePipeline, PipelineConfig

SCENES = ("sunhays80_ruin_sun_booxopykmiqnsqbq.jpg,sunhays80_building_facade_sun_bpaohzcfkhzodryb.jpg,"
          "cbsd68_145086.png,sunhays80_vineyard_sun_buwfkswrpuoxtfnt.jpg")


def reinject(degraded: np.ndarray, out: np.ndarray, beta: float) -> np.ndarray:
    """``out`` plus ``beta`` of the finest band (σ < 0.6 px) of what the restoration removed from
    the input (grey, added to the three channels): noise and texture alike, as a grain step would."""
    import cv2
    r = (degraded.astype(np.float32) - out).mean(2)
    fine = r - cv2.GaussianBlur(r, (0, 0), 0.6)
    return np.clip(np.rint(out + beta * fine[..., None]), 0, 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="mild")
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--scene-names", default=SCENES)
    ap.add_argument("--max-side", type=int, default=512)
    ap.add_argument("--restorer", default="auto")
    ap.add_argument("--before", action="store_true", help="main's behaviour: the refined face pasted whole")
    ap.add_argument("--detail", action="store_true", help="with the detail equaliser (PipelineConfig.detail)")
    ap.add_argument("--reinject", default="",
                    help="also measure the result plus these shares of the input's finest band that the "
                         "restoration removed (comma separated, e.g. 0.5,1): the PSNR price of texture")
    ap.add_argument("--out", type=Path, default=Path("bench_out/texture_eval.json"))
    args = ap.parse_args()
    data = default_data()
    if data is None:
        raise SystemExit("no development photos (../shared/data)")
    split = _val_split()
    items = [("person", p, f, r) for p, f, r in _samples(data, args.samples, 0, split["persons"])]
    items += [("scene", None, s, None) for s in _scenes(data, 99, args.scene_names.split(","))]
    if args.before:
        import face2scene.facefix as ff
        ff.SCENE_FACE_SHARE = {}
    pipe = Face2ScenePipeline(PipelineConfig(device="cpu", restorer=args.restorer, seed=0, detail=args.detail))
    recs = []
    for i, (kind, person, path, refs) in enumerate(items):
        clean = _load(path, args.max_side)
        box, clean_face = _face_box(pipe.face_backend, clean) if kind == "person" else (None, None)
        degraded, _ = degrade(clean, args.preset, seed=i)  # the bench's seed (seed 0): seed * 1000 + i
        t, c = time.perf_counter(), time.process_time()
        res = pipe.restore(degraded, {person: refs} if person else None)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        rows = row_metrics(clean, {"degraded": degraded, "face": res.image}, box, pipe.face_backend, clean_face)
        r = rows["face"]
        for beta in [float(b) for b in args.reinject.split(",") if b.strip()]:
            res_ = reinject(degraded, res.image, beta)
            m = row_metrics(clean, {"degraded": degraded, "x": res_}, box)["x"]
            r[f"reinject_{beta}"] = {"gain": m["gain"], "tex": m["tex"], "face_tex": m.get("face_tex"),
                                     "face_gain": m.get("face_gain")}
        recs.append({"photo": (person + "/" if person else "") + path.name, "kind": kind, **r,
                     "detail": res.degradation.details.get("detail"), "seconds": wall, "cpu_seconds": cpu})
        print(f"[{i + 1}/{len(items)}] {recs[-1]['photo']}: gain {r['gain']:+.2f} dB, texture {fmt(r['tex'])}, "
              f"face gain {fmt(r.get('face_gain'))}, face texture {fmt(r.get('face_tex'))}, "
              f"id better {r.get('id_better')} ({wall:.0f} s wall, {cpu:.0f} s CPU)", flush=True)
    med = lambda k, rs=recs: float(np.median([x[k] for x in rs if x.get(k) is not None]))  # noqa: E731
    people = [x for x in recs if x.get("face_gain") is not None]
    ids = [x["id_better"] for x in recs if x.get("id_better") is not None]
    s = {"gain": med("gain"), "worst": float(min(x["gain"] for x in recs)), "tex": med("tex"),
         "face_tex": med("face_tex"), "face_gain": med("face_gain"),
         "face_minus_whole": med("face_gain") - float(np.median([x["gain"] for x in people])),
         "id_better": f"{sum(ids)}/{len(ids)}"}
    print_table(["preset", "photos", "gain", "worst", "texture", "face texture", "face gain", "face−whole", "id better"],
                [[args.preset + (" (before)" if args.before else "") + (" +detail" if args.detail else ""), str(len(recs)), fmt(s["gain"]), fmt(s["worst"]),
                  fmt(s["tex"]), fmt(s["face_tex"]), fmt(s["face_gain"]), fmt(s["face_minus_whole"]), s["id_better"]]])
    for beta in [float(b) for b in args.reinject.split(",") if b.strip()]:
        k = f"reinject_{beta}"
        sub = lambda key: float(np.median([x[k][key] for x in recs if x[k].get(key) is not None]))  # noqa: E731
        s[k] = {"gain": sub("gain"), "tex": sub("tex"), "face_tex": sub("face_tex"), "face_gain": sub("face_gain")}
        print(f"+ {beta:g} x the removed finest band: gain {fmt(s[k]['gain'])}, texture {fmt(s[k]['tex'])}, "
              f"face texture {fmt(s[k]['face_tex'])}, face gain {fmt(s[k]['face_gain'])}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": s, "records": recs, "args": vars(args) | {"out": str(args.out)}},
                                   indent=1, default=str))


if __name__ == "__main__":
    main()
