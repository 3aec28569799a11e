"""The user's edit of an old print's damage mask (``restore(damage_edit=...)``: +1 add, -1 erase)
reaches the mask the pipeline repairs and reports (``RestoreResult.damage_mask``); the automatic
repair can be switched off (``PipelineConfig.print_repair``); a face can get its own amount of
reference detail (``restore(face_detail={index: amount})``)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from face2scene.damage import EDIT_ADD, EDIT_ERASE, apply_user_edits, detect_damage
from face2scene.errors import ConfigError
from face2scene.pipeline import Face2ScenePipeline, PipelineConfig

FAST = dict(device="cpu", restorer="classical")
SCRATCH = ((20, 30), (180, 120))  # a bright scratch
ROPE = ((30, 140), (170, 140))    # a dark straight line: the detector takes it for damage too


def scratched_photo() -> np.ndarray:
    """A small grey print: smooth shading, a little grain, a bright scratch and a dark line."""
    h, w = 160, 200
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 90 + 60 * np.sin(x / 37.0) * np.cos(y / 29.0) + 0.2 * x
    rng = np.random.default_rng(0)
    img = np.clip(base[..., None] + rng.normal(0, 2.0, (h, w, 1)), 0, 255).repeat(3, 2).astype(np.uint8)
    cv2.line(img, *SCRATCH, (250, 250, 250), 2)
    cv2.line(img, *ROPE, (20, 20, 20), 2)
    return img


def line_mask(shape, ends, width=2) -> np.ndarray:
    m = np.zeros(shape[:2], np.uint8)
    cv2.line(m, *ends, 1, width)
    return m > 0


def test_apply_user_edits_adds_and_erases():
    detected = np.zeros((4, 5), bool)
    detected[1, :] = True
    edit = np.zeros((4, 5), np.int8)
    edit[1, 0] = EDIT_ERASE
    edit[3, 4] = EDIT_ADD
    out = apply_user_edits(detected, edit)
    assert out[1, 1:].all() and not out[1, 0] and out[3, 4] and out.sum() == 5
    assert not detected[3, 4] and detected[1, 0]  # the detector's mask is not changed
    assert np.array_equal(apply_user_edits(detected, None), detected)


@pytest.mark.parametrize("edit, words", [(np.zeros((4, 4), np.int8), "5x4"),
                                         (np.full((4, 5), 2, np.int8), "+1 (add)"),
                                         (np.zeros((4, 5), bool), "whole numbers")])
def test_bad_edits_say_what_is_wrong(edit, words):
    with pytest.raises(ValueError, match=words.replace("+", r"\+").replace("(", r"\(").replace(")", r"\)")):
        apply_user_edits(np.zeros((4, 5), bool), edit)


def test_pipeline_repairs_the_users_marks_and_spares_what_they_erase(monkeypatch):
    # the rules alone: they take the dark line for damage (as they take a real rope on some
    # photos the learned stage lets through); the learned stage drops both lines of this
    # un-aged synthetic photo, and the user's edits are what this test is about
    import face2scene.damage as damage
    monkeypatch.setattr(damage, "load_seg_net", lambda *a, **k: None)
    img = scratched_photo()
    scratch, rope = line_mask(img.shape, SCRATCH), line_mask(img.shape, ROPE)
    found = detect_damage(img).mask
    assert (found & rope).sum() > 0.8 * rope.sum() and (found & scratch).sum() > 0.8 * scratch.sum()
    edit = np.zeros(img.shape[:2], np.int8)
    edit[cv2.dilate(rope.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0] = EDIT_ERASE  # "that is a rope"
    edit[20:26, 150:170] = EDIT_ADD  # a stain the detector does not see
    res = Face2ScenePipeline(PipelineConfig(**FAST, old_print=True)).restore(img, damage_edit=edit)
    used = res.damage_mask
    assert used.shape == img.shape[:2] and used.dtype == bool
    assert used[20:26, 150:170].all()                        # the marked pixels are repaired
    assert not (used & rope).any()                           # the erased line is not
    assert (used & scratch).sum() > 0.8 * scratch.sum()      # the detector's other finds stay
    assert res.old_print["user_marks"] == {"added": 120, "erased": int((edit < 0).sum())}
    assert res.old_print["damage_fraction"] == pytest.approx(used.mean(), abs=1e-5)
    # the line the user kept is still in the photo (dark), the scratch is gone (no longer bright)
    y = res.image.astype(np.float32).mean(axis=2)
    assert np.median(y[rope]) < np.median(y[line_mask(img.shape, ((30, 132), (170, 132)))]) - 40
    assert np.median(y[scratch]) < 200


def test_automatic_repair_off_repairs_only_the_marks():
    img = scratched_photo()
    edit = np.zeros(img.shape[:2], np.int8)
    edit[60:64, 10:20] = EDIT_ADD
    res = Face2ScenePipeline(PipelineConfig(**FAST, old_print=True, print_repair=False)).restore(img, damage_edit=edit)
    assert np.array_equal(res.damage_mask, edit > 0)
    assert res.old_print["auto_repair"] is False and res.old_print["detected_fraction"] > 0


def test_marks_for_another_size_or_without_old_print():
    img = scratched_photo()
    pipe = Face2ScenePipeline(PipelineConfig(**FAST))
    with pytest.raises(ValueError, match="another photo or another size"):
        pipe.restore(img, damage_edit=np.zeros((10, 10), np.int8))
    with pytest.raises(ConfigError, match="face 0"):
        pipe.restore(img, face_detail={0: 1.5})
    edit = np.zeros(img.shape[:2], np.int8)
    edit[0:4, 0:4] = EDIT_ADD
    res = pipe.restore(img, damage_edit=edit)
    assert res.damage_mask is None and any("damage marks were not used" in w for w in res.warnings)


def test_each_face_gets_its_own_reference_detail():
    """face_detail={0: a} restores face 0 as config.face_detail=a would, whatever the config says."""
    from face2scene.degrade import apply_params, simple_params
    from face2scene.samples import load_sample
    from face2scene.types import DegradationEstimate
    clean = np.ascontiguousarray(load_sample()[0:320, 80:400])  # head and shoulders (a faster test)
    deg = apply_params(clean, simple_params(noise_sigma=6.0, blur_sigma=1.5, jpeg_quality=None, seed=3))
    people = {"eileen": [np.ascontiguousarray(clean[:, ::-1])]}
    est = DegradationEstimate(6.0, 1.5, None, 1.0, "given", 1.0)
    run = lambda detail, per_face=None: Face2ScenePipeline(PipelineConfig(  # noqa: E731
        **FAST, estimate=est, face_detail=detail)).restore(deg, people, face_detail=per_face).image
    none, full, per_face = run(0.0), run(1.0), run(1.0, {0: 0.0})
    assert not np.array_equal(none, full)
    assert np.array_equal(per_face, none)
