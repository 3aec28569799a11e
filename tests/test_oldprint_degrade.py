"""Old-print presets (issue 11): reproducible, every parameter logged, masks cover the damage."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from face2scene import degrade as D

OLD = ("old_print", "old_colour_print", "halftone")


def _photo(h=96, w=128, seed=0) -> np.ndarray:
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([xx / w * 170 + 40, yy / h * 150 + 50, (xx + yy) / (w + h) * 120 + 60], -1)
    base += cv2.GaussianBlur(r.normal(0, 25, base.shape).astype(np.float32), (0, 0), 3)
    return np.clip(base, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("preset", OLD)
def test_reproducible_and_logged(preset):
    img = _photo()
    for seed in range(3):
        out, p, masks = D.degrade_with_masks(img, preset, seed)
        pj = json.loads(json.dumps(p))
        assert pj == p and p["preset"] == preset
        assert np.array_equal(D.apply_params(img, pj), out)
        assert set(masks) == set(D.DEFECT_CLASSES)
        assert all(m.shape == img.shape[:2] and m.dtype == bool for m in masks.values())
        lab = D.defect_label_map(masks)
        assert lab.dtype == np.uint8 and lab.max() <= len(D.DEFECT_CLASSES)


def _without_defects(params):
    p = json.loads(json.dumps(params))
    p["stages"] = [s for s in p["stages"] if s["op"] != "print_defects"]
    return p


@pytest.mark.parametrize("preset", ["old_print", "old_colour_print"])
def test_masks_cover_the_drawn_damage(preset):
    """Where the damage changed the image by more than 25 levels, the mask (grown by the scan's
    blur, 2 px) is set; and most of each mask is visibly damaged."""
    img = _photo(160, 200)
    for seed in range(4):
        out, p, masks = D.degrade_with_masks(img, preset, seed)
        clean = D.apply_params(img, _without_defects(p))
        diff = np.abs(out.astype(np.int16) - clean.astype(np.int16)).max(axis=2)
        any_mask = np.logical_or.reduce(list(masks.values()))
        grown = cv2.dilate(any_mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        changed = diff > 25
        # creases shade a band around the fold (lighting, not a defect to inpaint)
        assert (changed & ~grown).sum() <= 0.002 * changed.size + 0.02 * changed.sum()
        assert changed[any_mask].mean() > 0.3 or not any_mask.any()


def test_mask_classes_follow_items():
    params = {"preset": "custom", "seed": 0, "size": [80, 60], "stages": [{"op": "print_defects", "items": [
        {"kind": "scratch", "points": [[10, 5], [12, 55]], "width": 2, "value": 250, "alpha": 1.0},
        {"kind": "dust", "center": [50, 30], "axes": [2.5, 2.0], "angle": 0, "value": 10, "alpha": 1.0},
        {"kind": "tear", "points": [[79, 10], [60, 15]], "width": 3, "value": 240, "alpha": 1.0}]}]}
    m = D.defect_masks(params)
    assert m["scratch"][30, 11] and not m["scratch"][30, 30]
    assert m["dust"][30, 50] and m["dust"].sum() < 30
    assert m["crease"][12, 70] and not m["hair"].any()
    img = np.full((60, 80, 3), 128, np.uint8)
    out = D.apply_params(img, params)
    assert out[30, 11].min() > 230 and out[30, 50].max() < 30


def test_old_print_is_toned_monochrome():
    """old_print: the colour depends on the grey level only (neutral or one tone), up to JPEG."""
    img = _photo(128, 128, 3)
    for seed in range(4):
        out, p = D.degrade(img, "old_print", seed)
        ycc = cv2.cvtColor(out, cv2.COLOR_RGB2YCrCb).astype(np.float64)
        y, cr, cb = ycc[..., 0].ravel(), ycc[..., 1].ravel(), ycc[..., 2].ravel()
        bins = np.clip((y / 16).astype(int), 0, 15)
        res = []
        for c in (cr, cb):
            med = np.array([np.median(c[bins == b]) if (bins == b).any() else 0 for b in range(16)])
            res.append(c - med[bins])
        assert np.hypot(*res).std() < 3.0
        tone = next(s for s in p["stages"] if s["op"] == "print_tone")
        assert tone["tone"] in ("neutral", "sepia")


def test_colour_print_casts_and_halftone_logged():
    img = _photo()
    casts = []
    for seed in range(8):
        _, p = D.degrade(img, "old_colour_print", seed)
        fade = next(s for s in p["stages"] if s["op"] == "print_fade")
        casts.append(fade["white"][0] - fade["white"][2])  # yellowing: blue highlights lowered
        assert len(fade["black"]) == 3 and len(fade["gamma"]) == 3
        _, ph = D.degrade(img, "halftone", seed)
        scr = next(s for s in ph["stages"] if s["op"] == "screen")
        assert 4 <= scr["period"] <= 10 and scr["frequency"] == pytest.approx(1 / scr["period"], rel=1e-4)
        assert not any(s["op"] == "resize" for s in ph["stages"])
    assert max(casts) > 20
