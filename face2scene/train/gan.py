"""``face2scene train gan``: the face-code conditioning of the GAN restorer (Real-ESRGAN x4plus).

The generator starts as Real-ESRGAN (converted weights, :mod:`face2scene.restorers.gan`, or any
RRDBNet folder given as ``base``) with a zero-initialised per-RRDB scale/shift driven by MapNet's
degradation tokens, so at step 0 it *is* Real-ESRGAN. FaDeX and MapNet are the compact restorer's
(frozen; default the shipped ones), so the code is the one the pipeline already computes. Trained:
the modulation only, or with ``train_last`` also the last two convolutions (``conv_hr``,
``conv_last``).

Pairs: as ``train restorer`` (:func:`face2scene.train.restorer._sample_batch`): a crop of a
training photo and a face under the *same* sampled degradation (the degradation model of
:mod:`face2scene.datasets`, logged presets); the face pair gives the tokens; with probability
``null_prob`` the learned null code replaces them. The generator restores at x1 (its x4 output
area-averaged 4x4, as the restorer runs) against the clean crop.

Loss (no perceptual backbone: none can be downloaded here): L1 + ``grad_weight`` x L1 of Sobel
gradients + ``freq_weight`` x L1 of the FFT amplitudes (orthonormal), plus, with ``adv_weight`` > 0,
a non-saturating adversarial term from a small spectral-normalised PatchGAN discriminator trained
alongside (one optimiser: the discriminator's loss reaches only its parameters, the generator's
only the generator's).

A fixed *probe* batch from the training split is scored before training and at every checkpoint
(``history["probe_loss"]``): the loss of the same pixels, so it shows whether training helps.
CUDA: autocast in ``amp`` ("bf16", default; "fp16" with a gradient scaler; "none"). Seeded,
time-boxed, resumable; writes ``<out>/gan-face/`` (generator/, fadex/, mapnet/, train_config.json,
split.json, val_metrics.json), which ``--weights <out>`` then loads.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models.fadex import FaDeXEncoder
from ..models.mapnet import MapNet
from ..models.rrdbnet import RRDBNet
from . import common
from .restorer import _sample_batch, batch_tokens, sobel, start_pairs, validate

DEFAULTS = {
    "seed": 0, "threads": 1, "val_fraction": 0.2, "max_side": 768, "presets": ["simple"],
    "batch": 4, "crop": 64, "face_crop": 64, "null_prob": 0.15, "reffr_prob": 0.0, "restorer": {},
    "l1_weight": 1.0, "grad_weight": 0.5, "freq_weight": 0.05, "adv_weight": 0.0, "disc_channels": 32,
    "train_last": False, "lr": 1e-4, "weight_decay": 0.0, "decay_from": 0.75,
    "max_steps": 5000, "max_minutes": 60.0, "ckpt_every": 200, "log_every": 10,
    "val_size": 96, "val_count": 8, "probe_batch": 4,
    "device": "auto", "amp": "bf16",
}
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def frequency_l1(y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 of the FFT amplitude spectra (orthonormal, so comparable across crop sizes)."""
    fy = torch.fft.rfft2(y.float(), norm="ortho").abs()
    ft = torch.fft.rfft2(target.float(), norm="ortho").abs()
    return F.l1_loss(fy, ft)


def texture_loss(y: torch.Tensor, target: torch.Tensor, cfg: Dict) -> Dict[str, torch.Tensor]:
    """{"l1", "grad", "freq", "total"} of a restoration against its clean target."""
    parts = {"l1": F.l1_loss(y, target), "grad": F.l1_loss(sobel(y), sobel(target)),
             "freq": frequency_l1(y, target)}
    parts["total"] = (cfg["l1_weight"] * parts["l1"] + cfg["grad_weight"] * parts["grad"]
                      + cfg["freq_weight"] * parts["freq"])
    return parts


