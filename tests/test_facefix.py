"""Face-fix (facefix.py, the pipeline's paste step): faces restored again with the estimate."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from face2scene.degrade import apply_params, simple_params
from face2scene.facefix import refine_face, wiener_deblur
from face2scene.faces import align_face, get_face_backend
from face2scene.faces.align import affine_scale, inner_face_mask, native_crop_size
from face2scene.io import load_image
from face2scene.people import PeopleIndex
from face2scene.pipeline import Face2ScenePipeline, PipelineConfig
from face2scene.reffr import RefFR
from face2scene.samples import load_sample
from face2scene.types import DegradationEstimate

NOISE, BLUR, JPEG = 10.0, 1.6, 85


@pytest.fixture(scope="module")
def backend():
    return get_face_backend("dlib")


def _inner_psnr(a: np.ndarray, b: np.ndarray) -> float:
    m = inner_face_mask(a.shape[0]) > 0
    d = a.astype(np.float64)[m] - b.astype(np.float64)[m]
    return float(10 * np.log10(255.0 ** 2 / np.mean(d ** 2)))


def _case(backend, clean, refs, name="p"):
    """(clean crop, degraded crop, aligned refs, old Ref-FR output, crop scale) of the largest face."""
    deg = apply_params(clean, simple_params(noise_sigma=NOISE, blur_sigma=BLUR, jpeg_quality=JPEG, seed=3))
    index = PeopleIndex.build(backend, {name: refs})
    face = max(backend.detect(deg), key=lambda f: f.size)
    size = native_crop_size(face.landmarks)
    dcrop, aff = align_face(deg, face.landmarks, size)
    ccrop = cv2.warpAffine(clean, aff, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT101)
    rf = RefFR()
    aligned = rf.align_references(dcrop, index.select_references(name, face, 3), size)
    return ccrop, dcrop, aligned, rf.restore(dcrop, aligned), affine_scale(aff)


def _estimate(noise=NOISE, blur=BLUR, jpeg=JPEG):
    return DegradationEstimate(noise, blur, jpeg, 1.0, "given", 1.0)


def test_real_face_restored_closer_to_clean_than_refr(backend, identities):
    person = "jack_dorsey"  # a development person (the validation persons stay unseen)
    files = identities.get(person)
    if not files or len(files) < 3:
        pytest.skip(f"{person} not in the shared data")
    clean = load_image(files[0]).rgb
    s = 640 / max(clean.shape[:2])
    if s < 1:
        clean = cv2.resize(clean, (round(clean.shape[1] * s), round(clean.shape[0] * s)), interpolation=cv2.INTER_AREA)
    refs = [load_image(f).rgb for f in files[1:4]]
    ccrop, dcrop, aligned, old, scale = _case(backend, clean, refs, person)
    assert aligned
    new = refine_face(dcrop, _estimate(), aligned, scale).crop
    p_deg, p_old, p_new = _inner_psnr(ccrop, dcrop), _inner_psnr(ccrop, old), _inner_psnr(ccrop, new)
    assert p_new > p_old + 0.5 and p_new > p_deg + 1.0, (p_deg, p_old, p_new)


def test_sample_face_restored_closer_to_clean_than_refr(backend):
    """The same on the packaged sample (runs without the shared data): mirrored photo as reference."""
    clean = load_sample()
    ccrop, dcrop, aligned, old, scale = _case(backend, clean, [np.ascontiguousarray(clean[:, ::-1])])
    new = refine_face(dcrop, _estimate(), aligned, scale).crop
    p_deg, p_old, p_new = _inner_psnr(ccrop, dcrop), _inner_psnr(ccrop, old), _inner_psnr(ccrop, new)
    assert p_new > p_old and p_new > p_deg + 1.0, (p_deg, p_old, p_new)


def test_identity_at_zero_degradation(backend):
    crop = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    fix = refine_face(crop, _estimate(0.0, 0.0, None))
    assert np.array_equal(fix.crop, crop) and "skipped" in fix.info


def test_no_references_tiny_and_bad_crops():
    rng = np.random.default_rng(1)
    for size in (8, 24, 64):
        crop = cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), (0, 0), 1.0)
        out = refine_face(crop, _estimate(), [], 1.0).crop
        assert out.shape == crop.shape and out.dtype == np.uint8
    flat = np.full((64, 64, 3), 128, np.uint8)  # no signal above the noise at all
    assert np.abs(refine_face(flat, _estimate()).crop.astype(int) - 128).max() <= 1
    with pytest.raises(ValueError, match="square RGB"):
        refine_face(np.zeros((32, 48, 3), np.uint8), _estimate())
    with pytest.raises(ValueError, match="does not match"):
        refine_face(flat, _estimate(), scene=np.zeros((32, 32, 3), np.uint8))


def test_wiener_undoes_a_known_blur():
    rng = np.random.default_rng(2)
    x = cv2.GaussianBlur(rng.normal(128, 40, (128, 128)).astype(np.float32), (0, 0), 1.0)
    y = cv2.GaussianBlur(x, (0, 0), 1.5, borderType=cv2.BORDER_REFLECT101) + rng.normal(0, 1.0, x.shape).astype(np.float32)
    r = wiener_deblur(y, 1.5, 1.0)
    c = (slice(16, -16),) * 2
    assert np.abs(r - x)[c].mean() < 0.6 * np.abs(y - x)[c].mean()


def test_pipeline_face_box_better_than_ref_fr_paste(backend):
    """Through the pipeline with the true estimate: the face-fix paste beats the Ref-FR paste in the
    face box, leaves the photo outside the face alone, and a zero estimate leaves the face as the
    scene restorer left it."""
    clean = load_sample()
    deg = apply_params(clean, simple_params(noise_sigma=NOISE, blur_sigma=BLUR, jpeg_quality=JPEG, seed=3))
    people = {"eileen": [np.ascontiguousarray(clean[:, ::-1])]}

    class OldPaste(Face2ScenePipeline):
        def _refine_faces(self, run, out, estimate):
            return self._paste_faces(run, out, estimate)

    cfg = PipelineConfig(device="cpu", restorer="classical", estimate=_estimate())
    new = Face2ScenePipeline(cfg).restore(deg, people)
    old = OldPaste(cfg).restore(deg, people)
    nopaste = Face2ScenePipeline(PipelineConfig(**{**cfg.__dict__, "paste_faces": False})).restore(deg, people)
    assert new.faces[0].restored_crop is not None and "face_fix" in new.degradation.details
    x0, y0, x1, y1 = (int(v) for v in backend.detect(clean)[0].box)

    def box_err(img):
        return float(np.mean((img[y0:y1, x0:x1].astype(float) - clean[y0:y1, x0:x1]) ** 2))
    assert box_err(new.image) < box_err(old.image), (box_err(new.image), box_err(old.image))
    far = np.ones(clean.shape[:2], bool)
    h, w = y1 - y0, x1 - x0
    far[max(0, y0 - h):y1 + h, max(0, x0 - w):x1 + w] = False
    assert np.array_equal(new.image[far], nopaste.image[far])
    zero = Face2ScenePipeline(PipelineConfig(**{**cfg.__dict__, "estimate": _estimate(0.0, 0.0, None)}))
    z, zn = zero.restore(clean, people), Face2ScenePipeline(
        PipelineConfig(**{**cfg.__dict__, "estimate": _estimate(0.0, 0.0, None), "paste_faces": False})).restore(clean, people)
    assert np.array_equal(z.image, zn.image)


def test_sharp_face_read_as_blurred_is_not_sharpened(backend):
    """A clean face with a wrong blur reading (noise 0, blur 0.8-1.2 px): the Wiener filter's
    self-check keeps it close to itself (an unchecked inverse filter lands at 12-19 dB)."""
    clean = load_sample()
    face = backend.detect(clean)[0]
    size = native_crop_size(face.landmarks)
    crop, aff = align_face(clean, face.landmarks, size)
    for blur in (0.8, 1.2):
        out = refine_face(crop, _estimate(0.0, blur, None), [], affine_scale(aff)).crop
        assert _inner_psnr(crop, out) > 35.0, (blur, _inner_psnr(crop, out))


def test_pipeline_upscaled_face_is_refined_and_pasted():
    clean = load_sample()
    deg = apply_params(clean, simple_params(noise_sigma=NOISE, blur_sigma=BLUR, jpeg_quality=JPEG, seed=3))
    people = {"eileen": [np.ascontiguousarray(clean[:, ::-1])]}
    cfg = PipelineConfig(device="cpu", restorer="classical", estimate=_estimate(), upscale=2)
    res = Face2ScenePipeline(cfg).restore(deg, people)
    plain = Face2ScenePipeline(PipelineConfig(**{**cfg.__dict__, "paste_faces": False})).restore(deg, people)
    assert res.image.shape == (2 * deg.shape[0], 2 * deg.shape[1], 3)
    assert "0" in res.degradation.details["face_fix"] and not np.array_equal(res.image, plain.image)
    x0, y0, x1, y1 = (int(2 * v) for v in res.faces[0].face.box)
    big = cv2.resize(clean, (res.image.shape[1], res.image.shape[0]), interpolation=cv2.INTER_CUBIC).astype(float)
    err = lambda img: float(np.mean((img[y0:y1, x0:x1] - big[y0:y1, x0:x1]) ** 2))  # noqa: E731
    assert err(res.image) < err(plain.image)


def test_refined_face_share_follows_the_scene_restorer(monkeypatch):
    """facefix.SCENE_FACE_SHARE: the pasted face is the scene restorer's face plus that share of
    the refined face's difference (0: the scene's face, 1: the refined face whole)."""
    import face2scene.facefix as ff
    clean = load_sample()
    deg = apply_params(clean, simple_params(noise_sigma=NOISE, blur_sigma=BLUR, jpeg_quality=JPEG, seed=3))
    people = {"eileen": [np.ascontiguousarray(clean[:, ::-1])]}
    cfg = PipelineConfig(device="cpu", restorer="classical", estimate=_estimate())
    assert ff.fix_share("classical") == 1.0 and 0.0 < ff.fix_share("compact") < 1.0
    pipe = Face2ScenePipeline(cfg)
    out = {}
    for share in (0.0, 0.5, 1.0):
        monkeypatch.setitem(ff.SCENE_FACE_SHARE, "classical", share)
        out[share] = pipe.restore(deg, people).image.astype(np.float32)
    plain = Face2ScenePipeline(PipelineConfig(**{**cfg.__dict__, "paste_faces": False})).restore(deg, people).image
    x0, y0, x1, y1 = (int(v) for v in pipe.detect_faces(deg)[0].box)
    box = lambda a: a[y0:y1, x0:x1]  # noqa: E731
    assert np.abs(box(out[0.0]) - box(plain)).mean() < 0.5  # the scene's face (resampled once)
    assert np.abs(box(out[1.0]) - box(out[0.0])).mean() > 2.0
    mid = np.abs(box(out[0.5]) - (box(out[0.0]) + box(out[1.0])) / 2)  # linear, up to two roundings
    assert mid.mean() < 0.4 and mid.max() <= 2.5


def test_compact_face_closer_than_input_identity_kept(backend):
    """The default (compact) restorer with the face step, on the packaged sample under a known
    blur, noise and JPEG: the face box ends closer to the clean face than the input (PSNR), the
    identity embedding no farther from the clean face's, and the face step changed the face."""
    clean = load_sample()
    deg = apply_params(clean, simple_params(noise_sigma=NOISE, blur_sigma=BLUR, jpeg_quality=JPEG, seed=3))
    people = {"eileen": [np.ascontiguousarray(clean[:, ::-1])]}
    cfg = PipelineConfig(device="cpu", restorer="auto", estimate=_estimate())
    pipe = Face2ScenePipeline(cfg)
    res = pipe.restore(deg, people)
    if pipe.restorer.name != "compact":
        pytest.skip(f"the default restorer is {pipe.restorer.name}, not the compact one")
    plain = Face2ScenePipeline(PipelineConfig(**{**cfg.__dict__, "paste_faces": False})).restore(deg, people)
    face = backend.detect(clean)[0]
    x0, y0, x1, y1 = (int(v) for v in face.box)
    err = lambda img: float(np.mean((img[y0:y1, x0:x1].astype(float) - clean[y0:y1, x0:x1]) ** 2))  # noqa: E731
    assert err(res.image) < 0.6 * err(deg), (err(res.image), err(deg))  # > 2.2 dB closer
    assert not np.array_equal(res.image[y0:y1, x0:x1], plain.image[y0:y1, x0:x1])
    dist = lambda img: backend.distance(backend.embed(img, face), face.embedding)  # noqa: E731
    assert dist(res.image) <= dist(deg), (dist(res.image), dist(deg))
