"""Damage detection on the old-print presets (issue 11): scratch IoU, speck recall, false
detections on clean photos. Small and CPU-only: photos at most 768 px.

    python scripts/oldprint_detect_eval.py [--data ../shared/data] [--n 8] [--clean 20]
    python scripts/oldprint_detect_eval.py --photos val --seed 300 --clean 0   # a second synthetic set
    python scripts/oldprint_detect_eval.py --classical   # the rules alone, without the learned stage

The rules of ``face2scene/damage.py`` were tuned on ``--photos synth`` (seeds 100+i) and the
default clean set; ``--photos val`` with another seed and ``--held-out`` were measured afterwards.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from face2scene import degrade as D
from face2scene import damage as dmg
from face2scene.damage import detect_damage

SYNTH = ["identities/angelina_jolie/img10.jpg", "identities/matt_damon/img29.jpg",
         "identities/katy_perry/img26.jpg", "identities/george_clooney/img38.jpg",
         "scenes/cbsd68_101087.png", "scenes/cbsd68_145086.png",
         "scenes/sunhays80_abbey_sun_asztnlqhlrvirneh.jpg", "scenes/sunhays80_boardwalk_sun_bskwjtamytupzwah.jpg"]


# other photos (not in SYNTH, not in either clean set) for a second, untuned measurement
VAL = ["identities/jennifer_aniston/img3.jpg", "identities/leonardo_dicaprio/img35.jpg",
       "identities/jack_dorsey/img17.jpg", "identities/mark_zuckerberg/img14.jpg",
       "scenes/cbsd68_157055.png", "scenes/cbsd68_189080.png",
       "scenes/sunhays80_barn_sun_btulbiaoilnxcseh.jpg", "scenes/sunhays80_canal_urban_sun_bioizsmryxlratmt.jpg"]


def load(path: Path, max_side: int = 768) -> np.ndarray:
    from face2scene.datasets import load_rgb
    return load_rgb(str(path), max_side, resample="area")


def without_defects(params):
    p = json.loads(json.dumps(params))
    p["stages"] = [s for s in p["stages"] if s["op"] != "print_defects"]
    return p


def clean_photos(data: Path, n: int, held_out: bool = False):
    """``n`` clean photos, none of them in SYNTH: the last photo of each identity and every
    few scenes (``held_out``: the first photo of each identity and other scenes)."""
    ids = sorted((data / "identities").iterdir())
    out = [sorted(p.iterdir())[0 if held_out else -1] for p in ids]
    scenes = [s for s in sorted((data / "scenes").iterdir()) if f"scenes/{s.name}" not in SYNTH]
    step = max(1, len(scenes) // max(1, n - len(out)))
    out += scenes[(step // 2 if held_out else 0)::step]
    out = [p for p in out if f"{p.parent.parent.name}/{p.parent.name}/{p.name}" not in SYNTH
           and f"{p.parent.name}/{p.name}" not in SYNTH]
    return out[:n]


def variants(img, a):
    """{name: DamageMask} of one photo: the shipped detector (``"default"``), or with ``--sweep``
    the rules alone (``"classical"``) and the learned gate at each pair of values (``"s=0.2,p=0.1"``:
    scratch gate from ``--sweep``, speck gate from ``--speck-sweep``), all from one pass of the
    rules and one of the network."""
    if not a.sweep:
        return {"default": detect_damage(img, sensitivity=a.sensitivity, learned=False if a.classical else "auto")}
    dbg = {}
    det = detect_damage(img, sensitivity=a.sensitivity, learned=False, debug=dbg)
    out = {"classical": det}
    net = dmg.load_seg_net(required=True)
    lum = dmg._luma(img)
    x = dmg.seg_inputs(lum, dmg._chroma(img), dbg["tophat_bright"], dbg["tophat_dark"], dbg["classical_scratches"],
                       dbg["classical_specks"], dbg["line_candidates"])  # as detect_damage: the strict rules' maps
    prob = dmg.seg_probability(net, x, det.mask) if det.mask.any() else np.zeros(det.mask.shape, np.float32)
    loose = dbg["loose_scratches"]  # the damaged-print rule's lines, gated as the detector does
    if dmg.SEG_GATE["loose_scratch"] is not None:
        loose = dmg._gate(loose, prob, dmg.SEG_GATE["loose_scratch"], dmg.SEG_GATE_STAT["scratch"])
    for gs, gp in [(gs, gp) for gs in a.sweep for gp in (a.speck_sweep or a.sweep)]:
        strict = det.scratches & ~dbg["loose_scratches"]
        if det.info["damaged_print"]:  # the detector's gate of a damaged print's lines (None: kept)
            g = dmg.SEG_GATE["damaged_scratch"]
            scr = (strict if g is None else dmg._gate(strict, prob, g, dmg.SEG_GATE_STAT["scratch"])) | loose
        else:
            scr = dmg._gate(strict, prob, gs, dmg.SEG_GATE_STAT["scratch"]) | loose
        spk = dmg._gate(det.specks, prob, gp, dmg.SEG_GATE_STAT["speck"])
        out[f"s={gs:g},p={gp:g}"] = dmg.DamageMask(mask=scr | spk, scratches=scr, specks=spk,
                                           info=dict(det.info, scratch_fraction=float(scr.mean()),
                                                     speck_fraction=float(spk.mean())))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--clean", type=int, default=20)
    ap.add_argument("--presets", default="old_print,old_colour_print")
    ap.add_argument("--sensitivity", type=float, default=1.0)
    ap.add_argument("--held-out", action="store_true", help="the other set of clean photos")
    ap.add_argument("--photos", choices=("synth", "val"), default="synth", help="which photos to degrade")
    ap.add_argument("--seed", type=int, default=100, help="seed of the first degraded photo (then +1 each)")
    ap.add_argument("--classical", action="store_true", help="the classical rules alone (no learned second stage)")
    ap.add_argument("--sweep", type=lambda v: [float(g) for g in v.split(",")], default=None, metavar="G1,G2",
                    help="the rules alone and the learned gate at each of these values, from one pass per photo")
    ap.add_argument("--speck-sweep", type=lambda v: [float(g) for g in v.split(",")], default=None, metavar="G1,G2",
                    help="with --sweep: the speck gate's values (default: those of --sweep)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    rows = []
    for preset in a.presets.split(","):
        for i, rel in enumerate((SYNTH if a.photos == "synth" else VAL)[: a.n]):
            img = load(a.data / rel)
            out, p, m = D.degrade_with_masks(img, preset, seed=a.seed + i)
            clean = D.apply_params(img, without_defects(p))
            diff = np.abs(out.astype(np.int16) - clean.astype(np.int16)).max(axis=2)
            t = time.perf_counter()
            dets = variants(out, a)
            dt = time.perf_counter() - t
            for name, det in dets.items():
                gt_line = m["scratch"] | m["hair"] | m["crease"]
                vis = diff > 12
                inter = (det.scratches & gt_line).sum()
                iou = inter / max(1, (det.scratches | gt_line).sum())
                gt_vis = gt_line & vis
                iou_vis = (det.scratches & gt_vis).sum() / max(1, (det.scratches | gt_vis).sum())
                # specks: one item found when a detection touches its ellipse (+1 px)
                dets_px = cv2.dilate(det.mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
                hit = tot = hit_v = tot_v = 0
                st = next(s for s in p["stages"] if s["op"] == "print_defects")
                for it in st["items"]:
                    if it["kind"] != "dust":
                        continue
                    cov, (x0, y0, x1, y1) = D._item_coverage(it, img.shape[0], img.shape[1])
                    if cov is None or not (cov >= 0.5).any():
                        continue
                    inside = cov >= 0.5
                    found = bool(dets_px[y0:y1, x0:x1][inside].any())
                    visible = float(diff[y0:y1, x0:x1][inside].max()) > 20
                    tot += 1
                    hit += found
                    tot_v += visible
                    hit_v += found and visible
                any_gt = cv2.dilate(np.logical_or.reduce(list(m.values())).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
                fp = (det.mask & ~any_gt).mean()
                rows.append(dict(variant=name, preset=preset, photo=Path(rel).stem, iou=iou, iou_visible=iou_vis,
                                 speck_recall=hit / max(1, tot), speck_recall_visible=hit_v / max(1, tot_v),
                                 n_specks=tot, n_visible=tot_v, false_outside=fp, seconds=dt))
                print(f"{name:14s} {preset:17s} {Path(rel).stem:28s} IoU {iou:.2f} (visible {iou_vis:.2f})  "
                      f"specks {hit}/{tot} (visible {hit_v}/{tot_v})  false {100 * fp:.3f}%  {dt:.2f}s", flush=True)
    fr, flagged = {}, []
    for path in clean_photos(a.data, a.clean, a.held_out):
        img = load(path)
        for name, det in variants(img, a).items():
            fr.setdefault(name, []).append(det.fraction)
            if name in ("default", "classical"):
                flagged.append(det.info["damaged_print"])
            print(f"{name:14s} clean {path.parent.name}/{path.name:40s} detections {100 * det.fraction:.3f}% "
                  f"(scratch {100 * det.info['scratch_fraction']:.3f}%, speck {100 * det.info['speck_fraction']:.3f}%)"
                  f"{'  [called a damaged print]' if det.info['damaged_print'] else ''}", flush=True)
    summ = {}
    names = list(dict.fromkeys([r["variant"] for r in rows] + list(fr)))
    for name in names:
        s = summ.setdefault(name, {})
        for preset in a.presets.split(","):
            rr = [r for r in rows if r["preset"] == preset and r["variant"] == name]
            if not rr:
                continue
            s[preset] = {k: float(np.mean([r[k] for r in rr])) for k in
                         ("iou", "iou_visible", "speck_recall", "speck_recall_visible", "false_outside", "seconds")}
            s[preset]["speck_recall_pooled_visible"] = (
                sum(r["speck_recall_visible"] * r["n_visible"] for r in rr) / max(1, sum(r["n_visible"] for r in rr)))
        if fr.get(name):
            f = fr[name]
            s["clean"] = {"mean_fraction": float(np.mean(f)), "max_fraction": float(np.max(f)), "n": len(f),
                          "over_0.1%": int(sum(v > 0.001 for v in f)), "called_damaged": int(sum(flagged))}
    if list(summ) == ["default"]:
        summ = summ["default"]
    print(json.dumps(summ, indent=1))
    if a.json:
        a.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(a).items()}, "rows": rows,
                                      "clean": fr, "summary": summ}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
