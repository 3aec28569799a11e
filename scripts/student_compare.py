"""Compare two ``face2scene bench quality`` runs (today's compact restorer and the student) preset by
preset on issue 10's student criteria, from their ``quality.json`` files (one run per preset or one
run with several presets; records are matched by preset and photo):

    python scripts/student_compare.py --a compact runs/bq_compact_*/quality.json \
        --b student runs/bq_student_*/quality.json --json docs/bench/student_vs_compact.json

Per preset, the pipeline's face-derived row (what the product runs): median whole-photo PSNR,
gain over the input, texture (detail ratio restored / clean), GMSD, photos made worse, the median of
the paired PSNR differences (b − a) and the pipeline's wall seconds per megapixel.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROW = "face"  # the pipeline with the face-derived estimate: the product's path


def _records(paths):
    recs = {}
    for p in paths:
        for r in json.loads(Path(p).read_text())["records"]:
            recs[(r["preset"], r["photo"])] = r
    return recs


def _stats(recs, preset):
    rs = [r for (p, _), r in sorted(recs.items()) if p == preset]
    row = [r["rows"][ROW] for r in rs]
    med = lambda k: float(np.median([x[k] for x in row if x.get(k) is not None])) if row else None  # noqa: E731
    mp = [r["size"][0] * r["size"][1] / 1e6 for r in rs]
    return {"n": len(rs), "psnr": med("psnr"), "gain": med("gain"), "texture": med("tex"), "gmsd": med("gmsd"),
            "face_texture": med("face_tex"), "worse": int(sum(x["gain"] < -0.1 for x in row)),
            "pipeline_s_per_MP": float(np.median([r["seconds"][ROW] / m for r, m in zip(rs, mp)])) if rs else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", nargs="+", required=True, metavar=("NAME", "JSON"))
    ap.add_argument("--b", nargs="+", required=True, metavar=("NAME", "JSON"))
    ap.add_argument("--json", default=None, help="write the comparison here")
    args = ap.parse_args(argv)
    if len(args.a) < 2 or len(args.b) < 2:
        print("error: --a and --b need a name and at least one quality.json", file=sys.stderr)
        return 2
    (na, *pa), (nb, *pb) = args.a, args.b
    try:
        ra, rb = _records(pa), _records(pb)
    except (OSError, KeyError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    order = ["clean", "near-clean", "mild", "s3diff"]
    presets = sorted({p for p, _ in ra} & {p for p, _ in rb},
                     key=lambda p: (order.index(p) if p in order else len(order), p))
    out, lines = {"row": ROW, "a": na, "b": nb, "files_a": pa, "files_b": pb, "by_preset": {}}, []
    head = (f"{'preset':<11} {'restorer':<9} {'n':>2} {'PSNR':>6} {'gain':>6} {'texture':>7} {'face tex':>8} "
            f"{'GMSD':>6} {'worse':>5} {'Δ PSNR':>7} {'s/MP':>6}")
    lines += [head, "-" * len(head)]
    for preset in presets:
        sa, sb = _stats(ra, preset), _stats(rb, preset)
        common = [k for k in ra if k[0] == preset and k in rb]
        diff = float(np.median([rb[k]["rows"][ROW]["psnr"] - ra[k]["rows"][ROW]["psnr"] for k in common]))
        out["by_preset"][preset] = {na: sa, nb: sb, "paired_psnr_b_minus_a": diff, "paired_n": len(common)}
        for name, s, d in ((na, sa, ""), (nb, sb, f"{diff:+.2f}")):
            f = lambda v, spec: "—" if v is None else format(v, spec)  # noqa: E731
            lines.append(f"{preset:<11} {name:<9} {s['n']:>2} {f(s['psnr'], '6.2f')} {f(s['gain'], '+6.2f')} "
                         f"{f(s['texture'], '7.2f')} {f(s['face_texture'], '8.2f')} {f(s['gmsd'], '6.3f')} "
                         f"{s['worse']:>2}/{s['n']:<2} {d:>7} {f(s['pipeline_s_per_MP'], '6.0f')}")
    table = "\n".join(lines)
    print(table)
    if args.json:
        out["table"] = table
        Path(args.json).write_text(json.dumps(out, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
