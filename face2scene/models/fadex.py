"""Learned FaDeX: a degradation encoder for (degraded face, restored face) pairs.

Input: the degraded crop, the restored crop and their difference (9 channels, both crops at the
photo's native pixel scale — never resized, or blur and noise change meaning). Output: a spatial
degradation feature map (for MapNet), a pooled, L2-normalised code (trained contrastively so that it
describes the degradation, not the content) and an explicit-parameter head (noise sigma, blur sigma,
JPEG quality, scale), in normalised units decoded by :meth:`FaDeXEncoder.decode_params`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput

# Normalisation of the explicit parameters (targets of the head are roughly in [0, 1]).
NOISE_MAX = 30.0  # sigma on the 0..255 scale
BLUR_MAX = 3.0  # Gaussian-equivalent sigma, pixels
JPEG_MIN = 30.0  # quality 30 -> 1, no JPEG (100) -> 0
SCALE_MIN = 0.25  # scale 0.25 -> 1, scale 1 -> 0 (log-scaled)


def params_to_targets(summary: Dict) -> List[float]:
    """Degradation summary (noise_sigma, blur_sigma, jpeg_quality|None, scale) -> 4 normalised targets."""
    q = summary.get("jpeg_quality")
    q = 100.0 if q is None else float(q)
    s = float(summary.get("scale", 1.0) or 1.0)
    return [
        float(summary.get("noise_sigma", 0.0)) / NOISE_MAX,
        float(summary.get("blur_sigma", 0.0)) / BLUR_MAX,
        (100.0 - min(max(q, JPEG_MIN), 100.0)) / (100.0 - JPEG_MIN),
        math.log(min(max(s, SCALE_MIN), 1.0)) / math.log(SCALE_MIN),
    ]


@dataclass
class FaDeXOutput(BaseOutput):
    feature_map: torch.Tensor  # B x C x H/8 x W/8
    code: torch.Tensor  # B x code_dim, L2-normalised
    params: torch.Tensor  # B x 4, normalised (see params_to_targets)


class _ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(F.leaky_relu(self.conv1(x), 0.1))


class FaDeXEncoder(ModelMixin, ConfigMixin):
    """Strided CNN: full-resolution stem (noise and JPEG live in the finest scale), three stride-2
    stages, a feature map at 1/8 resolution, masked average pooling, a code MLP and a parameter head."""

    config_name = "config.json"

    @register_to_config
    def __init__(self, channels: Tuple[int, ...] = (32, 64, 96, 128), code_dim: int = 128,
                 num_params: int = 4, blocks_per_stage: int = 1):
        super().__init__()
        self.stem = nn.Conv2d(9, channels[0], 3, padding=1)
        stages = [nn.Sequential(*[_ResBlock(channels[0]) for _ in range(blocks_per_stage)])]
        for cin, cout in zip(channels[:-1], channels[1:]):
            layers = [nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.LeakyReLU(0.1)]
            layers += [_ResBlock(cout) for _ in range(blocks_per_stage)]
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        c = channels[-1]
        self.code_mlp = nn.Sequential(nn.Linear(2 * c, 2 * c), nn.LeakyReLU(0.1), nn.Linear(2 * c, code_dim))
        self.param_head = nn.Sequential(nn.Linear(2 * c, c), nn.LeakyReLU(0.1), nn.Linear(c, num_params))

    @property
    def stride(self) -> int:
        return 2 ** (len(self.config.channels) - 1)

    @staticmethod
    def make_input(degraded: torch.Tensor, restored: torch.Tensor) -> torch.Tensor:
        """Both Bx3xHxW in [0, 1] -> Bx9xHxW (degraded, restored, amplified difference) in ~[-1, 1]."""
        if degraded.shape != restored.shape:
            raise ValueError(f"degraded {tuple(degraded.shape)} and restored {tuple(restored.shape)} crops differ in shape")
        return torch.cat([degraded * 2 - 1, restored * 2 - 1, (degraded - restored) * 4], dim=1)

    def forward(self, degraded: torch.Tensor, restored: torch.Tensor,
                mask: Optional[torch.Tensor] = None, return_dict: bool = True):
        """degraded, restored: Bx3xHxW in [0, 1] (H, W >= 32). mask: optional Bx1xHxW face-region weights
        for pooling (e.g. the aligned-face mask); default pools the whole crop."""
        if degraded.dim() != 4 or degraded.shape[1] != 3:
            raise ValueError(f"expected Bx3xHxW crops, got {tuple(degraded.shape)}")
        if min(degraded.shape[-2:]) < 32:
            raise ValueError(f"face crop too small for FaDeX: {tuple(degraded.shape[-2:])} (need >= 32 px)")
        x = F.leaky_relu(self.stem(self.make_input(degraded, restored)), 0.1)
        for stage in self.stages:
            x = stage(x)
        fmap = x
        if mask is None:
            w = torch.ones_like(fmap[:, :1])
        else:
            w = F.adaptive_avg_pool2d(mask.float(), fmap.shape[-2:]) + 1e-6
        mean = (fmap * w).sum((2, 3)) / w.sum((2, 3))
        std = (((fmap - mean[..., None, None]) ** 2 * w).sum((2, 3)) / w.sum((2, 3)) + 1e-6).sqrt()
        pooled = torch.cat([mean, std], dim=1)
        code = F.normalize(self.code_mlp(pooled), dim=1)
        params = self.param_head(pooled)
        if not return_dict:
            return fmap, code, params
        return FaDeXOutput(feature_map=fmap, code=code, params=params)

    @staticmethod
    def decode_params(params: torch.Tensor) -> List[Dict]:
        """Normalised head output (Bx4) -> list of {noise_sigma, blur_sigma, jpeg_quality, scale}."""
        out = []
        for row in params.detach().float().cpu().clamp(0, 1.2).tolist():
            q = 100.0 - row[2] * (100.0 - JPEG_MIN)
            out.append({
                "noise_sigma": row[0] * NOISE_MAX,
                "blur_sigma": row[1] * BLUR_MAX,
                "jpeg_quality": None if q > 97.0 else q,
                "scale": float(math.exp(min(row[3], 1.0) * math.log(SCALE_MIN))),
            })
        return out


def fuse_feature_maps(maps: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    """Fuse several faces' feature maps (each 1xCxhxw, possibly different sizes) into one, weighted
    (e.g. by face size x confidence). Maps are resized to the largest grid before averaging."""
    if not maps:
        raise ValueError("no feature maps to fuse")
    if len(maps) != len(weights):
        raise ValueError("one weight per feature map")
    w = torch.tensor([max(float(v), 0.0) for v in weights], dtype=torch.float32)
    if float(w.sum()) <= 0:
        w = torch.ones_like(w)
    w = w / w.sum()
    size = max((m.shape[-2:] for m in maps), key=lambda s: s[0] * s[1])
    acc = 0
    for m, wi in zip(maps, w):
        if m.shape[-2:] != size:
            m = F.interpolate(m, size=size, mode="bilinear", align_corners=False)
        acc = acc + m * float(wi)
    return acc
