"""Synthetic degradation: reproducibility, logged parameters, and that each op does what it says."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from face2scene import degrade as D


def _textured(h=96, w=128, seed=0) -> np.ndarray:
    """A detailed synthetic photo: smooth gradients + sharp edges + fine texture."""
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([xx / w * 200 + 20, yy / h * 180 + 30, (xx + yy) / (w + h) * 150 + 50], -1)
    base[(xx // 16 + yy // 16) % 2 == 0] += 30
    base += r.normal(0, 12, base.shape)
    return np.clip(base, 0, 255).astype(np.uint8)


def _hf_energy(img: np.ndarray) -> float:
    g = img.astype(np.float64).mean(axis=2)
    lap = cv2.Laplacian(g, cv2.CV_64F)
    return float((lap[4:-4, 4:-4] ** 2).mean())


@pytest.mark.parametrize("preset", sorted(D.PRESETS))
def test_deterministic_and_reproducible(preset):
    img = _textured()
    a, pa = D.degrade(img, preset, seed=3)
    b, pb = D.degrade(img, preset, seed=3)
    c, _ = D.degrade(img, preset, seed=4)
    assert a.shape == img.shape and a.dtype == np.uint8
    assert np.array_equal(a, b) and pa == pb
    if preset != "clean":  # clean is the identity whatever the seed
        assert not np.array_equal(a, c)
    # JSON round-trip, then exact reproduction
    pj = json.loads(json.dumps(pa))
    assert pj == pa
    assert np.array_equal(D.apply_params(img, pj), a)
    assert pa["preset"] == preset and pa["seed"] == 3 and pa["size"] == [128, 96]
    assert set(pa["summary"]) == {"noise_sigma", "blur_sigma", "jpeg_quality", "scale"}


@pytest.mark.parametrize("preset", ["realesrgan", "s3diff", "old_photo"])
def test_odd_sizes_keep_shape(preset):
    img = _textured(37, 53)
    for seed in range(6):
        out, p = D.degrade(img, preset, seed)
        assert out.shape == img.shape and out.dtype == np.uint8
        assert np.array_equal(D.apply_params(img, p), out)


def test_mild_summary_in_ranges():
    img = _textured(48, 64)
    qs = []
    for seed in range(60):
        _, p = D.degrade(img, "mild", seed)
        s = p["summary"]
        assert 5 <= s["noise_sigma"] <= 20
        assert 0.5 <= s["blur_sigma"] <= 2
        assert 45 <= s["jpeg_quality"] <= 90 and isinstance(s["jpeg_quality"], int)
        assert s["scale"] == 1.0
        assert [st["op"] for st in p["stages"]] == ["blur", "noise", "jpeg"]
        qs.append(s["jpeg_quality"])
    assert len(set(qs)) > 20  # really sampled


def test_clean_passes_through_unchanged():
    img = _textured()
    for seed in (0, 7):
        out, p = D.degrade(img, "clean", seed)
        assert np.array_equal(out, img) and out.dtype == np.uint8
        assert p["stages"] == [] and p["preset"] == "clean" and p["seed"] == seed
        assert p["summary"] == {"noise_sigma": 0.0, "blur_sigma": 0.0, "jpeg_quality": None, "scale": 1.0}
        assert np.array_equal(D.apply_params(img, json.loads(json.dumps(p))), img)


def test_near_clean_ranges_and_logged_stages():
    img = _textured(48, 64)
    no_jpeg, qs = 0, set()
    for seed in range(80):
        out, p = D.degrade(img, "near-clean", seed)
        s = p["summary"]
        assert 0 <= s["noise_sigma"] <= 3 and 0 <= s["blur_sigma"] <= 0.6 and s["scale"] == 1.0
        ops = [st["op"] for st in p["stages"]]
        assert ops == [o for o in ("blur", "noise", "jpeg") if o in ops]  # that order, no other op
        for st in p["stages"]:
            if st["op"] == "blur":
                assert st["kind"] == "iso" and 0.05 <= st["sigma_x"] <= 0.6
            elif st["op"] == "noise":
                assert st["kind"] == "gaussian" and 0.05 <= st["sigma"] <= 3
            else:
                assert 90 <= st["quality"] <= 100
        if s["jpeg_quality"] is None:
            no_jpeg += 1
        else:
            qs.add(s["jpeg_quality"])
        assert np.array_equal(D.apply_params(img, json.loads(json.dumps(p))), out)
    assert 10 <= no_jpeg <= 40 and len(qs) >= 8


@pytest.mark.parametrize("preset,blur_max,noise_max,q_lo,q_hi", [
    ("realesrgan", 3.0, 30.0, 30, 95), ("s3diff", 1.5, 15.0, 60, 100)])
def test_second_order_ranges(preset, blur_max, noise_max, q_lo, q_hi):
    img = _textured(48, 64)
    kinds, scales = set(), []
    for seed in range(80):
        _, p = D.degrade(img, preset, seed)
        st = p["stages"]
        assert st[0]["op"] == "blur"  # stage 1 always blurs
        for s in st:
            if s["op"] == "blur":
                kinds.add(s["kind"])
                if s["kind"] != "sinc":
                    assert 0.2 <= s["sigma_x"] <= blur_max and 0.2 <= s["sigma_y"] <= blur_max
                    assert s["ksize"] % 2 == 1 and 7 <= s["ksize"] <= 21
            if s["op"] == "noise" and s["kind"] == "gaussian":
                assert 1 <= s["sigma"] <= noise_max
            if s["op"] == "jpeg":
                assert q_lo <= s["quality"] <= q_hi
        assert sum(s["op"] == "jpeg" for s in st) == 2
        assert st[-1]["op"] in ("jpeg", "resize", "blur")
        last_jpeg = [s["quality"] for s in st if s["op"] == "jpeg"][-1]
        assert p["summary"]["jpeg_quality"] == last_jpeg
        assert p["summary"]["blur_sigma"] > 0 and p["summary"]["noise_sigma"] > 0
        scales.append(p["summary"]["scale"])
        assert json.loads(json.dumps(p)) == p
    assert {"iso", "aniso", "generalized", "plateau", "sinc"} <= kinds
    assert min(scales) < 0.7 and max(scales) >= 1.0


def test_poisson_equivalent_sigma_matches_measurement():
    flat = np.full((200, 200, 3), 128, np.uint8)
    params = {"preset": "custom", "seed": 0, "size": [200, 200], "stages": [
        {"op": "noise", "kind": "poisson", "scale": 2.0, "gray": False, "seed": 5}]}
    out, p = D.run_params(flat, params)
    measured = float((out.astype(np.float64) - 128).std())
    assert p["summary"]["noise_sigma"] == pytest.approx(measured, rel=0.05)
    assert p["stages"][0]["equiv_sigma"] == pytest.approx(measured, rel=0.05)


@pytest.mark.parametrize("sigma", [5.0, 15.0])
def test_simple_params_noise_std(sigma):
    flat = np.full((256, 256, 3), 128, np.uint8)
    out = D.apply_params(flat, D.simple_params(noise_sigma=sigma, seed=1))
    diff = out.astype(np.float64) - 128
    assert diff.std() == pytest.approx(sigma, rel=0.03)
    assert abs(diff.mean()) < 0.3
    # colour noise: channels independent
    c = np.corrcoef(diff[..., 0].ravel(), diff[..., 1].ravel())[0, 1]
    assert abs(c) < 0.05


def test_simple_params_summary_and_order():
    p = D.simple_params(noise_sigma=7, blur_sigma=1.2, jpeg_quality=60, scale=0.5, seed=2)
    assert p["summary"] == {"noise_sigma": 7.0, "blur_sigma": 1.2, "jpeg_quality": 60, "scale": 0.5}
    assert [s["op"] for s in p["stages"]] == ["blur", "resize", "resize", "noise", "jpeg"]
    img = _textured()
    out, run = D.run_params(img, p)
    assert out.shape == img.shape
    assert run["summary"] == p["summary"]
    assert run["stages"][1]["size"] == [64, 48]
    assert np.array_equal(D.apply_params(img, json.loads(json.dumps(run))), out)
    assert D.simple_params()["stages"] == []
    assert np.array_equal(D.apply_params(img, D.simple_params()), img)


def test_blur_reduces_high_frequencies_monotonically():
    img = _textured(128, 128)
    energies = [_hf_energy(D.apply_params(img, D.simple_params(blur_sigma=s)))
                for s in (0.0, 0.5, 1.0, 2.0, 3.0)]
    assert all(a > b for a, b in zip(energies, energies[1:]))
    assert energies[-1] < 0.05 * energies[0]


def test_downscale_loses_detail():
    img = _textured(128, 128)
    e = [_hf_energy(D.apply_params(img, D.simple_params(scale=s))) for s in (1.0, 0.7, 0.4)]
    assert e[0] > e[1] > e[2]


def test_jpeg_quality_changes_artefacts():
    img = _textured(128, 128)
    errs = []
    for q in (20, 50, 90):
        out, p = D.run_params(img, D.simple_params(jpeg_quality=q))
        errs.append(float(np.abs(out.astype(np.float64) - img).mean()))
        assert p["summary"]["jpeg_quality"] == q
    assert errs[0] > errs[1] > errs[2] > 0
    # file size grows with quality (measured by the op itself)
    sizes = []
    for q in (20, 50, 90):
        ok, buf = cv2.imencode(".jpg", D.apply_params(img, D.simple_params(jpeg_quality=q)),
                               [cv2.IMWRITE_JPEG_QUALITY, 95])
        sizes.append(buf.size)
    assert sizes[0] < sizes[2]


def _run_single(img, stage):
    params = {"preset": "custom", "seed": 0, "size": [img.shape[1], img.shape[0]], "stages": [stage]}
    return D.apply_params(img, params)


def test_grayscale_and_sepia_ops():
    img = _textured()
    g = _run_single(img, {"op": "grayscale"}).astype(int)
    assert np.array_equal(g[..., 0], g[..., 1]) and np.array_equal(g[..., 1], g[..., 2])
    s = _run_single(img, {"op": "sepia", "strength": 1.0}).astype(int)
    # sepia: warm monochrome, R >= G >= B everywhere, channels perfectly ordered by one tone
    assert (s[..., 0] >= s[..., 1]).all() and (s[..., 1] >= s[..., 2]).all()
    assert (s[..., 0] - s[..., 2]).mean() > 20
    half = _run_single(img, {"op": "sepia", "strength": 0.5}).astype(int)
    assert np.abs(half - img).mean() < np.abs(s - img).mean()


def test_old_photo_effects_present_and_logged():
    img = _textured(64, 64)
    ops = set()
    for seed in range(40):
        out, p = D.degrade(img, "old_photo", seed)
        ops |= {s["op"] for s in p["stages"]}
        assert json.loads(json.dumps(p)) == p
        fade = next(s for s in p["stages"] if s["op"] == "fade")
        assert fade["black"] > 0 and fade["white"] < 255
    assert {"fade", "sepia", "grayscale", "grain", "scratches", "noise", "jpeg", "halftone"} <= ops


def test_fade_reduces_contrast():
    img = _textured()
    f = _run_single(img, {"op": "fade", "black": 40, "white": 200, "saturation": 1.0,
                          "cast": [1, 1, 1]})
    assert f.min() >= 39 and f.max() <= 201
    assert f.astype(float).std() < img.astype(float).std()


def test_kernels_normalised_and_shaped():
    for st in [{"kind": "aniso", "sigma_x": 3, "sigma_y": 0.5, "theta": 0.0, "ksize": 21},
               {"kind": "generalized", "sigma_x": 2, "sigma_y": 2, "theta": 0, "beta": 4, "ksize": 15},
               {"kind": "plateau", "sigma_x": 1, "sigma_y": 1, "theta": 0, "beta": 2, "ksize": 15},
               {"kind": "sinc", "omega_c": np.pi / 3, "ksize": 11}]:
        k = D.blur_kernel(st)
        assert k.shape == (st["ksize"],) * 2 and k.sum() == pytest.approx(1.0, abs=1e-5)
        assert np.allclose(k, k[::-1, ::-1])  # point-symmetric: correlation == convolution
    k = D.blur_kernel({"kind": "aniso", "sigma_x": 3, "sigma_y": 0.5, "theta": 0.0, "ksize": 21})
    r = np.arange(21) - 10.0
    var_x, var_y = (k.sum(axis=0) * r * r).sum(), (k.sum(axis=1) * r * r).sum()
    assert var_x == pytest.approx(9.0, rel=0.05) and 0.15 < var_y < 0.3  # sampled at 0.5 px: slightly under
    # a generalized kernel with large beta is flat-topped: the centre barely exceeds its neighbour
    g = D.blur_kernel({"kind": "generalized", "sigma_x": 2, "sigma_y": 2, "theta": 0, "beta": 4,
                       "ksize": 15})
    assert g[7, 8] / g[7, 7] > 0.99


def test_bad_input_raises():
    with pytest.raises(ValueError):
        D.degrade(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError):
        D.degrade(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError):
        D.degrade(np.zeros((10, 10, 3), np.uint8), preset="nope")
    _, p = D.degrade(_textured(), "mild", 0)
    with pytest.raises(ValueError):
        D.apply_params(_textured(40, 40), p)  # params made for another size


@pytest.mark.parametrize("lam", [0.5, 5.0, 29.0, 31.0, 200.0])
def test_poisson_counts_have_poisson_moments(lam):
    c = D._poisson_counts(np.random.default_rng(0), np.full(100_000, lam, np.float32))
    assert c.min() >= 0 and np.array_equal(c, np.rint(c))
    assert c.mean() == pytest.approx(lam, rel=0.02, abs=0.02)
    assert c.var() == pytest.approx(lam, rel=0.04, abs=0.02)


def test_summary_semantics():
    """Blur on a reduced grid counts in input pixels; scale is the worst point, not the end."""
    p = {"preset": "custom", "seed": 0, "size": [200, 100], "stages": [
        {"op": "blur", "kind": "aniso", "sigma_x": 2.0, "sigma_y": 0.5, "theta": 0.3, "ksize": 15},
        {"op": "resize", "scale": 0.5, "cumulative": 0.5, "size": [100, 50], "interp": "area"},
        {"op": "blur", "kind": "iso", "sigma_x": 1.0, "sigma_y": 1.0, "theta": 0.0, "ksize": 9},
        {"op": "noise", "kind": "gaussian", "sigma": 3.0, "gray": True, "seed": 1},
        {"op": "jpeg", "quality": 40},
        {"op": "resize", "scale": 1.6, "cumulative": 0.8, "size": [160, 80], "interp": "bicubic"},
        {"op": "noise", "kind": "gaussian", "sigma": 4.0, "gray": False, "seed": 2},
        {"op": "resize", "scale": 1.25, "cumulative": 1.0, "size": [200, 100], "interp": "bilinear",
         "final": True},
        {"op": "jpeg", "quality": 70}]}
    s = D.summarize(p)
    assert s["scale"] == 0.5 and s["jpeg_quality"] == 70
    assert s["noise_sigma"] == pytest.approx(5.0)
    assert s["blur_sigma"] == pytest.approx(np.sqrt(1.0 + 2.0 ** 2), rel=1e-3)
    img = _textured(100, 200)
    out = D.apply_params(img, p)
    assert out.shape == img.shape
    g = out.astype(int)
    assert np.abs(g[..., 0] - g[..., 1]).mean() > 0  # colour noise after the gray one
