"""The texture and structure measures of face2scene.metrics: GMSD and the detail ratio."""
import cv2
import numpy as np
import pytest

from face2scene.metrics import detail_ratio, gmsd, laplacian_energy


def textured(h=64, w=72, seed=0) -> np.ndarray:
    """Smooth shapes plus fine texture (an image with both edges and detail)."""
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(0, 256, (8, 9, 3)).astype(np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(img.astype(float) + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)


def test_gmsd_zero_for_same_gradients_and_grows_with_distortion():
    a = textured()
    assert gmsd(a, a) == 0.0
    dim = (a * 0.8).astype(np.uint8)
    # a brightness offset keeps the gradients (all but the zero-padded rim of the authors' code)
    assert gmsd(dim, dim + 7) < 0.006
    blurred = [gmsd(a, cv2.GaussianBlur(a, (0, 0), s)) for s in (1.0, 2.0, 3.0)]
    assert 0.005 < blurred[0] < blurred[1] < blurred[2] < 0.5
    noisy = np.clip(a + np.random.default_rng(1).normal(0, 20, a.shape), 0, 255).astype(np.uint8)
    assert gmsd(a, noisy) > 0.02


def test_gmsd_matches_a_direct_transcription_of_the_authors_matlab():
    """GMSD.m (Xue et al. 2014) line by line with explicit loops on a small image."""
    a, b = textured(12, 10, 2), textured(12, 10, 3)

    def conv2_same(x, k):  # MATLAB conv2(x, k, 'same'): full convolution, centre part
        kh, kw = k.shape
        full = np.zeros((x.shape[0] + kh - 1, x.shape[1] + kw - 1))
        for i in range(kh):
            for j in range(kw):
                full[i:i + x.shape[0], j:j + x.shape[1]] += k[i, j] * x
        r0 = kh // 2 if kh % 2 == 0 else (kh - 1) // 2
        c0 = kw // 2 if kw % 2 == 0 else (kw - 1) // 2
        return full[r0:r0 + x.shape[0], c0:c0 + x.shape[1]]

    def score(r, d):
        y = [im.astype(float) @ np.array([0.299, 0.587, 0.114]) for im in (r, d)]
        dx = np.array([[1, 0, -1]] * 3) / 3.0
        g = []
        for yy in y:
            yy = conv2_same(yy, np.full((2, 2), 0.25))[::2, ::2]
            g.append(np.sqrt(conv2_same(yy, dx) ** 2 + conv2_same(yy, dx.T) ** 2))
        q = (2 * g[0] * g[1] + 170) / (g[0] ** 2 + g[1] ** 2 + 170)
        return float(np.sqrt(np.mean((q - q.mean()) ** 2)))

    assert gmsd(a, b) == pytest.approx(score(a, b), rel=1e-9)


def test_detail_ratio_whole_and_box():
    a = textured()
    assert detail_ratio(a, a) == pytest.approx(1.0)
    assert detail_ratio(a, cv2.GaussianBlur(a, (0, 0), 1.5)) < 0.5
    noisy = np.clip(a + np.random.default_rng(1).normal(0, 15, a.shape), 0, 255).astype(np.uint8)
    assert detail_ratio(a, noisy) > 1.2
    flat = np.full_like(a, 90)
    assert detail_ratio(flat, a) is None and laplacian_energy(flat) == 0.0
    # a box: only its pixels count (the rest of the image smoothed away does not matter)
    half = a.copy()
    half[:, 36:] = cv2.GaussianBlur(a, (0, 0), 3.0)[:, 36:]
    assert detail_ratio(a, half, border=1, box=(0, 0, 30, 64)) == pytest.approx(1.0)
    assert detail_ratio(a, half, border=1, box=(40, 0, 72, 64)) < 0.3
    assert detail_ratio(a, half, box=(10, 10, 10, 20)) is None  # empty box


@pytest.mark.parametrize("fn", [gmsd, lambda a, b: detail_ratio(a, b, box=(0, 0, 8, 8))])
def test_bad_input_is_a_clear_error(fn):
    a = textured()
    with pytest.raises(ValueError, match="same size"):
        fn(a, a[:32])
    with pytest.raises(ValueError, match="RGB"):
        fn(a[..., 0], a[..., 0])
    with pytest.raises(ValueError, match="RGB"):
        detail_ratio(a, a[..., 0])
    assert detail_ratio(a, cv2.resize(a, (36, 32))) is not None  # whole images: per-pixel means
