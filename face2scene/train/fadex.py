"""``face2scene train fadex``: the learned FaDeX encoder on its own.

Each step samples B degradations. Degradation i is applied to a face crop (input: degraded face,
"restored" face), to a second view of other content — a scene crop or a face of another photo
(face<->scene and face<->face, as in ReDegNet) — and a content negative: the *same* face under another
degradation. InfoNCE (tau ~ 0.07) pulls the two views of degradation i together and pushes away every
other degradation, including the same content under a different one; a head regresses the logged
parameters. Seeded, time-boxed, resumable.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..estimate.learned import code_similarity
from ..models.fadex import FaDeXEncoder, params_to_targets
from . import common
from ..datasets import Degrader, face_crop, imperfect_restoration, pair_crop, random_crop
from ..models.imageops import to_batch

DEFAULTS = {
    "seed": 0, "threads": 1, "val_fraction": 0.2, "max_side": 768, "presets": ["simple"],
    "model": {"channels": [32, 64, 96, 128], "code_dim": 128, "blocks_per_stage": 1},
    "batch": 12, "crop": 64, "tau": 0.07, "param_weight": 1.0, "lr": 3e-4, "weight_decay": 1e-4, "decay_from": 0.6,
    "max_steps": 100000, "max_minutes": 12.0, "ckpt_every": 100, "log_every": 10, "val_degradations": 6,
    # faces restored by the real embedded Ref-FR (python -m face2scene.train.reffr_pairs): a batch is
    # made of them with probability reffr_prob; init: a FaDeX folder to start from (fine-tuning)
    "reffr_pairs": None, "reffr_prob": 0.5, "init": None,
}


def _views(photos_face, photos_any, degrader, rng, cfg):
    """Returns lists of (degraded, restored) for anchor, positive, negative views + targets."""
    B, c = cfg["batch"], cfg["crop"]
    params = [degrader.sample(rng) for _ in range(B)]
    anchors, positives, negatives = [], [], []
    for i in range(B):
        while True:
            fp = photos_face[int(rng.integers(len(photos_face)))]
            fc = face_crop(fp, c, rng)
            if fc is not None:
                break
        while True:
            if rng.random() < 0.5:  # face <-> face (another photo)
                op = photos_face[int(rng.integers(len(photos_face)))]
                oc = face_crop(op, c, rng) if op.path != fp.path else None
            else:  # face <-> scene
                op = photos_any[int(rng.integers(len(photos_any)))]
                oc = random_crop(op.rgb, c, rng)
            if oc is not None:
                break
        anchors.append((degrader.apply(fc, params[i]), imperfect_restoration(fc, rng)))
        positives.append((degrader.apply(oc, params[i]), oc))
        j = (i + 1 + int(rng.integers(B - 1))) % B  # another degradation, same face
        negatives.append((degrader.apply(fc, params[j]), imperfect_restoration(fc, rng)))
    perm_targets = [params_to_targets(p["summary"]) for p in params]
    return anchors, positives, negatives, params, perm_targets


def _views_reffr(cache, photos_any, degrader, rng, cfg):
    """As :func:`_views`, with anchors (and half the positives) from real Ref-FR pairs: B degradations
    of the shared bank; positive = another photo under the same degradation (Ref-FR pair) or other
    content degraded the same way; negative = the anchor's photo under another bank degradation."""
    B, c = cfg["batch"], cfg["crop"]
    by_deg, by_photo = cache["by_deg"], cache["by_photo"]
    ks = [int(k) for k in rng.permutation(sorted(by_deg))[:B]]
    anchors, positives, negatives, params = [], [], [], []
    for k in ks:
        prm = cache["bank"][k]
        a = by_deg[k][int(rng.integers(len(by_deg[k])))]
        others = [q for q in by_deg[k] if q["photo"] != a["photo"]]
        if others and rng.random() < 0.5:
            pos = pair_crop(others[int(rng.integers(len(others)))], c, rng)
        else:
            pos = None
        while pos is None:
            oc = random_crop(photos_any[int(rng.integers(len(photos_any)))].rgb, c, rng)
            if oc is not None:
                pos = (degrader.apply(oc, prm), oc)
        negs = [q for q in by_photo[a["photo"]] if q["degradation"] != k]
        if negs:
            neg = pair_crop(negs[int(rng.integers(len(negs)))], c, rng)
        else:  # this photo has one cached degradation: the clean stand-in under another one
            neg = None
        ac = pair_crop(a, c, rng)
        if ac is None:
            continue
        if neg is None:
            other = cache["bank"][int(rng.integers(len(cache["bank"])))]
            neg = (degrader.apply(ac[1], other), ac[1])
        anchors.append(ac)
        positives.append(pos)
        negatives.append(neg)
        params.append(prm)
    return anchors, positives, negatives, params, [params_to_targets(p["summary"]) for p in params]


def _load_cache(folder):
    from .reffr_pairs import load_reffr_pairs
    cache = load_reffr_pairs(folder)
    by_deg, by_photo = {}, {}
    for e in cache["pairs"]:
        by_deg.setdefault(int(e["degradation"]), []).append(e)
        by_photo.setdefault(e["photo"], []).append(e)
    cache.update(by_deg=by_deg, by_photo=by_photo)
    return cache


def _encode(model, pairs):
    d = to_batch([p[0] for p in pairs])
    r = to_batch([p[1] for p in pairs])
    return model(d, r)


