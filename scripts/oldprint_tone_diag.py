"""What limits the tone step of old prints (issue 11, items 4-5), photo by photo.

``--capture FILE``: runs the bench's photos (``oldprint_bench.samples``, same seeds) through
``Face2ScenePipeline(old_print=True, print_tone="faces")`` once and stores, per photo, the clean
photo, the degraded one, the degradation's logged ``print_fade`` stage, and the pipeline's state
just before its tone step (the restored image, the monochrome reading, the damaged-print flag,
the faces' degraded crops with their aligned references; and the same photo without references).
Everything before the tone step is independent of ``face2scene/tone.py``, so a replay measures a
change of the tone step in seconds instead of re-running the pipeline.

``--replay FILE``: runs ``tone.print_tone`` on the stored states and prints, per photo: the clean /
degraded / restored-before-tone / output luma p0.5 & p99.5 (the bench's black/white points) and
per channel, the logged fade against the fitted levels, ΔE2000 per step; then the bench's
summary numbers for these photos (black/white within 10 levels, ΔE ratio, with/without
references, clean photos changed). Writes JSON with ``--json``.

    python scripts/oldprint_tone_diag.py --capture /tmp/tone_states.pkl --per-person 2 --scenes 2
    python scripts/oldprint_tone_diag.py --replay /tmp/tone_states.pkl [--json docs/oldprints/tone_diag.json]
                                         [--colour-prior]

``--training``: the tone step alone (no restorer, no faces: ``mode="auto"``, ``damaged=True``) on
every 4th photo of the training split (``datasets.split_photos``, the bench's photos left out),
each degraded as ``old_print`` and ``old_colour_print`` (seeds 900+i, 256 px): the set the tone
step's choices were made on, apart from the bench's photos.

    python scripts/oldprint_tone_diag.py --training [--no-vignette]
"""
from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np

from face2scene import degrade as D
from face2scene.pipeline import Face2ScenePipeline, PipelineConfig
from face2scene.tone import print_tone
from oldprint_bench import PRESETS, add_sample_args, bw_points, delta_e, samples  # noqa: E402
from oldprint_detect_eval import load  # noqa: E402

TONE_PRESETS = ("old_print", "old_colour_print", "clean", "near_clean")


def _capture_state(pipe, deg, people):
    """The pipeline's output and its state just before the tone step."""
    got = {}
    orig = pipe._print_tone

    def hook(run, image):
        got["image"] = image.copy()
        got["mono"] = run.mono
        got["damaged"] = bool(run.print_info.get("damage", {}).get("damaged_print", False))
        got["faces"] = [(r.degraded_crop, [a.crop for a in run.aligned_refs.get(r.index, [])]) for r in run.jobs]
        got["affines"] = [r.affine for r in run.jobs]
        got["landmarks"] = [r.face.landmarks for r in run.faces if r.face.usable]  # tone.colour_guard's faces
        return orig(run, image)

    pipe._print_tone = hook
    try:
        res = pipe.restore(deg, people)
    finally:
        pipe._print_tone = orig
    got["output"] = res.image
    return got


def capture(a) -> int:
    pipe = Face2ScenePipeline(PipelineConfig(device="cpu", restorer=a.restorer, seed=a.seed, old_print=True,
                                             print_tone="faces"))
    items = samples(a.data, a.per_person, a.scenes)
    states = []
    for preset in a.presets.split(","):
        for i, (name, path, people) in enumerate(items):
            clean = load(path, a.max_side)
            seed = a.seed * 1000 + 17 * i + PRESETS.index(preset)
            params = {"stages": []}
            if preset == "clean":
                deg = clean
            elif preset == "near_clean":
                deg, params = D.degrade(clean, "near-clean", seed=seed)
            else:
                deg, params, _ = D.degrade_with_masks(clean, preset, seed=seed)
            t0, c0 = time.perf_counter(), time.process_time()
            st = {"preset": preset, "photo": name, "clean": clean, "degraded": deg,
                  "fade": next((s for s in params["stages"] if s["op"] == "print_fade"), None),
                  "tone": next((s for s in params["stages"] if s["op"] == "print_tone"), None),
                  "vignette": next((s for s in params["stages"] if s["op"] == "vignette"), None),
                  "with_refs": _capture_state(pipe, deg, people)}
            if preset == "old_colour_print" and people is not None:
                st["without_refs"] = _capture_state(pipe, deg, None)
            states.append(st)
            print(f"{preset:16s} {name:48s} {time.perf_counter() - t0:6.1f} s wall, {time.process_time() - c0:6.1f} s CPU",
                  flush=True)
    with open(a.capture, "wb") as f:
        pickle.dump({"command": " ".join(sys.argv[1:]), "states": states}, f)
    return 0


def _pts(rgb):
    px = rgb.reshape(-1, 3).astype(np.float64)
    lo, hi = np.percentile(px, 0.5, axis=0), np.percentile(px, 99.5, axis=0)
    return [round(v, 1) for v in bw_points(rgb)], [round(float(v), 1) for v in lo], [round(float(v), 1) for v in hi]


