"""FacePriorNet: a small learned face-specific restorer that refines the scene restorer's face.

Issue 9: the faces gained less than the whole photo. A face-only network has a far narrower prior
than the scene restorer; it works in the aligned face frame (the 5-point FFHQ template,
``face2scene.faces.align``) at the crop's native scale (about one crop pixel per photo pixel, so
the fine bands the face box is made of are not resampled away) and predicts a residual on top of
what the pipeline already has:

- inputs (9 channels): the degraded face, the scene restorer's face (what the paste step sees)
  and the mean of the person's aligned references (zeros without references), all in [0, 1];
- a degradation code (effective noise, blur in crop pixels, JPEG quality, whether references
  exist; :func:`degradation_code`) modulates every block (FiLM: per-channel scale and shift);
- output: the scene's face plus a predicted *luma* residual, the same in R, G and B (so Y changes
  by it and Cb, Cr not: the face keeps the scene's colour and tone, as the face-fix step does; the
  last convolution starts at zero, so an untrained network returns the scene's face unchanged).

Plain 3x3 convolutions on a pixel-unshuffled (2x) grid: fully convolutional, any crop size that
is even. ``config.json`` + ``diffusion_pytorch_model.safetensors`` in a folder, like the other
learned models (``ModelMixin.save_pretrained`` / ``from_pretrained``).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

CODE_DIM = 4


def degradation_code(noise: float, blur_px: float, jpeg_quality: Optional[float], has_refs: bool) -> np.ndarray:
    """The network's conditioning, roughly in 0..1: effective noise σ / 20, blur (crop px) / 2,
    JPEG strength (100 - q) / 70 (0 without JPEG), 1 when references were given."""
    j = 0.0 if jpeg_quality is None else (100.0 - float(jpeg_quality)) / 70.0
    return np.array([float(noise) / 20.0, float(blur_px) / 2.0, j, 1.0 if has_refs else 0.0], np.float32)


class _FiLMBlock(nn.Module):
    def __init__(self, ch: int, code_dim: int):
        super().__init__()
        self.c1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.c2 = nn.Conv2d(ch, ch, 3, padding=1)
        self.film = nn.Linear(code_dim, 2 * ch)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(code)[:, :, None, None].chunk(2, dim=1)
        h = F.silu(self.c1(x))
        h = h * (1 + scale) + shift
        return x + self.c2(h)


class FacePriorNet(ModelMixin, ConfigMixin):
    config_name = "config.json"

    @register_to_config
    def __init__(self, width: int = 48, blocks: int = 6, unshuffle: int = 2, code_dim: int = CODE_DIM,
                 code_hidden: int = 64, in_images: int = 3):
        super().__init__()
        if width < 1 or blocks < 1 or unshuffle < 1 or in_images not in (2, 3):
            raise ValueError(f"FacePriorNet: width, blocks, unshuffle >= 1 and in_images 2 or 3, got "
                             f"{width}, {blocks}, {unshuffle}, {in_images}")
        r2 = unshuffle * unshuffle
        self.head = nn.Conv2d(3 * in_images * r2, width, 3, padding=1)
        self.code_mlp = nn.Sequential(nn.Linear(code_dim, code_hidden), nn.SiLU(), nn.Linear(code_hidden, code_hidden))
        self.body = nn.ModuleList([_FiLMBlock(width, code_hidden) for _ in range(blocks)])
        self.tail = nn.Conv2d(width, r2, 3, padding=1)
        nn.init.zeros_(self.tail.weight)  # start as the identity: the scene's face
        nn.init.zeros_(self.tail.bias)

    @property
    def multiple(self) -> int:
        return int(self.config.unshuffle)

    def forward(self, degraded: torch.Tensor, scene: torch.Tensor, code: torch.Tensor,
                reference: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Bx3xHxW tensors in [0, 1] (H, W multiples of :attr:`multiple`), code BxCODE_DIM -> the
        refined face (Bx3xHxW, not clamped): ``scene`` + a luma residual."""
        if degraded.shape != scene.shape:
            raise ValueError(f"degraded {tuple(degraded.shape)} and scene {tuple(scene.shape)} differ")
        parts = [degraded, scene]
        if self.config.in_images == 3:
            parts.append(torch.zeros_like(scene) if reference is None else reference)
        r = self.config.unshuffle
        h = F.pixel_unshuffle(torch.cat(parts, 1) * 2 - 1, r)
        c = self.code_mlp(code.to(h.dtype))
        h = self.head(h)
        for b in self.body:
            h = b(h, c)
        return scene + F.pixel_shuffle(self.tail(F.silu(h)), r) * 0.5

    @torch.inference_mode()
    def refine(self, degraded: np.ndarray, scene: np.ndarray, code: np.ndarray,
               references: Sequence[np.ndarray] = ()) -> np.ndarray:
        """Aligned crops (HxWx3 uint8, the same geometry) -> the refined face (uint8). The mean of
        ``references`` (aligned crops of the same size) is the identity channel."""
        if degraded.ndim != 3 or degraded.shape[2] != 3 or degraded.shape != scene.shape:
            raise ValueError(f"expected two RGB crops of the same shape, got {degraded.shape} and {scene.shape}")
        if any(r.shape != degraded.shape for r in references):
            raise ValueError("aligned references must have the face crop's shape")
        dev = next(self.parameters()).device
        h, w = degraded.shape[:2]
        m = self.multiple
        ph, pw = (-h) % m, (-w) % m

        def t(a: np.ndarray) -> torch.Tensor:
            x = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32) / 255.0).permute(2, 0, 1)[None].to(dev)
            return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
        ref = t(np.mean([r.astype(np.float32) for r in references], 0)) if len(references) else None
        code_t = torch.as_tensor(np.asarray(code, np.float32)).reshape(1, -1).to(dev)
        y = self.forward(t(degraded), t(scene), code_t, ref)[0, :, :h, :w].clamp(0, 1)
        return np.rint(y.permute(1, 2, 0).cpu().numpy() * 255.0).astype(np.uint8)
