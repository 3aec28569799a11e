"""MapNet: FaDeX feature map -> multi-scale degradation tokens for cross-attention.

As in the paper's figure: an overlapping patch embedding (3x3 conv, stride 2) of the feature map, one
attention block, then global average pooling at 1x1, 2x2 and 4x4, each with its own projector ->
1 + 4 + 16 = 21 degradation tokens, concatenated with the text token(s). When no face is usable, a
learned null code (21 tokens) takes their place — the "blind" path.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin


class _AttentionBlock(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class MapNet(ModelMixin, ConfigMixin):
    config_name = "config.json"

    @register_to_config
    def __init__(self, in_channels: int = 128, dim: int = 128, num_heads: int = 4, token_dim: int = 64,
                 pool_sizes: Tuple[int, ...] = (1, 2, 4), num_text_tokens: int = 1):
        super().__init__()
        self.patch_embed = nn.Conv2d(in_channels, dim, 3, stride=2, padding=1)
        self.norm = nn.LayerNorm(dim)
        self.block = _AttentionBlock(dim, num_heads)
        self.projectors = nn.ModuleList(
            nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, token_dim)) for _ in pool_sizes)
        self.pos = nn.ParameterList(nn.Parameter(torch.zeros(s * s, token_dim)) for s in pool_sizes)
        n = self.num_degradation_tokens
        self.null_tokens = nn.Parameter(torch.randn(n, token_dim) * 0.02)
        # learned stand-in for the text token; a precomputed prompt embedding replaces it when given
        self.text_tokens = nn.Parameter(torch.randn(num_text_tokens, token_dim) * 0.02) if num_text_tokens else None

    @property
    def num_degradation_tokens(self) -> int:
        return sum(s * s for s in self.config.pool_sizes)

    def degradation_tokens(self, feature_map: torch.Tensor) -> torch.Tensor:
        """BxCxhxw -> Bx21xtoken_dim."""
        if feature_map.dim() != 4 or feature_map.shape[1] != self.config.in_channels:
            raise ValueError(f"MapNet expects Bx{self.config.in_channels}xhxw feature maps, got {tuple(feature_map.shape)}")
        x = self.patch_embed(feature_map)
        b, c, h, w = x.shape
        t = self.norm(x.flatten(2).transpose(1, 2))
        t = self.block(t)
        x = t.transpose(1, 2).reshape(b, c, h, w)
        toks = []
        for s, proj, pos in zip(self.config.pool_sizes, self.projectors, self.pos):
            p = F.adaptive_avg_pool2d(x, s).flatten(2).transpose(1, 2)  # B x s*s x dim
            toks.append(proj(p) + pos)
        return torch.cat(toks, dim=1)

    def forward(self, feature_map: Optional[torch.Tensor] = None, text_embeds: Optional[torch.Tensor] = None,
                batch_size: int = 1, null_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Tokens for the restorer's cross-attention: [degradation tokens (21), text tokens].

        feature_map=None -> the learned null code ("no face"). null_mask (B bool) replaces chosen
        samples' tokens by the null code (used in training so the blind path is learned too).
        text_embeds: a precomputed prompt embedding (Bx T x token_dim or T x token_dim); default the
        learned text token.
        """
        if feature_map is None:
            deg = self.null_tokens[None].expand(batch_size, -1, -1)
        else:
            deg = self.degradation_tokens(feature_map)
            batch_size = deg.shape[0]
            if null_mask is not None:
                deg = torch.where(null_mask.view(-1, 1, 1).to(deg.device), self.null_tokens[None].to(deg.dtype), deg)
        if text_embeds is None:
            if self.text_tokens is None:
                return deg
            text = self.text_tokens[None].expand(batch_size, -1, -1)
        else:
            text = text_embeds if text_embeds.dim() == 3 else text_embeds[None]
            text = text.to(deg.dtype).expand(batch_size, -1, -1)
        return torch.cat([deg, text], dim=1)
