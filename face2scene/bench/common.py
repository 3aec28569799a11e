"""What the benchmarks share: where the development photos are, and table formatting."""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import numpy as np


def default_data() -> Optional[Path]:
    env = os.environ.get("F2S_SHARED_DATA")
    cands = [Path(env)] if env else []
    cands += [Path.cwd().parent / "shared" / "data", Path(__file__).resolve().parents[3] / "shared" / "data"]
    for c in cands:
        if (c / "identities").is_dir():
            return c
    return None


def fmt(v, nd=2):
    return "—" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{nd}f}"


def print_table(header: List[str], rows: List[List[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
    text = "\n".join([line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows])
    print(text)
    return text