_LUMA = np.array([0.299, 0.587, 0.114])


def exact_inverse(rgb, fade, vignette=None):
    """The logged degradation's own fade (and vignetting) undone on ``rgb``: what a tone step
    that knew the parameters would reach (an oracle, for the diagnosis only)."""
    x = rgb.astype(np.float64)
    if vignette is not None:
        from face2scene.tone import Vignette
        x = x / np.maximum(Vignette(vignette["strength"], vignette["power"],
                                    tuple(vignette["center"])).falloff(*x.shape[:2]), 0.2)[..., None]
    lo, hi = np.asarray(fade["black"]), np.asarray(fade["white"])
    t = np.clip((x - lo) / (hi - lo), 0, 1)
    x = 255.0 * t ** (1.0 / np.asarray(fade["gamma"]))
    if fade["saturation"] != 1.0:
        lum = (x @ _LUMA)[..., None]
        x = lum + (x - lum) / fade["saturation"]
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def replay_one(st, **kw):
    def run(state):
        return print_tone(state["image"], state["mono"], damaged=state["damaged"], faces=state["faces"],
                          landmarks=state.get("landmarks", ()), **kw)

    out, info = run(st["with_refs"])
    clean, deg, pre = st["clean"], st["degraded"], st["with_refs"]["image"]
    r = {"preset": st["preset"], "photo": st["photo"], "info": info}
    for k, img in (("clean", clean), ("degraded", deg), ("restored", pre), ("out", out)):
        r[k + "_luma"], r[k + "_lo"], r[k + "_hi"] = _pts(img)
    r["bw_err"] = max(abs(r["out_luma"][0] - r["clean_luma"][0]), abs(r["out_luma"][1] - r["clean_luma"][1]))
    r["bw_err_restored"] = max(abs(r["restored_luma"][0] - r["clean_luma"][0]),
                               abs(r["restored_luma"][1] - r["clean_luma"][1]))
    if st["fade"] is not None:
        for k, img in (("exact_fade", exact_inverse(pre, st["fade"])),
                       ("exact_fade_vignette", exact_inverse(pre, st["fade"], st.get("vignette")))):
            pts = bw_points(img)
            r[k] = {"de": delta_e(img, clean), "luma": [round(v, 1) for v in pts],
                    "bw_err": max(abs(pts[0] - r["clean_luma"][0]), abs(pts[1] - r["clean_luma"][1]))}
        if st.get("vignette") is not None:
            v = st["vignette"]
            r["vignette_logged"] = {"strength": round(v["strength"], 3), "power": round(v["power"], 2),
                                    "center": [round(c, 3) for c in v["center"]]}
        f = st["fade"]
        r["fade"] = {"black": [round(v, 1) for v in f["black"]], "white": [round(v, 1) for v in f["white"]],
                     "gamma": [round(v, 3) for v in f["gamma"]], "saturation": round(f["saturation"], 3)}
    r["de_in"], r["de_restored"], r["de_out"] = delta_e(deg, clean), delta_e(pre, clean), delta_e(out, clean)
    if st["preset"] == "clean":
        r["changed_px"] = float((np.abs(out.astype(np.int16) - clean.astype(np.int16)).max(axis=2) > 8).mean())
    if st["preset"] == "near_clean":
        r["changed_px"] = float((np.abs(out.astype(np.int16) - pre.astype(np.int16)).max(axis=2) > 8).mean())
    if "without_refs" in st:
        r["de_noref"] = delta_e(run(st["without_refs"])[0], clean)
    return r


def summary(rows):
    s = {}
    for preset in TONE_PRESETS:
        rr = [r for r in rows if r["preset"] == preset]
        if not rr:
            continue
        t = {"n": len(rr)}
        if preset in ("old_print", "old_colour_print"):
            t["bw_within_10"] = sum(r["bw_err"] <= 10 for r in rr)
            t["bw_err_median"] = float(np.median([r["bw_err"] for r in rr]))
            t["bw_err_max"] = float(max(r["bw_err"] for r in rr))
            for k in ("exact_fade", "exact_fade_vignette"):
                t[k + "_bw_within_10"] = sum(r[k]["bw_err"] <= 10 for r in rr)
                t[k + "_de"] = float(np.mean([r[k]["de"] for r in rr]))
        t["de_in"] = float(np.mean([r["de_in"] for r in rr]))
        t["de_out"] = float(np.mean([r["de_out"] for r in rr]))
        t["de_ratio"] = t["de_out"] / max(t["de_in"], 1e-9)
        ref = [r for r in rr if "de_noref" in r]
        if ref:
            t["refs_de_in"] = float(np.mean([r["de_in"] for r in ref]))
            t["refs_de_with"] = float(np.mean([r["de_out"] for r in ref]))
            t["refs_de_without"] = float(np.mean([r["de_noref"] for r in ref]))
            t["refs_lower"] = sum(r["de_out"] < r["de_noref"] for r in ref)
        if preset in ("clean", "near_clean"):
            t["changed_px_max"] = float(max(r["changed_px"] for r in rr))
        s[preset] = t
    return s


