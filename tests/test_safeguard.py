"""Do no harm (issue 9): the photo's own noise bound, the calibrated estimate, the clean gate and
the back-off after the restorer. Synthetic images only; the real-photo checks are in
test_pipeline's do-no-harm tests."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from face2scene import safeguard as S
from face2scene.degrade import apply_params, simple_params
from face2scene.metrics import psnr
from face2scene.noise_stats import flat_noise
from face2scene.types import DegradationEstimate


def _scene(h=256, w=320, seed=0) -> np.ndarray:
    """Flat areas (sky, wall) plus a strongly textured half: a clean photo with no noise."""
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([60 + xx / w * 120, 80 + yy / h * 100, 140 - xx / w * 60], -1)
    tex = cv2.GaussianBlur(r.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 0.8)
    img[:, w // 2:] += (tex[:, w // 2:] * 40)[..., None]  # "stone wall": texture, not noise
    img[h // 3: h // 3 + 4, :] = 230  # an edge
    return np.clip(img, 0, 255).astype(np.uint8)


def test_flat_noise_reads_zero_on_a_clean_textured_photo():
    f = flat_noise(_scene())
    assert f.sigma < 1.0  # the texture is not read as noise


@pytest.mark.parametrize("sigma,q", [(5.0, None), (12.0, None), (10.0, 60), (15.0, 80)])
def test_flat_noise_recovers_noise_under_compression(sigma, q):
    deg = apply_params(_scene(), simple_params(noise_sigma=sigma, jpeg_quality=q, seed=3))
    f = flat_noise(deg, q)
    assert f.sigma == pytest.approx(sigma, abs=0.2 * sigma + 1.0)


def test_calibrated_estimate_caps_noise_the_photo_does_not_show():
    f = flat_noise(_scene())
    est = DegradationEstimate(17.0, 0.95, None, 1.0, "face", 0.8)
    cal = S.calibrate_estimate(est, f)
    assert cal.noise_sigma <= 1.0 and cal.blur_sigma < 0.4
    assert cal.confidence < est.confidence
    assert cal.details["calibration"]["raw_noise"] == 17.0
    assert S.near_clean_reason(cal) is not None
    # a given estimate (benchmarks) is never changed
    given = DegradationEstimate(17.0, 0.95, None, 1.0, "given", 1.0)
    assert S.calibrate_estimate(given, f) is given and S.near_clean_reason(given) is None


@pytest.mark.parametrize("noise,blur,jpeg,scale,clean", [
    (0.0, 0.0, None, 1.0, True), (3.0, 0.6, 90, 1.0, True), (2.0, 0.3, 100, 1.0, True),
    (5.0, 0.0, None, 1.0, False), (0.0, 0.8, None, 1.0, False), (0.0, 0.0, 50, 1.0, False),
    (0.0, 0.0, None, 0.5, False)])
def test_given_estimate_is_held_to_the_clean_thresholds(noise, blur, jpeg, scale, clean):
    """A caller's estimate that describes a clean photo leaves it as it is (the restorers smooth
    near-clean photos when told their true parameters); one worth restoring is restored, and
    softness alone is not excused without the photo's own edge reading."""
    given = DegradationEstimate(noise, blur, jpeg, scale, "given", 1.0)
    why = S.near_clean_reason(given)
    assert (why is not None) == clean, why
    if clean:
        assert "given estimate" in why and "left unchanged" in why


def test_calibrated_estimate_keeps_real_degradation():
    deg = apply_params(_scene(), simple_params(noise_sigma=12, blur_sigma=1.5, jpeg_quality=70, seed=1))
    f = flat_noise(deg, 70)
    cal = S.calibrate_estimate(DegradationEstimate(12.5, 1.6, 70, 1.0, "blind", 0.3), f)
    assert cal.noise_sigma > 10 and cal.blur_sigma > 1.2
    assert S.near_clean_reason(cal) is None


