"""RRDBNet: the ESRGAN / Real-ESRGAN generator (Wang et al. 2018, 2021) in the diffusers style.

Parameter names are BasicSR's (``conv_first``, ``body.{i}.rdb{1,2,3}.conv{1..5}``, ``conv_body``,
``conv_up1``, ``conv_up2``, ``conv_hr``, ``conv_last``), so the official ``params_ema`` state dict
loads unchanged. Scale 4 works on the input grid; scales 2 and 1 pixel-unshuffle the input first
(by 2 and 4), as BasicSR does.

Optional conditioning (``cond_dim``): a linear map from a code vector (e.g. the mean of MapNet's
degradation tokens) to a per-RRDB channel scale and shift, applied to each RRDB's residual before
its 0.2 scaling. It is zero-initialised, so a conditioned network with converted weights
reproduces Real-ESRGAN exactly until it is trained.

:func:`tiled_context_apply` runs a fully convolutional network tile by tile: every tile sees
``context`` pixels of its surroundings (cropped from its output) and neighbouring cores are
blended with linear ramps across ``overlap``, so tiled and whole-image inference agree up to the
receptive field that the context leaves out.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

from .imageops import tile_starts

__all__ = ["RRDBNet", "ResidualDenseBlock", "RRDB", "tiled_context_apply", "conv_names"]


class ResidualDenseBlock(nn.Module):
    """Five 3x3 convs, densely connected; LeakyReLU(0.2) after the first four; residual x0.2."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32):
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = F.leaky_relu(self.conv1(x), 0.2)
        x2 = F.leaky_relu(self.conv2(torch.cat((x, x1), 1)), 0.2)
        x3 = F.leaky_relu(self.conv3(torch.cat((x, x1, x2), 1)), 0.2)
        x4 = F.leaky_relu(self.conv4(torch.cat((x, x1, x2, x3), 1)), 0.2)
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x


class RRDB(nn.Module):
    """Residual-in-residual dense block; ``mod`` (Bx2xC: scale, shift) modulates its residual."""

    def __init__(self, num_feat: int, num_grow_ch: int = 32):
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor, mod: Optional[torch.Tensor] = None) -> torch.Tensor:
        out = self.rdb3(self.rdb2(self.rdb1(x)))
        if mod is not None:
            out = out * (1 + mod[:, 0, :, None, None]) + mod[:, 1, :, None, None]
        return out * 0.2 + x


def conv_names(num_block: int) -> list:
    """The RRDBNet convolutions in graph order (the order of the ncnn export and of the paper)."""
    names = ["conv_first"]
    for i in range(num_block):
        for j in (1, 2, 3):
            names += [f"body.{i}.rdb{j}.conv{k}" for k in range(1, 6)]
    return names + ["conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"]


class RRDBNet(ModelMixin, ConfigMixin):
    """x: Bx{num_in_ch}xHxW in [0, 1] -> Bx{num_out_ch}x(H*scale)x(W*scale) (not clamped)."""

    config_name = "config.json"
    is_diffusion = False  # a GAN-trained feed-forward network: one pass, no sampling

    @register_to_config
    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_block: int = 23,
                 num_grow_ch: int = 32, scale: int = 4, cond_dim: Optional[int] = None):
        super().__init__()
        if scale not in (1, 2, 4):
            raise ValueError(f"RRDBNet scale must be 1, 2 or 4, got {scale}")
        in_ch = num_in_ch * {4: 1, 2: 4, 1: 16}[scale]
        self.conv_first = nn.Conv2d(in_ch, num_feat, 3, 1, 1)
        self.body = nn.ModuleList(RRDB(num_feat, num_grow_ch) for _ in range(num_block))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.modulation = None
        if cond_dim:
            self.modulation = nn.Linear(cond_dim, num_block * 2 * num_feat)
            nn.init.zeros_(self.modulation.weight)  # starts as the unconditioned network
            nn.init.zeros_(self.modulation.bias)

    @property
    def multiple(self) -> int:
        """H and W of the input must be multiples of this (pixel-unshuffle of scales 2 and 1)."""
        return {4: 1, 2: 2, 1: 4}[self.config.scale]

    def with_conditioning(self, cond_dim: int) -> "RRDBNet":
        """A copy of this (unconditioned) network with zero-initialised conditioning of ``cond_dim``:
        the same outputs until the modulation is trained (e.g. Real-ESRGAN as the starting point)."""
        if self.modulation is not None:
            raise ValueError("this network is already conditioned")
        cfg = {k: v for k, v in self.config.items() if not k.startswith("_")}
        model = type(self)(**{**cfg, "cond_dim": cond_dim})
        missing, unexpected = model.load_state_dict(self.state_dict(), strict=False)
        if set(missing) != {"modulation.weight", "modulation.bias"} or unexpected:
            raise RuntimeError(f"unexpected state dict difference: {missing}, {unexpected}")
        return model.to(next(self.parameters()).device).train(self.training)

    def modulations(self, cond: Optional[torch.Tensor], batch: int) -> list:
        """cond (B x cond_dim, or B x T x cond_dim tokens: averaged) -> one Bx2xC per RRDB (or Nones)."""
        n = self.config.num_block
        if cond is None or self.modulation is None:
            return [None] * n
        if cond.dim() == 3:
            cond = cond.mean(1)
        if cond.shape[0] != batch:
            cond = cond.expand(batch, -1)
        m = self.modulation(cond.to(self.modulation.weight.dtype))
        return list(m.view(batch, n, 2, self.config.num_feat).unbind(1))

    def forward(self, x: torch.Tensor, cond: Optional[torch.Tensor] = None) -> torch.Tensor:
        s = self.config.scale
        if s != 4:
            if x.shape[-2] % self.multiple or x.shape[-1] % self.multiple:
                raise ValueError(f"input {tuple(x.shape[-2:])} must be a multiple of {self.multiple}")
            x = F.pixel_unshuffle(x, 4 // s)
        feat = self.conv_first(x)
        body = feat
        for block, mod in zip(self.body, self.modulations(cond, x.shape[0])):
            body = block(body, mod)
        feat = feat + self.conv_body(body)
        feat = F.leaky_relu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        feat = F.leaky_relu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))


