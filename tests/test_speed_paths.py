"""Speed-related behaviour that must not regress (no timings here: see ``face2scene bench speed``)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _omp_policy_after_import(env_value):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if env_value is not None:
        env["OMP_WAIT_POLICY"] = env_value
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    code = "import os, face2scene; print(os.environ.get('OMP_WAIT_POLICY'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return out.stdout.strip()


def test_importing_face2scene_makes_openmp_threads_wait_passively():
    assert _omp_policy_after_import(None) == "PASSIVE"


def test_a_wait_policy_the_user_set_wins():
    assert _omp_policy_after_import("ACTIVE") == "ACTIVE"


def test_a_one_megapixel_photo_is_one_tile_of_the_default_restorer():
    """The learned restorer's tile decides how much of the photo the network sees twice: at the
    default a 1 MP photo is a single pass (512 px tiles cost 1.6x the network work)."""
    pytest.importorskip("torch")
    from face2scene.models.imageops import iter_tiles
    from face2scene.pipeline import PipelineConfig
    tile = PipelineConfig().tile_size
    assert len(list(iter_tiles(1000, 1000, tile, 128, 8))) == 1
    tiles = list(iter_tiles(1000, 1000, 512, 128, 8))  # a smaller tile: shrunk evenly, never 512 px of repeats
    assert len(tiles) == 9 and sum(th * tw for _, _, th, tw in tiles) < 1.7e6


def test_guided_base_uses_the_network_tile(monkeypatch):
    """The classical base of the guided compact restorer is tiled like the network (its tiles only
    change the work in their margins, never the pixels)."""
    import numpy as np
    pytest.importorskip("torch")
    from face2scene.restorers import compact
    from face2scene.types import DegradationEstimate
    seen = []

    class Spy(compact.ClassicalRestorer):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            seen.append(self.tile_size)

    monkeypatch.setattr(compact, "ClassicalRestorer", Spy)
    backend = compact.CompactBackend.__new__(compact.CompactBackend)
    rgb = np.full((32, 32, 3), 128, np.uint8)
    backend.base_restoration(rgb, DegradationEstimate(5.0, 1.0, None), tile=1024)
    assert seen == [1024]
