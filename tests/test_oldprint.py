"""Old prints (issue 11): damage found and repaired, tone from a face and blind, monochrome kept,
halftone screens found and removed. Synthetic inputs; the real-photo check skips without data."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from face2scene import degrade as D
from face2scene.damage import detect_damage, eyes_protect_mask, repair
from face2scene.halftone import descreen, detect_screen
from face2scene.metrics import psnr
from face2scene.tone import (CLEAN_BLACK, CLEAN_WHITE, ToneMap, auto_levels, chroma_residual_std, fit_tone_from_face, is_monochrome,
                             keep_monochrome)


def _smooth_photo(h=256, w=320, seed=0) -> np.ndarray:
    """Smooth shading plus a few soft shapes and mild grain: what a print's sky or skin is like."""
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([90 + 80 * xx / w, 100 + 60 * yy / h, 120 + 40 * (xx + yy) / (w + h)], -1)
    for _ in range(4):
        cx, cy, rad = r.uniform(0, w), r.uniform(0, h), r.uniform(20, 60)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * rad ** 2))[..., None]
        base += blob * r.uniform(-50, 50, 3)
    base += r.normal(0, 2.0, base.shape)
    return np.clip(base, 0, 255).astype(np.uint8)


def _full_range_photo(h=160, w=200, seed=0) -> np.ndarray:
    """Near-neutral scene from black to white with some colour: what a well-exposed print was."""
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    lum = 255 * (0.6 * xx / w + 0.4 * yy / h)
    tint = cv2.GaussianBlur(r.normal(0, 1, (h, w, 3)).astype(np.float32), (0, 0), 12)
    tint = 25 * tint / tint.std()
    return np.clip(lum[..., None] + tint - tint.mean(axis=2, keepdims=True), 0, 255).astype(np.uint8)


def _draw_scratch(img, p0, p1, value=245, width=2):
    out = img.copy()
    cv2.line(out, p0, p1, (value,) * 3, width, cv2.LINE_AA)
    gt = np.zeros(img.shape[:2], np.uint8)
    cv2.line(gt, p0, p1, 1, width, cv2.LINE_AA)
    return out, gt > 0


