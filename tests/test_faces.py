"""Faces: landmark order against the FFHQ template, alignment, embeddings, paste-back."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from face2scene.faces import FFHQ_TEMPLATE_512, align_face, get_face_backend
from face2scene.faces.align import face_paste_mask, paste_back
from face2scene.faces.base import FaceBackendError
from face2scene.samples import load_sample


@pytest.fixture(scope="module")
def backend():
    return get_face_backend("dlib")


@pytest.fixture(scope="module")
def sample():
    return load_sample()


def test_dlib_landmarks_are_in_ffhq_order(backend, sample):
    faces = backend.detect(sample)
    assert len(faces) == 1
    lm = faces[0].landmarks
    assert lm.shape == (5, 2)
    # left eye (image left) first, then right eye; nose below the eyes; mouth below the nose
    assert lm[0, 0] < lm[1, 0]
    assert lm[3, 0] < lm[4, 0]
    assert max(lm[0, 1], lm[1, 1]) < lm[2, 1] < min(lm[3, 1], lm[4, 1])
    x0, y0, x1, y1 = faces[0].box
    assert x0 <= lm[:, 0].min() and lm[:, 0].max() <= x1 + 5


def test_aligned_crop_puts_the_face_on_the_template(backend, sample):
    face = backend.detect(sample)[0]
    crop, affine = align_face(sample, face.landmarks, 512)
    assert crop.shape == (512, 512, 3)
    again = backend.detect(crop, with_embeddings=False)
    assert again, "the aligned crop should still show a face"
    # eye centres of the re-detected face sit on the template's eye points
    err = np.linalg.norm(again[0].landmarks[:2] - FFHQ_TEMPLATE_512[:2], axis=1)
    assert err.max() < 12, err
    # the transform maps the input landmarks onto the template (similarity fit)
    mapped = face.landmarks @ affine[:, :2].T + affine[:, 2]
    assert np.linalg.norm(mapped[:2] - FFHQ_TEMPLATE_512[:2], axis=1).max() < 10


def test_rotated_photo_still_aligns_upright(backend, sample):
    h, w = sample.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 20, 1.0)
    rotated = cv2.warpAffine(sample, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    faces = backend.detect(rotated)
    assert faces
    crop, _ = align_face(rotated, faces[0].landmarks, 256)
    again = backend.detect(crop, with_embeddings=False)
    assert again and abs(again[0].landmarks[0, 1] - again[0].landmarks[1, 1]) < 8  # eyes level


def test_embedding_same_person_close_degraded_copy(backend, sample):
    face = backend.detect(sample)[0]
    noisy = np.clip(sample + np.random.default_rng(0).normal(0, 12, sample.shape), 0, 255).astype(np.uint8)
    f2 = backend.detect(noisy)[0]
    d = backend.distance(face.embedding, f2.embedding)
    assert d < 0.45, d


@pytest.mark.data
def test_embeddings_separate_people(backend, identities):
    from face2scene.io import load_image
    embs = {}
    for name in ("angelina_jolie", "matt_damon", "george_clooney"):
        img = load_image(identities[name][0]).rgb
        embs[name] = backend.detect(img)[0].embedding
    names = list(embs)
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            assert backend.distance(embs[names[i]], embs[names[j]]) > backend.match_threshold


def test_tiny_faces_are_reported_not_dropped(backend, sample):
    small = cv2.resize(sample, (160, 160), interpolation=cv2.INTER_AREA)  # eyes ~9 px apart
    faces = backend.detect(small)
    # either detected and flagged, or too small for the detector at all; never silently "usable"
    for f in faces:
        eye = np.linalg.norm(f.landmarks[1] - f.landmarks[0])
        if eye < 9:
            assert not f.usable and "too small" in f.reason


@pytest.mark.data
def test_group_photo_finds_every_face(backend, shared_data):
    from face2scene.io import load_image
    img = load_image(shared_data / "old_photos" / "codeformer_00.jpg").rgb
    faces = backend.detect(img)
    assert len(faces) >= 4
    boxes = np.array([f.box for f in faces])
    assert len({tuple(np.round(b / 10)) for b in boxes}) == len(faces)  # distinct faces


def test_no_face_in_a_scene(backend):
    rng = np.random.default_rng(0)
    scene = cv2.GaussianBlur(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8), (0, 0), 3)
    assert backend.detect(scene) == []


def test_unknown_backend_and_missing_insightface_pack(tmp_path):
    with pytest.raises(FaceBackendError, match="unknown face backend"):
        get_face_backend("nope")
    with pytest.raises(FaceBackendError, match="missing folder"):
        get_face_backend("insightface", models_dir=tmp_path)
    with pytest.raises(FaceBackendError, match="no models folder"):
        get_face_backend("insightface", models_dir=None)


def test_paste_back_only_touches_the_face_and_respects_earlier_faces(backend, sample):
    face = backend.detect(sample)[0]
    crop, affine = align_face(sample, face.landmarks, 256)
    white = np.full_like(crop, 255)
    out = sample.copy()
    occupied = np.zeros(sample.shape[:2], np.float32)
    paste_back(out, white, affine, occupied, crop_mask=face_paste_mask(256))
    changed = np.any(out != sample, axis=2)
    ys, xs = np.nonzero(changed)
    x0, y0, x1, y1 = face.box
    pad = (x1 - x0) * 0.6
    assert xs.min() > x0 - pad and xs.max() < x1 + pad and ys.min() > y0 - pad and ys.max() < y1 + pad
    centre = face.landmarks[2].astype(int)
    assert (out[centre[1], centre[0]] == 255).all()
    # a second face over the same place may not overwrite the first blindly
    black = np.zeros_like(crop)
    again = out.copy()
    paste_back(again, black, affine, occupied, crop_mask=face_paste_mask(256))
    assert (again[centre[1], centre[0]] == 255).all()
    # the feathered edge blends (no hard seam): there are intermediate values
    ring = out[changed].astype(int)
    assert np.any((ring.sum(1) > 0) & (ring.sum(1) < 3 * 250))
