"""Issue 9: what the resized-JPEG cue does to the photos it acts on. Every training-split photo of
``scripts/grid_calibrate.py``'s records (``--records``) whose grid reaches ``GRID_MIN`` with no JPEG
quality read, through the bench's default pipeline (``auto``, 512 px, the person's other photos as
references, ``PipelineConfig.resized_jpeg`` on): whether the gate restored it as a resized JPEG,
the back-off strength, the whole-photo gain, and the gain had the strength been capped at 0.6 (the
input blended in). Not a test.

    PYTHONPATH=. python scripts/grid_calibrate.py --json out/grid512.json
    PYTHONPATH=. python scripts/grid_flips.py --records out/grid512.json
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    from face2scene import safeguard
    from face2scene.bench import common, quality as Q
    from face2scene.bench.common import capped_psnr
    from face2scene.degrade import degrade
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=Path, required=True)
    a = ap.parse_args(argv)
    try:
        recs = json.loads(a.records.read_text())["records"]
    except (OSError, ValueError, KeyError) as err:
        print(f"error: cannot read grid_calibrate records from {a.records}: {err}", file=sys.stderr)
        return 2
    data = Path(common.default_data() or "")
    photos = list(dict.fromkeys(r["photo"] for r in recs))
    flip = [r for r in recs if r["jpeg"] is None and r["grid"] >= safeguard.GRID_MIN and r["preset"] != "clean"]
    pipe = Q._Pipes("auto", 0)._like(resized_jpeg=True)
    for r in flip:
        k, path = photos.index(r["photo"]), data / r["photo"]
        clean = Q._load(path, 512)
        deg, _ = degrade(clean, r["preset"], seed=1000 + k)
        people = None
        if path.parent.parent.name == "identities":
            people = {path.parent.name: [q for q in sorted(path.parent.iterdir()) if q.is_file() and q != path]}
        t = time.perf_counter()
        res = pipe.restore(deg, people)
        e, base = res.degradation, capped_psnr(clean, deg)
        out = res.image.astype(np.float64)
        capped = np.clip(np.rint(deg + 0.6 * (out - deg)), 0, 255).astype(np.uint8)
        print(f"{r['preset']:10s} {r['photo'][:44]:44s} grid {r['grid']:5.1f}/{r['period']:5.2f} "
              f"resized JPEG {bool(e.details.get('resized_jpeg'))!s:5s} strength {(e.details.get('do_no_harm') or {}).get('strength')} "
              f"gain {capped_psnr(clean, res.image) - base:+.2f}  at 0.6 {capped_psnr(clean, capped) - base:+.2f}  "
              f"{time.perf_counter() - t:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
