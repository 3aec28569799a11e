"""Shared training plumbing: configs, seeded RNG, resumable safetensors checkpoints, loss curves."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from safetensors.torch import load_file, save_file


def setup_torch(threads: int = 1) -> None:
    torch.set_flush_denormal(True)  # CPU convs run 4-70x slower on denormals (DESIGN.md)
    torch.set_num_threads(max(1, int(threads)))


def load_config(defaults: Dict, path: Optional[str], overrides: Optional[Dict] = None) -> Dict:
    """``defaults`` updated from the JSON file at ``path``, then from ``overrides`` (scripts, tests);
    an unknown key in either is an error."""
    def checked(user: Dict, where: str) -> Dict:
        unknown = set(user) - set(defaults)
        if unknown:
            raise ValueError(f"unknown {where}: {', '.join(sorted(unknown))}")
        return user

    cfg = dict(defaults)
    if path:
        with open(path) as f:
            cfg.update(checked(json.load(f), f"keys in {path}"))
    if overrides:
        cfg.update(checked(overrides, "training keys"))
    return cfg


def write_json_atomic(path: Path, obj) -> None:
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, default=str)
    os.replace(tmp, path)


def _optimizer_tensors(opt: torch.optim.Optimizer) -> Dict[str, torch.Tensor]:
    out = {}
    for pid, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            out[f"{pid}.{k}"] = v if torch.is_tensor(v) else torch.tensor(v)
    return out


def _load_optimizer(opt: torch.optim.Optimizer, tensors: Dict[str, torch.Tensor]) -> None:
    sd = opt.state_dict()
    state: Dict[int, Dict] = {}
    for key, v in tensors.items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    sd["state"] = state
    opt.load_state_dict(sd)


def save_checkpoint(ckpt_dir: Path, models: Dict[str, torch.nn.Module], opt: torch.optim.Optimizer,
                    state: Dict) -> None:
    """models saved with save_pretrained (safetensors); optimizer moments as safetensors; the rest
    (step, history, RNG states) as JSON. Written to a temp folder and renamed: never half-written."""
    ckpt_dir = Path(ckpt_dir)
    tmp = ckpt_dir.with_name(ckpt_dir.name + ".tmp")
    if tmp.exists():
        import shutil
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for name, m in models.items():
        if hasattr(m, "save_pretrained"):
            m.save_pretrained(tmp / name)
        else:  # adapters on a frozen base model: only the trainable tensors
            save_file({k: v.detach().cpu().contiguous() for k, v in m.named_parameters() if v.requires_grad},
                      str(tmp / f"{name}.safetensors"))
    save_file({k: v.contiguous() for k, v in _optimizer_tensors(opt).items()}, str(tmp / "optimizer.safetensors"))
    save_file({"torch_rng": torch.get_rng_state()}, str(tmp / "rng.safetensors"))
    write_json_atomic(tmp / "state.json", state)
    if ckpt_dir.exists():
        import shutil
        old = ckpt_dir.with_name(ckpt_dir.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(ckpt_dir, old)
        os.replace(tmp, ckpt_dir)
        shutil.rmtree(old)
    else:
        os.replace(tmp, ckpt_dir)


def load_checkpoint(ckpt_dir: Path, models: Dict[str, torch.nn.Module], opt: torch.optim.Optimizer) -> Dict:
    ckpt_dir = Path(ckpt_dir)
    for name, m in models.items():
        if hasattr(m, "save_pretrained"):
            m.load_state_dict(load_file(str(ckpt_dir / name / "diffusion_pytorch_model.safetensors")))
        else:
            sd = load_file(str(ckpt_dir / f"{name}.safetensors"))
            missing = {k for k, v in m.named_parameters() if v.requires_grad} - set(sd)
            if missing:
                raise ValueError(f"checkpoint {ckpt_dir} lacks {len(missing)} trainable tensors of {name}")
            m.load_state_dict(sd, strict=False)
    _load_optimizer(opt, load_file(str(ckpt_dir / "optimizer.safetensors")))
    torch.set_rng_state(load_file(str(ckpt_dir / "rng.safetensors"))["torch_rng"])
    with open(ckpt_dir / "state.json") as f:
        return json.load(f)


def rng_to_json(rng: np.random.Generator) -> Dict:
    return rng.bit_generator.state


def rng_from_json(state: Dict) -> np.random.Generator:
    rng = np.random.default_rng()
    rng.bit_generator.state = state
    return rng


def plot_curves(path: Path, history: Dict[str, List], title: str) -> None:
    """history: {"step": [...], name: [...], ...}; one panel per series, written atomically."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [k for k in history if k != "step" and not k.startswith("val_step")]
    if not names:
        return
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3), squeeze=False)
    for ax, k in zip(axes[0], names):
        ys = history[k]
        xs = history["val_step"] if k.startswith("val_") else history["step"]
        xs = xs[:len(ys)]
        ax.plot(xs, ys, lw=0.8)
        if len(ys) > 20 and not k.startswith("val_"):
            w = max(5, len(ys) // 20)
            sm = np.convolve(ys, np.ones(w) / w, mode="valid")
            ax.plot(xs[w - 1:], sm, lw=1.5)
        ax.set_title(k)
        ax.set_xlabel("step")
    fig.suptitle(title)
    fig.tight_layout()
    tmp = Path(str(path) + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, path)


def start_run(data_dirs, out, cfg: Dict, log=print):
    """Common start of a training run: threads, seed, output folder, photos loaded and split into
    train / validation by whole groups; the split is written to ``out/split.json``."""
    from ..datasets import list_photos, load_photos, split_photos
    setup_torch(cfg["threads"])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg["seed"])
    train, val = split_photos(list_photos(data_dirs), cfg["val_fraction"], cfg["seed"])
    load_photos(train + val, cfg["max_side"], log=log)
    write_json_atomic(out / "split.json", {"train": sorted(p.path for p in train), "val": sorted(p.path for p in val),
                                           "val_groups": sorted({p.group for p in val})})
    return out, train, val


