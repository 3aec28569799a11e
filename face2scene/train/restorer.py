"""``face2scene train restorer``: the compact token-conditioned restorer jointly with MapNet, FaDeX frozen.

Each sample: a crop of a training photo and a face under the *same* sampled degradation (the face of
the same photo for person photos; a training face for scene photos). FaDeX(degraded face, restored
face) -> feature map -> MapNet -> tokens -> restorer(degraded crop). With probability ``null_prob``
the tokens are replaced by MapNet's learned null code, so the blind path ("no usable face") is
trained too. Loss: L1 + an edge (Sobel) L1 term. Seeded, time-boxed, resumable.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..models.compact import CompactRestorer
from ..models.fadex import FaDeXEncoder
from ..metrics import psnr
from ..models.imageops import to_uint8
from ..models.mapnet import MapNet
from . import common
from ..datasets import Degrader, face_crop, imperfect_restoration, pair_crop, random_crop
from ..models.imageops import to_batch

DEFAULTS = {
    "seed": 0, "threads": 1, "val_fraction": 0.2, "max_side": 768, "presets": ["simple"],
    "restorer": {"unshuffle": 4, "block_out_channels": [48, 96, 144], "layers_per_block": 1,
                 "cross_attention_dim": 64, "attention_head_dim": 8, "cross_attention_levels": 2},
    "mapnet": {"dim": 128, "num_heads": 4, "pool_sizes": [1, 2, 4], "num_text_tokens": 1},
    "batch": 8, "crop": 128, "face_crop": 64, "null_prob": 0.15, "edge_weight": 0.5,
    "lr": 2e-4, "weight_decay": 0.0, "decay_from": 0.75,
    "max_steps": 100000, "max_minutes": 40.0, "ckpt_every": 100, "log_every": 10, "val_size": 160, "val_count": 16,
    # faces restored by the real embedded Ref-FR (python -m face2scene.train.reffr_pairs) give the
    # tokens of a sample with probability reffr_prob (its degradation then comes from their bank)
    "reffr_pairs": None, "reffr_prob": 0.5,
    # Ref-FR samples code the *whole* aligned face (as the pipeline does), FaDeX maps precomputed
    # (FaDeX is frozen); otherwise a face_crop window of the pair
    "reffr_whole_face": True,
}


def sobel(x: torch.Tensor) -> torch.Tensor:
    k = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kk = torch.stack([k, k.T])[:, None].repeat(x.shape[1], 1, 1, 1)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kk, groups=x.shape[1])


def restoration_loss(y: torch.Tensor, target: torch.Tensor, edge_weight: float) -> torch.Tensor:
    return F.l1_loss(y, target) + edge_weight * F.l1_loss(sobel(y), sobel(target))


def jittered_estimate(summary: Dict, rng: np.random.Generator, blind: bool = False):
    """The explicit estimate a guided restorer's base is made with in training: the true parameters
    with the errors of the pipeline's face-derived estimate (median ~0.3 noise, ~0.2 px blur), or
    larger ones like the blind estimate's for samples trained on the null code."""
    from ..types import DegradationEstimate
    n, b = float(summary.get("noise_sigma", 0.0)), float(summary.get("blur_sigma", 0.0))
    if blind:
        n, b = n * rng.uniform(0.75, 1.25) + rng.normal(0, 1.5), b + rng.normal(0, 0.3)
    else:
        n, b = n * rng.uniform(0.92, 1.08) + rng.normal(0, 0.4), b + rng.normal(0, 0.15)
    return DegradationEstimate(max(0.0, n), max(0.0, b), summary.get("jpeg_quality"),
                               float(summary.get("scale", 1.0) or 1.0), source="given")


def base_restoration(deg: np.ndarray, est) -> np.ndarray:
    from ..restorers.classical import ClassicalRestorer
    return ClassicalRestorer().restore_array(deg, est)


