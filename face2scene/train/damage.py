"""``face2scene train damage``: the learned second stage of damage detection (issue 11).

A tiny U-Net (:class:`face2scene.models.damage_seg.DamageSegNet`) learns which of the classical
rules' detections (``face2scene.damage``) are print damage and which are real content. Data, made
on the CPU from the training split (persons and scenes held out by ``datasets.split_photos``, and
every photo that ``scripts/oldprint_detect_eval.py`` measures on, are never used):

* **damaged**: the photo through ``degrade.degrade_with_masks`` (``old_print`` /
  ``old_colour_print``); pixels of the drawn defects that are visible (> ``visible`` levels against
  the same degradation without the defects) are damage, faint defect pixels are not scored;
* **aged, no defects**: the same degradation without its defects (fading, grain, blur, JPEG...):
  every detection of the rules here is a *hard negative* on a photo that looks old;
* **clean**: the photo itself: every detection is a hard negative (ropes, rails, jewellery, buttons);
* **defects on the clean photo** (``defects_on_clean``): the same defects without the ageing, so
  that a clean look is not what tells the network "no damage".

``init`` starts from a weights folder (fine-tuning). Each version is run through ``detect_damage(learned=False)`` once and cached (``OUT/data/``);
training crops are centred on the rules' detections (true and false), on defects, and at random.
The loss is a per-pixel weighted binary cross-entropy: the rules' detections (grown 2 px) and the
defects weigh 1, the loose line candidates 0.3, the rest ``bg_weight``.

Outputs in OUT: ``weights/`` (``config.json`` + ``model.safetensors``: copy it to
``face2scene/weights/damage_seg`` to ship it), ``train_config.json``, ``history.json``,
``loss_damage.png``, ``split.json`` (the photos used) and ``val_metrics.json`` (the detections of
the rules on the validation photos that the network keeps, at the shipped gate).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .common import load_config, plot_curves, setup_torch, write_json_atomic

DEFAULTS: Dict = dict(
    seed=0, threads=1, val_fraction=0.2, max_side=768, presets=["old_print", "old_colour_print"],
    degrade_seed=10_000, visible=8, max_photos=30, n_val_photos=4, workers=2, defects_on_clean=False, init="",
    crop=64, border=6, batch=12, lr=2e-3, max_steps=3000, max_minutes=18.0, widths=[16, 24, 32, 40],
    p_detection=0.55, p_defect=0.25, bg_weight=0.05, cand_weight=0.3, log_every=50, val_every=250,
)

# bits of the cached per-pixel mask byte
SCR, SPK, CAND, POS, IGN = 1, 2, 4, 8, 16


def _without_defects(params):
    p = json.loads(json.dumps(params))
    p["stages"] = [s for s in p["stages"] if s["op"] != "print_defects"]
    return p


def eval_photos(data: Path) -> set:
    """Relative paths (``identities/<person>/<file>``, ``scenes/<file>``) that
    ``scripts/oldprint_detect_eval.py`` measures on: never trained on."""
    data = Path(data)
    from importlib import util
    script = Path(__file__).resolve().parents[2] / "scripts" / "oldprint_detect_eval.py"
    out = set()
    if script.is_file():  # a source checkout: the evaluation's own lists
        spec = util.spec_from_file_location("_oldprint_detect_eval", script)
        mod = util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        out |= set(mod.SYNTH) | set(mod.VAL)
        if (data / "identities").is_dir() and (data / "scenes").is_dir():
            for held in (False, True):
                for p in mod.clean_photos(data, 20, held):
                    out.add(str(p.relative_to(data)))
    return out


def select_photos(data_dirs: Sequence[str], cfg: Dict, log=print):
    """(train, val) photo paths: the training split of ``datasets.split_photos`` without the
    evaluation's photos; ``n_val_photos`` of them are kept for validation."""
    from ..datasets import list_photos, split_photos
    photos = list_photos(data_dirs)
    train, _ = split_photos(photos, cfg["val_fraction"], cfg["seed"])
    excluded = set()
    for d in {Path(d).resolve().parent for d in data_dirs}:
        excluded |= {str(d / r) for r in eval_photos(d)}
    keep = [p.path for p in train if str(Path(p.path).resolve()) not in excluded]
    log(f"damage data: {len(train)} training-split photos, {len(train) - len(keep)} used by the evaluation left out")
    rng = np.random.default_rng(cfg["seed"])
    keep = [keep[i] for i in rng.permutation(len(keep))]
    if cfg["max_photos"]:
        keep = keep[: cfg["max_photos"]]
    n_val = min(cfg["n_val_photos"], max(0, len(keep) - 1))
    return keep[n_val:], keep[:n_val]


