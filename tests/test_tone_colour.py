"""Colour of old prints after the levels (issue 11, item 4): the face as the colour oracle
(``tone.fit_colour_from_faces``), the blind grey world, the fading evidence that keeps clean
photos unchanged. Synthetic photos with a known transform."""
from __future__ import annotations

import numpy as np
import pytest

from face2scene.degrade import degrade_with_masks
from face2scene.samples import load_sample
from face2scene.tone import (CLEAN_BLACK, CLEAN_WHITE, ChromaMap, auto_levels, fading_evidence,
                             fit_colour_from_faces, grey_world_cast)

_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def _chroma(rgb):
    return rgb.astype(np.float64) @ _YCC[1:].T


def _skin_face(size=128, seed=0, light=1.0):
    """A face-like crop: skin colour, shaded left to right and top to bottom, a little noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    shade = (0.75 + 0.25 * np.cos((xx - 0.5) * 2.5)) * (0.85 + 0.15 * (1 - yy))
    skin = np.array([205.0, 150.0, 125.0])
    face = skin * shade[..., None] * light + rng.normal(0, 2, (size, size, 3))
    return np.clip(face, 0, 255).astype(np.uint8)


def _scene(h=128, w=256, seed=1):
    """Colourful smooth scene (red, green, blue, grey areas) spanning most of the range."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([120 + 100 * np.sin(xx / 40), 120 + 90 * np.cos(yy / 30), 110 + 100 * np.sin((xx + yy) / 50)], -1)
    return np.clip(base + rng.normal(0, 2, base.shape), 0, 255).astype(np.uint8)


def _photo_with_face(face):
    return np.concatenate([_scene(face.shape[0], 2 * face.shape[1]), face], axis=1)


FADE = ChromaMap(saturation=0.6, cast=np.array([8.0, -10.0], np.float32))  # dulled, blue-green mid-tones


def test_chroma_map_identity_and_strength():
    photo = _photo_with_face(_skin_face())
    assert np.array_equal(ChromaMap().apply(photo), photo)
    assert np.array_equal(FADE.apply(photo, strength=0.0), photo)
    faded = FADE.apply(photo)
    # the luma is kept (up to rounding), only the chroma moves
    lum = lambda x: x.astype(np.float64) @ _YCC[0]  # noqa: E731
    assert np.abs(lum(faded) - lum(photo)).mean() < 1.0
    assert np.abs(_chroma(faded)).mean() < np.abs(_chroma(photo)).mean()
    assert isinstance(FADE.to_json(), dict)


def test_face_colour_recovers_a_known_fade_and_references_lower_the_error():
    face = _skin_face()
    photo = _photo_with_face(face)
    faded = FADE.apply(photo)
    deg_face = faded[:, -face.shape[1]:]
    refs = [_skin_face(seed=s, light=l) for s, l in ((3, 0.9), (4, 1.05), (5, 1.0))]  # other light, same skin
    blind = grey_world_cast(faded)
    fit = fit_colour_from_faces([(deg_face, refs)], prior=blind)
    assert fit.source == "faces" and fit.confidence > 0.8  # three references that agree
    assert fit.saturation > 1.2  # the lost saturation comes back
    m = slice(32, 96)

    def face_err(x):  # the inner face's median chroma against the clean face's
        return np.abs(np.median(_chroma(x[m, m]).reshape(-1, 2), 0) - np.median(_chroma(face[m, m]).reshape(-1, 2), 0)).max()
    # regularised (three unknowns, two equations per face, lighting differs between photos):
    # most of the way, not all of it
    assert face_err(fit.apply(deg_face)) < 0.5 * face_err(deg_face)
    # with little regularisation the face lands on its references' skin chroma
    loose = fit_colour_from_faces([(deg_face, refs)], prior=blind, cast_weight=0.05, saturation_weight=0.05,
                                  max_saturation=3.0)
    assert face_err(loose.apply(deg_face)) < 3.0
    e_in = np.abs(_chroma(faded) - _chroma(photo)).mean()
    e_blind = np.abs(_chroma(blind.apply(faded)) - _chroma(photo)).mean()
    e_faces = np.abs(_chroma(fit.apply(faded)) - _chroma(photo)).mean()
    assert e_faces < e_blind and e_faces < 0.75 * e_in, (e_in, e_blind, e_faces)


