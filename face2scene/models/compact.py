"""CompactRestorer: a compact token-conditioned restorer (no generative prior, not a diffusion model).

A diffusers ``UNet2DConditionModel`` run once on the pixel-unshuffled image; it predicts a residual
that is added to the input. The degradation tokens from :class:`~face2scene.models.mapnet.MapNet`
reach every cross-attention layer (only cross-attention: there is no self-attention, so the cost is
linear in the number of pixels). GroupNorm is replaced by a per-pixel channel normalisation, which
makes the network local: tiled inference with overlap and Gaussian blending agrees with whole-image
inference up to the border effects of zero padding, and peak memory is bounded by the tile.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

from .imageops import pad_to_multiple, tiled_apply, to_tensor, to_uint8, wavelet_colour_fix


class PixelGroupNorm(nn.GroupNorm):
    """GroupNorm whose statistics are taken per pixel (over the channels of a group), not over the
    image: a local operation, so results do not depend on the tile. Same parameters as GroupNorm."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        xs = x.reshape(b, self.num_groups, c // self.num_groups, *x.shape[2:])
        mean = xs.mean(2, keepdim=True)
        var = xs.var(2, keepdim=True, unbiased=False)
        x = ((xs - mean) * torch.rsqrt(var + self.eps)).reshape(x.shape)
        if self.affine:
            shape = (1, c) + (1,) * (x.dim() - 2)
            x = x * self.weight.view(shape) + self.bias.view(shape)
        return x


def _swap_group_norms(module: nn.Module, groups: int) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.GroupNorm) and not isinstance(child, PixelGroupNorm):
            g = groups if child.num_channels % groups == 0 else 1
            setattr(module, name, PixelGroupNorm(g, child.num_channels, eps=child.eps, affine=child.affine))
        else:
            _swap_group_norms(child, groups)


class CompactRestorer(ModelMixin, ConfigMixin):
    config_name = "config.json"
    is_diffusion = False  # for reports and the UI: this model has no generative prior

    @register_to_config
    def __init__(self, unshuffle: int = 4, block_out_channels: Tuple[int, ...] = (48, 96, 144),
                 layers_per_block: int = 1, cross_attention_dim: int = 64, attention_head_dim: int = 8,
                 cross_attention_levels: int = 2, pixel_norm_groups: int = 1, norm_num_groups: int = 8):
        super().__init__()
        n = len(block_out_channels)
        down = ["DownBlock2D"] * (n - cross_attention_levels) + ["CrossAttnDownBlock2D"] * cross_attention_levels
        up = ["CrossAttnUpBlock2D"] * cross_attention_levels + ["UpBlock2D"] * (n - cross_attention_levels)
        c = 3 * unshuffle * unshuffle
        self.unet = UNet2DConditionModel(
            sample_size=64, in_channels=c, out_channels=c, down_block_types=tuple(down), up_block_types=tuple(up),
            block_out_channels=tuple(block_out_channels), layers_per_block=layers_per_block,
            cross_attention_dim=cross_attention_dim, attention_head_dim=attention_head_dim,
            only_cross_attention=True, norm_num_groups=norm_num_groups,
            # the default mid block always has self-attention (global: breaks tiling); this one
            # attends only to the tokens
            mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        )
        _swap_group_norms(self.unet, pixel_norm_groups)
        nn.init.zeros_(self.unet.conv_out.weight)  # start as the identity (residual output)
        nn.init.zeros_(self.unet.conv_out.bias)

    @property
    def multiple(self) -> int:
        """H and W of the model input must be multiples of this."""
        return self.config.unshuffle * 2 ** (len(self.config.block_out_channels) - 1)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """x: Bx3xHxW in [0, 1] (H, W multiples of :attr:`multiple`); tokens: B x T x cross_attention_dim."""
        if x.shape[-2] % self.multiple or x.shape[-1] % self.multiple:
            raise ValueError(f"input {tuple(x.shape[-2:])} must be a multiple of {self.multiple}; use restore()")
        if tokens.shape[0] != x.shape[0]:
            tokens = tokens.expand(x.shape[0], -1, -1)
        r = self.config.unshuffle
        h = F.pixel_unshuffle(x * 2 - 1, r)
        t = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        res = self.unet(h, t, encoder_hidden_states=tokens.to(x.dtype)).sample
        return x + F.pixel_shuffle(res, r) * 0.5

    @torch.no_grad()
    def restore_tensor(self, x: torch.Tensor, tokens: torch.Tensor, tile: int = 512, overlap: int = 64,
                       colour_fix: bool = False, cancel: Optional[Callable[[], None]] = None,
                       progress: Optional[Callable[[float], None]] = None) -> torch.Tensor:
        """Any-size 1x3xHxW in [0, 1] -> restored, same size. Padded (reflect) to the model multiple,
        tiled with Gaussian blending when larger than ``tile``."""
        xp, (h, w) = pad_to_multiple(x, self.multiple)
        y = tiled_apply(lambda t: self.forward(t, tokens), xp, tile=tile, overlap=overlap, align=self.multiple,
                        cancel=cancel, progress=progress)
        y = y[..., :h, :w]
        if colour_fix:
            y = wavelet_colour_fix(y, x)
        return y.clamp(0, 1)

    def restore(self, rgb: np.ndarray, tokens: torch.Tensor, upscale: int = 1, **kw) -> np.ndarray:
        """HxWx3 uint8 -> restored uint8 of size (H*upscale, W*upscale). Upscaling is bicubic first,
        then restoration on the upscaled grid (the model was trained on that grid)."""
        dev = next(self.parameters()).device
        x = to_tensor(rgb, dev)
        if upscale != 1:
            x = F.interpolate(x, scale_factor=upscale, mode="bicubic", align_corners=False).clamp(0, 1)
        return to_uint8(self.restore_tensor(x, tokens.to(dev), **kw))
