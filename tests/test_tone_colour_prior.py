"""The learned blind colour prior of old colour prints (issue 11, item 4; ``tone.LearnedColour``,
``fit_colour_prior``, ``learned_colour_prior``, the shipped ``weights/colour_prior``)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from face2scene.degrade import degrade_with_masks
from face2scene.samples import load_sample
from face2scene.tone import (COLOUR_PRIOR_DIR, LearnedColour, colour_features, fit_colour_prior, is_monochrome,
                             learned_colour_prior, load_colour_prior, print_tone)

_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
DATA = Path(os.environ.get("F2S_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def _scene(seed, h=64, w=96):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    ph = rng.uniform(0, 6, 3)
    base = np.stack([125 + 95 * np.sin(xx / rng.uniform(15, 40) + ph[0]),
                     125 + 90 * np.cos(yy / rng.uniform(15, 40) + ph[1]),
                     120 + 95 * np.sin((xx + yy) / rng.uniform(20, 50) + ph[2])], -1)
    return np.clip(base + rng.normal(0, 2, base.shape), 0, 255).astype(np.uint8)


# a fade of the chroma: dulled and shifted towards blue-green, more in the shadows
FADE = LearnedColour(coef=np.array([[-9.0, 0.0], [0.0, -12.0], [-4.0, 3.0], [0.0, 0.0], [6.0, -8.0]], np.float32),
                     confidence=1.0)


def _chroma_err(x, clean):
    return float(np.abs((x.astype(np.float64) - clean) @ _YCC[1:].T).mean())


def test_learned_colour_keeps_the_luma_and_strength_zero_is_identity():
    photo = _scene(0)
    assert np.array_equal(FADE.apply(photo, strength=0.0), photo)
    assert np.array_equal(LearnedColour().apply(photo), photo)
    out = FADE.apply(photo)
    lum = lambda x: x.astype(np.float64) @ _YCC[0]  # noqa: E731
    inner = (photo.min(axis=2) > 20) & (photo.max(axis=2) < 235)  # away from clipping
    assert np.abs(lum(out) - lum(photo))[inner].mean() < 0.6
    assert _chroma_err(out, photo) > 5.0
    assert json.dumps(FADE.to_json())


def test_fit_recovers_a_known_chroma_fade():
    pairs = [(FADE.apply(c), c) for c in (_scene(s) for s in range(12))]
    w = fit_colour_prior(pairs, lam=1e-4)
    f = np.stack([colour_features(d) for d, _ in pairs])
    model = {"W": w, "mean": f.mean(axis=0), "std": f.std(axis=0) + 1e-3}
    clean = _scene(99)
    deg = FADE.apply(clean)
    prior = learned_colour_prior(deg, model)
    assert prior is not None and prior.confidence > 0
    before, after = _chroma_err(deg, clean), _chroma_err(prior.apply(deg), clean)
    assert after < 0.35 * before, (before, after)


def test_fit_bad_input():
    with pytest.raises(ValueError, match="no training pairs"):
        fit_colour_prior([])
    with pytest.raises(ValueError, match="shapes differ"):
        fit_colour_prior([(_scene(0), _scene(1, h=32))])
    with pytest.raises(ValueError, match="HxWx3"):
        colour_features(np.zeros((8, 8), np.uint8))


def test_confidence_falls_outside_the_training_range(tmp_path):
    n = len(colour_features(_scene(0)))
    model = {"W": np.zeros((5 * n, 2)), "mean": colour_features(_scene(0)), "std": np.full(n, 0.01)}
    far = learned_colour_prior(np.full((32, 32, 3), (250, 10, 10), np.uint8), model)
    near = learned_colour_prior(_scene(0), model)
    assert far.confidence == 0.0 and near.confidence == 1.0
    # no weights in a folder: no prior (print_tone then falls back on the grey world)
    assert load_colour_prior(tmp_path) is None
    (tmp_path / "model.json").write_text(json.dumps({"W": [[0.0, 0.0]], "mean": [0.0] * n, "std": [1.0] * n}))
    with pytest.raises(ValueError, match="wrong shape"):
        load_colour_prior(tmp_path)


def test_shipped_prior_lowers_the_colour_error_of_faded_prints_and_leaves_clean_alone():
    model = load_colour_prior()
    assert model is not None, f"no colour prior in {COLOUR_PRIOR_DIR}"
    assert model["W"].shape == (5 * len(model["mean"]), 2)
    clean = np.ascontiguousarray(load_sample()[::2, ::2])
    err = {True: [], False: []}
    for seed in range(4):
        deg, _, _ = degrade_with_masks(clean, "old_colour_print", seed=seed)
        for prior in (True, False):
            out, info = print_tone(deg, is_monochrome(deg), damaged=True, mode="auto", colour_prior=prior)
            assert ("colour_prior" in info) == prior
            err[prior].append(_chroma_err(out, clean))
    assert np.mean(err[True]) < np.mean(err[False]), err
    out, info = print_tone(clean, is_monochrome(clean))  # a clean photo is not aged: nothing runs
    assert np.array_equal(out, clean) and "colour_prior" not in info


@pytest.mark.data
@pytest.mark.skipif(not (DATA / "identities").is_dir(), reason="no development photos")
def test_prior_on_validation_photos_lowers_delta_e():
    from skimage.color import deltaE_ciede2000, rgb2lab

    from face2scene.datasets import list_photos, load_rgb, split_photos
    val = split_photos(list_photos([DATA / "scenes", DATA / "identities"]))[1][::5][:5]
    de = {True: [], False: []}
    for i, p in enumerate(val):
        clean = load_rgb(p.path, 160, resample="area")
        deg, _, _ = degrade_with_masks(clean, "old_colour_print", seed=700 + i)
        for prior in (True, False):
            out, _ = print_tone(deg, is_monochrome(deg), damaged=True, mode="auto", colour_prior=prior)
            de[prior].append(float(np.mean(deltaE_ciede2000(rgb2lab(out), rgb2lab(clean)))))
    assert np.mean(de[True]) < np.mean(de[False]), de
