"""The texture / PSNR frontier (issues 9 and 10): the fine-band step of :mod:`face2scene.detail_bands`
at several strengths on (A) x4 upscales and (B) the mild preset's restorations.

The expensive outputs (the GAN's x4, the pipelines' restorations) are computed once and cached as
``.npz`` in ``--cache`` (one file per photo and producer); the band step and the scoring run on the
cache. The clean photo is only ever used for scoring.

A. ``upscale``: the photos of ``scripts/gan_upscale_check.py`` (val split, ``--max-side`` 256, cropped
   to a multiple of 4, downscaled by 4 with area) enlarged x4 by bicubic and by the GAN restorer;
   the band step on the GAN's x4 (the input is the small photo) at ``--strengths``.
B. ``mild``: the photos and seeds of ``face2scene bench quality --split val --samples 4 --scenes 4
   --scene-names <session 6's four> --preset mild`` (photo i degraded with seed 1000·seed + i);
   the pipeline's face-derived row with the ``auto`` restorer (as today's bench) and with
   ``--restorer gan`` (x1); the band step on each at ``--strengths``.

Per point: median PSNR (Y) gain over the degraded input (B) or over bicubic (A), median detail ratio
(whole photo and, for people, the clean photo's face box). Prints tables, writes JSON (``--json``)
and, with ``--plot``, the frontier plot.

    python scripts/texture_frontier.py upscale --weights MODELS --cache runs/texcache --json OUT.json
    python scripts/texture_frontier.py mild [--restorers auto,gan --weights MODELS] --max-side 512 \
        --cache runs/texcache --json OUT.json
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Dict, List

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SESSION6_SCENES = ("sunhays80_ruin_sun_booxopykmiqnsqbq.jpg,sunhays80_building_facade_sun_bpaohzcfkhzodryb.jpg,"
                   "cbsd68_145086.png,sunhays80_vineyard_sun_buwfkswrpuoxtfnt.jpg")


def _cached(path: Path, make):
    """The arrays in ``path`` (npz) or, absent, ``make()``'s dict of arrays, saved there first."""
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    t, c = time.perf_counter(), time.process_time()
    d = make()
    d["seconds"] = np.array([time.perf_counter() - t, time.process_time() - c])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **d)
    return d


def upscale_items(data: Path, n: int):
    from face2scene.bench.quality import _samples, _scenes, _val_split
    split = _val_split()
    n_people = max(1, round(n * 2 / 3))
    paths = [f for _, f, _ in _samples(data, n_people, 0, split["persons"])]
    return paths + _scenes(data, n - len(paths), split["scenes"])


