"""How much of the old-print colour correction the evidence supports (``tone.colour_guard``,
issue 11: "monochrome and sepia respected", "nothing surprising"): a print's own colour — a
hand tint on a warm-toned print — is not a cast and keeps its colour; a colour cast on a photo
with normal skin is still removed. Synthetic photos with a face placed at the landmarks."""
from __future__ import annotations

import numpy as np
import pytest

from face2scene.faces.align import template
from face2scene.tone import (SKIN_AXIS, SKIN_RANGE, ChromaMap, _keep_within, colour_guard, is_monochrome,
                             print_tone)

_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
FACE = (64, 64, 128)  # x0, y0, side of the face square (the 128 px template placed there)


def _ycc(rgb):
    return rgb.astype(np.float64) @ _YCC.T


def _from_ycc(ycc):
    return np.clip(ycc @ np.linalg.inv(_YCC).T, 0, 255).round().astype(np.uint8)


def _landmarks():
    x0, y0, side = FACE
    return template(side).astype(np.float32) + np.float32([x0, y0])


def _luma_scene(h=256, w=320, seed=0):
    """A grey scene with shading and texture spanning most of the range, a face-like blob of
    mid-light grey in FACE."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    y = 128 + 90 * np.sin(xx / 37.0) * np.cos(yy / 29.0) + 20 * np.sin((xx + 2 * yy) / 11.0)
    x0, y0, side = FACE
    fy, fx = np.mgrid[0:side, 0:side] / side
    y[y0:y0 + side, x0:x0 + side] = 170 + 20 * np.cos((fx - 0.5) * 2.5) * (1 - 0.3 * fy)
    return np.clip(y + rng.normal(0, 2, y.shape), 2, 250)


def _hand_tinted():
    """A faded warm-toned (sepia) print with a hand-painted face and coat: the chroma of the
    base lies on one tone curve of the luma (sepia), the tints sit on it in two regions."""
    y = _luma_scene()
    ycc = np.stack([y, np.zeros_like(y), np.zeros_like(y)], -1)
    t = y / 255.0
    ycc[..., 1] = -22 * 4 * t * (1 - t)  # sepia: yellow-brown, strongest in the mid-tones
    ycc[..., 2] = 16 * 4 * t * (1 - t)
    x0, y0, side = FACE
    ycc[y0:y0 + side, x0:x0 + side, 1:] = (-12.0, 18.0)  # the painted skin: pale peach, as tints are
    ycc[200:250, 200:310, 1:] = (18.0, -6.0)  # a painted blue coat
    rgb = _from_ycc(ycc).astype(np.float64)
    # faded and yellowed: lifted blacks, dull whites, the blue whites lowest (old paper)
    lo, hi = np.array([38.0, 36.0, 30.0]), np.array([222.0, 214.0, 196.0])
    return (lo + rgb / 255.0 * (hi - lo)).round().astype(np.uint8)


def _colour_photo_with_cast():
    """A colour photo (red, green, blue areas) with a face of normal skin, faded with a yellow
    cast (dull blue whites, a mid-tone yellow-red cast)."""
    y = _luma_scene(seed=1)
    h, w = y.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    ycc = np.stack([y, 25 * np.sin(xx / 23.0), 25 * np.cos(yy / 19.0)], -1)
    x0, y0, side = FACE
    ycc[y0:y0 + side, x0:x0 + side, 1:] = (-18.0, 26.0)  # clean skin (SKIN_AXIS, 31.6 along it)
    clean = _from_ycc(ycc)
    cast = ChromaMap(saturation=0.8, cast=np.array([-16.0, 10.0], np.float32)).apply(clean)
    lo, hi = np.array([34.0, 30.0, 26.0]), np.array([224.0, 216.0, 190.0])
    return clean, (lo + cast.astype(np.float64) / 255.0 * (hi - lo)).round().astype(np.uint8)


def _region_chroma(rgb, sl):
    return _ycc(rgb[sl])[..., 1:].reshape(-1, 2).mean(axis=0)


FACE_SL = (slice(FACE[1] + 32, FACE[1] + 96), slice(FACE[0] + 32, FACE[0] + 96))
COAT_SL = (slice(205, 245), slice(205, 305))
BASE_SL = (slice(0, 40), slice(0, 320))


def test_hand_tinted_print_keeps_its_tint():
    photo = _hand_tinted()
    mono = is_monochrome(photo)
    assert not mono.mono  # the tints make it a colour photo for the pipeline
    lm = [_landmarks()]
    out0, info0 = print_tone(photo, mono, mode="auto", landmarks=lm, guard=False)
    out1, info1 = print_tone(photo, mono, mode="auto", landmarks=lm)
    assert info0["levels"]["aged"] and info1["levels"]["aged"]  # the print is faded: levels run
    g = info1["colour_guard"]
    assert g["kept"] < 0.9 and len(g["faces"]) == 1
    skin_in = _region_chroma(photo, FACE_SL) @ SKIN_AXIS
    skin_main, skin_guard = (_region_chroma(o, FACE_SL) @ SKIN_AXIS for o in (out0, out1))
    # without the guard the painted skin loses a good part of its colour ("ashen", paler than
    # clean skin ever is); with it, it stays skin: at least the pale end of clean skin
    assert skin_main < SKIN_RANGE[0] - 2.0 < skin_in - 2.0
    assert skin_guard > SKIN_RANGE[0] - 1.0
    # the coat stays blue, the sepia base stays warm with most of its colour
    coat = _region_chroma(out1, COAT_SL)
    assert coat[0] > 3.0 and coat[1] < 0.0
    base_in, base_out = _region_chroma(photo, BASE_SL), _region_chroma(out1, BASE_SL)
    assert base_out[0] < 0 < base_out[1] and np.hypot(*base_out) > 0.6 * np.hypot(*base_in)
    # the luma stretch is the same with and without the guard
    lum = lambda x: x.astype(np.float64) @ _YCC[0]  # noqa: E731
    assert np.abs(lum(out1) - lum(out0)).mean() < 1.5


def test_colour_cast_is_still_removed():
    clean, photo = _colour_photo_with_cast()
    mono = is_monochrome(photo)
    out0, _ = print_tone(photo, mono, mode="auto", guard=False)
    out1, info = print_tone(photo, mono, mode="auto", landmarks=[_landmarks()])
    assert info["levels"]["aged"]
    assert info["colour_guard"]["kept"] == pytest.approx(1.0)
    assert np.array_equal(out1, out0)  # the guard takes nothing away from a cast removal
    # and the removal works: the mean chroma error against the clean photo falls
    err = lambda x: np.abs(_ycc(x)[..., 1:] - _ycc(clean)[..., 1:]).mean()  # noqa: E731
    assert err(out1) < 0.8 * err(photo)


def test_guard_without_faces_and_bad_input():
    clean, photo = _colour_photo_with_cast()
    k, rep = colour_guard(photo, clean)
    assert k == 1.0 and rep["faces"] == []
    with pytest.raises(ValueError):
        colour_guard(photo, clean[:10])
    with pytest.raises(ValueError):
        colour_guard(photo, clean, [np.zeros((3, 2))])
    with pytest.raises(ValueError):
        colour_guard(photo, clean, [np.full((5, 2), np.nan)])


@pytest.mark.parametrize("x0,x1,k", [
    (30.0, 10.0, (30.0 - SKIN_RANGE[0]) / 20.0),  # inside, would leave below: stops at the bound
    (30.0, 35.0, 1.0),  # stays inside
    (15.0, 10.0, 0.0),  # below already, further below: nothing
    (15.0, 25.0, 1.0),  # below, moved in: all of it
    # above by o: may cross to as far below (o = 50 - hi, allowed down to lo - o)
    (50.0, 10.0, (50.0 - (SKIN_RANGE[0] - (50.0 - SKIN_RANGE[1]))) / 40.0),
])
def test_keep_within(x0, x1, k):
    assert _keep_within(x0, x1, *SKIN_RANGE) == pytest.approx(min(1.0, max(0.0, k)), abs=1e-6)


def test_guard_left_to_the_references_when_the_colour_comes_from_them():
    """With the person's references the colour is fitted on the face against their skin (a
    better oracle for this photo than everyone's skin range): the guard does not limit it."""
    from face2scene.faces.align import align_face
    photo = _hand_tinted()
    lm = _landmarks()
    crop = align_face(photo, lm, 128)[0]
    ycc = _ycc(crop)
    ycc[..., 1:] = (-18.0, 26.0)  # the references: the same face in clean skin colour
    ref = _from_ycc(ycc)
    out, info = print_tone(photo, is_monochrome(photo), mode="faces", faces=[(crop, [ref, ref.copy()])],
                           landmarks=[lm])
    assert info["colour"]["source"] == "faces"
    assert info["colour_guard"]["kept"] == 1.0 and "references" in info["colour_guard"]["skipped"]
    # and the skin is taken towards the references' colour, not made ashen
    assert _region_chroma(out, FACE_SL) @ SKIN_AXIS > SKIN_RANGE[0]
