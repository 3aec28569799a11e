"""Issue 9: the do-no-harm gate's decision on each photo and preset, without the restorer.

The default pipeline up to its estimate (faces, people, Ref-FR, FaDeX and the photo's own
readings), then the gate (``safeguard.near_clean_reason``): left as it is, or restored, and why.
Per photo: the truth the degradation logged, the estimate, the readings the gate judges (flat-block
noise, the faces' blur against their references, the sharpest edges, the JPEG reader's quality and
the resized-JPEG block grid, ``estimate.jpeg.resized_grid``). Cheap enough to run on many photos:
it is how the grid's threshold (``safeguard.GRID_MIN``) was checked on the training split's clean
and near-clean photos, where no photo may change its decision.

    PYTHONPATH=. python scripts/gate_readings.py --split val --samples 8 --presets s3diff --max-side 512
    PYTHONPATH=. python scripts/gate_readings.py --split train --samples 24 --scenes 24 --presets clean,near-clean --json out/gate_train.json

Photos and seeds: ``--split val`` as ``face2scene bench quality --split val`` (the person photos
cycled over the people, each with the person's other photos as references, then the scenes of
``issue9_audit.SCENES``; photo i degraded with seed ``seed * 1000 + i``); ``--split train``: the
same over the learned models' training split (its people; its first ``--scenes`` scenes).
``--resized-jpeg``: with ``PipelineConfig.resized_jpeg`` on (off by default: the grid is then only
reported, and a photo it would have restored says so in "why"). Not a test.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def data_and_presets(presets: str):
    """The development photos' folder and the parsed ``--presets``; a clear error (exit status 2)
    when either is missing or wrong."""
    from face2scene.bench import common, quality as Q
    data = common.default_data()
    if data is None or not (Path(data) / "identities").is_dir():
        print("error: no development photos", file=sys.stderr)
        raise SystemExit(2)
    try:
        return Path(data), Q.parse_presets(presets)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2)


def _items(data: Path, split: str, samples: int, scenes: int):
    from face2scene.bench import quality as Q
    from issue9_audit import SCENES
    if split == "val":
        persons, names = Q._val_split()["persons"], list(SCENES)[:scenes]
    else:
        tr = json.loads(Q.SPLIT_JSON.read_text())["train"]
        persons = sorted({p.split("identities/", 1)[1].split("/")[0] for p in tr if "identities/" in p})
        names = sorted(p.split("scenes/", 1)[1] for p in tr if "scenes/" in p)[:scenes]
    items = [("person", p, f, refs) for p, f, refs in Q._samples(data, samples, 0, persons)]
    return items + [("scene", None, data / "scenes" / n, None) for n in names]


def decide(pipe, rgb, people) -> dict:
    """The pipeline's estimate and the gate's decision for one photo (no restoration)."""
    from face2scene import safeguard
    from face2scene.pipeline import _Run
    from face2scene.progress import CancelToken, null_progress
    run = _Run(rgb, 1, null_progress, CancelToken())
    pipe._find_faces(run, None, with_embeddings=bool(people))
    pipe._match_people(run, people, None)
    pipe._restore_faces(run)
    e = pipe._estimate_degradation(run)
    why = safeguard.near_clean_reason(e) or safeguard.screen_reason(rgb)
    off = (e.details.get("block_grid") or {}).get("not_acted_on")
    if why and off:
        why += f" [the grid cue, off, would restore it: {off}]"
    cal = e.details.get("calibration") or {}
    return {"estimate": {k: e.to_json()[k] for k in ("noise_sigma", "blur_sigma", "jpeg_quality", "source")},
            "readings": {"flat_noise": cal.get("flat_noise"), "face_blur": e.details.get("face_blur"),
                         "edge_blur": cal.get("edge_blur"), "block_grid": e.details.get("block_grid")},
            "left": why is not None, "why": why or (e.details.get("resized_jpeg") or {}).get("reason") or "",
            "resized_jpeg": bool(e.details.get("resized_jpeg")), "faces": len(run.jobs)}


def main(argv=None) -> int:
    from face2scene.bench import quality as Q
    from face2scene.degrade import degrade
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", choices=["val", "train"], default="val")
    ap.add_argument("--samples", type=int, default=4, help="person photos")
    ap.add_argument("--scenes", type=int, default=4)
    ap.add_argument("--presets", default="s3diff")
    ap.add_argument("--max-side", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resized-jpeg", action="store_true", help="act on the resized-JPEG grid (PipelineConfig.resized_jpeg)")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    data, presets = data_and_presets(a.presets)
    pipes = Q._Pipes("auto", a.seed)
    pipe = pipes._like(resized_jpeg=True) if a.resized_jpeg else pipes.face
    out, t0 = [], (time.perf_counter(), time.process_time())
    for i, (kind, person, path, refs) in enumerate(_items(Path(data), a.split, a.samples, a.scenes)):
        clean = Q._load(path, a.max_side)
        for preset in presets:
            degraded, params = (clean, {"summary": {}}) if preset == "clean" else degrade(clean, preset, seed=a.seed * 1000 + i)
            rec = {"preset": preset, "photo": f"{person or 'scene'}/{path.name}", "truth": params["summary"],
                   **decide(pipe, degraded, {person: refs} if person else None)}
            out.append(rec)
            g = rec["readings"]["block_grid"] or {}
            print(f"{preset:10s} {rec['photo'][:44]:44s} {'LEFT' if rec['left'] else 'restored':8s} "
                  f"grid {g.get('strength', float('nan')):5.1f}/{g.get('period') or 0:5.2f}  est n {rec['estimate']['noise_sigma']:.1f} "
                  f"b {rec['estimate']['blur_sigma']:.2f} q {rec['estimate']['jpeg_quality']}  {rec['why'][:70]}", flush=True)
    print(f"{len(out)} readings, {time.perf_counter() - t0[0]:.0f} s wall, {time.process_time() - t0[1]:.0f} s CPU")
    for p in presets:
        rs = [r for r in out if r["preset"] == p]
        print(f"{p:10s} left as they are {sum(r['left'] for r in rs)}/{len(rs)}, restored as resized JPEGs "
              f"{sum(r['resized_jpeg'] for r in rs)}/{len(rs)}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
