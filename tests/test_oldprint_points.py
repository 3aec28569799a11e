"""scripts/oldprint_points_fit.py (issue 11, black and white points): its regressions, the
face-anchor estimate and the realised bench error, on synthetic data (no photos needed); and the
ambiguity it measures: a hazy original faded a little and a full-range one faded more give the
same print, so the blind levels (any function of the print) cannot be within 10 levels of both."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from face2scene.degrade import apply_params
from face2scene.samples import load_sample
from face2scene.tone import CLEAN_BLACK, CLEAN_WHITE, auto_levels

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture(scope="module")
def pf():
    sys.path.insert(0, str(SCRIPTS))  # the script imports its sibling scripts
    try:
        spec = importlib.util.spec_from_file_location("oldprint_points_fit", SCRIPTS / "oldprint_points_fit.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(SCRIPTS))
    return mod


def _fade(rgb, black, white):
    return apply_params(rgb, {"stages": [{"op": "print_fade", "saturation": 1.0, "gamma": [1.0] * 3,
                                          "black": [black] * 3, "white": [white] * 3}]})


def test_ridge_and_knn_recover_a_known_relation(pf):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 100, (400, 3))
    y = np.c_[2.0 + 0.5 * x[:, 0] - 0.2 * x[:, 2], 240.0 - 0.1 * x[:, 1]]
    assert np.abs(pf.ridge(x, y, 1e-6)(x) - y).max() < 1e-6
    near = pf.knn(x, y, 5)(x[:20])
    assert np.abs(near - y[:20]).mean() < 3.0


def test_features_are_finite_for_every_kind(pf):
    p = np.array([[20.0, 25, 40, 70, 110, 150, 180, 200, 210], [5.0, 5, 5, 5, 5, 5, 5, 5, 5]])
    for kind in ("raw", "normalised", "tails"):
        f = pf.features(p, kind)
        assert f.shape[0] == 2 and np.isfinite(f).all()
    with pytest.raises(ValueError):
        pf.features(p, "nonsense")


def test_face_anchor_estimate_between_prior_and_anchor(pf):
    b, w = pf.anchor_estimate(0.7, 150.0, 1e9)  # no weight: the prior
    assert b == pytest.approx(CLEAN_BLACK, abs=1e-3) and w == pytest.approx(CLEAN_WHITE, abs=1e-3)
    # the prior puts this face at 0.3 * 10 + 0.7 * 245 = 174.5; its references say 150
    b, w = pf.anchor_estimate(0.7, 150.0, 1e-3)  # all weight: the face lands on the references'
    assert 0.3 * b + 0.7 * w == pytest.approx(150.0, abs=0.05)
    b2, w2 = pf.anchor_estimate(0.7, 150.0, 20.0)
    assert w < w2 < CLEAN_WHITE  # a darker reference face pulls the white down, part of the way


def test_realised_error_is_zero_when_the_points_are_the_clean_photos(pf):
    clean = np.ascontiguousarray(load_sample()[::2, ::2])
    pts = pf.luma_points(clean)
    deg = _fade(clean, 40.0, 200.0)
    rows = [{"base": deg, "target": pts, "preset": "old_print"}]
    assert pf.realised(rows, [pts])[0] < 1.5
    # sent to the prior instead: the error is the clean photo's distance from it (studio levels)
    err = pf.realised(rows, [(CLEAN_BLACK, CLEAN_WHITE)])[0]
    want = pf.STUDIO * max(abs(pts[0] - CLEAN_BLACK), abs(pts[1] - CLEAN_WHITE))
    assert err == pytest.approx(want, abs=1.5)
    s = pf.stats(np.array([err]), rows)
    assert s["n"] == 1 and s["old_print"] in ("0/1", "1/1")


def test_hazy_original_and_faded_full_range_original_give_the_same_print():
    """The ambiguity behind the miss: original A spans 0..255; original B is A with lifted blacks
    (a hazy or flat photo, black 50). B faded with black 20 / white 210 and A faded more, black
    57.3 / white 210 (both inside old_print's ranges 15-60 / 180-240), are the same print, so
    the levels send both to the same points, at least 20 levels (full range) from one of them."""
    a = np.repeat(np.tile(np.linspace(0, 255, 256), (64, 1))[..., None], 3, axis=2).astype(np.uint8)
    b = np.clip(50.0 + a.astype(np.float64) * (205.0 / 255.0), 0, 255).astype(np.uint8)  # blacks at 50
    black_b, white = 20.0, 210.0
    black_a = black_b + (50.0 / 255.0) * (white - black_b)  # B's black (50) lands where A's (0) does
    assert 15.0 <= black_a <= 60.0
    print_a, print_b = _fade(a, black_a, white), _fade(b, black_b, white)
    assert np.abs(print_a.astype(int) - print_b.astype(int)).max() <= 2
    out_a, out_b = (auto_levels(p, balance=False).apply(p) for p in (print_a, print_b))
    lo = [float(np.percentile(o[..., 1], 0.5)) for o in (out_a, out_b)]
    assert abs(lo[0] - lo[1]) <= 2  # the same black point for both...
    truth = [float(np.percentile(a[..., 1], 0.5)), float(np.percentile(b[..., 1], 0.5))]
    assert max(abs(lo[0] - truth[0]), abs(lo[1] - truth[1])) >= 20  # ...far from one original's
