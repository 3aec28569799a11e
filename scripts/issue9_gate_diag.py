"""Issue 9: why the do-no-harm gate leaves a degraded photo as it is, per photo.

For each ``preset:photo`` named (the audit's photos and seeds, :mod:`issue9_audit`), the default
pipeline's estimate and the readings the gate judges (flat-block noise, the faces' blur against
their references, the sharpest edges' width), and the gain of three runs: the default pipeline
(the gate), the true parameters given, and the default estimate's raw readings given (noise at
least 5, blur at least 0.7 px, JPEG 80 if none was read) — what a restoration could give if the
gate let the photo through. Prints one block per photo and writes JSON with ``--json``.

    PYTHONPATH=. python scripts/issue9_gate_diag.py s3diff:img19.jpg,s3diff:img48.jpg --json out/diag.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import issue9_audit as A  # noqa: E402


def main(argv=None) -> int:
    from face2scene.bench import common, quality as Q
    from face2scene.bench.common import capped_psnr
    from face2scene.degrade import degrade
    from face2scene.types import DegradationEstimate
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("which", help="comma-separated preset:photo-file-name")
    ap.add_argument("--max-side", type=int, default=384)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    data = common.default_data()
    if data is None or not (Path(data) / "identities").is_dir():
        print("error: no development photos", file=sys.stderr)
        return 2
    want = [w.split(":", 1) for w in a.which.split(",") if w]
    if any(len(w) != 2 for w in want):
        print("error: name photos as preset:file", file=sys.stderr)
        return 2
    items = A._items(Path(data), 4, list(A.SCENES))
    pipes = Q._Pipes("auto", a.seed)
    out = []
    for i, (kind, person, path, refs) in items:
        for preset in [p for p, f in want if f == path.name]:
            clean = Q._load(path, a.max_side)
            degraded, params = degrade(clean, preset, seed=a.seed * 1000 + i)
            t = params["summary"]
            people = {person: refs} if person else None
            runs = {"gate": pipes.face.restore(degraded, people)}
            pipes.restorer_shared()
            e = runs["gate"].degradation
            cal = e.details.get("calibration") or {}
            given = {"true": DegradationEstimate(t["noise_sigma"], t["blur_sigma"], t["jpeg_quality"], t["scale"], "given", 1.0),
                     "raw": DegradationEstimate(max(cal.get("raw_noise", e.noise_sigma), 5.0),
                                                max(cal.get("raw_blur", e.blur_sigma), 0.7), e.jpeg_quality or 80.0, 1.0,
                                                "given", 1.0)}
            for k, g in given.items():
                runs[k] = pipes.with_truth(g).restore(degraded, people)
            base = capped_psnr(clean, degraded)
            rec = {"preset": preset, "photo": f"{person or 'scene'}/{path.name}",
                   "truth": {k: t[k] for k in ("noise_sigma", "blur_sigma", "jpeg_quality", "scale")},
                   "estimate": {k: e.to_json()[k] for k in ("noise_sigma", "blur_sigma", "jpeg_quality", "source")},
                   "readings": {"face_blur": e.details.get("face_blur"), **{k: cal.get(k) for k in
                                ("raw_noise", "raw_blur", "noise_bound", "flat_noise", "edge_blur")},
                                "block_grid": e.details.get("block_grid"),
                                "resized_jpeg": (e.details.get("resized_jpeg") or {}).get("reason")},
                   "runs": {k: {"gain": capped_psnr(clean, r.image) - base,
                                **{x: (r.degradation.details.get("do_no_harm") or {}).get(x) for x in ("strength", "reason")}}
                            for k, r in runs.items()}}
            out.append(rec)
            print(f"{preset} {rec['photo']}: truth {rec['truth']}\n  estimate {rec['estimate']}\n  readings {rec['readings']}")
            for k, v in rec["runs"].items():
                print(f"  {k:5s} gain {v['gain']:+.2f} dB, strength {v['strength']}: {v['reason'] or ''}")
            sys.stdout.flush()
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