def test_texture_check_backs_off_a_restorer_that_wipes_texture():
    clean = _scene()
    wiped = cv2.GaussianBlur(clean, (0, 0), 1.5)
    alpha, d = S.texture_check(clean, wiped, noise_luma=0.5)
    assert alpha < 0.1 and d["texture_kept"] < 0.5
    # denoising a noisy photo: the strength follows the noise the photo shows, and lands near
    # the blend closest to the clean photo
    noisy = apply_params(clean, simple_params(noise_sigma=25, seed=2))
    den = cv2.fastNlMeansDenoisingColored(noisy, None, 15, 15, 7, 21)
    alpha, _ = S.texture_check(noisy, den, noise_luma=25 * S.LUMA_NOISE)
    y = lambda im: im.astype(np.float64) @ [0.299, 0.587, 0.114]
    mse = {a: np.mean((y(noisy + a * (den.astype(np.float64) - noisy)) - y(clean)) ** 2) for a in np.linspace(0, 1, 21)}
    best = min(mse, key=mse.get)
    assert alpha >= 0.5 and abs(alpha - best) <= 0.3
    # a restorer that adds detail: as much as undoing the estimated blur gives, not more
    blurred = cv2.GaussianBlur(clean, (0, 0), 1.2)
    sharp = cv2.addWeighted(blurred, 1.8, cv2.GaussianBlur(blurred, (0, 0), 1.0), -0.8, 0)
    assert S.texture_check(blurred, sharp, noise_luma=0.5, blur_sigma=1.2)[0] == 1.0
    alpha, d = S.texture_check(clean, cv2.addWeighted(clean, 2.5, cv2.GaussianBlur(clean, (0, 0), 1.0), -1.5, 0),
                               noise_luma=0.5, blur_sigma=0.0)
    assert alpha < 0.5 and d["energy_gain"] > d["allowed_gain"]


def test_decision_reports_its_reason():
    d = S.Decision(0.3, "backed off: the restored face was further from the reference-restored face than the input")
    assert d.warning().startswith("do-no-harm: backed off to strength 0.30")
    assert S.Decision(1.0).warning() is None
    assert "left unchanged" in S.Decision(0.0, "the photo reads as clean (...): left unchanged").warning()


