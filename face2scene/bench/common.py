"""What the benchmarks share: where the development photos are, table formatting, and the
image measures every benchmark reports the same way (capped PSNR, texture kept)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import numpy as np

#: dB; PSNR of identical images (a ``clean`` preset's input) counts as this, so an unchanged
#: clean photo gains 0 dB, not inf − inf.
PSNR_CAP = 60.0


def default_data() -> Optional[Path]:
    env = os.environ.get("F2S_SHARED_DATA")
    cands = [Path(env)] if env else []
    cands += [Path.cwd().parent / "shared" / "data", Path(__file__).resolve().parents[3] / "shared" / "data"]
    for c in cands:
        if (c / "identities").is_dir():
            return c
    return None


def capped_psnr(clean: np.ndarray, img: np.ndarray, border: int = 4) -> float:
    """:func:`face2scene.metrics.psnr`, at most :data:`PSNR_CAP`."""
    from ..metrics import psnr
    return min(psnr(clean, img, border=border), PSNR_CAP)


def laplacian_energy(rgb: np.ndarray, border: int = 4) -> float:
    """:func:`face2scene.metrics.laplacian_energy` (mean squared Laplacian of the luma)."""
    from ..metrics import laplacian_energy as energy
    return energy(rgb, border)


def texture_ratio(clean: np.ndarray, img: np.ndarray, border: int = 4) -> Optional[float]:
    """:func:`face2scene.metrics.detail_ratio` (Laplacian energy restored / clean): 1 = the clean
    photo's texture kept, < 1 = smoothed, > 1 = sharpened or noisy. None for a flat clean image."""
    from ..metrics import detail_ratio
    return detail_ratio(clean, img, border)


def fmt(v, nd=2):
    return "—" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{nd}f}"


def print_table(header: List[str], rows: List[List[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
    text = "\n".join([line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows])
    print(text)
    return text
