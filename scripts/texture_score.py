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


MODES = {"cal": "calibrated on the input", "calout": "calibrated on the x1 output"}


def _kappa(sigma: float = 0.6, n: int = 512) -> float:
    """Laplacian energy per unit variance of white noise in the finest DoG band (σ < ``sigma``)."""
    w = np.random.default_rng(0).standard_normal((n, n))
    b = w - cv2.GaussianBlur(w, (0, 0), sigma)
    lap = cv2.Laplacian(b, cv2.CV_64F, ksize=1)[8:-8, 8:-8]
    return float(np.mean(lap ** 2) / np.var(b[8:-8, 8:-8]))


def bound(clean, img, target: float = 0.85, kappa: float = 64.0) -> float:
    """PSNR (dB, Y) of ``img`` once detail uncorrelated with it and with its error is added until its
    detail ratio reaches ``target``: the added Laplacian energy ΔL costs ΔL / ``kappa`` of MSE (64:
    the most a 4-neighbour Laplacian can get per unit variance, a Nyquist checkerboard; finer
    than any real texture, so a lower bound on the cost)."""
    from face2scene.metrics import laplacian_energy, psnr
    need = max(target * laplacian_energy(clean) - laplacian_energy(img), 0.0)
    mse = 255.0 ** 2 / 10 ** (psnr(clean, img) / 10)
    return float(10 * np.log10(255.0 ** 2 / (mse + need / kappa)))


def bound_detail(clean, img, cost_db: float = 0.5, kappa: float = 64.0) -> float:
    """The most detail ratio ``img`` can reach by adding detail uncorrelated with it and its error
    for a PSNR cost of ``cost_db`` (the MSE it may add, times ``kappa``, is the Laplacian energy)."""
    from face2scene.metrics import laplacian_energy, psnr
    mse = 255.0 ** 2 / 10 ** (psnr(clean, img) / 10)
    return float((laplacian_energy(img) + kappa * mse * (10 ** (cost_db / 10) - 1)) / laplacian_energy(clean))


def _med(vals):
    vals = [v for v in vals if v is not None]
    return round(float(np.median(vals)), 4) if vals else None


def score(args, sets: Dict[str, List[Dict]]) -> int:
    from face2scene.bench.common import fmt, print_table
    from face2scene.detail_bands import BandSettings, apply_band_gains, restore_fine_bands
    # "a[:t]": the band law (amount a, texture t); "cal:a:gmin" / "calout:a:gmin": the self-calibrated
    # gains, calibrated on the input / on the GAN's own x1 restoration (x4 only)
    def parse(v):
        head = v.split(":")[0]
        if head in ("cal", "calout"):
            return (head,) + tuple(float(x) for x in v.split(":")[1:3])
        return ("",) + tuple(float(x) for x in (v.split(":") + ["0"])[:2])
    strengths = [parse(v) for v in args.strengths.split(",")]
    points, records = [], []
    kappa0 = _kappa()
    for name, recs in sets.items():
        for cal, amt, tex in strengths:
            per = []
            for r in recs:
                if args.what == "upscale":
                    base, up, blur = r["gan"], 4, 0.0
                    ref = cv2.resize(r["small"], (base.shape[1], base.shape[0]), interpolation=cv2.INTER_CUBIC)
                else:
                    base, up, blur, ref = r["restored"], 1, float(r["estimate"][1]), r["degraded"]
                if cal:
                    dkey = "deficit_out" if cal == "calout" else "deficit"
                    if not np.all(np.isfinite(r[dkey])):
                        img, info = base, {"skipped": "too small to calibrate"}
                    else:
                        res = apply_band_gains(base, r[dkey], [0, 1, 2],
                                               BandSettings(amount=amt, g_max=args.g_max), g_min=tex)
                        img, info = res.image, res.info
                elif amt > 0 or tex > 0:
                    res = restore_fine_bands(base, upscale=up, blur=blur,
                                             settings=BandSettings(amount=amt, texture=tex, g_max=args.g_max))
                    img, info = res.image, res.info
                if not cal and amt == 0 and tex == 0:
                    img, info = base, {}
                box = r.get("box")
                m, m0 = _metrics(r["clean"], img, box), _metrics(r["clean"], ref, box)
                m_base = _metrics(r["clean"], base)
                rec = {"set": name, "mode": MODES.get(cal, "law"), "amount": amt, "texture": tex,
                       "photo": r["photo"], **m, "ref_psnr": m0["psnr"],
                       "ref_detail": m0["detail"], "gain": round(m["psnr"] - m0["psnr"], 3),
                       "d_psnr": round(m["psnr"] - m_base["psnr"], 3),
                       "face_gain": (round(m["face_psnr"] - m0["face_psnr"], 3) if "face_psnr" in m else None),
                       "band_info": info}
                if not cal and amt == 0 and tex == 0:  # the least reaching 0.85 with uncorrelated detail costs
                    rec["bound_gain_64"] = round(bound(r["clean"], img, 0.85, 64.0) - m0["psnr"], 3)
                    rec["bound_gain_band0"] = round(bound(r["clean"], img, 0.85, kappa0) - m0["psnr"], 3)
                    rec["bound_detail_05db_64"] = round(bound_detail(r["clean"], img, 0.5, 64.0), 4)
                    rec["bound_detail_05db_band0"] = round(bound_detail(r["clean"], img, 0.5, kappa0), 4)
                per.append(rec)
            records += per
            p = {"set": name, "mode": MODES.get(cal, "law"), "amount": amt, "texture": tex, "n": len(per)}
            p["n_in_range"] = int(sum(0.85 <= q["detail"] <= 1.15 for q in per))
            for k in ("psnr", "gain", "d_psnr", "detail", "face_detail", "face_gain", "gmsd", "ref_psnr", "ref_detail",
                      "bound_gain_64", "bound_gain_band0", "bound_detail_05db_64", "bound_detail_05db_band0"):
                p[k] = _med([q.get(k) for q in per])
            points.append(p)
            print(f"{name} {cal or 'law'} amount {amt} texture/g_min {tex}: gain {p['gain']}, "
                  f"detail {p['detail']}, face detail {p['face_detail']}", flush=True)
    ref_name = "bicubic" if args.what == "upscale" else "degraded input"
    short = {"law": "", MODES["cal"]: " cal(in)", MODES["calout"]: " cal(out)"}
    rows = [[p["set"] + short[p["mode"]], fmt(p["amount"]), fmt(p["texture"]), fmt(p["psnr"]),
             fmt(p["gain"]), fmt(p["d_psnr"]), fmt(p["detail"], 3), f"{p['n_in_range']}/{p['n']}",
             fmt(p["face_detail"], 3), fmt(p["gmsd"], 4)] for p in points]
    print(f"\nmedians of {len(next(iter(sets.values())))} photos; gain = PSNR − {ref_name}'s "
          f"({ref_name}: PSNR {points[0]['ref_psnr']}, detail {points[0]['ref_detail']})")
    table = print_table(["output", "gain amount", "texture (cal: g_min)", "PSNR", "gain", "Δ PSNR (paired)", "detail",
                                  "in 0.85-1.15", "face detail", "GMSD"], rows)
    bl = [f"{p['set']}: reaching detail 0.85 by adding uncorrelated detail costs at least: median gain "
          f"{fmt(p['bound_gain_64'])} dB (checkerboard, κ 64), {fmt(p['bound_gain_band0'])} dB (finest-band noise, "
          f"κ {kappa0:.1f}); for a 0.5 dB cost it reaches at most detail {fmt(p['bound_detail_05db_64'], 3)} "
          f"(κ 64) / {fmt(p['bound_detail_05db_band0'], 3)} (κ {kappa0:.1f})"
          for p in points if p["mode"] == "law" and p["amount"] == 0 and p["texture"] == 0]
    print("\n".join(bl))
    table += "\n" + "\n".join(bl)
    out = {"what": args.what, "max_side": args.max_side, "preset": args.preset if args.what == "mild" else None,
           "reference": ref_name, "kappa_band0": round(kappa0, 2), "command": " ".join(sys.argv),
           "points": points, "records": records, "table": table}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1))
    if args.plot:
        _plot(points, args.plot, ref_name, f"{args.what}, val, {args.max_side} px, medians of "
              f"{len(next(iter(sets.values())))} photos")
    return 0