def set_lr(opt, cfg: Dict, timer: "Timer", step: int) -> float:
    """Constant learning rate, then linear decay (to 5%) over the last part of the run, measured in
    wall-clock time when the run is time-boxed, else in steps."""
    frac = timer.elapsed / timer.limit if timer.limit > 0 else step / max(1, cfg["max_steps"])
    start = cfg.get("decay_from", 1.0)
    lr = cfg["lr"] if frac < start else cfg["lr"] * max(0.05, (1 - frac) / max(1e-6, 1 - start))
    for g in opt.param_groups:
        g["lr"] = lr
    return lr


class Timer:
    def __init__(self, minutes: float, already: float = 0.0):
        self.limit = minutes * 60.0
        self.t0 = time.time() - already

    @property
    def elapsed(self) -> float:
        return time.time() - self.t0

    def done(self) -> bool:
        return self.limit > 0 and self.elapsed >= self.limit


def write_result(folder: Path, models: Dict[str, torch.nn.Module], cfg: Dict, run_dir: Path,
                 metrics: Optional[Dict] = None) -> Path:
    """A run's result folder: each model saved with ``save_pretrained`` under its name, the
    training config, the run's split and (when given) ``val_metrics.json``."""
    folder = Path(folder)
    for name, m in models.items():
        m.save_pretrained(folder / name)
    write_json_atomic(folder / "train_config.json", cfg)
    write_json_atomic(folder / "split.json", json.loads((Path(run_dir) / "split.json").read_text()))
    if metrics is not None:
        write_json_atomic(folder / "val_metrics.json", metrics)
    return folder


def end_step(state: Dict, loss: torch.Tensor, parts: Dict[str, torch.Tensor], adv: torch.Tensor, cfg: Dict,
             log, lr: float, minutes: float) -> None:
    """After an optimiser step: stop on a non-finite loss, count the step and, every ``log_every``
    steps, append the loss and its ``parts`` (and the adversarial term) to ``state["history"]`` and log them."""
    if not torch.isfinite(loss):
        raise FloatingPointError(f"loss is {loss.item()} at step {state['step'] + 1}")
    state["step"] += 1
    if state["step"] % cfg["log_every"]:
        return
    hist = state["history"]
    hist["step"].append(state["step"])
    hist["loss"].append(loss.item())
    for k, v in parts.items():
        hist[k].append(v.item())
    hist["adv"].append(adv.item())
    terms = " ".join(f"{k} {v.item():.4f}" for k, v in parts.items())
    log(f"step {state['step']} loss {loss.item():.4f} ({terms} adv {adv.item():.3f}) lr {lr:.2e} [{minutes:.1f} min]")