def replay(a) -> int:
    with open(a.replay, "rb") as f:
        states = pickle.load(f)["states"]
    t0, c0 = time.perf_counter(), time.process_time()
    rows = [replay_one(st, vignette=not a.no_vignette, colour_prior=a.colour_prior) for st in states]
    for r in rows:
        print(f"\n{r['preset']} {r['photo']}: bw error {r['bw_err']:.1f} (before the tone step {r['bw_err_restored']:.1f}); "
              f"ΔE in {r['de_in']:.2f} → restored {r['de_restored']:.2f} → out {r['de_out']:.2f}"
              + (f" (no refs {r['de_noref']:.2f})" if "de_noref" in r else ""))
        for k in ("clean", "degraded", "restored", "out"):
            print(f"   {k:9s} luma {r[k + '_luma']}  p0.5 RGB {r[k + '_lo']}  p99.5 RGB {r[k + '_hi']}")
        if "fade" in r:
            print(f"   fade (logged) {r['fade']}; vignette (logged) {r.get('vignette_logged')}")
            for k in ("exact_fade", "exact_fade_vignette"):
                print(f"   oracle {k:20s} ΔE {r[k]['de']:.2f}, luma points {r[k]['luma']}, bw error {r[k]['bw_err']:.1f}")
        if "vignette" in r["info"]:
            v = r["info"]["vignette"]
            print(f"   vignette (estimated) strength {v['strength']} power {v['power']} confidence {v['confidence']}"
                  f" applied {v['applied']}")
        lv = r["info"].get("levels", {})
        if lv:
            print(f"   levels {json.dumps({k: lv.get(k) for k in ('gain', 'offset', 'confidence', 'faded', 'applied')})}"
                  f" details {json.dumps(lv.get('details'))}")
        if "colour" in r["info"]:
            c = r["info"]["colour"]
            print(f"   colour {c['source']} sat {c['saturation']} cast {c['cast']} conf {c['confidence']}")
    s = summary(rows)
    print(f"\nreplayed {len(rows)} photos in {time.perf_counter() - t0:.1f} s wall, {time.process_time() - c0:.1f} s CPU")
    for preset, t in s.items():
        print(f"== {preset}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in t.items()))
    if a.json:
        a.json.write_text(json.dumps({"command": "scripts/oldprint_tone_diag.py " + " ".join(sys.argv[1:]),
                                      "rows": rows, "summary": s}, indent=1, default=float))
    return 0


def training(a) -> int:
    from face2scene.datasets import list_photos, split_photos
    from face2scene.tone import is_monochrome
    from oldprint_bench import SCENES  # noqa: E402
    photos = [p for p in split_photos(list_photos([a.data / "scenes", a.data / "identities"]))[0]
              if not any(p.path.endswith(s) for s in SCENES)][::4]
    t0, c0 = time.perf_counter(), time.process_time()
    res = {}
    for i, p in enumerate(photos):
        clean = load(Path(p.path), 256)
        for preset in ("old_print", "old_colour_print"):
            deg, _, _ = D.degrade_with_masks(clean, preset, seed=900 + i)
            out, _ = print_tone(deg, is_monochrome(deg), damaged=True, mode="auto", vignette=not a.no_vignette)
            cb, ob = bw_points(clean), bw_points(out)
            res.setdefault(preset, []).append((delta_e(deg, clean), delta_e(out, clean),
                                               max(abs(cb[0] - ob[0]), abs(cb[1] - ob[1]))))
    print(f"{len(photos)} training photos, {time.perf_counter() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU")
    for preset, v in res.items():
        de_in, de_out = np.mean([r[0] for r in v]), np.mean([r[1] for r in v])
        print(f"{preset:16s} ΔE {de_in:.2f} -> {de_out:.2f} ({de_out / de_in:.3f}x); black/white within 10: "
              f"{sum(r[2] <= 10 for r in v)}/{len(v)}, median error {np.median([r[2] for r in v]):.1f}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    add_sample_args(ap, per_person=2, scenes=2)
    ap.add_argument("--capture", type=Path, default=None)
    ap.add_argument("--replay", type=Path, default=None)
    ap.add_argument("--training", action="store_true", help="the tone step alone on training-split photos")
    ap.add_argument("--presets", default=",".join(TONE_PRESETS))
    ap.add_argument("--restorer", default="classical")
    ap.add_argument("--no-vignette", action="store_true", help="replay without the vignetting step (before)")
    ap.add_argument("--colour-prior", action="store_true",
                    help="replay with the learned colour prior instead of the grey world (off in the pipeline)")
    a = ap.parse_args(argv)
    if a.capture:
        if not (a.data / "identities").is_dir():
            print(f"error: no development photos in {a.data}", file=sys.stderr)
            return 2
        return capture(a)
    if a.replay:
        return replay(a)
    if a.training:
        return training(a)
    ap.error("give --capture FILE, --replay FILE or --training")
    return 2


if __name__ == "__main__":
    sys.exit(main())
