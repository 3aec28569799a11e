"""Tensor helpers shared by the learned restorers: conversion, padding, Gaussian-blended tiling and
the wavelet colour fix (low frequencies from the input, high frequencies from the restorer)."""
from __future__ import annotations

from typing import Callable, Iterator, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F


def to_tensor(rgb: np.ndarray, device="cpu") -> torch.Tensor:
    """HxWx3 uint8 -> 1x3xHxW float32 in [0, 1]."""
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB array, got shape {getattr(rgb, 'shape', None)}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGB, got {rgb.dtype}")
    arr = np.ascontiguousarray(rgb)
    if not arr.flags.writeable:  # e.g. np.asarray of a PIL image: torch wants writable memory
        arr = arr.copy()
    return torch.from_numpy(arr).to(device).permute(2, 0, 1)[None].float() / 255.0


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """1x3xHxW float in [0, 1] -> HxWx3 uint8 (rounded, clipped)."""
    return (x[0].detach().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def pad_to_multiple(x: torch.Tensor, multiple: int, mode: str = "reflect") -> Tuple[torch.Tensor, Tuple[int, int]]:
    """Pad bottom/right so H and W are multiples of ``multiple``; returns the padded tensor and (H, W)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        # reflect needs pad < size; fall back to replicate for tiny inputs
        m = mode if (ph < h and pw < w) else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=m)
    return x, (h, w)


def gaussian_weight(h: int, w: int, sigma_frac: float = 0.15, device="cpu") -> torch.Tensor:
    """A separable Gaussian bump (1x1xhxw), peak 1 at the tile centre, never exactly zero."""
    ys = torch.arange(h, device=device, dtype=torch.float32) - (h - 1) / 2
    xs = torch.arange(w, device=device, dtype=torch.float32) - (w - 1) / 2
    gy = torch.exp(-0.5 * (ys / (sigma_frac * h)) ** 2)
    gx = torch.exp(-0.5 * (xs / (sigma_frac * w)) ** 2)
    return (gy[:, None] * gx[None, :]).clamp_min(1e-6)[None, None]


def tile_starts(length: int, tile: int, overlap: int, align: int) -> list:
    """Start offsets covering [0, length) with tiles of ``tile`` overlapping by >= ``overlap``;
    every start is a multiple of ``align`` (keeps down/up-sampling grids identical across tiles)."""
    if tile >= length:
        return [0]
    stride = max(align, ((tile - overlap) // align) * align)
    starts = list(range(0, length - tile + 1, stride))
    last = ((length - tile) // align) * align
    if starts[-1] != last:
        starts.append(last)
    if starts[-1] + tile < length:  # length not a multiple of align: caller pads first
        raise ValueError("length must be padded to a multiple of align before tiling")
    return starts


def even_tiles(length: int, tile: int, overlap: int, align: int) -> Tuple[int, list]:
    """(tile length, starts): as many tiles as :func:`tile_starts` needs, each shrunk to the
    shortest aligned length that still covers ``length`` with overlaps of >= ``overlap``.
    Fixed-size tiles waste work where the last one mostly repeats its neighbour: 1000 px with
    512 px tiles and 128 px overlap are 3 tiles of 512 (1536 px of work), here 3 of 424 (1272)."""
    if tile >= length:
        return length, [0]
    n = len(tile_starts(length, tile, overlap, align))
    t = -(-(length + (n - 1) * overlap) // (n * align)) * align
    while True:
        step = max(align, ((t - overlap) // align) * align)
        if (n - 1) * step + t >= length or t >= tile:
            break
        t += align
    if t >= tile:
        return tile, tile_starts(length, tile, overlap, align)
    return t, [i * step for i in range(n - 1)] + [length - t]


def iter_tiles(h: int, w: int, tile: int, overlap: int, align: int) -> Iterator[Tuple[int, int, int, int]]:
    th, ys = even_tiles(h, tile, overlap, align)
    tw, xs = even_tiles(w, tile, overlap, align)
    for y in ys:
        for x in xs:
            yield y, x, th, tw


def tiled_apply(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: int, overlap: int,
                align: int, scale: int = 1, out_channels: int | None = None,
                cancel: Callable[[], None] | None = None,
                progress: Callable[[float], None] | None = None) -> torch.Tensor:
    """Apply ``fn`` tile by tile on a padded (multiple of ``align``) input and blend the outputs with
    Gaussian weights. ``scale`` is the output/input size ratio of ``fn``. Memory is bounded by the tile
    (plus the full-size output and weight accumulators)."""
    b, c, h, w = x.shape
    if h % align or w % align:
        raise ValueError(f"input {h}x{w} must be padded to a multiple of {align}")
    tile = max(align, (tile // align) * align)
    overlap = min(max(0, overlap), tile // 2)  # an overlap as large as the tile would never advance
    if tile >= h and tile >= w:
        return fn(x)
    oc = out_channels or c
    out = torch.zeros(b, oc, h * scale, w * scale, device=x.device, dtype=torch.float32)
    acc = torch.zeros(1, 1, h * scale, w * scale, device=x.device, dtype=torch.float32)
    tiles = list(iter_tiles(h, w, tile, overlap, align))
    for i, (y0, x0, th, tw) in enumerate(tiles):
        if cancel is not None:
            cancel()
        y = fn(x[:, :, y0:y0 + th, x0:x0 + tw]).float()
        wgt = gaussian_weight(th * scale, tw * scale, device=x.device)
        sl = (slice(None), slice(None), slice(y0 * scale, (y0 + th) * scale), slice(x0 * scale, (x0 + tw) * scale))
        out[sl] += y * wgt
        acc[sl] += wgt
        if progress is not None:
            progress((i + 1) / len(tiles))
    return out / acc


def _wavelet_blur(x: torch.Tensor, radius: int) -> torch.Tensor:
    k = torch.tensor([[1 / 16, 1 / 8, 1 / 16], [1 / 8, 1 / 4, 1 / 8], [1 / 16, 1 / 8, 1 / 16]],
                     dtype=x.dtype, device=x.device)
    k = k[None, None].repeat(x.shape[1], 1, 1, 1)
    xp = F.pad(x, (radius,) * 4, mode="replicate")
    return F.conv2d(xp, k, groups=x.shape[1], dilation=radius)


def wavelet_decompose(x: torch.Tensor, levels: int = 5) -> Tuple[torch.Tensor, torch.Tensor]:
    """Split into (high frequencies, low frequencies) with an a-trous wavelet of ``levels`` levels."""
    high = torch.zeros_like(x)
    low = x
    for i in range(levels):
        blurred = _wavelet_blur(low, 2 ** i)
        high = high + (low - blurred)
        low = blurred
    return high, low


def wavelet_colour_fix(restored: torch.Tensor, source: torch.Tensor, levels: int = 5) -> torch.Tensor:
    """Keep the restored image's detail and take the colour (lowest frequencies) from ``source``."""
    if source.shape[-2:] != restored.shape[-2:]:
        source = F.interpolate(source, size=restored.shape[-2:], mode="bicubic", align_corners=False)
    high, _ = wavelet_decompose(restored, levels)
    _, low = wavelet_decompose(source, levels)
    return high + low


def to_batch(arrs: Sequence[np.ndarray]) -> torch.Tensor:
    """A list of HxWx3 uint8 arrays (same size) -> Nx3xHxW float tensor in 0..1."""
    x = np.stack(arrs).astype(np.float32) / 255.0
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