def _sample_batch(train_any, train_faces, degrader, rng, cfg, cache=None, null_mask=None):
    """-> degraded, clean, faces, base (None unless the restorer is guided). ``faces``: per sample
    either ("map", feature map of a whole cached Ref-FR face) or ("crop", degraded, restored)."""
    guided = bool(cfg["restorer"].get("guided"))
    whole = bool(cfg.get("reffr_whole_face")) and cache is not None and "fmaps" in cache
    degs, cleans, faces, bases = [], [], [], []
    for i in range(cfg["batch"]):
        pair, e = None, None
        if cache is not None and rng.random() < cfg["reffr_prob"]:
            k = int(rng.integers(len(cache["pairs"])))
            e = cache["pairs"][k]
            pair = ("map", cache["fmaps"][k]) if whole else pair_crop(e, cfg["face_crop"], rng)
        while True:
            p = train_any[int(rng.integers(len(train_any)))]
            crop = random_crop(p.rgb, cfg["crop"], rng)
            if crop is None:
                continue
            if pair is not None:
                break
            fp = p if (p.is_person and p.face_box is not None) else train_faces[int(rng.integers(len(train_faces)))]
            fc = face_crop(fp, cfg["face_crop"], rng)
            if fc is not None:
                break
        if pair is not None:
            params = cache["bank"][int(e["degradation"])]
            faces.append(pair if pair[0] == "map" else ("crop", pair[0], pair[1]))
        else:
            params = degrader.sample(rng)
            faces.append(("crop", degrader.apply(fc, params), imperfect_restoration(fc, rng)))
        deg = degrader.apply(crop, params)
        degs.append(deg)
        cleans.append(crop)
        if guided:
            blind = bool(null_mask[i]) if null_mask is not None else False
            bases.append(base_restoration(deg, jittered_estimate(params["summary"], rng, blind)))
    return to_batch(degs), to_batch(cleans), faces, to_batch(bases) if guided else None


def batch_tokens(fadex: FaDeXEncoder, mapnet: MapNet, faces, null_mask: Optional[torch.Tensor] = None,
                 device="cpu") -> torch.Tensor:
    """Tokens for the faces of :func:`_sample_batch`, in order: crops through FaDeX as one batch,
    precomputed whole-face maps one by one (their sizes differ)."""
    out: List[Optional[torch.Tensor]] = [None] * len(faces)
    crops = [i for i, f in enumerate(faces) if f[0] == "crop"]
    if crops:
        with torch.no_grad():
            fmap = fadex(to_batch([faces[i][1] for i in crops]).to(device),
                         to_batch([faces[i][2] for i in crops]).to(device)).feature_map
        toks = mapnet(fmap)
        for j, i in enumerate(crops):
            out[i] = toks[j:j + 1]
    for i, f in enumerate(faces):
        if f[0] == "map":
            out[i] = mapnet(f[1].to(device))
    tokens = torch.cat(out, 0)
    if null_mask is not None:
        null = mapnet(None, batch_size=len(faces)).to(tokens.dtype)
        tokens = torch.where(null_mask.view(-1, 1, 1).to(tokens.device), null, tokens)
    return tokens


@torch.no_grad()
def whole_face_maps(fadex: FaDeXEncoder, cache, device="cpu") -> List[torch.Tensor]:
    """FaDeX feature maps of every cached (degraded, Ref-FR restored) whole face (FaDeX is frozen)."""
    from ..models.imageops import to_tensor
    return [fadex(to_tensor(e["degraded"], device), to_tensor(e["restored"], device)).feature_map.cpu()
            for e in cache["pairs"]]


