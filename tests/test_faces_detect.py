"""Detection that does not miss: small faces in big scans, turned scans, what HOG misses (the
CNN), and which detector found each face (issue 9, item 4)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from face2scene.faces import align_face
from face2scene.faces import dlib_backend as db
from face2scene.faces.dlib_backend import DetectOptions, DlibBackend, rotate_points, unrotate_points, upright_turns
from face2scene.samples import load_sample


@pytest.fixture(scope="module")
def backend():
    return db.get_dlib_backend()


@pytest.fixture(scope="module")
def sample():
    return load_sample()


@pytest.fixture(scope="module")
def upright(backend, sample):
    faces = backend.detect(sample)
    assert len(faces) == 1 and faces[0].detector == "hog"
    return faces[0]


def test_point_rotation_round_trip_matches_numpy():
    img = np.arange(5 * 7).reshape(5, 7)
    pts = np.array([[0, 0], [6, 4], [2, 3]], np.float64)
    for k in range(4):
        turned = np.rot90(img, k)
        there = rotate_points(pts, k, img.shape)
        # the same pixel, read in the turned image
        assert [turned[int(y), int(x)] for x, y in there] == [img[int(y), int(x)] for x, y in pts]
        assert np.allclose(unrotate_points(there, k, img.shape), pts)


@pytest.mark.parametrize("quarter_turns_clockwise", [1, 2, 3])
def test_turned_scan_faces_found_and_mapped_back(backend, sample, upright, quarter_turns_clockwise):
    k = quarter_turns_clockwise
    scan = np.ascontiguousarray(np.rot90(sample, -k))  # put on the glass turned clockwise
    faces = backend.detect(scan)
    assert len(faces) == 1
    f = faces[0]
    assert f.detector == f"hog@rot{90 * k}"
    # box and landmarks in the scan's own coordinates: where the upright face lands
    expected = rotate_points(upright.landmarks, (4 - k) % 4, sample.shape)
    assert np.abs(f.landmarks - expected).max() < 1.0
    x0, y0, x1, y1 = f.box
    assert 0 <= x0 < x1 <= scan.shape[1] and 0 <= y0 < y1 <= scan.shape[0]
    assert (x0 <= f.landmarks[:, 0].min() and f.landmarks[:, 0].max() <= x1
            and y0 <= f.landmarks[:, 1].min() and f.landmarks[:, 1].max() <= y1)
    assert upright_turns(f.landmarks) == k % 4
    # the identity is the upright face's, also when embedded again from the scan
    assert backend.distance(f.embedding, upright.embedding) < 0.05
    assert backend.distance(backend.embed(scan, f), upright.embedding) < 0.05
    # alignment turns the face upright: the aligned crops agree
    a, _ = align_face(sample, upright.landmarks, 256)
    b, _ = align_face(scan, f.landmarks, 256)
    assert np.abs(a.astype(float) - b.astype(float)).mean() < 3.0


def test_rotations_only_when_nothing_is_found_upright(sample, monkeypatch):
    b = DlibBackend(options=DetectOptions(cnn="off"))
    calls = []
    real = b._first_pass
    monkeypatch.setattr(b, "_first_pass", lambda img: calls.append(img.shape) or real(img))
    assert len(b.detect(sample, with_embeddings=False)) == 1
    assert len(calls) == 1  # no turned copy looked at
    off = DlibBackend(options=DetectOptions(cnn="off", rotations=False))
    assert off.detect(np.ascontiguousarray(np.rot90(sample)), with_embeddings=False) == []


def test_small_faces_in_a_big_scan(sample, monkeypatch):
    """Faces of 26-32 px in a scan the first pass sees reduced (as a 20 MP scan is): the
    upsampled pass finds all of them, in the scan's coordinates."""
    rng = np.random.default_rng(0)
    scan = cv2.GaussianBlur(rng.integers(60, 200, (750, 1000, 3), dtype=np.uint8), (0, 0), 4)
    placed = [(100, 100, 160), (500, 300, 150), (750, 500, 170)]  # face box ~ side / 5.3
    for x, y, side in placed:
        scan[y:y + side, x:x + side] = cv2.resize(sample, (side, side), interpolation=cv2.INTER_AREA)
    monkeypatch.setattr(db, "DETECT_MAX_PIXELS", 300_000)  # first pass: faces >= ~126 px only
    b = DlibBackend(options=DetectOptions(min_face=24))
    faces = b.detect(scan, with_embeddings=False)
    assert len(faces) == 3
    for f in faces:
        assert f.detector == "hog-upsampled" and f.usable
        assert 24 <= f.box[2] - f.box[0] <= 40
        cx, cy = (f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2
        assert any(x < cx < x + s and y < cy < y + s for x, y, s in placed)
    # without the small-face pass (min_face as large as the first pass sees) they are missed
    assert DlibBackend(options=DetectOptions(min_face=130, cnn="off", rotations=False)).detect(
        scan, with_embeddings=False) == []


def test_smallest_face_grows_only_past_the_budget():
    b = DlibBackend(options=DetectOptions(min_face=24, small_budget_mp=40))
    assert b.smallest_face((2000, 1500)) == 24  # 3 MP: 33 MP searched, within budget
    assert 40 < b.smallest_face((4000, 3000)) < 50  # 12 MP scan: budget-limited


def test_cnn_finds_what_hog_misses(sample):
    blurred = cv2.GaussianBlur(sample, (0, 0), 5)  # HOG sees nothing at all, upright or turned
    hog_only = DlibBackend(options=DetectOptions(cnn="off"))
    assert hog_only.detect(blurred, with_embeddings=False) == []
    faces = DlibBackend().detect(blurred, with_embeddings=False)
    assert len(faces) == 1 and faces[0].detector == "cnn"
    x0, y0, x1, y1 = faces[0].box
    assert 150 < (x0 + x1) / 2 < 300 and 60 < (y0 + y1) / 2 < 200  # where the face is


def test_cnn_confirms_a_hog_near_miss(sample):
    h, w = sample.shape[:2]
    rolled = cv2.warpAffine(sample, cv2.getRotationMatrix2D((w / 2, h / 2), 45, 1.0), (w, h),
                            borderMode=cv2.BORDER_REFLECT)
    hog_only = DlibBackend(options=DetectOptions(cnn="off", rotations=False))
    assert hog_only.detect(rolled, with_embeddings=False) == []
    faces = DlibBackend(options=DetectOptions(rotations=False)).detect(rolled, with_embeddings=False)
    assert len(faces) == 1 and faces[0].detector == "hog+cnn"


def test_bad_input_and_options_are_refused(backend):
    with pytest.raises(ValueError, match="RGB"):
        backend.detect(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="CNN policy"):
        DetectOptions(cnn="always")
    with pytest.raises(ValueError, match="positive"):
        DetectOptions(min_face=0)


def test_restoring_a_turned_scan_keeps_it_as_it_is(sample):
    """The pipeline on a scan turned by 90 degrees: the face is found, restored from the
    reference and reported in the scan's coordinates with its detector; the photo stays turned."""
    from face2scene.degrade import degrade
    from face2scene.pipeline import Face2ScenePipeline, PipelineConfig
    degraded, _ = degrade(sample, "mild", seed=5)
    scan = np.ascontiguousarray(np.rot90(degraded, -1))
    pipe = Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical"))
    res = pipe.restore(scan, {"eileen": [np.ascontiguousarray(sample[:, ::-1])]})
    assert res.image.shape == scan.shape
    assert len(res.faces) == 1 and res.faces[0].person == "eileen" and res.faces[0].restored_crop is not None
    report = res.to_json()
    assert report["faces"][0]["detector"] == "hog@rot90"
    assert any("turned by 90 degrees" in w for w in report["warnings"])
    # the result is the scan restored in place, not the photo turned back upright
    up = np.ascontiguousarray(np.rot90(res.image, 1))
    assert np.abs(up.astype(float) - sample.astype(float)).mean() < np.abs(
        res.image.astype(float) - sample.astype(float)).mean()
