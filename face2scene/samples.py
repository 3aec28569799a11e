"""A redistributable sample photo for the quick start and tests.

scikit-image (a dependency) ships NASA's portrait of astronaut Eileen Collins (public domain,
NASA image S94-09005), 512x512 RGB.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

SAMPLE_CREDIT = "NASA portrait of astronaut Eileen Collins (public domain), shipped by scikit-image"


def sample_path() -> Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("scikit-image is not installed; it ships the sample photo")
    path = Path(spec.origin).parent / "data" / "astronaut.png"
    if not path.is_file():
        raise FileNotFoundError(f"the sample photo is missing from scikit-image: {path}")
    return path


def load_sample() -> np.ndarray:
    from PIL import Image
    with Image.open(sample_path(), formats=["PNG"]) as im:
        return np.asarray(im.convert("RGB")).copy()
