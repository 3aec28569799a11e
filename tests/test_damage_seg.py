"""The learned second stage of damage detection (issue 11): the tiny U-Net, its weights folder,
the gate, the fallback to the classical rules, and a CPU smoke run of ``face2scene train damage``
on tiny crops (loss goes down, the saved weights load back and run in ``detect_damage``)."""
from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from face2scene import damage as dmg
from face2scene.damage import SEG_WEIGHTS_DIR, _gate, detect_damage, seg_inputs
from face2scene.models.damage_seg import DamageSegNet

from .test_oldprint import _smooth_photo

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _photo(h=200, w=240, seed=0) -> np.ndarray:
    img = _smooth_photo(h, w, seed)
    cv2.line(img, (20, 30), (220, 60), (235, 235, 235), 2, cv2.LINE_AA)  # a line for the rules to find
    cv2.circle(img, (150, 150), 3, (20, 20, 20), -1, cv2.LINE_AA)
    return img


def test_net_shapes_size_and_folder_roundtrip(tmp_path):
    net = DamageSegNet()
    n = sum(p.numel() for p in net.parameters())
    assert 20_000 <= n <= 110_000
    x = torch.randn(2, 9, 40, 56)
    assert net(x).shape == (2, 1, 40, 56)
    net.save_folder(tmp_path / "w")
    back = DamageSegNet.from_folder(tmp_path / "w")
    with torch.no_grad():
        assert torch.allclose(net.eval()(x), back(x))
    net.save_folder(tmp_path / "h", half=True)  # float16 on disk, float32 when loaded
    half = DamageSegNet.from_folder(tmp_path / "h")
    assert (tmp_path / "h" / "model.safetensors").stat().st_size < 0.6 * (tmp_path / "w" / "model.safetensors").stat().st_size
    with torch.no_grad():
        assert torch.allclose(net(x), half(x), atol=2e-2)
    with pytest.raises(ValueError):
        DamageSegNet(widths=[16])
    cfg = json.loads((tmp_path / "w" / "config.json").read_text())
    cfg["widths"] = [8, 8, 8, 8]
    (tmp_path / "w" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="do not fit"):
        DamageSegNet.from_folder(tmp_path / "w")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        DamageSegNet.from_folder(tmp_path / "nothing")


def test_gate_keeps_components_by_mean_probability():
    mask = np.zeros((20, 20), bool)
    mask[2, 2:12] = True  # component A
    mask[10:13, 10:13] = True  # component B
    prob = np.zeros((20, 20), np.float32)
    prob[2, 2:12] = 0.8
    prob[10:13, 10:13] = 0.3
    kept = _gate(mask, prob, 0.5)
    assert kept[2, 2:12].all() and not kept[10:13, 10:13].any()
    assert not _gate(mask, prob, 0.9).any()
    assert _gate(mask, prob, 0.1).sum() == mask.sum()


def test_missing_weights_fall_back_to_the_rules_with_a_warning(tmp_path):
    img = _photo()
    classical = detect_damage(img, learned=False)
    assert classical.mask.any(), "the test photo must give the rules something to judge"
    dmg._SEG_WARNED.discard(str(tmp_path / "none"))
    with pytest.warns(RuntimeWarning, match="classical rules alone"):
        det = detect_damage(img, learned="auto", seg_folder=tmp_path / "none")
    assert np.array_equal(det.mask, classical.mask) and det.info["learned"] is False
    with pytest.raises(FileNotFoundError, match="damage-segmentation weights missing"):
        detect_damage(img, learned=True, seg_folder=tmp_path / "none")
    with pytest.raises(ValueError, match="learned must be"):
        detect_damage(img, learned="yes")


def test_a_net_that_rejects_everything_removes_every_gated_detection(tmp_path, monkeypatch):
    """The gate really uses the network: a net whose bias says 'not damage' everywhere leaves
    nothing of the gated classes (here both); one that says 'damage' everywhere leaves the
    rules' result unchanged."""
    monkeypatch.setitem(dmg.SEG_GATE, "scratch", 0.5)
    monkeypatch.setitem(dmg.SEG_GATE, "speck", 0.5)
    img = _photo()
    classical = detect_damage(img, learned=False)
    assert classical.scratches.any() and classical.specks.any()
    for bias, expect in ((-20.0, np.zeros_like(classical.mask)), (20.0, classical.mask)):
        net = DamageSegNet()
        with torch.no_grad():
            for p in net.parameters():
                p.zero_()
            net.head.bias.fill_(bias)
        folder = tmp_path / f"b{bias}"
        net.save_folder(folder)
        dbg = {}
        det = detect_damage(img, learned=True, seg_folder=folder, debug=dbg)
        assert np.array_equal(det.mask, expect)
        assert det.info["learned"] is True and dbg["seg_prob"].shape == img.shape[:2]
    monkeypatch.setitem(dmg.SEG_GATE, "speck", None)  # an ungated class is left as the rules found it
    det = detect_damage(img, learned=True, seg_folder=tmp_path / "b-20.0")
    assert not det.scratches.any() and np.array_equal(det.specks, classical.specks)