def make_upscale(args, data: Path) -> List[Dict]:
    from face2scene.datasets import load_rgb
    gan = None
    out = []
    for path in upscale_items(data, args.photos):
        name = f"{path.parent.name}/{path.name}"

        def make():
            nonlocal gan
            if gan is None:
                from face2scene.restorers.gan import load_gan_restorer
                gan = load_gan_restorer(args.weights)
            clean = load_rgb(str(path), args.max_side, resample="area")
            h, w = clean.shape[0] // 4 * 4, clean.shape[1] // 4 * 4
            clean = np.ascontiguousarray(clean[:h, :w])
            small = cv2.resize(clean, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
            return {"clean": clean, "small": small, "gan": gan.restore(small, None, upscale=4).image}
        d = _cached(args.cache / f"up4_{args.max_side}_{path.parent.name}_{path.stem}.npz", make)

        def make_cal():  # the GAN's own band deficit, one scale down (detail_bands.self_calibrate)
            nonlocal gan
            if gan is None:
                from face2scene.restorers.gan import load_gan_restorer
                gan = load_gan_restorer(args.weights)
            from face2scene.detail_bands import self_calibrate
            fn = lambda x: gan.restore(x, None, upscale=4).image  # noqa: E731
            small = d["small"]
            # reference: the input itself, or the GAN's x4 area-averaged back to the input's grid
            # (its x1 restoration: what the pipeline uses, where the input may be noisy)
            restored = cv2.resize(d["gan"], (small.shape[1], small.shape[0]), interpolation=cv2.INTER_AREA)
            out = {}
            for key, ref in (("deficit", small), ("deficit_out", restored)):
                dd = self_calibrate(ref, fn, 4)
                out[key] = np.full(6, np.nan) if dd is None else dd
            return out
        cal = _cached(args.cache / f"cal4b_{args.max_side}_{path.parent.name}_{path.stem}.npz", make_cal)
        d["deficit"], d["deficit_out"] = cal["deficit"], cal["deficit_out"]
        print(f"cached x4 {name} ({d['seconds'][0]:.0f} s, cpu {d['seconds'][1]:.0f} s)", flush=True)
        out.append({"photo": name, **d})
    return out


def mild_items(data: Path, n_people: int, n_scenes: int):
    from face2scene.bench.quality import _samples, _scenes, _val_split
    split = _val_split()
    items = [("person", p, f, refs) for p, f, refs in _samples(data, n_people, 0, split["persons"])]
    return items + [("scene", None, s, None) for s in _scenes(data, n_scenes, SESSION6_SCENES.split(","))]


def make_mild(args, data: Path, restorer: str) -> List[Dict]:
    from face2scene.bench.quality import _face_box, _load
    from face2scene.degrade import degrade
    from face2scene.pipeline import Face2ScenePipeline, PipelineConfig
    pipe = None
    out = []
    for i, (kind, person, path, refs) in enumerate(mild_items(data, 4, 4)):
        name = (person + "/" if person else "") + path.name

        def make():
            nonlocal pipe
            if pipe is None:
                pipe = Face2ScenePipeline(PipelineConfig(device="cpu", restorer=restorer, seed=args.seed,
                                                         models_dir=args.weights if restorer == "gan" else None,
                                                         keep_grain=False))
            clean = _load(path, args.max_side)
            box = _face_box(pipe.face_backend, clean)[0] if kind == "person" else None
            degraded, _ = degrade(clean, args.preset, seed=args.seed * 1000 + i)
            res = pipe.restore(degraded, {person: refs} if person else None)
            dnh = res.degradation.details.get("do_no_harm", {})
            e = res.degradation
            return {"clean": clean, "degraded": degraded, "restored": res.image,
                    "estimate": np.array([e.noise_sigma, e.blur_sigma, e.jpeg_quality or 0, e.scale]),
                    "box": np.array(box if box is not None else [-1, -1, -1, -1]),
                    "strength": np.array(float(dnh.get("strength", 1.0)))}
        stem = f"{args.preset}_{args.max_side}_{restorer}_{i}_{(person or 'scene')}_{path.stem}"
        d = _cached(args.cache / f"{stem}.npz", make)
        print(f"cached {restorer} {args.preset} {name} ({d['seconds'][0]:.0f} s, cpu {d['seconds'][1]:.0f} s)",
              flush=True)
        out.append({"photo": name, "kind": kind, **d})
    return out


def main(argv=None) -> int:
    from face2scene.bench import common
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["upscale", "mild"])
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--weights", type=Path, default=None, help="models folder holding gan/ (or receiving it)")
    ap.add_argument("--cache", type=Path, default=Path("runs/texture_cache"))
    ap.add_argument("--photos", type=int, default=6, help="upscale: photos in all (two thirds people)")
    ap.add_argument("--max-side", type=int, default=None, help="default 256 (upscale) / 512 (mild)")
    ap.add_argument("--preset", default="mild")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--restorers", default="auto", help="mild: the pipeline's restorers (comma separated; "
                    "gan = x1 Real-ESRGAN, slow on a CPU)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache-only", action="store_true", help="make the cached outputs, score nothing")
    ap.add_argument("--strengths", default="0,0.25,0.5,1,2,0:0.25,0:0.5,0:1,1:1",
                    help="points: band gain amount[:texture] (detail_bands.BandSettings), comma separated")
    ap.add_argument("--g-max", type=float, default=3.0)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--plot", type=Path, default=None)
    args = ap.parse_args(argv)
    data = args.data or common.default_data()
    if data is None or not (data / "identities").is_dir():
        print("error: no photo collection (pass --data DIR with identities/<person>/...)", file=sys.stderr)
        return 2
    import torch
    torch.set_num_threads(args.threads)
    if args.max_side is None:
        args.max_side = 256 if args.what == "upscale" else 512
    if args.what == "upscale":
        recs = make_upscale(args, data)
        sets = {"gan": recs}
    else:
        sets = {r: make_mild(args, data, r) for r in args.restorers.split(",")}
    if args.cache_only:
        return 0
    from texture_score import score  # noqa: E402  (scripts/texture_score.py)
    return score(args, sets)


if __name__ == "__main__":
    sys.exit(main())
