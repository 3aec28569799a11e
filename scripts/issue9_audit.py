"""Issue 9's Done-when audit on a busy machine: every degradation preset through the default
pipeline, one record per (photo, preset) appended to a JSON-lines file as soon as it is measured.

``face2scene bench quality`` measures the same things (it is the reference: same photos, seeds,
PSNR cap and texture ratio, through its own helpers) but runs five rows per photo (input, OpenCV,
blind, face-derived and true-parameter pipelines) and writes nothing until every preset is done.
Here only the rows the Done-when lines judge are run — the degraded input and the default pipeline
(``face`` row: the face-derived estimate where a face is found, else the blind one, the same code
path) — plus, with ``--true-presets``, the pipeline given the true parameters (the near-clean
gate with a *given* estimate). Photos are visited one at a time across all presets, so an
interrupted run has measured every preset on the first photos. ``--summary`` prints the tables of
a records file (per preset: photos, median gain, worst gain and photo, photos worse than −0.1 dB,
median texture ratio, the estimate's median noise and blur).

    PYTHONPATH=. python scripts/issue9_audit.py --max-side 384 --jsonl out/audit.jsonl
    PYTHONPATH=. python scripts/issue9_audit.py --summary out/audit.jsonl --json docs/bench/x.json
    PYTHONPATH=. python scripts/issue9_audit.py --upscale-only --max-side 512 --jsonl out/up.jsonl

Photos: the validation split's people (``--samples`` identity photos, each with the person's other
photos as references) and the four scenes of BENCHMARKS.md's do-no-harm section. Not a test.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCENES = ("sunhays80_ruin_sun_booxopykmiqnsqbq.jpg", "sunhays80_building_facade_sun_bpaohzcfkhzodryb.jpg",
          "cbsd68_145086.png", "sunhays80_vineyard_sun_buwfkswrpuoxtfnt.jpg")
ALL_PRESETS = ("clean", "near-clean", "mild", "s3diff", "realesrgan", "old_photo", "old_print",
               "old_colour_print", "halftone")


def _items(data: Path, samples: int, scenes):
    from face2scene.bench import quality as Q
    split = Q._val_split()
    items = [("person", p, f, refs) for p, f, refs in Q._samples(data, samples, 0, split["persons"])]
    items += [("scene", None, s, None) for s in Q._scenes(data, len(scenes), list(scenes))]
    # (the bench's index, which seeds the degradation; visited people and scenes alternately)
    people = [(i, it) for i, it in enumerate(items) if it[0] == "person"]
    others = [(i, it) for i, it in enumerate(items) if it[0] != "person"]
    order = [x for pair in zip(people, others) for x in pair]
    return order + people[len(others):] + others[len(people):]


def measure(pipes, item, preset: str, i: int, max_side: int, seed: int, with_true: bool) -> dict:
    """One photo and preset: the bench's own degradation (seed ``seed * 1000 + i``), metrics and
    estimate errors (:mod:`face2scene.bench.quality`), for the rows run here."""
    from face2scene.bench import quality as Q
    from face2scene.degrade import degrade
    from face2scene.types import DegradationEstimate
    kind, person, path, refs = item
    clean = Q._load(path, max_side)
    box, clean_face = Q._face_box(pipes.face.face_backend, clean) if kind == "person" else (None, None)
    degraded, params = degrade(clean, preset, seed=seed * 1000 + i)
    truth = params["summary"]
    people = {person: refs} if person else None
    t, c = time.perf_counter(), time.process_time()
    res = pipes.face.restore(degraded, people)
    pipes.restorer_shared()
    seconds = {"face": [time.perf_counter() - t, time.process_time() - c]}
    outs = {"degraded": degraded, "face": res.image}
    if with_true:
        given = DegradationEstimate(truth["noise_sigma"], truth["blur_sigma"], truth["jpeg_quality"], truth["scale"],
                                    "given", 1.0)
        outs["true"] = pipes.with_truth(given).restore(degraded, people).image
    rows = Q.row_metrics(clean, outs, box, pipes.face.face_backend, clean_face)
    Q.add_estimate_errors(rows, {"face": res.degradation}, truth)
    dnh = res.degradation.details.get("do_no_harm") or {}
    return {"preset": preset, "kind": kind, "person": person, "photo": path.name, "size": [clean.shape[1], clean.shape[0]],
            "truth": truth, "estimate": res.degradation.to_json(), "faces_found": len(res.faces),
            "strength": dnh.get("strength"), "reason": dnh.get("reason"), "seconds": seconds, "rows": rows}


def summarise(records) -> dict:
    out = {}
    for preset in dict.fromkeys(r["preset"] for r in records if "preset" in r):
        rs = [r for r in records if r.get("preset") == preset]
        s = {"n": len(rs)}
        for row in ("face", "true"):
            xs = [(r["rows"][row]["gain"], r) for r in rs if row in r["rows"]]
            if not xs:
                continue
            g = [x for x, _ in xs]
            k = int(np.argmin(g))
            tex = [r["rows"][row].get("tex") for _, r in xs if r["rows"][row].get("tex") is not None]
            s[row] = {"n": len(xs), "median_gain": float(np.median(g)), "worst_gain": float(g[k]),
                      "worst_photo": (xs[k][1]["person"] or "scene") + "/" + xs[k][1]["photo"],
                      "n_worse": int(sum(v < -0.1 for v in g)), "texture": float(np.median(tex)) if tex else None}
        s["est_noise"] = float(np.median([r["rows"]["face"]["est_noise"] for r in rs]))
        s["est_blur"] = float(np.median([r["rows"]["face"]["est_blur"] for r in rs]))
        s["true_noise"] = float(np.median([r["truth"]["noise_sigma"] for r in rs]))
        out[preset] = s
    ups = [r for r in records if r.get("upscale")]
    if ups:
        d = [r["gain_over_bicubic"] for r in ups]
        out["upscale 2"] = {"n": len(ups), "median_gain_over_bicubic": float(np.median(d)), "worst": float(min(d)),
                            "n_below_bicubic": int(sum(x < 0 for x in d)),
                            "tex_bicubic": float(np.median([r["tex_bicubic"] for r in ups])),
                            "tex_pipeline": float(np.median([r["tex_pipeline"] for r in ups])),
                            "photos": {r["photo"]: round(r["gain_over_bicubic"], 3) for r in ups}}
    return out


def print_summary(s: dict) -> str:
    from face2scene.bench.common import fmt, print_table
    rows = []
    for preset, v in s.items():
        if preset == "upscale 2":
            continue
        f, t = v.get("face", {}), v.get("true")
        rows.append([preset, str(f.get("n")), fmt(f.get("median_gain")), fmt(f.get("worst_gain")), f.get("worst_photo", ""),
                     f"{f.get('n_worse')}/{f.get('n')}", fmt(f.get("texture")), fmt(v["est_noise"]), fmt(v["est_blur"]),
                     "" if t is None else f"{fmt(t['median_gain'])} / {fmt(t['worst_gain'])}"])
    table = print_table(["preset", "photos", "gain", "worst", "worst photo", "worse", "texture", "noise est",
                         "blur est", "true params: gain / worst"], rows)
    if "upscale 2" in s:
        u = s["upscale 2"]
        line = (f"upscale 2 of clean photos downscaled by 2: pipeline − bicubic median {fmt(u['median_gain_over_bicubic'])} "
                f"dB, worst {fmt(u['worst'])} dB, {u['n_below_bicubic']}/{u['n']} below bicubic; texture "
                f"{fmt(u['tex_bicubic'])} (bicubic) / {fmt(u['tex_pipeline'])} (pipeline)")
        print(line)
        table += "\n" + line
    return table


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--presets", default=",".join(ALL_PRESETS))
    ap.add_argument("--true-presets", default="clean,near-clean", help="presets that also run the true parameters")
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--scenes", default=",".join(SCENES))
    ap.add_argument("--max-side", type=int, default=384)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--restorer", default="auto")
    ap.add_argument("--jsonl", type=Path, help="records, appended one per line")
    ap.add_argument("--upscale-only", action="store_true", help="only the --upscale 2 check (clean photos /2)")
    ap.add_argument("--summary", type=Path, help="print the tables of this records file and stop")
    ap.add_argument("--json", type=Path, help="with --summary: write the summary here")
    a = ap.parse_args(argv)
    if a.summary:
        recs = [json.loads(x) for x in a.summary.read_text().splitlines() if x.strip()]
        s = summarise(recs)
        table = print_summary(s)
        if a.json:
            a.json.parent.mkdir(parents=True, exist_ok=True)
            a.json.write_text(json.dumps({"summary": s, "table": table, "records": recs}, indent=1))
        return 0
    from face2scene.bench import common
    from face2scene.bench import quality as Q
    data = a.data or common.default_data()
    if data is None or not (Path(data) / "identities").is_dir():
        print("error: no development photos (pass --data DIR)", file=sys.stderr)
        return 2
    if not a.jsonl:
        print("error: --jsonl FILE is needed", file=sys.stderr)
        return 2
    presets = Q.parse_presets(a.presets)
    with_true = set(Q.parse_presets(a.true_presets)) if a.true_presets else set()
    items = _items(Path(data), a.samples, [s for s in a.scenes.split(",") if s])
    pipes = Q._Pipes(a.restorer, a.seed)
    a.jsonl.parent.mkdir(parents=True, exist_ok=True)
    with a.jsonl.open("a") as fh:
        if a.upscale_only:
            for _, item in items:
                r = Q.upscale_check(pipes, [item], a.max_side)["records"][0]
                fh.write(json.dumps({**r, "upscale": 2, "max_side": a.max_side}) + "\n")
                fh.flush()
            return 0
        for k, (i, item) in enumerate(items):
            for preset in presets:
                rec = measure(pipes, item, preset, i, a.max_side, a.seed, preset in with_true)
                rec["max_side"] = a.max_side
                fh.write(json.dumps(rec) + "\n")
                fh.flush()
                f = rec["rows"]["face"]
                print(f"[{k + 1}/{len(items)} {preset}] {(item[1] or 'scene')}/{item[2].name}: gain {f['gain']:+.2f} dB, "
                      f"texture {f['tex'] if f['tex'] is None else round(f['tex'], 2)}, noise est "
                      f"{f['est_noise']:.2f} (true {rec['truth']['noise_sigma']:.2f}), strength {rec['strength']}, "
                      f"{rec['seconds']['face'][0]:.0f} s ({rec['seconds']['face'][1]:.1f} s CPU)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