def _ramp(n: int, ramp: int, device) -> torch.Tensor:
    """1 in the middle, rising linearly over ``ramp`` samples at both ends (never zero)."""
    i = torch.arange(n, device=device, dtype=torch.float32)
    if ramp <= 0:
        return torch.ones(n, device=device)
    return torch.minimum((i + 0.5) / ramp, (n - i - 0.5) / ramp).clamp(1e-3, 1.0)


def tiled_context_apply(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, scale: int,
                        tile: int, overlap: int, context: int, align: int = 1, out_channels: int = 3,
                        cancel: Optional[Callable[[], None]] = None,
                        progress: Optional[Callable[[int, int], None]] = None) -> torch.Tensor:
    """Apply ``fn`` (output ``scale`` x the input size; ``scale`` may be fractional only as 1/k for
    an integer k dividing ``align``) tile by tile.

    Tiles of ``tile`` input pixels start every ``tile - overlap`` (multiples of ``align``); each
    runs with up to ``context`` extra pixels on every side (clipped at the image), whose output is
    cropped off; the cores are blended with linear ramps over the overlap and normalised, so every
    output pixel is a convex combination of tile outputs. ``cancel()`` runs before each tile,
    ``progress(done, total)`` after each. The output is float32 on x's device.
    """
    b, _, h, w = x.shape
    if h % align or w % align:
        raise ValueError(f"input {h}x{w} must be padded to a multiple of {align}")
    tile = max(align, (tile // align) * align)
    overlap = min(max(0, overlap), tile // 2)
    context = -(-max(0, context) // align) * align

    def out_len(n: int) -> int:
        v = n * scale
        if abs(v - round(v)) > 1e-6:
            raise ValueError(f"scale {scale} does not map {n} input pixels to whole output pixels")
        return int(round(v))

    if tile >= h and tile >= w:
        if cancel is not None:
            cancel()
        y = fn(x).float()
        if progress is not None:
            progress(1, 1)
        return y
    ys, xs = tile_starts(h, tile, overlap, align), tile_starts(w, tile, overlap, align)
    out = torch.zeros(b, out_channels, out_len(h), out_len(w), device=x.device, dtype=torch.float32)
    acc = torch.zeros(1, 1, out_len(h), out_len(w), device=x.device, dtype=torch.float32)
    total, done = len(ys) * len(xs), 0
    for y0 in ys:
        th = min(tile, h)
        for x0 in xs:
            tw = min(tile, w)
            if cancel is not None:
                cancel()
            cy0, cx0 = max(0, y0 - context), max(0, x0 - context)
            cy1, cx1 = min(h, y0 + th + context), min(w, x0 + tw + context)
            y = fn(x[:, :, cy0:cy1, cx0:cx1]).float()
            oy, ox = out_len(y0 - cy0), out_len(x0 - cx0)
            oh, ow = out_len(th), out_len(tw)
            y = y[:, :, oy:oy + oh, ox:ox + ow]
            r = out_len(overlap)
            wgt = (_ramp(oh, r, x.device)[:, None] * _ramp(ow, r, x.device)[None, :])[None, None]
            sl = (slice(None), slice(None), slice(out_len(y0), out_len(y0) + oh),
                  slice(out_len(x0), out_len(x0) + ow))
            out[sl] += y * wgt
            acc[sl] += wgt
            done += 1
            if progress is not None:
                progress(done, total)
    return out / acc