def test_face_colour_confidence_from_reference_agreement():
    face = _skin_face()
    deg = FADE.apply(face)
    agree = fit_colour_from_faces([(deg, [_skin_face(seed=3), _skin_face(seed=4)])])
    one = fit_colour_from_faces([(deg, [_skin_face(seed=3)])])
    warm = np.clip(_skin_face(seed=4).astype(float) * [1.1, 0.95, 0.7], 0, 255).astype(np.uint8)
    cool = np.clip(_skin_face(seed=5).astype(float) * [0.75, 1.0, 1.3], 0, 255).astype(np.uint8)
    disagree = fit_colour_from_faces([(deg, [_skin_face(seed=3), warm, cool])])
    assert agree.confidence > 0.8 and one.confidence <= 0.5 and disagree.confidence < agree.confidence
    none = fit_colour_from_faces([(deg, [])], prior=grey_world_cast(deg))
    assert none.confidence == 0.0 and none.details["reason"]


def test_no_cast_no_change():
    """A face that already has its references' colour: the map is (nearly) the identity."""
    face = _skin_face()
    fit = fit_colour_from_faces([(face, [_skin_face(seed=7), _skin_face(seed=8)])])
    assert abs(fit.saturation - 1.0) < 0.05 and np.abs(fit.cast).max() < 2.0
    photo = _photo_with_face(face)
    changed = np.abs(fit.apply(photo).astype(int) - photo.astype(int)).max(axis=2) > 8
    assert changed.mean() < 0.01


def test_fading_evidence_clean_versus_faded():
    clean = np.ascontiguousarray(load_sample()[:256, :256])
    assert fading_evidence(clean) == 0.0
    deg, _, _ = degrade_with_masks(clean, "old_colour_print", seed=3)
    assert fading_evidence(deg) > 0.5
    # levels take it to the clean photos' points, not to the ends of the range
    lv = auto_levels(deg)
    out = lv.apply(deg).astype(np.float64) @ _YCC[0]
    assert lv.confidence > 0
    assert abs(np.percentile(out, 0.5) - CLEAN_BLACK) < 12 and abs(np.percentile(out, 99.5) - CLEAN_WHITE) < 12


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint8)])
def test_grey_world_on_flat_or_bad_input(bad):
    black = np.zeros((32, 32, 3), np.uint8)
    assert grey_world_cast(black).confidence == 0.0
    with pytest.raises(ValueError, match="HxWx3"):
        grey_world_cast(bad)
    with pytest.raises(ValueError, match="HxWx3"):
        fading_evidence(bad)
    with pytest.raises(ValueError, match="shape"):
        fit_colour_from_faces([(_skin_face(64), [_skin_face(32)])])


def test_yellowed_print_white_balance_goes_three_quarters_of_the_way():
    """A yellowed base (blue whites lowered, grey world agreeing): the blind levels' white-patch
    balance takes out three quarters of the blue deficit by default (chosen on the training
    split, docs/oldprints/README.md), half of it at ``balance_strength=0.5``, all of it at 1."""
    from face2scene.degrade import apply_params
    clean = np.ascontiguousarray(load_sample()[::2, ::2])
    fade = {"stages": [{"op": "print_fade", "saturation": 1.0, "gamma": [1.0, 1.0, 1.0],
                        "black": [30.0, 28.0, 25.0], "white": [225.0, 222.0, 175.0]}]}
    deg = apply_params(clean, fade)

    def gap(x):  # green minus blue whites (p99.5); 0 on the clean photo
        p = np.percentile(x.reshape(-1, 3).astype(np.float64), 99.5, axis=0)
        return p[1] - p[2]

    assert abs(gap(clean)) <= 2 and gap(deg) > 40
    gaps = {k: gap(auto_levels(deg, balance_strength=k).apply(deg)) for k in (0.5, 1.0)}
    levels = auto_levels(deg)
    assert levels.confidence > 0.5 and levels.details["agreement"] == 1.0
    out = levels.apply(deg)
    assert abs(gaps[1.0]) <= 2 < gap(out) < gaps[0.5]
    assert gap(out) < 0.25 * gap(deg) + 2
    assert np.abs(out.astype(np.float64) - clean).mean() < np.abs(
        auto_levels(deg, balance_strength=0.5).apply(deg).astype(np.float64) - clean).mean()