def test_scratch_and_speck_found_and_repaired():
    clean = _smooth_photo()
    img, gt = _draw_scratch(clean, (60, 10), (110, 240))
    img, gt2 = _draw_scratch(img, (300, 30), (180, 120), value=20, width=1)
    gt |= gt2
    cv2.circle(img, (250, 200), 3, (250, 250, 250), -1, cv2.LINE_AA)
    # the classical rules: the learned stage drops lines drawn on this clean, un-aged synthetic
    # image (it learned that a clean-looking photo rarely carries scratches; tests/test_damage_seg.py)
    det = detect_damage(img, learned=False)
    iou = (det.scratches & gt).sum() / (det.scratches | gt).sum()
    assert iou >= 0.5
    assert det.specks[197:204, 247:254].any()
    assert det.fraction < 0.02
    fixed = repair(img, det.mask, grow=2)
    zone = cv2.dilate(gt.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    err_before = np.abs(img.astype(float) - clean)[zone].mean()
    err_after = np.abs(fixed.astype(float) - clean)[zone].mean()
    assert err_after < 0.25 * err_before
    assert psnr(fixed, clean) > psnr(img, clean) + 6
    # nothing outside the (grown) mask changes
    grown = cv2.dilate(det.mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert np.array_equal(fixed[~grown], img[~grown])


def _dusty(img, n, seed, r=(1.5, 2.5)):
    """``n`` white and black specks at random places; their centres."""
    rng = np.random.default_rng(seed)
    out = img.copy()
    h, w = img.shape[:2]
    centres = []
    for _ in range(n):
        c = (int(rng.uniform(10, w - 10)), int(rng.uniform(10, h - 10)))
        v = 250 if rng.uniform() < 0.6 else 10
        cv2.circle(out, c, int(round(rng.uniform(*r))), (v, v, v), -1, cv2.LINE_AA)
        centres.append(c)
    return out, centres


def test_damaged_print_finds_speck_pairs_clean_photo_stays_strict():
    """A print with many specks switches to the looser rule, which finds a speck with another
    one right next to it (the strict isolation test rejects both); a photo without that
    evidence is not called damaged."""
    base = _smooth_photo(h=320, w=400, seed=3)
    assert not detect_damage(base).info["damaged_print"]
    img, centres = _dusty(base, 40, seed=1)
    pair = [(200, 160), (210, 160)]
    for c in pair:
        cv2.circle(img, c, 2, (250, 250, 250), -1, cv2.LINE_AA)
    det = detect_damage(img)
    assert det.info["damaged_print"] and det.info["sure_specks"] >= 10
    for x, y in pair:
        assert det.specks[y - 1:y + 2, x - 1:x + 2].any()
    found = sum(det.mask[y - 3:y + 4, x - 3:x + 4].any() for x, y in centres)
    assert found >= 0.8 * len(centres)
    assert det.fraction < 0.02


def test_clean_smooth_photo_has_almost_no_detections():
    for seed in range(3):
        det = detect_damage(_smooth_photo(seed=seed))
        assert det.fraction < 0.001


def test_clean_real_photos_have_few_detections(identities):
    fracs = []
    for person in ("george_clooney", "matt_damon", "jack_dorsey"):
        rgb = cv2.cvtColor(cv2.imread(str(identities[person][-1])), cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        s = min(1.0, 640 / max(h, w))
        rgb = cv2.resize(rgb, (int(w * s), int(h * s)), interpolation=cv2.INTER_AREA)
        fracs.append(detect_damage(rgb).fraction)
    assert np.mean(fracs) < 0.002  # measured 0.05-0.2 %; the target is 0.1 % on average


def test_protect_excludes_regions():
    img, gt = _draw_scratch(_smooth_photo(), (60, 10), (110, 240))
    protect = np.zeros(img.shape[:2], bool)
    protect[:, :160] = True
    assert not detect_damage(img, protect=protect).mask[:, :160].any()
    eyes = eyes_protect_mask([np.array([[100, 100], [140, 100], [120, 120], [105, 140], [135, 140]])], img.shape)
    assert eyes[100, 100] and eyes[100, 140] and not eyes[140, 120]


def _sepia(gray):
    y = gray.astype(np.float32)[..., None] / 255.0
    return np.clip(255 * y ** np.array([0.85, 1.0, 1.3], np.float32), 0, 255).astype(np.uint8)


def test_monochrome_detection_and_kept_mono():
    photo = _smooth_photo()
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    toned = _sepia(gray)
    assert not is_monochrome(photo).mono
    neutral = is_monochrome(np.repeat(gray[..., None], 3, 2))
    assert neutral.mono and not neutral.toned
    info = is_monochrome(toned)
    assert info.mono and info.toned
    # a restorer that shifts colours a little: keep_monochrome puts it back on the tone
    disturbed = np.clip(toned.astype(int) + np.random.default_rng(0).normal(0, 4, toned.shape) + [6, -3, 2], 0, 255).astype(np.uint8)
    kept = keep_monochrome(disturbed, info, keep_tone=True)
    assert chroma_residual_std(kept, info) < 2.0
    assert chroma_residual_std(disturbed, info) > 3.0
    removed = keep_monochrome(disturbed, info, keep_tone=False)
    assert chroma_residual_std(removed, is_monochrome(np.repeat(gray[..., None], 3, 2))) < 1.0
    assert is_monochrome(kept).toned and not is_monochrome(removed).toned


def test_tone_from_face_recovers_a_fade_and_cast():
    face = _full_range_photo(128, 128, 5)
    gain, offset = np.array([0.7, 0.75, 0.6]), np.array([40.0, 30.0, 35.0])  # faded, yellowed
    faded = np.clip(face * gain + offset, 0, 255).astype(np.uint8)
    tm = fit_tone_from_face(faded, face, mask=np.ones((128, 128)), mono=False)
    assert tm.confidence > 0.5
    np.testing.assert_allclose(tm.gain, 1 / gain, rtol=0.05)
    back = tm.apply(faded)
    assert np.abs(back.astype(float) - face).mean() < 3.0
    # identity when nothing changed; strength 0 is the identity
    same = fit_tone_from_face(face, face, mask=np.ones((128, 128)), mono=False)
    np.testing.assert_allclose(same.gain, 1, atol=0.02)
    assert np.array_equal(tm.apply(faded, strength=0.0), faded)


def test_auto_levels_restores_black_and_white_points():
    photo = _full_range_photo()
    faded = np.clip(40 + photo * 0.6 * np.array([1.0, 0.97, 0.85]), 0, 255).astype(np.uint8)
    tm = auto_levels(faded)
    out = tm.apply(faded)
    y = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
    # to where clean photos have their points (not stretched to 0..255)
    assert abs(np.percentile(y, 0.5) - CLEAN_BLACK) < 8 and abs(np.percentile(y, 99.5) - CLEAN_WHITE) < 8
    assert 0 < tm.confidence <= 1 and tm.source == "auto"
    lo, hi = tm.black_white()
    assert 30 < lo < 60 and 150 < hi < 210
    assert isinstance(ToneMap().to_json(), dict)
    # a dim clean photo (real blacks, whites not lit) is not a faded print: left as it is
    dim = (photo * 0.75).astype(np.uint8)
    assert auto_levels(dim).confidence == 0.0


@pytest.mark.parametrize("period,angle", [(5.0, 45.0), (8.0, 15.0)])
def test_halftone_found_within_5_percent_and_removed(period, angle):
    photo = cv2.cvtColor(_smooth_photo(320, 320), cv2.COLOR_RGB2GRAY)
    img = np.repeat(photo[..., None], 3, 2)
    params = {"preset": "custom", "seed": 0, "size": [320, 320], "stages": [
        {"op": "screen", "period": period, "frequency": 1 / period, "angle": angle, "phase": [0.3, 1.1],
         "softness": 0.3, "strength": 1.0, "paper": 240, "ink": 20}, D._iso_blur(0.5)]}
    screened = D.apply_params(img, params)
    scr = detect_screen(screened)
    assert scr.found
    assert abs(scr.frequency - 1 / period) <= 0.05 / period
    assert abs(((scr.angle_deg - angle) + 45) % 90 - 45) < 3
    ref = D.apply_params(img, {"preset": "custom", "seed": 0, "size": [320, 320], "stages": [
        {"op": "screen", "period": period, "frequency": 1 / period, "angle": angle, "phase": [0.3, 1.1],
         "softness": 0.3, "strength": 0.0, "paper": 240, "ink": 20}]})
    assert psnr(descreen(screened, scr), ref) > psnr(screened, ref) + 5
    assert not detect_screen(img).found
    assert np.array_equal(descreen(img), img)


def test_sparse_detections_on_a_photo_not_called_damaged_are_not_repaired():
    """A clean photo's few false detections (thin real lines, highlights) are not inpainted;
    a damaged print's are, and so is a photo with more than a clean photo's share."""
    from face2scene.damage import SPARSE_DAMAGE, DamageMask, worth_repairing
    h, w = 200, 200
    none = np.zeros((h, w), bool)
    few = none.copy()
    few[50, 50:150] = True  # 100 px: 0.25 %
    assert 0 < few.mean() < SPARSE_DAMAGE
    ok, why = worth_repairing(DamageMask(mask=few, scratches=few, specks=none, info={"damaged_print": False}))
    assert not ok and "not called a damaged print" in why
    assert worth_repairing(DamageMask(mask=few, scratches=few, specks=none, info={"damaged_print": True}))[0]
    many = none.copy()
    many[20:180, 100:102] = True  # a long scratch: 0.8 %
    assert worth_repairing(DamageMask(mask=many, scratches=many, specks=none, info={"damaged_print": False}))[0]
    assert not worth_repairing(DamageMask(mask=none, scratches=none, specks=none))[0]
