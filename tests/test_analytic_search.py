"""The analytic FaDeX search's shortcuts give what the exhaustive search gives (no timings here:
see ``face2scene bench speed``)."""
import cv2
import numpy as np
import pytest

from face2scene.degrade import apply_params, simple_params
from face2scene.estimate.analytic import (FINE_NOISE_GRID, SCALE_GRID, Synthesizer, band_energies, band_window,
                                          fit_degradation)
from face2scene.estimate.jpeg import luma
from face2scene.samples import load_sample


def _face_like(seed=0, side=256):
    """A textured region of the sample photo, an elliptical 'inner face' mask off centre, and a
    'restored' version that is not the clean truth (its detail slightly stronger, as a face
    restored from other photos of the person is)."""
    img = load_sample()
    h, w = img.shape[:2]
    rng = np.random.default_rng(seed)
    y0, x0 = (int(rng.integers(0, h - side)) // 8 * 8, int(rng.integers(0, w - side)) // 8 * 8)
    clean = img[y0:y0 + side, x0:x0 + side]
    mask = np.zeros((side, side), np.float32)
    cv2.ellipse(mask, (side // 2 + 10, side // 2 - 6), (side // 3, side // 3 + 12), 0, 0, 360, 1, -1)
    soft = cv2.GaussianBlur(clean.astype(np.float32), (0, 0), 1.0)
    restored = np.clip(clean + 0.3 * (clean - soft), 0, 255).astype(np.uint8)
    return clean, restored, mask


@pytest.mark.parametrize("q", [None, 40, 75, 95])
def test_windowed_energies_are_the_whole_regions_bit_for_bit(q):
    _, restored, mask = _face_like(seed=q or 1)
    syn = Synthesizer(restored, mask, q, seed=3)
    rows, cols = syn.window
    assert (rows.stop - rows.start) * (cols.stop - cols.start) < mask.size  # it does crop
    for b, n, s in [(0.0, 0.0, 1.0), (1.3, 7.0, 1.0), (0.4, 20.0, 0.5), (2.6, 3.0, 0.75)]:
        whole = band_energies(luma(syn.render(b, n, s)).astype(np.float32), mask)
        assert np.array_equal(syn.energies(b, n, s), whole), (q, b, n, s)


def test_band_window_is_on_the_jpeg_mcu_grid_and_covers_the_mask():
    mask = np.zeros((300, 280), np.float32)
    mask[101:190, 77:200] = 1
    rows, cols = band_window(mask, jpeg=True)
    assert rows.start % 16 == 0 and cols.start % 16 == 0
    assert rows.stop in (300,) or rows.stop % 16 == 0
    assert rows.start <= 101 - 23 and rows.stop >= 190 + 23 and cols.start <= 77 - 23 and cols.stop >= 200 + 23
    assert band_window(np.zeros((40, 40), np.float32), jpeg=False) == (slice(0, 40), slice(0, 40))


class _Counting(Synthesizer):
    calls = 0

    def energies(self, *a):
        self.calls += 1
        return super().energies(*a)


@pytest.mark.parametrize("noise,blur,q,scale", [(0.0, 0.0, None, 1.0), (3.0, 0.5, 92, 1.0), (10.0, 1.0, 70, 1.0),
                                                (5.0, 0.6, 80, 0.5)])
def test_coarse_search_finds_the_exhaustive_optimum_on_a_face(noise, blur, q, scale):
    clean, restored, mask = _face_like(seed=int(noise))
    deg = apply_params(clean, simple_params(noise_sigma=noise, blur_sigma=blur, jpeg_quality=q, scale=scale, seed=5))
    target = band_energies(luma(deg).astype(np.float32), mask)
    fits = {}
    for coarse in (False, True):
        syn = _Counting(restored, mask, q, seed=0)
        fits[coarse] = fit_degradation(syn, target, SCALE_GRID, noise_grid=FINE_NOISE_GRID, coarse=coarse), syn.calls
    (p_full, l_full), n_full = fits[False]
    (p_fast, l_fast), n_fast = fits[True]
    assert abs(p_fast["noise_sigma"] - p_full["noise_sigma"]) < 0.2, (p_fast, p_full)
    assert abs(p_fast["blur_sigma"] - p_full["blur_sigma"]) < 0.05, (p_fast, p_full)
    assert p_fast["scale"] == p_full["scale"]
    assert l_fast <= l_full * 1.05 + 1e-6
    assert n_fast <= n_full - 40, (n_fast, n_full)  # of the 144 full-resolution grid points, about half


@pytest.mark.parametrize("prior", [(2.0, 50.0), (12.0, 50.0), (6.0, 2.0)])
def test_pruning_by_the_noise_prior_is_exact(prior):
    clean, restored, mask = _face_like(seed=7, side=192)
    deg = apply_params(clean, simple_params(noise_sigma=prior[0], blur_sigma=0.9, jpeg_quality=75, seed=2))
    target = band_energies(luma(deg).astype(np.float32), mask)
    out = {}
    for coarse in (False, True):
        syn = _Counting(restored, mask, 75, seed=0)
        out[coarse] = fit_degradation(syn, target, noise_prior=prior, polish_n=1, coarse=coarse), syn.calls
    assert out[True][0] == out[False][0]  # the same grid point polished: the same result, exactly
    assert out[True][1] < out[False][1]