def info_nce(a: torch.Tensor, p: torch.Tensor, extra_neg: torch.Tensor, tau: float) -> torch.Tensor:
    """Symmetric InfoNCE: a[i] <-> p[i] positive; other rows and extra_neg[*] negatives."""
    logits_a = a @ torch.cat([p, extra_neg]).T / tau
    logits_p = p @ torch.cat([a, extra_neg]).T / tau
    labels = torch.arange(a.shape[0])
    return 0.5 * (F.cross_entropy(logits_a, labels) + F.cross_entropy(logits_p, labels))


def fixed_val_faces(val_photos, size: int, seed: int, limit: int = 12) -> List[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for p in val_photos:
        if p.is_person and p.face_box is not None:
            c = face_crop(p, size, rng)
            if c is not None:
                out.append(c.copy())
    return out[:limit]


def train_fadex(data_dirs: Sequence[str], out: str, config_path: str | None = None, resume: bool = True,
                log=print) -> Path:
    cfg = common.load_config(DEFAULTS, config_path)
    out, train, val = common.start_run(data_dirs, out, cfg, log)
    faces_train = [p for p in train if p.is_person and p.face_box is not None]
    any_train = [p for p in train if min(p.rgb.shape[:2]) >= cfg["crop"]]
    if not faces_train:
        raise ValueError("no faces found in the training photos (need a person folder with portraits)")
    degrader = Degrader(cfg["presets"])
    val_faces = fixed_val_faces(val, max(cfg["crop"], 96), cfg["seed"])

    if cfg["init"]:
        model = FaDeXEncoder.from_pretrained(cfg["init"], low_cpu_mem_usage=False)
        log(f"starting from {cfg['init']}")
    else:
        model = FaDeXEncoder(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg["model"].items()})
    cache = _load_cache(cfg["reffr_pairs"]) if cfg["reffr_pairs"] else None
    if cache is not None:
        log(f"{len(cache['pairs'])} Ref-FR pairs over {len(cache['by_deg'])} bank degradations")
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    ckpt = out / "checkpoint_fadex"
    state = {"step": 0, "elapsed": 0.0, "history": {"step": [], "loss": [], "nce": [], "param": [],
                                                    "val_step": [], "val_cos_same_degradation": [],
                                                    "val_cos_same_photo": []}}
    rng = np.random.default_rng(cfg["seed"])
    if resume and (ckpt / "state.json").exists():
        state = common.load_checkpoint(ckpt, {"fadex": model}, opt)
        rng = common.rng_from_json(state["np_rng"])
        log(f"resumed at step {state['step']}")
    timer = common.Timer(cfg["max_minutes"], state["elapsed"])
    hist = state["history"]
    model.train()
    while state["step"] < cfg["max_steps"] and not timer.done():
        common.set_lr(opt, cfg, timer, state["step"])
        if cache is not None and rng.random() < cfg["reffr_prob"]:
            a, p, n, params, targets = _views_reffr(cache, any_train, degrader, rng, cfg)
        else:
            a, p, n, params, targets = _views(faces_train, any_train, degrader, rng, cfg)
        oa, op, on = _encode(model, a), _encode(model, p), _encode(model, n)
        nce = info_nce(oa.code, op.code, on.code, cfg["tau"])
        t = torch.tensor(targets, dtype=torch.float32)
        preg = F.smooth_l1_loss(oa.params, t, beta=0.05) + F.smooth_l1_loss(op.params, t, beta=0.05)
        loss = nce + cfg["param_weight"] * preg
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        state["step"] += 1
        if state["step"] % cfg["log_every"] == 0:
            hist["step"].append(state["step"]); hist["loss"].append(loss.item())
            hist["nce"].append(nce.item()); hist["param"].append(preg.item())
            log(f"step {state['step']} loss {loss.item():.4f} nce {nce.item():.4f} param {preg.item():.4f} "
                f"[{timer.elapsed / 60:.1f} min]")
        if state["step"] % cfg["ckpt_every"] == 0 or timer.done():
            _checkpoint(model, opt, state, rng, timer, hist, val_faces, degrader, cfg, out, ckpt, log)
    _checkpoint(model, opt, state, rng, timer, hist, val_faces, degrader, cfg, out, ckpt, log)
    model.eval()
    final = out / "fadex"
    model.save_pretrained(final)
    common.write_json_atomic(out / "train_config.json", cfg)
    log(f"saved {final}")
    return final


def _checkpoint(model, opt, state, rng, timer, hist, val_faces, degrader, cfg, out, ckpt, log):
    if len(val_faces) >= 2:
        model.eval()
        sim = code_similarity(model, val_faces, degrader, cfg["val_degradations"], seed=12345)
        model.train()
        if not hist["val_step"] or hist["val_step"][-1] != state["step"]:
            hist["val_step"].append(state["step"])
            hist["val_cos_same_degradation"].append(sim["cos_same_degradation"])
            hist["val_cos_same_photo"].append(sim["cos_same_photo"])
        state["val"] = sim
        sim = {k: v for k, v in sim.items() if not k.startswith("_")}
        log("val " + json.dumps({k: round(v, 3) for k, v in sim.items()}))
    state["elapsed"] = timer.elapsed
    state["np_rng"] = common.rng_to_json(rng)
    state["config"] = cfg
    common.save_checkpoint(ckpt, {"fadex": model}, opt, state)
    common.plot_curves(out / "loss_fadex.png", hist, "FaDeX training")
