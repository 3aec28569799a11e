"""The paper-scale configuration: SD-Turbo (a local diffusers folder) + our adapter folder.

One UNet pass at t=999 on the VAE latent of the (bicubic-upscaled) degraded photo; the scheduler step
gives the clean latent; the VAE decodes it. Face2Scene conditioning: MapNet's 21 degradation tokens,
concatenated with a precomputed prompt embedding (no text encoder at inference), reach every
cross-attention layer. LoRA on the UNet (rank 32) and the VAE encoder (rank 16), decoder frozen;
optionally S3Diff-style per-block modulation: y = W0 x + s * B(M A x), M = I + f_block(code).

Folders:
    SD-Turbo (diffusers):  unet/{config.json, diffusion_pytorch_model[.fp16].safetensors}
                           vae/{config.json, diffusion_pytorch_model[.fp16].safetensors}
                           scheduler/scheduler_config.json
    adapter (ours):        adapter_config.json, prompt_embeds.safetensors ("prompt_embeds": 1 x T x D),
                           fadex/, mapnet/ (diffusers-style folders), lora.safetensors
This module is the network only: folder checks, loading with clear errors and the restorer backend
are in :mod:`face2scene.restorers.sd_turbo`.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from .fadex import FaDeXEncoder
from .imageops import pad_to_multiple, tiled_apply, to_tensor, to_uint8, wavelet_colour_fix
from .mapnet import MapNet

UNET_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2",
                "conv1", "conv2", "conv_shortcut")
VAE_ENCODER_TARGETS = ("conv_in", "conv1", "conv2", "conv_shortcut", "conv", "conv_out", "to_q", "to_k", "to_v",
                       "to_out.0")
ADAPTER_DEFAULTS = {"unet_rank": 32, "vae_rank": 16, "lora_alpha_ratio": 1.0, "modulation": False,
                    "modulation_dim": 64, "timestep": 999}


class AdapterMismatch(ValueError):
    """Adapter weights that do not fit this SD-Turbo model (``restorers.sd_turbo`` turns it into a
    WeightsError naming the folder)."""


# ------------------------------------------------------------------------------------------- LoRA
class LoRALayer(nn.Module):
    """Wraps a frozen Linear/Conv2d: y = W0 x + scale * B(M A x). M (B x r x r) is set per forward by
    the modulation network (None: identity). B starts at zero, so the wrapped layer starts unchanged."""

    def __init__(self, base: nn.Module, rank: int, alpha: float):
        super().__init__()
        self.base = base
        base.requires_grad_(False)
        if isinstance(base, nn.Linear):
            self.lora_A = nn.Linear(base.in_features, rank, bias=False)
            self.lora_B = nn.Linear(rank, base.out_features, bias=False)
        elif isinstance(base, nn.Conv2d):
            self.lora_A = nn.Conv2d(base.in_channels, rank, base.kernel_size, base.stride, base.padding, bias=False)
            self.lora_B = nn.Conv2d(rank, base.out_channels, 1, bias=False)
        else:
            raise TypeError(f"LoRA supports Linear and Conv2d, not {type(base).__name__}")
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.rank = rank
        self.scale = alpha / rank
        self.modulation: Optional[torch.Tensor] = None

    @property
    def weight(self):  # diffusers reads .weight.dtype/.device of some layers
        return self.base.weight

    @property
    def bias(self):
        return self.base.bias

    def forward(self, x, *args, **kwargs):
        y = self.base(x, *args, **kwargs)
        h = self.lora_A(x.to(self.lora_A.weight.dtype))
        m = self.modulation
        if m is not None:
            m = m.to(h.dtype)
            if m.shape[0] != h.shape[0]:
                m = m.expand(h.shape[0], -1, -1)
            if h.dim() == 4:  # conv: B x r x H x W
                h = torch.einsum("brhw,bmr->bmhw", h, m)
            elif h.dim() == 3:  # linear on tokens: B x N x r
                h = torch.einsum("bnr,bmr->bnm", h, m)
            else:
                h = torch.einsum("br,bmr->bm", h, m)
        return y + self.scale * self.lora_B(h).to(y.dtype)


def _matches(name: str, targets: Sequence[str]) -> bool:
    return any(name == t or name.endswith("." + t) for t in targets)


def add_lora(model: nn.Module, targets: Sequence[str], rank: int, alpha: float, prefix: str = "") -> Dict[str, LoRALayer]:
    """Replace matching Linear/Conv2d modules of ``model`` by LoRA wrappers; returns {name: layer}."""
    names = [n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d)) and _matches(n, targets)
             and ".base" not in n and not n.endswith(("lora_A", "lora_B"))]
    layers = {}
    for n in names:
        parent_name, _, child = n.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        layer = LoRALayer(getattr(parent, child), rank, alpha)
        setattr(parent, child, layer)
        layers[prefix + n] = layer
    return layers


def _block_of(name: str) -> str:
    m = re.match(r"((?:vae\.)?(?:encoder\.)?(?:down_blocks|up_blocks)\.\d+|(?:vae\.)?(?:encoder\.)?mid_block|[^.]+)", name)
    return m.group(1) if m else name


class BlockModulation(nn.Module):
    """S3Diff-style: code -> MLP -> one embedding per block -> an r x r matrix per LoRA layer,
    M = I + delta with delta initialised at zero (starts as plain LoRA)."""

    def __init__(self, code_dim: int, layer_names: Sequence[str], ranks: Sequence[int], dim: int = 64):
        super().__init__()
        self.layer_names = list(layer_names)
        self.blocks = sorted({_block_of(n) for n in layer_names})
        self.block_index = {b: i for i, b in enumerate(self.blocks)}
        self.mlp = nn.Sequential(nn.Linear(code_dim, 256), nn.SiLU(), nn.Linear(256, len(self.blocks) * dim))
        self.heads = nn.ModuleList(nn.Linear(dim, r * r) for r in ranks)
        for h in self.heads:
            nn.init.zeros_(h.weight)
            nn.init.zeros_(h.bias)
        self.ranks = list(ranks)
        self.dim = dim

    def forward(self, code: torch.Tensor) -> List[torch.Tensor]:
        e = self.mlp(code).view(code.shape[0], len(self.blocks), self.dim)
        out = []
        for n, r, head in zip(self.layer_names, self.ranks, self.heads):
            d = head(e[:, self.block_index[_block_of(n)]]).view(-1, r, r)
            out.append(torch.eye(r, device=code.device, dtype=code.dtype) + d)
        return out


# -------------------------------------------------------------------------------------- restorer
def weights_file(folder: Path) -> Optional[Path]:
    for name in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"):
        if (folder / name).is_file():
            return folder / name
    return None


class SDTurboRestorer(nn.Module):
    """One-step diffusion restorer (SD-Turbo + Face2Scene adapters)."""

    is_diffusion = True
    name = "sd-turbo"

    def __init__(self, unet, vae, scheduler, fadex: FaDeXEncoder, mapnet: MapNet, prompt_embeds: torch.Tensor,
                 config: Optional[Dict] = None):
        super().__init__()
        self.config = dict(ADAPTER_DEFAULTS, **(config or {}))
        self.unet, self.vae, self.scheduler = unet, vae, scheduler
        self.fadex, self.mapnet = fadex, mapnet
        self.register_buffer("prompt_embeds", prompt_embeds.detach().clone(), persistent=False)
        if mapnet.config.token_dim != unet.config.cross_attention_dim or prompt_embeds.shape[-1] != mapnet.config.token_dim:
            raise AdapterMismatch(
                f"adapter mismatch: MapNet token_dim={mapnet.config.token_dim}, prompt embedding dim="
                f"{prompt_embeds.shape[-1]}, UNet cross_attention_dim={unet.config.cross_attention_dim}")
        for m in (unet, vae, fadex):
            m.requires_grad_(False)
        c = self.config
        self.unet_lora = add_lora(unet, UNET_TARGETS, c["unet_rank"], c["unet_rank"] * c["lora_alpha_ratio"], "unet.")
        self.vae_lora = add_lora(vae.encoder, VAE_ENCODER_TARGETS, c["vae_rank"], c["vae_rank"] * c["lora_alpha_ratio"],
                                 "vae.encoder.")
        self.lora_layers = {**self.unet_lora, **self.vae_lora}
        self.modulation = None
        if c["modulation"]:
            names = list(self.lora_layers)
            self.modulation = BlockModulation(mapnet.config.token_dim, names, [self.lora_layers[n].rank for n in names],
                                              c["modulation_dim"])

    # ---- adapter state
    def lora_state_dict(self) -> Dict[str, torch.Tensor]:
        sd = {}
        for n, layer in self.lora_layers.items():
            sd[f"{n}.lora_A.weight"] = layer.lora_A.weight.detach().cpu().contiguous()
            sd[f"{n}.lora_B.weight"] = layer.lora_B.weight.detach().cpu().contiguous()
        if self.modulation is not None:
            for k, v in self.modulation.state_dict().items():
                sd[f"modulation.{k}"] = v.detach().cpu().contiguous()
        return sd

    def load_lora_state_dict(self, sd: Dict[str, torch.Tensor], where: str = "lora.safetensors") -> None:
        expected = {k: v.shape for k, v in self.lora_state_dict().items()}
        missing = sorted(set(expected) - set(sd))
        bad = sorted(k for k in expected if k in sd and tuple(sd[k].shape) != tuple(expected[k]))
        if missing or bad:
            lines = [f"missing: {k}" for k in missing[:20]] + [f"shape {tuple(sd[k].shape)} != {tuple(expected[k])}: {k}"
                                                              for k in bad[:20]]
            more = len(missing) + len(bad) - len(lines)
            raise AdapterMismatch(f"{where} does not match this SD-Turbo model ({len(missing)} missing, {len(bad)} "
                               f"mismatched; check unet_rank/vae_rank/modulation in adapter_config.json):\n  "
                               + "\n  ".join(lines) + (f"\n  ... and {more} more" if more > 0 else ""))
        for n, layer in self.lora_layers.items():
            layer.lora_A.weight.data.copy_(sd[f"{n}.lora_A.weight"])
            layer.lora_B.weight.data.copy_(sd[f"{n}.lora_B.weight"])
        if self.modulation is not None:
            self.modulation.load_state_dict({k[len("modulation."):]: v for k, v in sd.items() if k.startswith("modulation.")})

    def save_adapter(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.fadex.save_pretrained(folder / "fadex")
        self.mapnet.save_pretrained(folder / "mapnet")
        save_file(self.lora_state_dict(), str(folder / "lora.safetensors"))
        save_file({"prompt_embeds": self.prompt_embeds.detach().cpu().contiguous()}, str(folder / "prompt_embeds.safetensors"))
        (folder / "adapter_config.json").write_text(json.dumps(self.config, indent=2))

    @classmethod
    def from_folders(cls, sd_turbo_dir: str | Path, adapter_dir: str | Path, device="cpu",
                     dtype: torch.dtype = torch.float32) -> "SDTurboRestorer":
        from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
        sd_turbo_dir, adapter_dir = Path(sd_turbo_dir), Path(adapter_dir)
        kw = {"low_cpu_mem_usage": False}

        def load(model_cls, sub):
            variant = "fp16" if weights_file(sd_turbo_dir / sub).name.endswith(".fp16.safetensors") else None
            return model_cls.from_pretrained(sd_turbo_dir, subfolder=sub, variant=variant, **kw)

        unet, vae = load(UNet2DConditionModel, "unet"), load(AutoencoderKL, "vae")
        scheduler = DDPMScheduler.from_pretrained(sd_turbo_dir, subfolder="scheduler")
        config = json.loads((adapter_dir / "adapter_config.json").read_text())
        prompt = load_file(str(adapter_dir / "prompt_embeds.safetensors"))
        if "prompt_embeds" not in prompt:
            raise AdapterMismatch(f"{adapter_dir / 'prompt_embeds.safetensors'} has no tensor named 'prompt_embeds'")
        model = cls(unet, vae, scheduler, FaDeXEncoder.from_pretrained(adapter_dir / "fadex", **kw),
                    MapNet.from_pretrained(adapter_dir / "mapnet", **kw), prompt["prompt_embeds"], config)
        model.load_lora_state_dict(load_file(str(adapter_dir / "lora.safetensors")), str(adapter_dir / "lora.safetensors"))
        return model.to(device=device, dtype=dtype).eval()

    # ---- inference
    @property
    def vae_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def latent_multiple(self) -> int:
        return 2 ** (len(self.unet.config.block_out_channels) - 1)

    def tokens(self, feature_map: Optional[torch.Tensor]) -> torch.Tensor:
        return self.mapnet(feature_map, text_embeds=self.prompt_embeds)

    def _set_modulation(self, tokens: torch.Tensor) -> None:
        mats = None
        if self.modulation is not None:
            code = tokens[:, :self.mapnet.num_degradation_tokens].mean(1)
            mats = self.modulation(code.float())
        for i, layer in enumerate(self.lora_layers.values()):
            layer.modulation = None if mats is None else mats[i]

    def denoise_latent(self, latent: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        t = int(self.config["timestep"])
        ts = torch.full((latent.shape[0],), t, device=latent.device, dtype=torch.long)
        tok = tokens.to(latent.dtype).expand(latent.shape[0], -1, -1)
        eps = self.unet(latent, ts, encoder_hidden_states=tok).sample
        return self.scheduler.step(eps, t, latent, return_dict=True).pred_original_sample

    def forward(self, x: torch.Tensor, tokens: torch.Tensor, latent_tile: int = 96, latent_overlap: int = 32,
                cancel: Optional[Callable[[], None]] = None,
                progress: Optional[Callable[[float], None]] = None) -> torch.Tensor:
        """x: Bx3xHxW in [0, 1], H and W multiples of vae_factor * latent_multiple."""
        self._set_modulation(tokens)
        try:
            sf = self.vae.config.scaling_factor
            dtype = next(self.unet.parameters()).dtype
            lat = self.vae.encode((x * 2 - 1).to(dtype)).latent_dist.mode() * sf
            clean = tiled_apply(lambda z: self.denoise_latent(z, tokens), lat, tile=latent_tile,
                                overlap=latent_overlap, align=self.latent_multiple, cancel=cancel, progress=progress)
            y = self.vae.decode(clean.to(dtype) / sf).sample
        finally:
            for layer in self.lora_layers.values():
                layer.modulation = None
        return ((y.float() + 1) / 2).clamp(0, 1)

    @torch.no_grad()
    def restore_tensor(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Bx3xHxW in [0, 1], any size, tokens already including the prompt embedding."""
        xp, (h, w) = pad_to_multiple(x, self.vae_factor * self.latent_multiple)
        return self.forward(xp, tokens)[..., :h, :w]

    @torch.no_grad()
    def restore(self, rgb: np.ndarray, feature_map: Optional[torch.Tensor] = None, upscale: int = 1,
                latent_tile: int = 96, latent_overlap: int = 32, colour_fix: bool = True, cancel=None,
                progress=None) -> np.ndarray:
        """HxWx3 uint8 -> (H*upscale)x(W*upscale)x3 uint8. feature_map: fused FaDeX map or None (null code)."""
        dev = next(self.unet.parameters()).device
        x = to_tensor(rgb, dev)
        if upscale != 1:
            x = F.interpolate(x, scale_factor=upscale, mode="bicubic", align_corners=False).clamp(0, 1)
        xp, (h, w) = pad_to_multiple(x, self.vae_factor * self.latent_multiple)
        if max(xp.shape[-2:]) > self.vae.config.sample_size:
            self.vae.enable_tiling()
        tokens = self.tokens(None if feature_map is None else feature_map.to(dev))
        y = self.forward(xp, tokens, latent_tile, latent_overlap,
                         cancel=cancel.raise_if_cancelled if cancel is not None else None, progress=progress)[..., :h, :w]
        if colour_fix:
            y = wavelet_colour_fix(y, x)
        return to_uint8(y)
