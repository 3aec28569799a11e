"""CompactRestorer: a compact token-conditioned restorer (no generative prior, not a diffusion model).

A diffusers ``UNet2DConditionModel`` run once on the pixel-unshuffled image; it predicts a residual
that is added to the input. The degradation tokens from :class:`~face2scene.models.mapnet.MapNet`
reach every cross-attention layer (only cross-attention: there is no self-attention, so the cost is
linear in the number of pixels).

Two options (both used by the shipped model):

- ``guided``: the network also sees a *base* restoration of the same pixels (the classical
  restorer run with the pipeline's explicit estimate) and predicts a residual on top of it, so it
  starts where the classical restorer ends and learns what NLM + Wiener cannot do (JPEG blocking,
  resampling, texture the denoiser flattened). Input: degraded and base (6 channels).
- ``global_condition``: the mean of the tokens is also projected into the UNet's embedding, which
  modulates every ResNet block (scale and shift) — the compact counterpart of S3Diff's per-block
  modulation, driven by the same tokens.

GroupNorm is replaced by a per-pixel channel normalisation, which makes the network local: tiled
inference with overlap and Gaussian blending agrees with whole-image inference up to the border
effects of zero padding, and activation memory is bounded by the tile.
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
        if x.dim() == 4:  # images: normalise the channels-last view (one fast layer_norm pass)
            return self._forward_channels_last(x)
        b, c = x.shape[:2]
        xs = x.reshape(b, self.num_groups, c // self.num_groups, *x.shape[2:])
        mean = xs.mean(2, keepdim=True)
        var = xs.var(2, keepdim=True, unbiased=False)
        x = ((xs - mean) * torch.rsqrt(var + self.eps)).reshape(x.shape)
        if self.affine:
            shape = (1, c) + (1,) * (x.dim() - 2)
            x = x * self.weight.view(shape) + self.bias.view(shape)
        return x


    def _forward_channels_last(self, x: torch.Tensor) -> torch.Tensor:
        """The same normalisation as :meth:`forward`'s general path, as ``layer_norm`` over the last
        dimension of the NHWC view: no strided reduction over the channels (5-13x faster on the
        CPU), and the result is NCHW in channels-last memory, which the next convolution prefers."""
        b, c, h, w = x.shape
        g = self.num_groups
        xl = x.permute(0, 2, 3, 1)
        if g == 1:
            y = F.layer_norm(xl, (c,), self.weight, self.bias, self.eps)
        else:
            y = F.layer_norm(xl.reshape(b, h, w, g, c // g), (c // g,), eps=self.eps).reshape(b, h, w, c)
            if self.affine:
                y = torch.addcmul(self.bias, y, self.weight)
        return y.permute(0, 3, 1, 2)


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
                 cross_attention_levels: int = 2, pixel_norm_groups: int = 1, norm_num_groups: int = 8,
                 guided: bool = False, global_condition: bool = False):
        super().__init__()
        n = len(block_out_channels)
        down = ["DownBlock2D"] * (n - cross_attention_levels) + ["CrossAttnDownBlock2D"] * cross_attention_levels
        up = ["CrossAttnUpBlock2D"] * cross_attention_levels + ["UpBlock2D"] * (n - cross_attention_levels)
        c = 3 * unshuffle * unshuffle
        extra = {}
        if global_condition:
            extra = {"class_embed_type": "projection", "projection_class_embeddings_input_dim": cross_attention_dim,
                     "resnet_time_scale_shift": "scale_shift"}
        self.unet = UNet2DConditionModel(
            sample_size=64, in_channels=2 * c if guided else c, out_channels=c, **extra,
            down_block_types=tuple(down), up_block_types=tuple(up),
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

    @staticmethod
    def _check_base(x: torch.Tensor, base: Optional[torch.Tensor]) -> None:
        if base is None or base.shape != x.shape:
            raise ValueError("this restorer is guided: pass the base restoration (same shape as the input)")

    def forward(self, x: torch.Tensor, tokens: torch.Tensor, base: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x: Bx3xHxW in [0, 1] (H, W multiples of :attr:`multiple`); tokens: B x T x cross_attention_dim;
        base: Bx3xHxW base restoration (required when the model is ``guided``, else ignored)."""
        if x.shape[-2] % self.multiple or x.shape[-1] % self.multiple:
            raise ValueError(f"input {tuple(x.shape[-2:])} must be a multiple of {self.multiple}; use restore()")
        if tokens.shape[0] != x.shape[0]:
            tokens = tokens.expand(x.shape[0], -1, -1)
        tokens = tokens.to(x.dtype)
        r = self.config.unshuffle
        h = x * 2 - 1
        if self.config.guided:
            self._check_base(x, base)
            h = torch.cat([h, base * 2 - 1], dim=1)
        h = F.pixel_unshuffle(h, r)
        t = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        cls = tokens.mean(1) if self.config.global_condition else None
        res = self.unet(h, t, encoder_hidden_states=tokens, class_labels=cls).sample
        return (base if self.config.guided else x) + F.pixel_shuffle(res, r) * 0.5

    def _channels_last(self) -> None:
        """Convolution weights in channels-last memory, once: with channels-last activations (which
        :class:`PixelGroupNorm` also returns) oneDNN runs the convolutions without reordering
        (same results to float rounding; 15 % less CPU time for the shipped model)."""
        if not getattr(self, "_is_channels_last", False):
            # never under inference mode: parameters converted there become inference tensors,
            # and a model that is still being trained (a probe restore between steps) then fails
            with torch.inference_mode(False):
                self.to(memory_format=torch.channels_last)
            self._is_channels_last = True

    @torch.inference_mode()
    def restore_tensor(self, x: torch.Tensor, tokens: torch.Tensor, tile: int = 512, overlap: int = 64,
                       colour_fix: bool = False, cancel: Optional[Callable[[], None]] = None,
                       progress: Optional[Callable[[float], None]] = None,
                       base: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Any-size 1x3xHxW in [0, 1] -> restored, same size. Padded (reflect) to the model multiple,
        tiled with Gaussian blending when larger than ``tile``. ``base``: the base restoration
        (guided models)."""
        self._channels_last()
        cl = lambda t: t.contiguous(memory_format=torch.channels_last)  # noqa: E731
        if self.config.guided:
            self._check_base(x, base)
            xb, (h, w) = pad_to_multiple(torch.cat([x, base], 1), self.multiple)
            y = tiled_apply(lambda t: self.forward(cl(t[:, :3]), tokens, cl(t[:, 3:])), xb, tile=tile,
                            overlap=overlap, align=self.multiple, out_channels=3, cancel=cancel, progress=progress)
        else:
            xp, (h, w) = pad_to_multiple(x, self.multiple)
            y = tiled_apply(lambda t: self.forward(cl(t), tokens), xp, tile=tile, overlap=overlap,
                            align=self.multiple, cancel=cancel, progress=progress)
        y = y[..., :h, :w]
        if colour_fix:
            y = wavelet_colour_fix(y, x)
        return y.clamp(0, 1)

    def restore(self, rgb: np.ndarray, tokens: torch.Tensor, upscale: int = 1,
                base: Optional[np.ndarray] = None, **kw) -> np.ndarray:
        """HxWx3 uint8 -> restored uint8 of size (H*upscale, W*upscale). Upscaling is bicubic first,
        then restoration on the upscaled grid (the model was trained on that grid). ``base``: the
        base restoration (guided models), uint8 at the output size."""
        dev = next(self.parameters()).device
        x = to_tensor(rgb, dev)
        if upscale != 1:
            x = F.interpolate(x, scale_factor=upscale, mode="bicubic", align_corners=False).clamp(0, 1)
        b = to_tensor(base, dev) if base is not None else None
        return to_uint8(self.restore_tensor(x, tokens.to(dev), base=b, **kw))