def _plot(points, path: Path, ref_name: str, title: str = "") -> None:
    """Median gain against median detail ratio, one line per output and step (law: amount/texture
    varied; calibrated: amount varied), the 0.85-1.15 band shaded."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.6))
    series = {}
    for p in points:
        law_tex = p["mode"] == "law" and p["texture"] > 0
        key = (p["set"], p["mode"] + (f" texture, gain {p['amount']:g}" if law_tex else ""))
        series.setdefault(key, []).append(p)
    base = {p["set"]: p for p in points if p["mode"] == "law" and p["amount"] == 0 and p["texture"] == 0}
    for (name, mode), ps in series.items():
        if base.get(name) is not None and ps[0] is not base[name]:
            ps = [base[name]] + ps  # each line starts at the output as it is
        lab = f"{name}: " + ("output" if len(ps) == 1 else {"law": "band law, gain"}.get(
            mode, mode.replace("law texture", "band law, texture")))
        ax.plot([p["detail"] for p in ps], [p["gain"] for p in ps], "o-", label=lab, ms=4)
        for p in ps[1:]:
            txt = f"t{p['texture']:g}" if mode.startswith("law texture") else f"{p['amount']:g}"
            ax.annotate(txt, (p["detail"], p["gain"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.axvspan(0.85, 1.15, color="g", alpha=0.1, label="detail 0.85–1.15")
    for name, b in base.items():
        if b.get("bound_gain_64") is not None:
            ax.plot([0.85, 0.85], [b["bound_gain_64"], b["bound_gain_band0"]], "k*", ms=8)
            ax.annotate(f"{name} + uncorrelated detail\nto 0.85: ≤ {b['bound_gain_64']:+.2f} (κ 64) /\n"
                        f"≈ {b['bound_gain_band0']:+.2f} (finest-band noise)", (0.85, b["bound_gain_band0"]),
                        fontsize=6.5, xytext=(4, -6), textcoords="offset points", va="top")
        ax.axhline(b["gain"], color="grey", lw=0.6, ls=":")
    ax.set_xlabel("detail ratio (Laplacian energy / clean), median")
    ax.set_ylabel(f"PSNR gain over {ref_name} (dB), median")
    if title:
        ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
