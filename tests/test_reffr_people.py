"""Ref-FR (embedded) and people: references bring back detail, unknown faces stay unknown."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from face2scene.degrade import apply_params, simple_params
from face2scene.estimate.analytic import band_energies
from face2scene.faces import align_face, get_face_backend
from face2scene.faces.align import native_crop_size
from face2scene.estimate.jpeg import luma
from face2scene.people import PeopleIndex, pose_vector
from face2scene.reffr import RefFR
from face2scene.samples import load_sample


@pytest.fixture(scope="module")
def backend():
    return get_face_backend("dlib")


@pytest.fixture(scope="module")
def setup(backend):
    clean = load_sample()
    deg = apply_params(clean, simple_params(noise_sigma=6, blur_sigma=2.5, jpeg_quality=80, seed=1))
    index = PeopleIndex.build(backend, {"eileen": [np.ascontiguousarray(clean[:, ::-1])]})
    face = backend.detect(deg)[0]
    size = native_crop_size(face.landmarks)
    dcrop, aff = align_face(deg, face.landmarks, size)
    ccrop = cv2.warpAffine(clean, aff, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT101)
    refs = index.select_references("eileen", face, 3)
    rf = RefFR()
    aligned = rf.align_references(dcrop, refs, size)
    return dict(index=index, face=face, dcrop=dcrop, ccrop=ccrop, aligned=aligned, restored=rf.restore(dcrop, aligned))


def test_references_bring_back_fine_detail(setup):
    e_clean = band_energies(luma(setup["ccrop"]).astype(np.float32))
    e_deg = band_energies(luma(setup["dcrop"]).astype(np.float32))
    e_res = band_energies(luma(setup["restored"]).astype(np.float32))
    # the two finest bands: the degraded crop lost most of their energy, the restored has it back
    for k in (0, 1):
        assert abs(np.log(e_res[k] / e_clean[k])) < abs(np.log(e_deg[k] / e_clean[k])), (k, e_clean, e_deg, e_res)


def test_structure_and_colour_come_from_the_photo(setup):
    lo = lambda x: cv2.GaussianBlur(x.astype(np.float32), (0, 0), 4)
    err = np.abs(lo(setup["restored"]) - lo(setup["dcrop"])).mean()
    err_ref = np.abs(lo(setup["aligned"][0].crop) - lo(setup["dcrop"])).mean()
    assert err < 4.0 and err < 0.5 * err_ref, (err, err_ref)  # not a pasted reference


def test_aligned_references_agree_with_the_photo(setup):
    assert setup["aligned"] and all(a.crop.shape[:2] == setup["dcrop"].shape[:2] for a in setup["aligned"])
    assert setup["aligned"][0].score > 0.4


def test_without_references_the_photo_is_kept(setup):
    out = RefFR().restore(setup["dcrop"], [], photo_detail=1.0)
    assert np.abs(out.astype(int) - setup["dcrop"].astype(int)).max() <= 2


def test_match_and_unknown(setup, backend):
    index = setup["index"]
    name, dist, conf = index.match(setup["face"])
    assert name == "eileen" and dist < backend.match_threshold and conf > 0.5
    rng = np.random.default_rng(0)
    stranger = type(setup["face"])(box=(0, 0, 1, 1), landmarks=setup["face"].landmarks, score=1.0,
                                   embedding=rng.normal(0, 0.3, 128).astype(np.float32))
    assert index.match(stranger)[0] is None


def test_pose_vector_reads_yaw():
    lm = np.array([[40, 50], [80, 50], [60, 70], [45, 90], [75, 90]], np.float32)
    turned = lm.copy()
    turned[2, 0] += 12
    assert abs(pose_vector(lm)[0]) < 1e-6 and pose_vector(turned)[0] > 0.2


def test_unreadable_reference_is_reported_not_fatal(backend, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    index = PeopleIndex.build(backend, {"x": [bad, np.full((64, 64, 3), 128, np.uint8)]})
    problems = index.people["x"].problems
    assert len(problems) == 2 and "bad.jpg" in problems[0] and "no usable face" in problems[1]


@pytest.mark.data
def test_other_peoples_references_leave_a_face_unknown(backend, identities):
    from face2scene.io import load_image
    index = PeopleIndex.build(backend, {"angelina": identities["angelina_jolie"][:3],
                                        "george": identities["george_clooney"][:2]})
    img = load_image(identities["matt_damon"][0]).rgb
    face = backend.detect(img)[0]
    assert index.match(face)[0] is None
    img2 = load_image(identities["angelina_jolie"][4]).rgb
    assert index.match(backend.detect(img2)[0])[0] == "angelina"
