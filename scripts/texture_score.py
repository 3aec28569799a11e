"""Scoring half of ``scripts/texture_frontier.py``: the fine-band step at several strengths on the
cached outputs, tables, JSON and the frontier plot. Not run on its own."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Dict, List

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _metrics(clean, img, box=None) -> Dict:
    from face2scene.metrics import detail_ratio, gmsd, psnr
    d = {"psnr": round(psnr(clean, img), 3), "gmsd": round(gmsd(clean, img), 4),
         "detail": round(detail_ratio(clean, img), 4)}
    if box is not None and box[0] >= 0:
        x0, y0, x1, y1 = (int(v) for v in box)
        fc, fi = clean[y0:y1, x0:x1], img[y0:y1, x0:x1]
        d["face_psnr"] = round(psnr(fc, fi, border=0), 3)
        fd = detail_ratio(clean, img, box=box)
        d["face_detail"] = None if fd is None else round(fd, 4)
    return d


def _med(vals):
    vals = [v for v in vals if v is not None]
    return round(float(np.median(vals)), 4) if vals else None


def score(args, sets: Dict[str, List[Dict]]) -> int:
    from face2scene.bench.common import fmt, print_table
    from face2scene.detail_bands import BandSettings, restore_fine_bands
    strengths = [tuple(float(x) for x in (v.split(":") + ["0"])[:2]) for v in args.strengths.split(",")]
    points, records = [], []
    for name, recs in sets.items():
        for amt, tex in strengths:
            per = []
            for r in recs:
                if args.what == "upscale":
                    base, up, blur = r["gan"], 4, 0.0
                    ref = cv2.resize(r["small"], (base.shape[1], base.shape[0]), interpolation=cv2.INTER_CUBIC)
                else:
                    base, up, blur, ref = r["restored"], 1, float(r["estimate"][1]), r["degraded"]
                if amt > 0 or tex > 0:
                    res = restore_fine_bands(base, upscale=up, blur=blur,
                                             settings=BandSettings(amount=amt, texture=tex, g_max=args.g_max))
                    img, info = res.image, res.info
                else:
                    img, info = base, {}
                box = r.get("box")
                m, m0 = _metrics(r["clean"], img, box), _metrics(r["clean"], ref, box)
                rec = {"set": name, "amount": amt, "texture": tex, "photo": r["photo"], **m, "ref_psnr": m0["psnr"],
                       "ref_detail": m0["detail"], "gain": round(m["psnr"] - m0["psnr"], 3),
                       "face_gain": (round(m["face_psnr"] - m0["face_psnr"], 3) if "face_psnr" in m else None),
                       "band_info": info}
                per.append(rec)
            records += per
            p = {"set": name, "amount": amt, "texture": tex, "n": len(per)}
            for k in ("psnr", "gain", "detail", "face_detail", "face_gain", "gmsd", "ref_psnr", "ref_detail"):
                p[k] = _med([q.get(k) for q in per])
            points.append(p)
            print(f"{name} amount {amt} texture {tex}: gain {p['gain']}, detail {p['detail']}, face detail {p['face_detail']}",
                  flush=True)
    ref_name = "bicubic" if args.what == "upscale" else "degraded input"
    rows = [[p["set"], fmt(p["amount"]), fmt(p["texture"]), fmt(p["psnr"]), fmt(p["gain"]), fmt(p["detail"], 3),
             fmt(p["face_detail"], 3), fmt(p["gmsd"], 4)] for p in points]
    print(f"\nmedians of {len(next(iter(sets.values())))} photos; gain = PSNR − {ref_name}'s "
          f"({ref_name}: PSNR {points[0]['ref_psnr']}, detail {points[0]['ref_detail']})")
    table = print_table(["output", "band gain amount", "texture", "PSNR", "gain", "detail", "face detail", "GMSD"], rows)
    out = {"what": args.what, "max_side": args.max_side, "preset": args.preset if args.what == "mild" else None,
           "reference": ref_name, "command": " ".join(sys.argv), "points": points, "records": records,
           "table": table}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1))
    if args.plot:
        _plot(points, args.plot, ref_name)
    return 0


def _plot(points, path: Path, ref_name: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for name in dict.fromkeys(p["set"] for p in points):
        ps = [p for p in points if p["set"] == name]
        ax.plot([p["detail"] for p in ps], [p["gain"] for p in ps], "o-", label=f"{name} + fine bands")
        for p in ps:
            ax.annotate(f"{p['amount']:g}/{p['texture']:g}", (p["detail"], p["gain"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
    ax.axvspan(0.85, 1.15, color="g", alpha=0.1, label="detail 0.85–1.15")
    ax.set_xlabel("detail ratio (Laplacian energy / clean), median")
    ax.set_ylabel(f"PSNR gain over {ref_name} (dB), median")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