class PatchDiscriminator(nn.Module):
    """A small spectral-normalised PatchGAN: BxCxHxW in [0, 1] -> Bx1xhxw logits."""

    def __init__(self, channels: int = 32, in_ch: int = 3):
        super().__init__()
        sn = nn.utils.spectral_norm
        c = channels
        self.net = nn.Sequential(
            sn(nn.Conv2d(in_ch, c, 3, 1, 1)), nn.LeakyReLU(0.2, True),
            sn(nn.Conv2d(c, 2 * c, 4, 2, 1)), nn.LeakyReLU(0.2, True),
            sn(nn.Conv2d(2 * c, 4 * c, 4, 2, 1)), nn.LeakyReLU(0.2, True),
            sn(nn.Conv2d(4 * c, 4 * c, 3, 1, 1)), nn.LeakyReLU(0.2, True),
            nn.Conv2d(4 * c, 1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1)


def restore_x1(gen: RRDBNet, x: torch.Tensor, tokens: Optional[torch.Tensor]) -> torch.Tensor:
    """The restorer's x1 path: the generator's x{scale} output area-averaged back to the input grid."""
    y = gen(x, tokens)
    s = gen.config.scale
    return F.avg_pool2d(y, s) if s > 1 else y


class _X1:
    """``restore_tensor`` for :func:`face2scene.train.restorer.validate`."""

    def __init__(self, gen: RRDBNet):
        self.gen = gen

    @torch.no_grad()
    def restore_tensor(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return restore_x1(self.gen, x, tokens).clamp(0, 1)


def conditioned_generator(base: RRDBNet, cond_dim: int) -> RRDBNet:
    """``base`` with zero-initialised conditioning of ``cond_dim`` (or ``base`` itself when it is
    already conditioned with that size, e.g. a run continued from its own result)."""
    if base.modulation is None:
        return base.with_conditioning(cond_dim)
    if base.config.cond_dim != cond_dim:
        raise ValueError(f"the base generator is conditioned with cond_dim {base.config.cond_dim}, "
                         f"MapNet's tokens have {cond_dim}")
    return base


def trainable_parameters(gen: RRDBNet, train_last: bool) -> list:
    gen.requires_grad_(False)
    mods = [gen.modulation] + ([gen.conv_hr, gen.conv_last] if train_last else [])
    for m in mods:
        m.requires_grad_(True)
    return [p for m in mods for p in m.parameters()]


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda asked for but CUDA is not available")
    return torch.device(name)


def write_sample_dataset(root: Path, persons: int = 3, scenes: int = 4) -> list:
    """A tiny training set made from the public-domain sample photo (:mod:`face2scene.samples`):
    ``persons`` "persons" of two variants each (mirrored, colour-shifted) and ``scenes`` crops
    away from the face, for smoke runs where no photo collection is at hand (the GPU check, tests).
    Returns the data folders to pass as ``data_dirs``."""
    from PIL import Image
    from ..samples import load_sample
    root = Path(root)
    img = load_sample()
    for i in range(persons):
        d = root / "identities" / f"sample{i}"
        d.mkdir(parents=True, exist_ok=True)
        tint = np.clip(img.astype(np.int16) + np.array([8 * i, -4 * i, 4 * i]), 0, 255).astype(np.uint8)
        Image.fromarray(tint).save(d / "a.png")
        Image.fromarray(np.ascontiguousarray(tint[:, ::-1])).save(d / "b.png")
    (root / "scenes").mkdir(parents=True, exist_ok=True)
    h, w = img.shape[:2]
    for i in range(scenes):  # the lower half (uniform, flag, hands): no face
        y0, x0 = h // 2 + (i % 2) * (h // 8), (i // 2) * (w // 4)
        Image.fromarray(np.ascontiguousarray(img[y0:y0 + h * 3 // 8, x0:x0 + w // 2])).save(
            root / "scenes" / f"scene{i}.png")
    return [str(root / "identities"), str(root / "scenes")]


def train_gan(data_dirs: Sequence[str], out: str, base_dir: Optional[str] = None, compact_dir: Optional[str] = None,
              config_path: Optional[str] = None, resume: bool = True, log=print,
              config: Optional[Dict] = None) -> Path:
    """Train the face-code modulation; returns ``<out>/gan-face``. ``base_dir``: an RRDBNet folder
    (default: the Real-ESRGAN weights, converted on first use); ``compact_dir``: a folder with
    ``fadex/`` and ``mapnet/`` (default: the shipped compact weights). ``config`` overrides keys
    like the JSON file (for scripts)."""
    cfg = common.load_config(DEFAULTS, config_path, config)
    if cfg["amp"] not in ("bf16", "fp16", "none"):
        raise ValueError(f"amp must be bf16, fp16 or none, got {cfg['amp']!r}")
    device = _device(cfg["device"])
    from ..restorers.compact import WEIGHTS_DIR
    compact = Path(compact_dir) if compact_dir else WEIGHTS_DIR
    for sub in ("fadex", "mapnet"):
        if not (compact / sub / "config.json").is_file():
            raise FileNotFoundError(f"{compact / sub} holds no model (need fadex/ and mapnet/ of a compact folder)")
    kw = {"low_cpu_mem_usage": False}
    fadex = FaDeXEncoder.from_pretrained(compact / "fadex", **kw).eval().requires_grad_(False)
    mapnet = MapNet.from_pretrained(compact / "mapnet", **kw).eval().requires_grad_(False)
    if base_dir:
        base = RRDBNet.from_pretrained(base_dir, **kw)
        cfg["base"] = str(base_dir)
    else:
        from ..restorers.gan import load_gan_model
        base = load_gan_model()
        cfg["base"] = "Real-ESRGAN x4plus (converted)"
    gen = conditioned_generator(base, mapnet.config.token_dim)
    cfg["compact"] = str(compact)

    out, train_any, train_faces, degrader, val_items = start_pairs(data_dirs, out, cfg, log)

    gen.to(device).train()
    fadex.to(device)
    mapnet.to(device)
    params = trainable_parameters(gen, cfg["train_last"])
    models: Dict[str, nn.Module] = {"generator": gen}
    disc = None
    if cfg["adv_weight"] > 0:
        disc = PatchDiscriminator(cfg["disc_channels"]).to(device).train()
        models["discriminator"] = disc
    opt = torch.optim.AdamW(params + (list(disc.parameters()) if disc is not None else []), lr=cfg["lr"],
                            weight_decay=cfg["weight_decay"], betas=(0.9, 0.99))
    amp = device.type == "cuda" and cfg["amp"] != "none"
    amp_dtype = AMP_DTYPES.get(cfg["amp"], torch.bfloat16)
    scaler = torch.amp.GradScaler("cuda", enabled=amp and cfg["amp"] == "fp16")

    # a fixed probe batch from the training split (its own RNG): the loss of the same pixels over time
    probe_rng = np.random.default_rng(cfg["seed"] + 7919)
    pcfg = dict(cfg, batch=cfg["probe_batch"])
    pdeg, pclean, pfaces, _ = _sample_batch(train_any, train_faces, degrader, probe_rng, pcfg)
    with torch.no_grad():
        ptokens = batch_tokens(fadex, mapnet, pfaces, None, device)
    pdeg, pclean = pdeg.to(device), pclean.to(device)

    @torch.no_grad()
    def probe() -> float:
        gen.eval()
        v = float(texture_loss(restore_x1(gen, pdeg, ptokens).float(), pclean, cfg)["total"])
        gen.train()
        return v

    ckpt = out / "checkpoint_gan"
    state = {"step": 0, "elapsed": 0.0, "history": {"step": [], "loss": [], "l1": [], "grad": [], "freq": [],
                                                    "adv": [], "probe_step": [], "probe_loss": [],
                                                    "val_step": [], "val_psnr_input": [], "val_psnr_face": [],
                                                    "val_psnr_null": []}}
    rng = np.random.default_rng(cfg["seed"])
    if resume and (ckpt / "state.json").exists():
        state = common.load_checkpoint(ckpt, models, opt)
        rng = common.rng_from_json(state["np_rng"])
        trainable_parameters(gen, cfg["train_last"])
        log(f"resumed at step {state['step']}")
    hist = state["history"]
    if not hist["probe_step"]:
        hist["probe_step"].append(0)
        hist["probe_loss"].append(probe())
        log(f"probe loss at step 0 (the base generator): {hist['probe_loss'][-1]:.4f}")
    timer = common.Timer(cfg["max_minutes"], state["elapsed"])

    def save():
        gen.eval()
        v = validate(fadex, mapnet, _X1(gen), val_items, device) if val_items else {}
        if hist["probe_step"][-1] != state["step"]:
            hist["probe_step"].append(state["step"])
            hist["probe_loss"].append(probe())
        gen.train()
        if v and (not hist["val_step"] or hist["val_step"][-1] != state["step"]):
            hist["val_step"].append(state["step"])
            for k in v:
                hist.setdefault(f"val_psnr_{k}", []).append(v[k])
        state["val"] = v
        log(f"probe loss {hist['probe_loss'][-1]:.4f}; val PSNR (median) "
            + json.dumps({k: round(x, 2) for k, x in v.items()}))
        state.update(elapsed=timer.elapsed, np_rng=common.rng_to_json(rng), config=cfg)
        common.save_checkpoint(ckpt, models, opt, state)
        common.plot_curves(out / "loss_gan.png", {k: v for k, v in hist.items() if k != "probe_step"},
                           "GAN face-code training")

    while state["step"] < cfg["max_steps"] and not timer.done():
        lr = common.set_lr(opt, cfg, timer, state["step"])
        null_np = rng.random(cfg["batch"]) < cfg["null_prob"]
        deg, clean, faces, _ = _sample_batch(train_any, train_faces, degrader, rng, cfg, None, null_np)
        deg, clean = deg.to(device), clean.to(device)
        with torch.no_grad():
            tokens = batch_tokens(fadex, mapnet, faces, torch.from_numpy(null_np), device)
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
            y = restore_x1(gen, deg, tokens)
        parts = texture_loss(y.float(), clean, cfg)
        loss = parts["total"]
        adv = torch.zeros((), device=device)
        if disc is not None:
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
                d_real, d_fake = disc(clean), disc(y.detach())
            d_loss = F.softplus(-d_real.float()).mean() + F.softplus(d_fake.float()).mean()
            scaler.scale(d_loss).backward()
            disc.requires_grad_(False)  # the generator's adversarial loss reaches the generator only
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
                adv = F.softplus(-disc(y).float()).mean()
            disc.requires_grad_(True)
            loss = loss + cfg["adv_weight"] * adv
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        scaler.step(opt)
        scaler.update()
        common.end_step(state, loss, {k: parts[k] for k in ("l1", "grad", "freq")}, adv, cfg, log, lr,
                        timer.elapsed / 60)
        if state["step"] % cfg["ckpt_every"] == 0:
            save()
    save()
    gen.eval()
    final = common.write_result(out / "gan-face", {"generator": gen, "fadex": fadex, "mapnet": mapnet}, cfg, out, {
        "step": state["step"], "val_psnr_median": state.get("val", {}),
        "probe_loss": {"first": hist["probe_loss"][0], "last": hist["probe_loss"][-1]}})
    log(f"saved {final}")
    return final
