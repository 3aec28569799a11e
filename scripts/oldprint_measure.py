"""Old prints (issue 11), measured with the old-print functions alone (no pipeline): damage
repair, tone (blind, from a face with an oracle crop, from a reference photo of the same
person), monochrome kept, halftone found and removed. ~8 photos of ../shared/data, <= 768 px.

    python scripts/oldprint_measure.py [--data ../shared/data] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab

from face2scene import degrade as D
from face2scene.damage import detect_damage, repair
from face2scene.faces import align_face, get_face_backend
from face2scene.halftone import descreen, detect_screen
from face2scene.metrics import luma_y, psnr
from face2scene.reffr import RefFR
from face2scene.tone import (auto_levels, chroma_residual_std, fit_tone_from_face, is_monochrome,
                             keep_monochrome, reference_colour_crop)

# photo, and for faces a reference photo of the same person (another file)
PHOTOS = [("identities/angelina_jolie/img10.jpg", "identities/angelina_jolie/img4.jpg"),
          ("identities/matt_damon/img29.jpg", "identities/matt_damon/img30.jpg"),
          ("identities/katy_perry/img26.jpg", "identities/katy_perry/img27.jpg"),
          ("identities/george_clooney/img38.jpg", "identities/george_clooney/img39.jpg"),
          ("scenes/cbsd68_101087.png", None), ("scenes/cbsd68_145086.png", None),
          ("scenes/sunhays80_abbey_sun_asztnlqhlrvirneh.jpg", None),
          ("scenes/sunhays80_boardwalk_sun_bskwjtamytupzwah.jpg", None)]


def load(path: Path, max_side: int = 768) -> np.ndarray:
    from face2scene.datasets import load_rgb
    return load_rgb(str(path), max_side, resample="area")


def _y(rgb):
    return luma_y(rgb)


def bw_points(rgb):
    y = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return float(np.percentile(y, 0.5)), float(np.percentile(y, 99.5))


def delta_e(a, b):
    return float(np.mean(deltaE_ciede2000(rgb2lab(a), rgb2lab(b))))


def mae_in_out(a, ref, mask):
    e = np.abs(_y(a) - _y(ref))
    return float(e[mask].mean()) if mask.any() else float("nan"), float(e[~mask].mean())


def face_tone(backend, clean, deg, ref_rgb, mono):
    """(oracle map, reference map) from the largest face, or (None, None). The landmarks come
    from the clean photo (the detector is not what is measured here)."""
    faces = backend.detect(clean, with_embeddings=False)
    if not faces:
        return None, None
    f = faces[0]
    size = 256
    dcrop, _ = align_face(deg, f.landmarks, size)
    ccrop, _ = align_face(clean, f.landmarks, size)
    oracle = fit_tone_from_face(dcrop, ccrop, mono=mono)
    ref = None
    if ref_rgb is not None:
        rf = backend.detect(ref_rgb, with_embeddings=False)
        if rf:
            refs = [SimpleNamespace(label="ref", image=ref_rgb, face=rf[0])]
            aligned = RefFR().align_references(dcrop, refs, size)
            ref = fit_tone_from_face(dcrop, reference_colour_crop(aligned), mono=mono)
    return oracle, ref


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--n", type=int, default=8)
    a = ap.parse_args(argv)
    backend = get_face_backend("dlib")
    rows = []
    for preset in ("old_print", "old_colour_print"):
        for i, (rel, ref_rel) in enumerate(PHOTOS[: a.n]):
            clean = load(a.data / rel)
            deg, p, m = D.degrade_with_masks(clean, preset, seed=100 + i)
            gt = np.logical_or.reduce(list(m.values()))
            gt_zone = cv2.dilate(gt.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
            t0 = time.perf_counter()
            mono_info = is_monochrome(deg)
            det = detect_damage(deg)
            rep = repair(deg, det.mask, grow=1)
            t_rep = time.perf_counter() - t0
            auto = auto_levels(rep)
            ref_rgb = load(a.data / ref_rel) if ref_rel else None
            oracle, refmap = face_tone(backend, clean, deg, ref_rgb, mono_info.mono)
            outs = {"degraded": deg, "repair": rep, "auto": auto.apply(rep)}
            if oracle is not None:
                outs["face_oracle"] = oracle.apply(rep)
            if refmap is not None:
                outs["face_ref"] = refmap.apply(rep)
                # levels blind, colour from the reference face (fitted after the levels)
                lev = outs["auto"]
                _, refmap2 = face_tone(backend, clean, lev, ref_rgb, mono_info.mono)
                outs["auto+face_ref_colour"] = lev if mono_info.mono else refmap2.apply(lev, keep_luma=True)
            if mono_info.mono:
                outs = {k: (v if k == "degraded" else keep_monochrome(v, mono_info)) for k, v in outs.items()}
            r = dict(preset=preset, photo=Path(rel).stem, mono_detected=mono_info.mono, toned=mono_info.toned,
                     seconds_detect_repair=round(t_rep, 2), auto_conf=auto.confidence,
                     face_oracle_conf=None if oracle is None else oracle.confidence,
                     face_ref_conf=None if refmap is None else refmap.confidence,
                     bw_clean=bw_points(clean))
            for k, v in outs.items():
                r[f"psnr_{k}"] = psnr(v, clean)
                r[f"mae_in_{k}"], r[f"mae_out_{k}"] = mae_in_out(v, clean, gt_zone)
                r[f"bw_{k}"] = bw_points(v)
                if preset == "old_colour_print":
                    r[f"de_{k}"] = delta_e(v, clean)
                else:
                    r[f"chroma_{k}"] = chroma_residual_std(v, mono_info)
            rows.append(r)
            print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}), flush=True)
    # halftone
    hrows = []
    for i, (rel, _) in enumerate(PHOTOS[: a.n]):
        clean = load(a.data / rel)
        deg, p = D.degrade(clean, "halftone", seed=200 + i)
        scr = next(s for s in p["stages"] if s["op"] == "screen")
        tp = json.loads(json.dumps(p))
        tp["stages"] = [s for s in p["stages"] if s["op"] in ("blur", "grayscale", "print_fade")][:3]
        target = D.apply_params(clean, tp)
        t0 = time.perf_counter()
        found = detect_screen(deg)
        ds = descreen(deg, found)
        dt = time.perf_counter() - t0
        hrows.append(dict(photo=Path(rel).stem, period=scr["period"], angle=scr["angle"], found=found.found,
                          period_found=found.period, angle_found=found.angle_deg,
                          freq_err=abs(found.frequency - scr["frequency"]) / scr["frequency"] if found.found else None,
                          psnr_screened=psnr(deg, target), psnr_descreened=psnr(ds, target), seconds=dt,
                          clean_false=detect_screen(clean).found))
        print(json.dumps(hrows[-1]), flush=True)
    summary = {}
    for preset in ("old_print", "old_colour_print"):
        rr = [r for r in rows if r["preset"] == preset]
        s = {}
        for key in rr[0]:
            vals = [r[key] for r in rr if key in r and isinstance(r[key], (int, float)) and not isinstance(r[key], bool)]
            if vals and len(vals) == len([r for r in rr if key in r]):
                s[key] = round(float(np.mean(vals)), 3)
        for k in ("face_oracle", "face_ref", "auto+face_ref_colour"):  # only the photos with faces, and the same for auto
            sub = [r for r in rr if f"psnr_{k}" in r]
            if sub:
                s["faces_only_n"] = len(sub)
                s[f"faces_only_psnr_{k}"] = round(float(np.mean([r[f"psnr_{k}"] for r in sub])), 3)
                s["faces_only_psnr_auto"] = round(float(np.mean([r["psnr_auto"] for r in sub])), 3)
                s["faces_only_psnr_repair"] = round(float(np.mean([r["psnr_repair"] for r in sub])), 3)
                s["faces_only_psnr_degraded"] = round(float(np.mean([r["psnr_degraded"] for r in sub])), 3)
                if preset == "old_colour_print":
                    s[f"faces_only_de_{k}"] = round(float(np.mean([r[f"de_{k}"] for r in sub])), 3)
                    s["faces_only_de_auto"] = round(float(np.mean([r["de_auto"] for r in sub])), 3)
                    s["faces_only_de_degraded"] = round(float(np.mean([r["de_degraded"] for r in sub])), 3)
        s["mono_detected"] = sum(r["mono_detected"] for r in rr) / len(rr)
        summary[preset] = s
    summary["halftone"] = {
        "found": sum(h["found"] for h in hrows) / len(hrows),
        "freq_err_max": max(h["freq_err"] for h in hrows if h["found"]),
        "psnr_screened": round(float(np.mean([h["psnr_screened"] for h in hrows])), 3),
        "psnr_descreened": round(float(np.mean([h["psnr_descreened"] for h in hrows])), 3),
        "false_on_clean": sum(h["clean_false"] for h in hrows)}
    print(json.dumps(summary, indent=1))
    if a.json:
        a.json.write_text(json.dumps({"rows": rows, "halftone": hrows, "summary": summary}, indent=1, default=float))


if __name__ == "__main__":
    sys.exit(main())