def _edges(h=256, w=256, seed=0) -> np.ndarray:
    """Sharp-edged shapes (a clean photo's strongest edges) over a gentle ramp."""
    r = np.random.default_rng(seed)
    img = np.full((h, w, 3), 90, np.float32) + np.linspace(0, 40, w, dtype=np.float32)[None, :, None]
    for _ in range(25):
        x0, y0 = r.integers(0, w - 40), r.integers(0, h - 40)
        cv2.rectangle(img, (int(x0), int(y0)), (int(x0 + r.integers(15, 40)), int(y0 + r.integers(15, 40))),
                      tuple(float(v) for v in r.uniform(20, 235, 3)), -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def test_edge_blur_reads_the_blur_of_the_sharpest_edges():
    from face2scene.estimate.analytic import edge_blur
    img = _edges()
    reads = [edge_blur(cv2.GaussianBlur(img, (0, 0), b) if b else img)[0] for b in (0.0, 0.8, 1.5, 2.5)]
    assert S.edge_bound(reads[0], 0.0) < 0.6  # perfect steps: at most a little blur allowed
    assert all(a < b for a, b in zip(reads, reads[1:]))  # more blur, wider edges
    for b, r in zip((0.8, 1.5, 2.5), reads[1:]):  # the bound the pipeline draws from it holds the truth
        assert b - 0.2 <= S.edge_bound(r, 0.0) <= b + 0.35
    assert np.isnan(edge_blur(np.full((64, 64, 3), 128, np.uint8))[0])  # no edges: cannot say
    assert S.edge_bound(reads[2], noise=12.0) is None  # too noisy to trust the reading


def test_soft_but_noiseless_photo_is_not_taken_for_damaged():
    from face2scene.estimate.analytic import edge_blur
    soft = cv2.GaussianBlur(_edges(), (0, 0), 1.0)  # a soft clean photo (its own softness, no noise)
    e = edge_blur(soft)[0]
    f = flat_noise(soft)
    est = S.calibrate_estimate(DegradationEstimate(1.5, 1.4, None, 1.0, "face", 0.6), f, edge=e)
    assert est.blur_sigma <= S.edge_bound(e, 0.0) + 1e-6
    why = S.near_clean_reason(est)
    assert why is not None and "softness" in why
    # the same softness with noise on top is restored (noise is damage)
    noisy = apply_params(soft, simple_params(noise_sigma=12, seed=4))
    est = S.calibrate_estimate(DegradationEstimate(12.0, 1.4, None, 1.0, "face", 0.6), flat_noise(noisy),
                               edge=edge_blur(noisy, 12.0)[0])
    assert S.near_clean_reason(est) is None
    # so is a photo far blurrier than clean photos are
    very = cv2.GaussianBlur(_edges(), (0, 0), 2.5)
    est = S.calibrate_estimate(DegradationEstimate(0.5, 2.5, None, 1.0, "blind", 0.3), flat_noise(very),
                               edge=edge_blur(very)[0])
    assert S.near_clean_reason(est) is None and est.blur_sigma > 1.8


@pytest.mark.parametrize("flat_sigma, face_blur, restored", [
    (4.16, 2.52, True),  # s3diff's img48 at 384 px: noise above near-clean's and a face read soft
    (4.16, 0.97, False),  # the same noise, a face as sharp as clean faces read: softness alone
    (2.9, 2.52, False),  # a soft face with near-clean noise: a soft clean portrait
    (4.16, None, False),  # no face to ask (the blind estimate): as before
])
def test_soft_edges_with_noise_and_a_soft_face_are_not_taken_for_clean(flat_sigma, face_blur, restored):
    from face2scene.noise_stats import FlatNoise
    flat = FlatNoise(flat_sigma, 0.0, 0.7, 400)
    details = {} if face_blur is None else {"face_blur": face_blur, "face_blur_weight": 0.3}
    est = DegradationEstimate(4.93, 2.08, 87.0, 1.0, "face" if face_blur is not None else "blind", 0.9, details)
    kw = {} if face_blur is None else {"face_blur": face_blur, "blind_blur": 1.9}
    cal = S.calibrate_estimate(est, flat, edge=1.36, **kw)
    assert cal.blur_sigma > S.CLEAN_BLUR and cal.noise_sigma <= S.CLEAN_NOISE + 1  # edge-capped, noise low
    why = S.near_clean_reason(cal)
    assert (why is None) == restored, why
    if not restored:
        assert "softness" in why
    assert (S.soft_face_reason(cal, flat_sigma) is not None) == restored


def test_fine_band_check_backs_off_sharpened_noise_but_not_deblurring_or_denoising():
    clean = _scene()
    r = np.random.default_rng(3)
    noisy = np.clip(clean + r.normal(0, 10, clean.shape), 0, 255).astype(np.uint8)
    nl = 10 * S.LUMA_NOISE
    f = noisy.astype(np.float32)
    sharpened = np.clip(f + 0.8 * (f - cv2.GaussianBlur(f, (0, 0), 1.0)), 0, 255).astype(np.uint8)
    a, info = S.fine_band_check(noisy, sharpened, nl, blur_sigma=0.4)
    assert a < 0.5 and info["fine_gain"] > info["fine_allowed"]
    d = S.choose_strength(noisy, sharpened, DegradationEstimate(noise_sigma=10.0, blur_sigma=0.4, jpeg_quality=None,
                                                                scale=1.0, confidence=0.5, source="blind"))
    assert d.strength <= a and "finest-band" in d.reason
    denoised = cv2.GaussianBlur(noisy, (0, 0), 1.0)
    assert S.fine_band_check(noisy, denoised, nl, 0.4)[0] == 1.0  # removing fine energy is never judged
    # a clean photo blurred by 1.5 px and deblurred: without noise the fine band is not judged
    blurred = cv2.GaussianBlur(clean, (0, 0), 1.5)
    assert S.fine_band_check(blurred, clean, 0.0, 1.5)[0] == 1.0
    # with a little noise, a restorer that deblurs by the estimated 1.5 px keeps its gain
    b_noisy = np.clip(blurred + r.normal(0, 2, clean.shape), 0, 255).astype(np.uint8)
    assert S.fine_band_check(b_noisy, cv2.GaussianBlur(clean, (0, 0), 0.6), 2 * S.LUMA_NOISE, 1.5)[0] == 1.0


def test_fine_band_check_reads_the_blur_inverse_on_the_signal(monkeypatch):
    """Where the white-noise model explains under half the finest band, the blur's inverse that
    bounds the restorer's fine gain is read on the signal (blurring takes more of the noise's fine
    energy than the signal's): a restorer sharpening a lightly noisy, lightly blurred photo is
    backed off further than by the whole band's ratio, and the result is closer to the clean photo."""
    clean = _scene()
    r = np.random.default_rng(4)
    blurred = cv2.GaussianBlur(clean.astype(np.float32), (0, 0), 0.6)
    noisy = np.clip(blurred + r.normal(0, 4, clean.shape), 0, 255).astype(np.uint8)
    nl = 4 * S.LUMA_NOISE
    f = noisy.astype(np.float32)
    sharpened = np.clip(f + 1.2 * (f - cv2.GaussianBlur(f, (0, 0), 0.8)), 0, 255).astype(np.uint8)
    a_new, info = S.fine_band_check(noisy, sharpened, nl, blur_sigma=0.6)
    assert S.NOISE_SHARE_JUDGED <= info["noise_share"] <= S.NOISE_MODEL_SHARE, info
    monkeypatch.setattr(S, "NOISE_MODEL_SHARE", -1.0)  # the whole band's ratio, as before
    a_old, old = S.fine_band_check(noisy, sharpened, nl, blur_sigma=0.6)
    assert a_new < a_old and info["fine_allowed"] < old["fine_allowed"]

    def blend(a):
        return np.clip(np.rint(f * (1 - a) + sharpened.astype(np.float32) * a), 0, 255).astype(np.uint8)
    assert psnr(clean, blend(a_new)) > psnr(clean, blend(a_old))
