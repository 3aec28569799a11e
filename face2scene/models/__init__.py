"""Learned Face2Scene models in the diffusers style (a config plus safetensors weights per folder).

- :class:`FaDeXEncoder` — (degraded crop, restored crop, difference) -> degradation feature map,
  pooled code and an explicit-parameter head. Trained on its own, then frozen.
- :class:`MapNet` — FaDeX feature map -> 21 multi-scale degradation tokens (+ text token); a learned
  null path for photos without a usable face.
- :class:`CompactRestorer` — a compact token-conditioned restorer (a diffusers
  ``UNet2DConditionModel`` on a pixel-unshuffled grid, one pass, residual output). It has no
  generative prior and is not a diffusion model.
- :mod:`.sd_turbo` — the paper-scale configuration (SD-Turbo + adapters), loaded from local folders.

Heavy imports (torch, diffusers) happen only when this package is imported.
"""
from .fadex import FaDeXEncoder, FaDeXOutput, fuse_feature_maps
from .mapnet import MapNet
from .compact import CompactRestorer

__all__ = ["FaDeXEncoder", "FaDeXOutput", "fuse_feature_maps", "MapNet", "CompactRestorer"]
