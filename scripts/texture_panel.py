"""100 % crops of the x4 upscales with and without the fine-band step (issue 10), from the cache of
``scripts/texture_frontier.py upscale`` (run that first, same ``--max-side``).

Rows: photos; columns: bicubic, the GAN, the GAN + self-calibrated band gains (amount 1 and 2,
g_min 0.5), the GAN + the band law's texture (amount 0, texture 1), the clean photo. Each tile is a
``--crop`` px square at 100 % (1 output pixel = 1 panel pixel), its PSNR / detail ratio against the
clean crop underneath. Writes PNG + JSON.

    python scripts/texture_panel.py --cache runs/texture_cache --max-side 512 --out docs/texture_x4_100pct
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _best_crop(clean: np.ndarray, side: int):
    """The ``side``-px square with the most Laplacian energy (texture shows there), on a coarse grid."""
    from face2scene.metrics import laplacian_energy
    h, w = clean.shape[:2]
    best, at = -1.0, (0, 0)
    for y in range(0, max(h - side, 0) + 1, max(side // 4, 1)):
        for x in range(0, max(w - side, 0) + 1, max(side // 4, 1)):
            e = laplacian_energy(clean[y:y + side, x:x + side], border=0)
            if e > best:
                best, at = e, (y, x)
    return at


def main(argv=None) -> int:
    from face2scene.detail_bands import BandSettings, apply_band_gains, restore_fine_bands
    from face2scene.metrics import detail_ratio, psnr
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=Path("runs/texture_cache"))
    ap.add_argument("--max-side", type=int, default=512)
    ap.add_argument("--photos", default="scarlett_johansson_img48,scenes_cbsd68_145086,elon_musk_img19",
                    help="cache stems (after up4_<side>_), comma separated")
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--out", type=Path, default=Path("docs/texture_x4_100pct"))
    args = ap.parse_args(argv)
    cols = ["bicubic", "gan", "gan + cal 1", "gan + cal 2", "gan + law tex 1", "clean"]
    rows, recs = [], []
    for stem in args.photos.split(","):
        f = args.cache / f"up4_{args.max_side}_{stem}.npz"
        c = args.cache / f"cal4b_{args.max_side}_{stem}.npz"
        if not f.is_file() or not c.is_file():
            print(f"error: {f} or {c} is missing (run scripts/texture_frontier.py upscale first)", file=sys.stderr)
            return 2
        z, d = dict(np.load(f)), np.load(c)["deficit"]
        clean, gan = z["clean"], z["gan"]
        bic = cv2.resize(z["small"], (clean.shape[1], clean.shape[0]), interpolation=cv2.INTER_CUBIC)
        imgs = [bic, gan,
                apply_band_gains(gan, d, [0, 1, 2], BandSettings(amount=1.0), g_min=0.5).image,
                apply_band_gains(gan, d, [0, 1, 2], BandSettings(amount=2.0), g_min=0.5).image,
                restore_fine_bands(gan, 4, settings=BandSettings(amount=0.0, texture=1.0)).image, clean]
        y, x = _best_crop(clean, args.crop)
        tiles = []
        rec = {"photo": stem, "crop": [int(x), int(y), args.crop]}
        for name, img in zip(cols, imgs):
            t = np.ascontiguousarray(img[y:y + args.crop, x:x + args.crop])
            cc = clean[y:y + args.crop, x:x + args.crop]
            p = psnr(cc, t, border=0)
            dr = detail_ratio(cc, t, border=0)
            rec[name] = {"psnr": None if not np.isfinite(p) else round(p, 2), "detail": round(dr, 3)}
            lab = np.full((18, args.crop, 3), 255, np.uint8)
            txt = "clean" if name == "clean" else f"{p:.1f} dB / {dr:.2f}"
            cv2.putText(lab, txt, (2, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
            tiles.append(np.vstack([t, lab]))
        recs.append(rec)
        rows.append(np.hstack([np.pad(t, ((0, 0), (0, 4), (0, 0)), constant_values=255) for t in tiles]))
    head = np.full((18, rows[0].shape[1], 3), 255, np.uint8)
    for i, name in enumerate(cols):
        cv2.putText(head, name, (i * (args.crop + 4) + 2, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1,
                    cv2.LINE_AA)
    panel = np.vstack([head] + rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out.with_suffix(".png")), cv2.cvtColor(panel, cv2.COLOR_RGB2BGR))
    args.out.with_suffix(".json").write_text(json.dumps({"command": " ".join(sys.argv), "columns": cols,
                                                         "records": recs}, indent=1))
    print(json.dumps(recs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
