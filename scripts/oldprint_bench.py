"""Old prints end to end (issue 11, "Done when"): ``Face2ScenePipeline(old_print=True)`` on the
validation persons (elon_musk, scarlett_johansson: each photo degraded, the person's *other*
photos as references) and a few scenes, for the ``old_print``, ``old_colour_print`` and
``halftone`` presets; and the same pipeline on clean and near-clean photos, which it must not
harm. Prints one table per preset and writes JSON. CPU, classical restorer, photos <= 384 px
(the machine is shared: by default 1 photo per person and 1 scene).

    python scripts/oldprint_bench.py [--data ../shared/data] [--json docs/oldprints/bench.json]
                                     [--presets old_print,old_colour_print,halftone,clean,near_clean]

Targets (issue 11): old_print median Y-PSNR gain >= +4 dB, mean error inside the defect masks
<= 1.5x outside, black/white points within 10 levels of the clean photo's, mono stays mono
(chroma std < 2); old_colour_print mean CIEDE2000 <= half the input's with references and
lower than without; halftone screen frequency within 5 %, gain >= +3 dB.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab

from face2scene import degrade as D
from face2scene.metrics import luma_y, psnr
from face2scene.pipeline import Face2ScenePipeline, PipelineConfig
from face2scene.tone import chroma_residual_std
from oldprint_detect_eval import load  # noqa: E402  (scripts/ is on the path when run as a script)

PERSONS = ("elon_musk", "scarlett_johansson")  # the validation persons
SCENES = ("scenes/cbsd68_157055.png", "scenes/sunhays80_barn_sun_btulbiaoilnxcseh.jpg",
          "scenes/sunhays80_street_sun_bkgpqbvgorkjqzgp.jpg")
PRESETS = ("old_print", "old_colour_print", "halftone", "clean", "near_clean")


def samples(data: Path, per_person: int = 0, scenes: int = len(SCENES)):
    """(name, clean path, {person: reference paths} or None): each validation person's photos
    (the first ``per_person``; 0: all), the rest of that person's photos as references."""
    out = []
    for person in PERSONS:
        files = sorted(p for p in (data / "identities" / person).iterdir() if p.is_file())
        for f in files[: per_person or None]:
            out.append((f"{person}/{f.name}", f, {person: [g for g in files if g != f]}))
    for rel in SCENES[:scenes]:
        p = data / rel
        if p.exists():
            out.append((rel, p, None))
    return out


def bw_points(rgb):
    y = luma_y(rgb)
    return float(np.percentile(y, 0.5)), float(np.percentile(y, 99.5))


def delta_e(a, b) -> float:
    return float(np.mean(deltaE_ciede2000(rgb2lab(a), rgb2lab(b))))


def err_in_out(img, clean, mask):
    e = np.abs(luma_y(img) - luma_y(clean))
    return (float(e[mask].mean()) if mask.any() else float("nan")), float(e[~mask].mean())


def add_sample_args(ap, per_person: int = 1, scenes: int = 1) -> None:
    """The bench's photo selection (``samples``), size, seed and JSON output, for it and the
    scripts that diagnose its photos."""
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--per-person", type=int, default=per_person, help="photos of each person degraded (0: all)")
    ap.add_argument("--scenes", type=int, default=scenes, help="how many of SCENES")
    ap.add_argument("--max-side", type=int, default=384)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--json", type=Path, default=None)


