"""SD-Turbo (the paper's one-step diffusion restorer) as a backend: folder checks with messages
that list every missing file, loading, and the backend behind the same interface as the compact one.

    --restorer sd-turbo --weights DIR     DIR/sd-turbo/ (a diffusers folder such as stabilityai/sd-turbo)
                                          DIR/adapter/  (ours: adapter_config.json, prompt_embeds,
                                                         fadex/, mapnet/, lora.safetensors)
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..errors import WeightsError
from ..estimate.learned import DegradationCode, fadex_feature_map
from ..models.imageops import to_tensor
from ..models.sd_turbo import AdapterMismatch, SDTurboRestorer, weights_file


class AdapterError(WeightsError):
    """Missing or mismatched files in the SD-Turbo or adapter folder."""


def check_sd_turbo_folder(folder: Path) -> None:
    folder = Path(folder)
    missing = []
    for sub in ("unet", "vae"):
        if not (folder / sub / "config.json").is_file():
            missing.append(str(folder / sub / "config.json"))
        if weights_file(folder / sub) is None:
            missing.append(str(folder / sub / "diffusion_pytorch_model.safetensors") + " (or .fp16.safetensors)")
    if not (folder / "scheduler" / "scheduler_config.json").is_file():
        missing.append(str(folder / "scheduler" / "scheduler_config.json"))
    if missing:
        raise AdapterError(f"SD-Turbo folder {folder} is incomplete (a diffusers folder such as "
                           f"stabilityai/sd-turbo); missing:\n  " + "\n  ".join(missing))


def check_adapter_folder(folder: Path) -> None:
    folder = Path(folder)
    need = ["adapter_config.json", "prompt_embeds.safetensors", "lora.safetensors"]
    need += [f"{c}/{f}" for c in ("fadex", "mapnet") for f in ("config.json", "diffusion_pytorch_model.safetensors")]
    missing = [str(folder / n) for n in need if not (folder / n).is_file()]
    if missing:
        raise AdapterError(f"Face2Scene adapter folder {folder} is incomplete; missing:\n  " + "\n  ".join(missing))


def check_folders(sd_turbo_dir: Path, adapter_dir: Path) -> None:
    """Both folders at once: one AdapterError that lists every missing file of either."""
    problems = []
    for check, folder in ((check_sd_turbo_folder, sd_turbo_dir), (check_adapter_folder, adapter_dir)):
        try:
            check(folder)
        except AdapterError as e:
            problems.append(str(e))
    if problems:
        raise AdapterError("\n".join(problems))


def load_sd_turbo(weights: str | Path, adapter: Optional[str | Path] = None, device="cpu",
                  dtype: Optional[torch.dtype] = None) -> SDTurboRestorer:
    """``face2scene restore --backend sd-turbo --weights DIR``: DIR holds ``sd-turbo/`` (diffusers
    folder) and ``adapter/``, or DIR is the SD-Turbo folder and ``adapter`` is given."""
    weights = Path(weights)
    sd, ad = (weights / "sd-turbo", weights / "adapter") if adapter is None else (weights, Path(adapter))
    if dtype is None:
        dtype = torch.float16 if str(device).startswith("cuda") else torch.float32
    check_folders(sd, ad)
    try:
        return SDTurboRestorer.from_folders(sd, ad, device=device, dtype=dtype)
    except AdapterMismatch as e:
        raise AdapterError(str(e)) from None


class SDTurboBackend:
    """The SD-Turbo restorer behind the same interface as restorers.compact.CompactBackend."""

    name = "sd-turbo"
    description = "one-step diffusion restorer (SD-Turbo + Face2Scene adapters)"

    def __init__(self, model: SDTurboRestorer):
        self.model = model

    def face_code(self, faces):
        fmap, est, n = fadex_feature_map(self.model.fadex, faces, next(self.model.unet.parameters()).device)
        if fmap is None:
            return self.null_code()
        return DegradationCode(self.model.tokens(fmap), "face", est, n, {"feature_map": fmap})

    def null_code(self):
        return DegradationCode(self.model.tokens(None), "null")

    @torch.no_grad()
    def code_from_pair(self, degraded: np.ndarray, clean: np.ndarray, source: str = "given"):
        dev = next(self.model.unet.parameters()).device
        fmap = self.model.fadex(to_tensor(degraded, dev), to_tensor(clean, dev)).feature_map
        return DegradationCode(self.model.tokens(fmap), source, details={"feature_map": fmap})

    def restore_with_tokens(self, rgb, code=None, upscale: int = 1, tile: int = 512, progress=None, cancel=None,
                            **kw) -> np.ndarray:
        fmap = None if code is None else code.details.get("feature_map")
        prog = (lambda f: progress(f, "restoring latent tiles")) if progress is not None else None
        return self.model.restore(rgb, fmap, upscale=upscale, latent_tile=max(32, tile // self.model.vae_factor),
                                  cancel=cancel, progress=prog)