def test_seg_inputs_channels():
    img = _photo()
    lum = img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    z = np.zeros(lum.shape, bool)
    x = seg_inputs(lum, None, lum * 0, lum * 0, z, z, z)
    assert x.shape == (dmg.SEG_CHANNELS,) + lum.shape and x.dtype == np.float32
    assert np.isfinite(x).all() and not x[4:].any()


def _tiny_data(root: Path):
    (root / "scenes").mkdir(parents=True)
    for i in range(4):
        cv2.imwrite(str(root / "scenes" / f"s{i}.png"), cv2.cvtColor(_photo(176, 208, seed=i), cv2.COLOR_RGB2BGR))
    return [str(root / "scenes")]


def test_train_damage_smoke_loss_decreases_and_weights_load(tmp_path):
    from face2scene.train.damage import train_damage
    torch.manual_seed(0)
    out = tmp_path / "run"
    summary = train_damage(_tiny_data(tmp_path / "data"), out, overrides=dict(
        max_side=208, crop=48, border=4, batch=6, max_steps=60, max_minutes=0, lr=3e-3, n_val_photos=1,
        log_every=1000, val_every=1000, p_detection=0.7, p_defect=0.3), log=lambda *a: None)
    assert summary["steps"] == 60
    assert summary["last_loss"] < 0.8 * summary["first_loss"], summary
    net = DamageSegNet.from_folder(out / "weights")
    assert net.config["in_channels"] == dmg.SEG_CHANNELS
    for f in ("train_config.json", "history.json", "val_metrics.json", "split.json"):
        assert (out / f).is_file()
    det = detect_damage(_photo(seed=7), learned=True, seg_folder=out / "weights")
    assert det.info["learned"] is True


def test_shipped_weights_match_their_checksums():
    sums = SEG_WEIGHTS_DIR / "SHA256SUMS"
    if not sums.is_file():
        pytest.skip("no shipped damage-segmentation weights")
    for line in sums.read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((SEG_WEIGHTS_DIR / name).read_bytes()).hexdigest() == digest, name
    net = DamageSegNet.from_folder(SEG_WEIGHTS_DIR)
    assert sum(p.numel() for p in net.parameters()) <= 110_000
    assert sum(f.stat().st_size for f in SEG_WEIGHTS_DIR.iterdir()) < 500_000


def test_train_cli_registers_damage(tmp_path):
    from face2scene.cli.train import register
    import argparse
    ap = argparse.ArgumentParser()
    register(ap.add_subparsers(dest="command"))
    args = ap.parse_args(["train", "damage", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert args.func(args) == 2  # a missing data folder is a clear error, not a crash


def _aged_photo(seed):
    from face2scene import degrade as D
    return D.degrade_with_masks(_smooth_photo(384, 512, seed), "old_print", seed=seed)


@pytest.mark.parametrize("seed", [0, 1])
def test_shipped_gate_keeps_the_scratches_of_a_synthetic_old_print(seed):
    """On an aged print (the degradation model), the shipped gate keeps what the rules found."""
    if not (SEG_WEIGHTS_DIR / "model.safetensors").is_file():
        pytest.skip("no shipped damage-segmentation weights")
    out, _, m = _aged_photo(seed)
    gt = m["scratch"] | m["hair"] | m["crease"]
    rules = detect_damage(out, learned=False)
    det = detect_damage(out, learned=True)
    iou = lambda d: (d.scratches & gt).sum() / max(1, (d.scratches | gt).sum())  # noqa: E731
    assert iou(det) >= 0.6 and iou(det) >= iou(rules) - 0.05


def _old_photo(name):
    from face2scene.io import load_image
    path = DATA / "old_photos" / name
    if not path.is_file():
        pytest.skip(f"{path} not available")
    rgb = load_image(path).rgb
    s = 768 / max(rgb.shape[:2])
    return cv2.resize(rgb, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else rgb


def test_real_photos_rope_dropped_cracks_kept():
    """bopbtl_old_f: the rules take a mooring rope and a railing for scratches, the gate drops
    them; bopbtl_scratch_b: the real cracks the rules find are kept."""
    if not (SEG_WEIGHTS_DIR / "model.safetensors").is_file():
        pytest.skip("no shipped damage-segmentation weights")
    harbour = _old_photo("bopbtl_old_f.png")
    rules, det = detect_damage(harbour, learned=False), detect_damage(harbour, learned=True)
    assert rules.scratches.sum() > 100 and det.scratches.sum() <= 0.2 * rules.scratches.sum()
    cracked = _old_photo("bopbtl_scratch_b.png")
    rules, det = detect_damage(cracked, learned=False), detect_damage(cracked, learned=True)
    assert rules.scratches.sum() > 100 and det.scratches.sum() >= 0.8 * rules.scratches.sum()