def main(argv=None):
    ap = argparse.ArgumentParser()
    add_sample_args(ap)
    ap.add_argument("--presets", default=",".join(PRESETS))
    ap.add_argument("--restorer", default="classical")
    ap.add_argument("--keep-grain", action="store_true",
                    help="re-synthesise film grain as the app's default does (off here, as in bench quality: "
                         "grain is a look, and its random phase costs PSNR)")
    ap.add_argument("--merge", type=Path, nargs="+", default=None,
                    help="only summarise the rows of these JSON files (runs split by preset)")
    a = ap.parse_args(argv)
    if a.merge:
        rows = [r for f in a.merge for r in json.loads(f.read_text())["rows"]]
        summary = summarise(rows)
        print_tables(summary)
        if a.json:
            a.json.write_text(json.dumps({"command": "scripts/oldprint_bench.py --merge " + " ".join(map(str, a.merge)),
                                          "rows": rows, "summary": summary}, indent=1, default=float))
        return 0
    if not (a.data / "identities").is_dir():
        print(f"error: no development photos in {a.data}", file=sys.stderr)
        return 2
    presets = [p for p in a.presets.split(",") if p]
    bad = [p for p in presets if p not in PRESETS]
    if bad:
        print(f"error: unknown preset(s) {bad}; choose from {PRESETS}", file=sys.stderr)
        return 2
    base = dict(device="cpu", restorer=a.restorer, seed=a.seed, keep_grain="auto" if a.keep_grain else False)
    pipe = {"on": Face2ScenePipeline(PipelineConfig(**base, old_print=True, print_tone="faces")),
            "off": Face2ScenePipeline(PipelineConfig(**base))}
    pipe["off"]._index_cache = pipe["on"]._index_cache  # share the analysed references
    items = samples(a.data, a.per_person, a.scenes)
    rows = []
    for preset in presets:
        for i, (name, path, people) in enumerate(items):
            clean = load(path, a.max_side)
            seed = a.seed * 1000 + 17 * i + PRESETS.index(preset)
            masks = None
            if preset == "clean":
                deg, params = clean, {"summary": {}}
            elif preset == "near_clean":
                deg, params = D.degrade(clean, "near-clean", seed=seed)
            else:
                deg, params, masks = D.degrade_with_masks(clean, preset, seed=seed)
            t = time.perf_counter()
            res = pipe["on"].restore(deg, people)
            sec = time.perf_counter() - t
            out = res.image
            info = res.old_print or {}
            r = {"preset": preset, "photo": name, "refs": people is not None, "seconds": round(sec, 2),
                 "psnr_in": psnr(deg, clean), "psnr_out": psnr(out, clean),
                 "damage_fraction": info.get("damage_fraction"),
                 "damaged_print": info.get("damage", {}).get("damaged_print"),
                 "mono_detected": info.get("monochrome", {}).get("mono"),
                 "levels_conf": info.get("levels", {}).get("confidence"),
                 "levels_applied": info.get("levels", {}).get("applied"),
                 "colour": info.get("colour", {}).get("source")}
            r["gain"] = r["psnr_out"] - r["psnr_in"] if np.isfinite(r["psnr_in"]) else None
            if preset == "clean":  # the input is the clean photo: what changed
                r["changed_px"] = float((np.abs(out.astype(np.int16) - clean.astype(np.int16)).max(axis=2) > 8).mean())
                r["de_out"] = delta_e(out, clean)
            if preset == "near_clean":  # the same pipeline without old_print
                off = pipe["off"].restore(deg, people).image
                r["psnr_off"] = psnr(off, clean)
                r["psnr_out_vs_off"] = psnr(out, off)
                r["changed_px"] = float((np.abs(out.astype(np.int16) - off.astype(np.int16)).max(axis=2) > 8).mean())
                r["de_out"], r["de_off"] = delta_e(out, clean), delta_e(off, clean)
            if masks is not None:
                gt = np.logical_or.reduce(list(masks.values()))
                zone = cv2.dilate(gt.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
                r["err_in"], r["err_out"] = err_in_out(out, clean, zone)
                r["err_in_deg"], r["err_out_deg"] = err_in_out(deg, clean, zone)
                r["bw_clean"], r["bw_out"], r["bw_in"] = bw_points(clean), bw_points(out), bw_points(deg)
                r["bw_err"] = max(abs(r["bw_out"][0] - r["bw_clean"][0]), abs(r["bw_out"][1] - r["bw_clean"][1]))
                # signed: black below / white above the clean photo's is a stretch too far
                r["black_err"], r["white_err"] = r["bw_out"][0] - r["bw_clean"][0], r["bw_out"][1] - r["bw_clean"][1]
            if preset == "old_print":
                r["chroma_std"] = chroma_residual_std(out)
            if preset == "old_colour_print":
                r["de_in"], r["de_out"] = delta_e(deg, clean), delta_e(out, clean)
                if people is not None:  # the same without references: colour from the photo alone
                    r["de_noref"] = delta_e(pipe["on"].restore(deg, None).image, clean)
            if preset == "halftone":
                scr = next(s for s in params["stages"] if s["op"] == "screen")
                found = info.get("screen", {})
                r["screen_found"] = bool(found.get("found"))
                r["freq_err"] = (abs(found["frequency"] - scr["frequency"]) / scr["frequency"]
                                 if found.get("found") else None)
            rows.append(r)
            print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}), flush=True)
    summary = summarise(rows)
    print_tables(summary)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"command": " ".join(["scripts/oldprint_bench.py"] + (argv or sys.argv[1:])),
                                      "rows": rows, "summary": summary}, indent=1, default=float))
    return 0


