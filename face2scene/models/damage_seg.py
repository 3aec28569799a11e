"""DamageSegNet: a tiny U-Net that tells true print damage from real thin content.

Input: per-pixel maps of a photo (luma, local contrast, chroma, the bright and dark top-hats and
the classical detector's candidate and result masks; built by ``face2scene.damage.seg_inputs``).
Output: one logit per pixel, "this pixel is damage (scratch, hair, crack, dust)". Four levels
(full, 1/2, 1/4, 1/8 resolution), plain 3x3 convolutions and ReLU, bilinear upsampling with skip
connections: ~90 k parameters, a receptive field of ~80 px (enough to see whether a thin line
crosses the scene like a scratch or belongs to an object like a rope or a chain).

Stored as a folder: ``config.json`` (the constructor's arguments) + ``model.safetensors``.
Plain torch (no diffusers), so loading it costs milliseconds.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True))


class DamageSegNet(nn.Module):
    def __init__(self, in_channels: int = 9, widths: Sequence[int] = (16, 24, 32, 40)):
        super().__init__()
        widths = [int(w) for w in widths]
        if len(widths) < 2 or min(widths) < 1 or in_channels < 1:
            raise ValueError(f"DamageSegNet needs >= 2 positive widths and >= 1 input channel, got {widths}, {in_channels}")
        self.config = {"in_channels": int(in_channels), "widths": widths}
        self.enc = nn.ModuleList([_block(in_channels if i == 0 else widths[i - 1], w) for i, w in enumerate(widths)])
        self.dec = nn.ModuleList([nn.Sequential(nn.Conv2d(widths[i + 1] + widths[i], widths[i], 3, padding=1),
                                                nn.ReLU(inplace=True))
                                  for i in reversed(range(len(widths) - 1))])
        self.head = nn.Conv2d(widths[0], 1, 1)

    @property
    def multiple(self) -> int:
        """Height and width of the input must be multiples of this."""
        return 2 ** (len(self.enc) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: BxCxHxW (H, W multiples of :attr:`multiple`) -> Bx1xHxW logits."""
        skips = []
        for i, enc in enumerate(self.enc):
            if i:
                x = F.max_pool2d(x, 2)
            x = enc(x)
            skips.append(x)
        for dec, skip in zip(self.dec, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = dec(torch.cat([x, skip], 1))
        return self.head(x)

    def save_folder(self, folder: str | Path, half: bool = False) -> None:
        """``half``: store float16 (half the size; loaded back as float32)."""
        from safetensors.torch import save_file
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CONFIG_NAME).write_text(json.dumps(self.config, indent=2) + "\n")
        dt = torch.float16 if half else torch.float32
        save_file({k: v.detach().cpu().to(dt).contiguous() for k, v in self.state_dict().items()}, str(folder / WEIGHTS_NAME))

    @classmethod
    def from_folder(cls, folder: str | Path) -> "DamageSegNet":
        """Load ``config.json`` + ``model.safetensors``; FileNotFoundError names what is missing,
        ValueError says when the weights do not fit the config."""
        from safetensors.torch import load_file
        folder = Path(folder)
        missing = [str(folder / n) for n in (CONFIG_NAME, WEIGHTS_NAME) if not (folder / n).is_file()]
        if missing:
            raise FileNotFoundError("damage-segmentation weights missing: " + ", ".join(missing))
        cfg = json.loads((folder / CONFIG_NAME).read_text())
        net = cls(**cfg)
        try:
            net.load_state_dict({k: v.float() for k, v in load_file(str(folder / WEIGHTS_NAME)).items()})
        except RuntimeError as e:
            raise ValueError(f"damage-segmentation weights in {folder} do not fit their config: {e}") from None
        return net.eval()
