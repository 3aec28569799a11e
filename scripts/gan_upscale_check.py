"""x4 upscaling by the GAN restorer against bicubic, on held-out photos downscaled by 4 (issue 10's check).

Photos of the learned models' validation split (people and scenes, ``--photos`` of them), reduced
to ``--max-side`` px (area), cropped to a multiple of 4, downscaled by 4 (area) and enlarged back
by x4: bicubic (OpenCV) and the GAN restorer (Real-ESRGAN x4plus, ``GanRestorer.restore(...,
upscale=4)``, no face step). Against the original: PSNR (Y, as the benchmarks), GMSD and the
detail ratio (Laplacian energy / the original's: 1 = the original's fine detail). Prints a table
and writes JSON (``--json``).

    python scripts/gan_upscale_check.py --weights MODELS [--photos 6] [--max-side 256]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    from face2scene.bench import common
    from face2scene.bench.quality import _samples, _scenes, _val_split
    from face2scene.datasets import load_rgb
    from face2scene.errors import WeightsError
    from face2scene.metrics import detail_ratio, gmsd, psnr

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--weights", type=Path, default=None, help="models folder (holds or receives gan/)")
    ap.add_argument("--photos", type=int, default=6, help="photos in all: two thirds people, the rest scenes")
    ap.add_argument("--max-side", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=Path("bench_out/gan_upscale_check.json"))
    args = ap.parse_args(argv)
    data = args.data or common.default_data()
    if data is None or not (data / "identities").is_dir():
        print("error: no photo collection (pass --data DIR with identities/<person>/...)", file=sys.stderr)
        return 2
    import torch
    from face2scene.restorers.gan import load_gan_restorer
    torch.set_num_threads(args.threads)
    try:
        gan = load_gan_restorer(args.weights)
    except WeightsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    split = _val_split()
    n_people = max(1, round(args.photos * 2 / 3))
    paths = [f for _, f, _ in _samples(data, n_people, 0, split["persons"])]
    paths += _scenes(data, args.photos - len(paths), split["scenes"])
    recs = []
    for path in paths:
        clean = load_rgb(str(path), args.max_side, resample="area")
        h, w = clean.shape[0] // 4 * 4, clean.shape[1] // 4 * 4
        clean = np.ascontiguousarray(clean[:h, :w])
        small = cv2.resize(clean, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
        bic = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        t, c = time.perf_counter(), time.process_time()
        up = gan.restore(small, None, upscale=4).image
        r = {"photo": f"{path.parent.name}/{path.name}", "size": [w, h], "gan_seconds": round(time.perf_counter() - t, 2),
             "gan_cpu_seconds": round(time.process_time() - c, 2)}
        for name, img in (("bicubic", bic), ("gan", up)):
            r[name] = {"psnr": round(psnr(clean, img), 3), "gmsd": round(gmsd(clean, img), 4),
                       "detail": round(detail_ratio(clean, img), 3)}
        recs.append(r)
        print(f"{r['photo']} {w}x{h}: bicubic {r['bicubic']}, gan {r['gan']} ({r['gan_seconds']} s, "
              f"cpu {r['gan_cpu_seconds']} s)", flush=True)
    med = lambda k, m: float(np.median([r[k][m] for r in recs]))  # noqa: E731
    summary = {k: {m: round(med(k, m), 4) for m in ("psnr", "gmsd", "detail")} for k in ("bicubic", "gan")}
    summary["gan_minus_bicubic_psnr"] = round(float(np.median([r["gan"]["psnr"] - r["bicubic"]["psnr"] for r in recs])), 3)
    summary["detail_in_0.85_1.15"] = int(sum(0.85 <= r["gan"]["detail"] <= 1.15 for r in recs))
    table = common.print_table(
        ["x4 of photos downscaled by 4 (median)", "PSNR", "GMSD", "detail ratio"],
        [[k, common.fmt(summary[k]["psnr"]), common.fmt(summary[k]["gmsd"], 4), common.fmt(summary[k]["detail"], 3)]
         for k in ("bicubic", "gan")])
    print(f"gan − bicubic PSNR (median of per-photo differences): {summary['gan_minus_bicubic_psnr']:+.2f} dB; "
          f"gan detail ratio within 0.85–1.15: {summary['detail_in_0.85_1.15']}/{len(recs)}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"command": " ".join(sys.argv), "max_side": args.max_side, "summary": summary,
                                     "records": recs, "table": table}, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