def _med(rr, k):
    v = [r[k] for r in rr if r.get(k) is not None]
    return float(np.median(v)) if v else None


def _mean(rr, k):
    v = [r[k] for r in rr if r.get(k) is not None]
    return float(np.mean(v)) if v else None


def summarise(rows):
    s = {}
    for preset in PRESETS:
        rr = [r for r in rows if r["preset"] == preset]
        if not rr:
            continue
        t = {"n": len(rr), "psnr_in": _med([r for r in rr if np.isfinite(r["psnr_in"])], "psnr_in"), "psnr_out": _med(rr, "psnr_out"),
             "median_gain": _med(rr, "gain"), "worst_gain": min((r["gain"] for r in rr if r["gain"] is not None), default=None),
             "damage_fraction": _mean(rr, "damage_fraction"), "seconds": _mean(rr, "seconds")}
        if preset in ("old_print", "old_colour_print", "halftone"):
            t["err_in"], t["err_out"] = _mean(rr, "err_in"), _mean(rr, "err_out")
            t["err_ratio"] = t["err_in"] / max(t["err_out"], 1e-6)
            t["err_ratio_input"] = _mean(rr, "err_in_deg") / max(_mean(rr, "err_out_deg"), 1e-6)
            t["bw_err_median"], t["bw_err_max"] = _med(rr, "bw_err"), float(max(r["bw_err"] for r in rr))
            t["bw_within_10"] = sum(r["bw_err"] <= 10 for r in rr) / len(rr)
            if all("black_err" in r for r in rr):  # rows of older JSON files have no signed errors
                t["black_err_median"], t["white_err_median"] = _med(rr, "black_err"), _med(rr, "white_err")
        if preset == "old_print":
            t["chroma_std_max"] = float(max(r["chroma_std"] for r in rr))
            t["mono_detected"] = sum(bool(r["mono_detected"]) for r in rr) / len(rr)
        if preset == "old_colour_print":
            t["de_in"], t["de_out"] = _mean(rr, "de_in"), _mean(rr, "de_out")
            ref = [r for r in rr if r.get("de_noref") is not None]
            if ref:
                t["refs_n"] = len(ref)
                t["refs_de_in"] = _mean(ref, "de_in")
                t["refs_de_with"] = _mean(ref, "de_out")
                t["refs_de_without"] = _mean(ref, "de_noref")
                t["refs_lower_share"] = sum(r["de_out"] < r["de_noref"] for r in ref) / len(ref)
        if preset == "halftone":
            t["found"] = sum(r["screen_found"] for r in rr) / len(rr)
            fe = [r["freq_err"] for r in rr if r["freq_err"] is not None]
            t["freq_err_max"] = float(max(fe)) if fe else None
        if preset == "clean":
            t["changed_px_mean"], t["changed_px_max"] = _mean(rr, "changed_px"), float(max(r["changed_px"] for r in rr))
            t["de_out"] = _mean(rr, "de_out")
            t["called_damaged"] = sum(bool(r["damaged_print"]) for r in rr)
        if preset == "near_clean":
            t["psnr_off"] = _med(rr, "psnr_off")
            t["gain_off"] = float(np.median([r["psnr_off"] - r["psnr_in"] for r in rr]))
            t["worst_on_minus_off"] = float(min(r["psnr_out"] - r["psnr_off"] for r in rr))
            t["changed_px_mean"], t["changed_px_max"] = _mean(rr, "changed_px"), float(max(r["changed_px"] for r in rr))
            t["de_out"], t["de_off"] = _mean(rr, "de_out"), _mean(rr, "de_off")
            t["called_damaged"] = sum(bool(r["damaged_print"]) for r in rr)
        s[preset] = t
    return s


def print_tables(s):
    def f(v, nd=2):
        return "-" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))
    print()
    for preset, t in s.items():
        print(f"== {preset} ({t['n']} photos, {f(t['seconds'], 1)} s each)")
        for k, v in t.items():
            if k not in ("n", "seconds"):
                print(f"   {k:22s} {f(v, 4 if 'fraction' in k or 'px' in k else 2)}")


if __name__ == "__main__":
    sys.exit(main())