def _record(img: np.ndarray, gt_pos: Optional[np.ndarray], gt_ign: Optional[np.ndarray]) -> Dict[str, np.ndarray]:
    from ..damage import detect_damage
    dbg: Dict = {}
    det = detect_damage(img, learned=False, debug=dbg)
    bits = (det.scratches * SCR | det.specks * SPK | dbg["line_candidates"] * CAND).astype(np.uint8)
    if gt_pos is not None:
        bits |= (gt_pos * POS).astype(np.uint8) | (gt_ign * IGN).astype(np.uint8)
    return dict(rgb=img, thb=np.clip(np.rint(dbg["tophat_bright"]), 0, 255).astype(np.uint8),
                thd=np.clip(np.rint(dbg["tophat_dark"]), 0, 255).astype(np.uint8), bits=bits)


def build_records(path: str, index: int, cfg: Dict, cache: Path) -> List[Dict[str, np.ndarray]]:
    """The three versions of one photo (damaged, aged without defects, clean), cached as npz."""
    from .. import degrade as D
    from ..datasets import load_rgb
    f = cache / f"{index:04d}_{Path(path).stem}.npz"
    if f.is_file():
        z = np.load(f)
        return [{k: z[f"{v}_{k}"] for k in ("rgb", "thb", "thd", "bits")} for v in ("dmg", "old", "clean")]
    img = load_rgb(path, cfg["max_side"], resample="area")
    preset = cfg["presets"][index % len(cfg["presets"])]
    out, params, masks = D.degrade_with_masks(img, preset, seed=cfg["degrade_seed"] + index)
    aged = D.apply_params(img, _without_defects(params))
    diff = np.abs(out.astype(np.int16) - aged.astype(np.int16)).max(axis=2)
    gt = np.logical_or.reduce(list(masks.values()))
    pos = gt & (diff > cfg["visible"])
    ign = (cv2.dilate(gt.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0) & ~pos
    recs = [_record(out, pos, ign), _record(aged, None, None), _record(img, None, None)]
    _save(f, recs, ("dmg", "old", "clean"))
    return recs


def _save(f: Path, recs, names) -> None:
    tmp = f.with_name(f.stem + ".tmp.npz")
    np.savez_compressed(tmp, **{f"{v}_{k}": r[k] for v, r in zip(names, recs) for k in r})
    tmp.replace(f)


def build_defects_on_clean(path: str, index: int, cfg: Dict, cache: Path) -> Dict[str, np.ndarray]:
    """A fourth version: the same defects drawn on the clean photo (no fading, grain or blur), so
    that "the photo looks old" is not what tells damage from content."""
    from .. import degrade as D
    from ..datasets import load_rgb
    f = cache / f"{index:04d}_{Path(path).stem}_cdmg.npz"
    if f.is_file():
        z = np.load(f)
        return {k: z[f"cdmg_{k}"] for k in ("rgb", "thb", "thd", "bits")}
    img = load_rgb(path, cfg["max_side"], resample="area")
    preset = cfg["presets"][index % len(cfg["presets"])]
    _, params, masks = D.degrade_with_masks(img, preset, seed=cfg["degrade_seed"] + index)
    only = json.loads(json.dumps(params))
    only["stages"] = [s for s in only["stages"] if s["op"] == "print_defects"]
    out = D.apply_params(img, only)
    if out.shape != img.shape:
        raise ValueError(f"defects on the clean photo changed its size: {path}")
    diff = np.abs(out.astype(np.int16) - img.astype(np.int16)).max(axis=2)
    gt = np.logical_or.reduce(list(masks.values()))
    pos = gt & (diff > cfg["visible"])
    ign = (cv2.dilate(gt.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0) & ~pos
    rec = _record(out, pos, ign)
    _save(f, [rec], ("cdmg",))
    return rec


def _cache_one(args) -> None:
    setup_torch(1)
    build_records(*args)
    if args[2]["defects_on_clean"]:
        build_defects_on_clean(*args)


def crop_inputs(rec: Dict[str, np.ndarray], y: int, x: int, size: int):
    """(input C x s x s, target s x s, weight-class bits s x s) of a crop of a cached record."""
    from ..damage import _chroma, _luma, seg_inputs
    sl = (slice(y, y + size), slice(x, x + size))
    rgb, bits = rec["rgb"][sl], rec["bits"][sl]
    xin = seg_inputs(_luma(rgb), _chroma(rgb), rec["thb"][sl], rec["thd"][sl], (bits & SCR) > 0, (bits & SPK) > 0, (bits & CAND) > 0)
    return xin, ((bits & POS) > 0).astype(np.float32), bits


def pixel_weights(bits: np.ndarray, cfg: Dict) -> np.ndarray:
    det = cv2.dilate(((bits & (SCR | SPK)) > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    w = np.full(bits.shape, cfg["bg_weight"], np.float32)
    w[(bits & CAND) > 0] = cfg["cand_weight"]
    w[det | ((bits & POS) > 0)] = 1.0
    w[(bits & IGN) > 0] = 0.0
    b = cfg["border"]
    if b:
        w[:b], w[-b:], w[:, :b], w[:, -b:] = 0, 0, 0, 0
    return w


class CropSampler:
    def __init__(self, records: List[Dict[str, np.ndarray]], cfg: Dict, rng: np.random.Generator):
        self.recs = [r for r in records if min(r["bits"].shape) >= cfg["crop"]]
        if not self.recs:
            raise ValueError(f"no photo is at least {cfg['crop']} px on its short side")
        self.cfg, self.rng = cfg, rng
        self.det = [np.flatnonzero((r["bits"] & (SCR | SPK)) > 0) for r in self.recs]
        self.pos = [np.flatnonzero((r["bits"] & POS) > 0) for r in self.recs]

    def one(self):
        c, rng = self.cfg, self.rng
        i = int(rng.integers(len(self.recs)))
        rec = self.recs[i]
        h, w = rec["bits"].shape
        s = c["crop"]
        u = rng.random()
        pool = self.det[i] if u < c["p_detection"] else self.pos[i] if u < c["p_detection"] + c["p_defect"] else None
        if pool is not None and len(pool):
            cy, cx = divmod(int(pool[rng.integers(len(pool))]), w)
            y = int(np.clip(cy - s // 2 + rng.integers(-s // 4, s // 4 + 1), 0, h - s))
            x = int(np.clip(cx - s // 2 + rng.integers(-s // 4, s // 4 + 1), 0, w - s))
        else:
            y, x = int(rng.integers(h - s + 1)), int(rng.integers(w - s + 1))
        xin, tgt, bits = crop_inputs(rec, y, x, s)
        wgt = pixel_weights(bits, c)
        k = int(rng.integers(4))
        if k:
            xin, tgt, wgt = np.rot90(xin, k, (1, 2)), np.rot90(tgt, k), np.rot90(wgt, k)
        if rng.random() < 0.5:
            xin, tgt, wgt = xin[:, :, ::-1], tgt[:, ::-1], wgt[:, ::-1]
        return np.ascontiguousarray(xin), np.ascontiguousarray(tgt), np.ascontiguousarray(wgt)

    def batch(self, n: int):
        xs, ts, ws = zip(*(self.one() for _ in range(n)))
        return (torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ts))[:, None],
                torch.from_numpy(np.stack(ws))[:, None])


def weighted_bce(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * weight).sum() / weight.sum().clamp_min(1.0)


def component_metrics(net, records: List[Dict[str, np.ndarray]]) -> Dict[str, float]:
    """On whole photos: how many of the rules' detections (components) on true damage the gate
    keeps, and how many false ones it drops (a component is true when half of it is damage); the
    mean probability over each component against the shipped gates (an ungated class: 0)."""
    from ..damage import SEG_GATE, _components, seg_probability
    import scipy.ndimage as ndi
    tot = {"true": 0, "true_kept": 0, "false": 0, "false_dropped": 0, "false_px": 0, "false_px_dropped": 0}
    for rec in records:
        xin, _, bits = crop_inputs(rec, 0, 0, max(rec["bits"].shape))
        det = (bits & (SCR | SPK)) > 0
        prob = seg_probability(net, xin, det)
        n, lab, stats = _components(det)
        if n <= 1:
            continue
        idx = np.arange(1, n)
        p = np.asarray(ndi.mean(prob, lab, idx))
        t = np.asarray(ndi.mean(((bits & POS) > 0).astype(np.float32), lab, idx)) >= 0.5
        kind_scr = np.asarray(ndi.maximum(((bits & SCR) > 0).astype(np.float32), lab, idx)) > 0
        gate = np.where(kind_scr, SEG_GATE["scratch"] or 0.0, SEG_GATE["speck"] or 0.0)
        kept = p >= gate
        area = stats[1:, cv2.CC_STAT_AREA]
        tot["true"] += int(t.sum())
        tot["true_kept"] += int((t & kept).sum())
        tot["false"] += int((~t).sum())
        tot["false_dropped"] += int((~t & ~kept).sum())
        tot["false_px"] += int(area[~t].sum())
        tot["false_px_dropped"] += int(area[~t & ~kept].sum())
    out = dict(tot)
    out["true_kept_share"] = tot["true_kept"] / max(1, tot["true"])
    out["false_dropped_share"] = tot["false_dropped"] / max(1, tot["false"])
    out["false_px_dropped_share"] = tot["false_px_dropped"] / max(1, tot["false_px"])
    return out


def train_damage(data_dirs: Sequence[str], out: str | Path, config: Optional[str] = None,
                 overrides: Optional[Dict] = None, log=print) -> Dict:
    """Build the data (cached) and train; returns the final history entry and validation metrics."""
    from ..models.damage_seg import DamageSegNet
    cfg = load_config(DEFAULTS, config)
    if overrides:
        unknown = set(overrides) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(sorted(unknown))}")
        cfg.update(overrides)
    setup_torch(cfg["threads"])
    torch.manual_seed(cfg["seed"])
    out = Path(out)
    cache = out / "data"
    cache.mkdir(parents=True, exist_ok=True)
    t0, c0 = time.perf_counter(), time.process_time()
    train_paths, val_paths = select_photos(data_dirs, cfg, log)
    if not train_paths:
        raise ValueError("no training photos left after the split")
    write_json_atomic(out / "split.json", {"train": train_paths, "val": val_paths})
    records, val_records = [], []
    todo = val_paths + train_paths
    if cfg["workers"] > 1 and len(todo) > 1:  # cache the photos in parallel processes, then read them below
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(min(cfg["workers"], len(todo)), mp_context=mp.get_context("fork")) as ex:
            for _ in ex.map(_cache_one, [(p, i, cfg, cache) for i, p in enumerate(todo)]):
                pass
    for i, p in enumerate(todo):
        recs = build_records(p, i, cfg, cache)
        if cfg["defects_on_clean"]:
            recs.append(build_defects_on_clean(p, i, cfg, cache))
        (val_records if i < len(val_paths) else records).extend(recs)
        if (i + 1) % 10 == 0:
            log(f"  data: {i + 1}/{len(val_paths) + len(train_paths)} photos, {time.perf_counter() - t0:.0f} s")
    data_s = time.perf_counter() - t0
    log(f"damage data: {len(records)} training images, {len(val_records)} validation images, {data_s:.0f} s "
        f"(CPU {time.process_time() - c0:.0f} s)")
    rng = np.random.default_rng(cfg["seed"])
    sampler = CropSampler(records, cfg, rng)
    val_batch = CropSampler(val_records, cfg, np.random.default_rng(1)).batch(64) if val_records else None
    net = DamageSegNet.from_folder(cfg["init"]) if cfg["init"] else DamageSegNet(in_channels=9, widths=cfg["widths"])
    n_params = sum(p.numel() for p in net.parameters())
    opt = torch.optim.Adam(net.parameters(), lr=cfg["lr"])
    hist: Dict[str, List] = {"step": [], "loss": [], "val_step": [], "val_loss": []}
    t1, c1 = time.perf_counter(), time.process_time()
    limit = cfg["max_minutes"] * 60.0
    step = 0
    while step < cfg["max_steps"] and (limit <= 0 or time.perf_counter() - t1 < limit):
        frac = step / max(1, cfg["max_steps"])
        if limit > 0:
            frac = max(frac, (time.perf_counter() - t1) / limit)
        lr = cfg["lr"] * (1.0 if frac < 0.7 else max(0.05, (1 - frac) / 0.3))
        for g in opt.param_groups:
            g["lr"] = lr
        x, t, w = sampler.batch(cfg["batch"])
        net.train()
        loss = weighted_bce(net(x), t, w)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        hist["step"].append(step)
        hist["loss"].append(float(loss.detach()))
        if val_batch is not None and (step % cfg["val_every"] == 0 or step == 1):
            net.eval()
            with torch.no_grad():
                vl = float(weighted_bce(net(val_batch[0]), val_batch[1], val_batch[2]))
            hist["val_step"].append(step)
            hist["val_loss"].append(vl)
        if step % cfg["log_every"] == 0:
            log(f"  step {step}: loss {np.mean(hist['loss'][-cfg['log_every']:]):.4f}"
                + (f", val {hist['val_loss'][-1]:.4f}" if hist["val_loss"] else "")
                + f", lr {lr:.1e}, {time.perf_counter() - t1:.0f} s")
    train_s, train_cpu = time.perf_counter() - t1, time.process_time() - c1
    net.eval()
    net.save_folder(out / "weights")
    metrics = component_metrics(net, val_records) if val_records else {}
    summary = {"steps": step, "params": n_params, "data_seconds": round(data_s, 1),
               "train_seconds": round(train_s, 1), "train_cpu_seconds": round(train_cpu, 1),
               "first_loss": float(np.mean(hist["loss"][:10])), "last_loss": float(np.mean(hist["loss"][-10:])),
               "val": metrics}
    write_json_atomic(out / "train_config.json", cfg)
    write_json_atomic(out / "history.json", hist)
    write_json_atomic(out / "val_metrics.json", summary)
    try:
        plot_curves(out / "loss_damage.png", hist, f"damage segmentation ({n_params} parameters)")
    except ImportError:
        pass
    log(f"damage: {step} steps in {train_s:.0f} s (CPU {train_cpu:.0f} s), {n_params} parameters; "
        f"validation: {json.dumps(metrics)}")
    return summary