def tokens_for(fadex: FaDeXEncoder, mapnet: MapNet, face_deg: Optional[torch.Tensor], face_rest: Optional[torch.Tensor],
               batch_size: int = 1, null_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    if face_deg is None:
        return mapnet(None, batch_size=batch_size)
    with torch.no_grad():
        fmap = fadex(face_deg, face_rest).feature_map
    return mapnet(fmap, null_mask=null_mask)


def fixed_val_set(val_photos, degrader: Degrader, cfg, seed: int = 4321) -> List[Dict]:
    """Validation crops (whole held-out photos only), each with a face under the same degradation."""
    rng = np.random.default_rng(seed)
    faces = [p for p in val_photos if p.is_person and p.face_box is not None]
    items = []
    for p in val_photos:
        if len(items) >= cfg["val_count"]:
            break
        crop = random_crop(p.rgb, cfg["val_size"], rng)
        fp = p if (p.is_person and p.face_box is not None) else (faces[int(rng.integers(len(faces)))] if faces else None)
        fc = face_crop(fp, max(cfg["face_crop"], 96), rng) if fp is not None else None
        if crop is None or fc is None:
            continue
        params = degrader.sample(rng)
        deg = degrader.apply(crop, params)
        item = {"clean": crop.copy(), "deg": deg, "face": fc.copy(), "face_deg": degrader.apply(fc, params),
                "params": params}
        if cfg["restorer"].get("guided"):  # the base from the true parameters (a training curve only)
            item["base"] = base_restoration(deg, jittered_estimate(params["summary"], np.random.default_rng(0)))
        items.append(item)
    return items


@torch.no_grad()
def validate(fadex, mapnet, restorer, items, device="cpu") -> Dict[str, float]:
    rows = {"input": [], "face": [], "null": []}
    if items and "base" in items[0]:
        rows["base"] = [psnr(it["base"], it["clean"]) for it in items]
    text = getattr(restorer, "prompt_embeds", None)  # SD-Turbo: the prompt embedding follows the tokens
    for it in items:
        x = to_batch([it["deg"]]).to(device)
        tok_face = tokens_for(fadex, mapnet, to_batch([it["face_deg"]]).to(device), to_batch([it["face"]]).to(device))
        tok_null = tokens_for(fadex, mapnet, None, None).to(device)
        if text is not None:
            tok_face, tok_null = (torch.cat([t, text.to(t.dtype)], 1) for t in (tok_face, tok_null))
        rows["input"].append(psnr(it["deg"], it["clean"]))
        kw = {"base": to_batch([it["base"]]).to(device)} if "base" in it else {}  # guided models only
        rows["face"].append(psnr(to_uint8(restorer.restore_tensor(x, tok_face, **kw)), it["clean"]))
        rows["null"].append(psnr(to_uint8(restorer.restore_tensor(x, tok_null, **kw)), it["clean"]))
    return {k: float(np.median(v)) for k, v in rows.items()}


def start_pairs(data_dirs, out, cfg: Dict, log=print):
    """The start of a restorer-training run on (photo crop, face) pairs: :func:`common.start_run`,
    then (out, training photos of at least ``crop`` px, training photos with a face, the
    :class:`Degrader` of ``presets``, the fixed validation items)."""
    out, train, val = common.start_run(data_dirs, out, cfg, log)
    train_faces = [p for p in train if p.is_person and p.face_box is not None]
    train_any = [p for p in train if min(p.rgb.shape[:2]) >= cfg["crop"]]
    if not train_faces or not train_any:
        raise ValueError(f"need training photos with faces and photos of at least {cfg['crop']} px")
    degrader = Degrader(cfg["presets"])
    return out, train_any, train_faces, degrader, fixed_val_set(val, degrader, cfg)


SDTURBO_DEFAULTS = {"crop": 512, "batch": 2, "lr": 5e-5, "device": "auto", "autocast_bf16": True,
                    "adapter": {"unet_rank": 32, "vae_rank": 16, "modulation": False, "modulation_dim": 64},
                    "mapnet": {"dim": 256, "num_heads": 4, "pool_sizes": [1, 2, 4], "num_text_tokens": 0}}


def _build_compact(cfg, fadex):
    tup = lambda d: {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}  # noqa: E731
    restorer = CompactRestorer(**tup(cfg["restorer"]))
    mapnet = MapNet(in_channels=fadex.config.channels[-1], token_dim=restorer.config.cross_attention_dim,
                    **tup(cfg["mapnet"]))
    return restorer, mapnet


def _build_sdturbo(cfg, fadex, sd_dir: Path, prompt_embeds: Optional[str]):
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from safetensors.torch import load_file
    from ..models.sd_turbo import SDTurboRestorer
    from ..restorers.sd_turbo import check_sd_turbo_folder
    check_sd_turbo_folder(sd_dir)
    kw = {"low_cpu_mem_usage": False}
    unet = UNet2DConditionModel.from_pretrained(sd_dir, subfolder="unet", **kw)
    vae = AutoencoderKL.from_pretrained(sd_dir, subfolder="vae", **kw)
    dim = unet.config.cross_attention_dim
    if prompt_embeds:
        pe = load_file(prompt_embeds)["prompt_embeds"]
    else:  # no text encoder here: an all-zero prompt embedding (document it; supply a file for a real prompt)
        pe = torch.zeros(1, 1, dim)
    m = cfg["mapnet"]
    mapnet = MapNet(in_channels=fadex.config.channels[-1], token_dim=dim, dim=m["dim"], num_heads=m["num_heads"],
                    pool_sizes=tuple(m["pool_sizes"]), num_text_tokens=m["num_text_tokens"])
    model = SDTurboRestorer(unet, vae, DDPMScheduler.from_pretrained(sd_dir, subfolder="scheduler"), fadex, mapnet,
                            pe, dict(cfg["adapter"]))
    return model, mapnet


def train_restorer(data_dirs: Sequence[str], out: str, fadex_dir: str, config_path: str | None = None,
                   resume: bool = True, log=print, sd_turbo_dir: str | None = None,
                   prompt_embeds: str | None = None) -> Path:
    """Compact restorer + MapNet (default), or with ``sd_turbo_dir`` the SD-Turbo adapters (LoRA,
    MapNet, optional modulation) on a diffusers SD-Turbo folder (a GPU job)."""
    defaults = dict(DEFAULTS, **SDTURBO_DEFAULTS) if sd_turbo_dir else DEFAULTS
    cfg = common.load_config(defaults, config_path)
    cfg["fadex_dir"] = str(fadex_dir)
    out, train_any, train_faces, degrader, val_items = start_pairs(data_dirs, out, cfg, log)
    device = torch.device(cfg.get("device", "cpu") if cfg.get("device", "cpu") != "auto" else
                          ("cuda" if torch.cuda.is_available() else "cpu"))

    fadex = FaDeXEncoder.from_pretrained(fadex_dir, low_cpu_mem_usage=False).eval()
    fadex.requires_grad_(False)
    if sd_turbo_dir:
        restorer, mapnet = _build_sdturbo(cfg, fadex, Path(sd_turbo_dir), prompt_embeds)
        models, task = {"sdturbo": restorer}, "sdturbo"
    else:
        restorer, mapnet = _build_compact(cfg, fadex)
        models, task = {"restorer": restorer, "mapnet": mapnet}, "restorer"
    restorer.to(device); mapnet.to(device); fadex.to(device)
    params = [p for m in models.values() for p in m.parameters() if p.requires_grad]
    params += [p for p in mapnet.parameters() if p.requires_grad and all(p is not q for q in params)]
    opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    ckpt = out / f"checkpoint_{task}"
    state = {"step": 0, "elapsed": 0.0, "history": {"step": [], "loss": [], "val_step": [], "val_psnr_input": [],
                                                    "val_psnr_face": [], "val_psnr_null": []}}
    rng = np.random.default_rng(cfg["seed"])
    if resume and (ckpt / "state.json").exists():
        state = common.load_checkpoint(ckpt, models, opt)
        rng = common.rng_from_json(state["np_rng"])
        log(f"resumed at step {state['step']}")
    timer = common.Timer(cfg["max_minutes"], state["elapsed"])
    hist = state["history"]
    restorer.train(); mapnet.train()
    use_bf16 = bool(cfg.get("autocast_bf16")) and device.type == "cuda"

    def save():
        restorer.eval(); mapnet.eval()
        v = validate(fadex, mapnet, restorer, val_items, device) if val_items else {}
        restorer.train(); mapnet.train()
        if v and (not hist["val_step"] or hist["val_step"][-1] != state["step"]):
            hist["val_step"].append(state["step"])
            for k in v:
                hist.setdefault(f"val_psnr_{k}", []).append(v[k])
        state["val"] = v
        log("val PSNR (median) " + json.dumps({k: round(x, 2) for k, x in v.items()}))
        state["elapsed"] = timer.elapsed
        state["np_rng"] = common.rng_to_json(rng)
        state["config"] = cfg
        common.save_checkpoint(ckpt, models, opt, state)
        common.plot_curves(out / f"loss_{task}.png", hist, f"{task} training")

    cache = None
    if cfg["reffr_pairs"]:
        from .reffr_pairs import load_reffr_pairs
        cache = load_reffr_pairs(cfg["reffr_pairs"])
        if cfg.get("reffr_whole_face"):
            cache["fmaps"] = whole_face_maps(fadex, cache, device)
        log(f"{len(cache['pairs'])} Ref-FR face pairs for the tokens (p {cfg['reffr_prob']}"
            f"{', whole faces' if 'fmaps' in cache else ''})")
    while state["step"] < cfg["max_steps"] and not timer.done():
        lr = common.set_lr(opt, cfg, timer, state["step"])
        null_np = rng.random(cfg["batch"]) < cfg["null_prob"]
        batch = _sample_batch(train_any, train_faces, degrader, rng, cfg, cache, null_np)
        deg, clean, faces = batch[0].to(device), batch[1].to(device), batch[2]
        base = batch[3].to(device) if batch[3] is not None else None
        null_mask = torch.from_numpy(null_np)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            tokens = batch_tokens(fadex, mapnet, faces, null_mask, device)
            if sd_turbo_dir:
                tokens = torch.cat([tokens, restorer.prompt_embeds.to(tokens.dtype).expand(tokens.shape[0], -1, -1)], 1)
            y = restorer(deg, tokens, base) if base is not None else restorer(deg, tokens)
            loss = restoration_loss(y.float(), clean, cfg["edge_weight"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        state["step"] += 1
        if state["step"] % cfg["log_every"] == 0:
            hist["step"].append(state["step"]); hist["loss"].append(loss.item())
            log(f"step {state['step']} loss {loss.item():.4f} lr {lr:.2e} [{timer.elapsed / 60:.1f} min]")
        if state["step"] % cfg["ckpt_every"] == 0:
            save()
    save()
    restorer.eval(); mapnet.eval()
    if sd_turbo_dir:
        final = out / "adapter"
        restorer.save_adapter(final)
    else:
        final = out / "compact"
        fadex.save_pretrained(final / "fadex")
        mapnet.save_pretrained(final / "mapnet")
        restorer.save_pretrained(final / "restorer")
    common.write_json_atomic(final / "train_config.json", cfg)
    common.write_json_atomic(final / "split.json", json.loads((out / "split.json").read_text()))
    if state.get("val"):
        common.write_json_atomic(final / "val_metrics.json", {"step": state["step"], "val_psnr_median": state["val"]})
    log(f"saved {final}")
    return final
