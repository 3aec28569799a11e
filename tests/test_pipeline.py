"""The whole method end to end on the public-domain sample, plus real photos when present."""
from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from face2scene import CancelToken, Cancelled
from face2scene.degrade import apply_params, degrade, simple_params
from face2scene.metrics import psnr
from face2scene.pipeline import STAGES, Face2ScenePipeline, PipelineConfig, resolve_device
from face2scene.samples import load_sample


@pytest.fixture(scope="module")
def sample():
    return load_sample()


@pytest.fixture(scope="module")
def degraded(sample):
    return degrade(sample, "mild", seed=5)  # noise 17, blur 1.7 px, JPEG 68


@pytest.fixture(scope="module")
def pipe():
    return Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical"))


@pytest.fixture(scope="module")
def run(pipe, sample, degraded):
    events = []
    img, params = degraded
    ref = np.ascontiguousarray(sample[:, ::-1])
    res = pipe.restore(img, {"eileen": [ref]}, progress=lambda s, f, m="": events.append((s, f, m)))
    return res, events, params


def test_end_to_end_result_is_complete(run, sample, degraded):
    res, _, params = run
    img, _ = degraded
    assert res.image.shape == img.shape and res.image.dtype == np.uint8
    assert res.input_size == (img.shape[1], img.shape[0])
    assert len(res.faces) == 1
    f = res.faces[0]
    assert f.person == "eileen" and 0.5 < f.person_confidence <= 1
    assert f.restored_crop is not None and f.degraded_crop is not None
    assert f.restored_crop.shape == f.degraded_crop.shape
    assert f.references_used
    assert res.degradation.source == "face"
    assert res.backends.restorer == "classical" and res.backends.faces == "dlib"
    assert set(STAGES) <= set(res.timings)
    assert psnr(sample, res.image) > psnr(sample, img) + 1.0
    report = res.to_json()
    assert report["faces"][0]["person"] == "eileen"
    assert {"noise_sigma", "blur_sigma", "jpeg_quality", "scale", "source"} <= set(report["degradation"])


def test_face_estimate_is_close_to_the_truth(run):
    res, _, params = run
    t, e = params["summary"], res.degradation
    assert abs(e.noise_sigma - t["noise_sigma"]) < 4
    assert abs(e.blur_sigma - t["blur_sigma"]) < 0.6
    assert abs(e.jpeg_quality - t["jpeg_quality"]) < 8


def test_progress_reports_every_stage_in_order(run):
    _, events, _ = run
    order = [s for s, _, _ in events]
    firsts = [order.index(s) for s in STAGES]
    assert firsts == sorted(firsts)
    for s in STAGES:
        fr = [f for st, f, _ in events if st == s]
        assert fr[0] == 0.0 and fr[-1] == 1.0 and all(0 <= v <= 1 for v in fr)


def test_deterministic(pipe, sample, degraded, run):
    img, _ = degraded
    again = pipe.restore(img, {"eileen": [np.ascontiguousarray(sample[:, ::-1])]})
    assert np.array_equal(again.image, run[0].image)


def test_cancel_stops_the_run(pipe, degraded):
    img, _ = degraded
    token = CancelToken()

    def progress(stage, fraction, message=""):
        if stage == "fadex":
            token.cancel()

    with pytest.raises(Cancelled):
        pipe.restore(img, None, progress=progress, cancel=token)


def test_cancel_from_another_thread(pipe, degraded):
    img, _ = degraded
    token = CancelToken()
    big = cv2.resize(img, (1400, 1400))
    errors = []

    def work():
        try:
            pipe.restore(big, None, cancel=token)
        except Cancelled:
            errors.append("cancelled")

    t = threading.Thread(target=work)
    t.start()
    token.cancel()
    t.join(60)
    assert errors == ["cancelled"]


def test_no_references_gives_blind_estimate_and_unknown_person(pipe, degraded):
    img, _ = degraded
    res = pipe.restore(img, None)
    assert res.degradation.source == "blind"
    assert res.faces and res.faces[0].person is None
    assert "no reference" in res.faces[0].skipped


def test_no_faces_scene():
    rng = np.random.default_rng(2)
    scene = cv2.GaussianBlur(rng.integers(0, 255, (200, 260, 3), dtype=np.uint8), (0, 0), 2)
    scene = apply_params(scene, simple_params(noise_sigma=10, seed=1))
    res = Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical")).restore(scene, None)
    assert res.faces == [] and res.degradation.source == "blind"
    assert res.image.shape == scene.shape


def test_upscale(pipe, degraded):
    img, _ = degraded
    small = cv2.resize(img, (160, 120), interpolation=cv2.INTER_AREA)
    res = Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical", upscale=2)).restore(small)
    assert res.image.shape == (240, 320, 3) and res.upscale == 2


def test_given_estimate_is_used(sample, degraded):
    from face2scene.types import DegradationEstimate
    img, _ = degraded
    given = DegradationEstimate(9.0, 1.1, 70.0, 1.0, "given", 1.0)
    res = Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical", estimate=given)).restore(img)
    assert res.degradation is given


def test_unknown_names_are_refused():
    with pytest.raises(ValueError):
        Face2ScenePipeline(PipelineConfig(restorer="magic"))
    with pytest.raises(ValueError):
        resolve_device("tpu")


def test_cuda_request_without_cuda_falls_back_with_a_message():
    import torch
    dev, warning = resolve_device("cuda")
    if torch.cuda.is_available():
        assert dev == "cuda"
    else:
        assert dev == "cpu" and "CUDA" in warning


def test_missing_learned_weights_fall_back_to_classical(tmp_path, degraded):
    img, _ = degraded
    small = img[:128, :128]
    res = Face2ScenePipeline(PipelineConfig(device="cpu", restorer="sd-turbo", models_dir=tmp_path)).restore(small)
    assert res.backends.restorer == "classical"
    assert any("sd-turbo" in w for w in res.warnings)


@pytest.mark.data
def test_real_photo_with_references_of_the_same_person(identities):
    from face2scene.io import load_image
    files = identities["matt_damon"]
    clean = load_image(files[0]).rgb
    clean = cv2.resize(clean, None, fx=640 / max(clean.shape[:2]), fy=640 / max(clean.shape[:2]), interpolation=cv2.INTER_AREA)
    img = apply_params(clean, simple_params(noise_sigma=12, blur_sigma=1.2, jpeg_quality=65, seed=5))
    pipe = Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical"))
    res = pipe.restore(img, {"matt": files[1:], "angelina": identities["angelina_jolie"][:3]})
    assert res.faces[0].person == "matt"
    assert res.degradation.source == "face"
    assert abs(res.degradation.noise_sigma - 12) < 4
    assert psnr(clean, res.image) > psnr(clean, img) + 1.0


@pytest.mark.data
def test_real_old_group_photo(shared_data):
    from face2scene.io import load_image
    img = load_image(shared_data / "old_photos" / "codeformer_00.jpg").rgb
    res = Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical")).restore(img)
    assert len(res.faces) >= 4
    assert res.image.shape == img.shape


def test_auto_runs_the_shipped_compact_restorer_with_the_face_code(sample, degraded):
    img, _ = degraded
    ref = np.ascontiguousarray(sample[:, ::-1])
    auto = Face2ScenePipeline(PipelineConfig(device="cpu")).restore(img, {"eileen": [ref]})
    assert auto.backends.restorer == "compact"
    assert auto.backends.code == "face"  # conditioned by the learned FaDeX face code
    assert auto.image.shape == img.shape and not auto.warnings
    # the result carries the code and the learned FaDeX's own estimate; the report tells the truth
    assert auto.code.source == "face" and auto.code.faces_used == 1
    assert auto.learned_estimate.details["estimator"] == "fadex-learned"
    report = auto.to_json()
    assert report["backends"]["fadex"] == "analytic + learned" and report["backends"]["estimate"] == "face"
    assert report["code"] == {"source": "face", "faces_used": 1} and report["learned_estimate"]["source"] == "face"
    classical = Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical")).restore(img, {"eileen": [ref]})
    assert classical.code is None and classical.learned_estimate is None
    assert classical.to_json()["backends"]["fadex"] == "analytic" and "restorer_code" not in classical.to_json()["backends"]
    # the shipped model refines the classical restorer's output: on the sample it does better
    assert psnr(sample, auto.image) > psnr(sample, classical.image) > psnr(sample, img) + 1.0


def test_auto_falls_back_to_classical_with_a_reason(monkeypatch, degraded):
    from face2scene.errors import WeightsError
    from face2scene.restorers import learned

    def broken(*a, **k):
        raise WeightsError("weights folder X is incomplete; missing: X/restorer/config.json")
    monkeypatch.setattr(learned, "load_learned", broken)
    res = Face2ScenePipeline(PipelineConfig(device="cpu")).restore(degraded[0][:128, :128])
    assert res.backends.restorer == "classical"
    assert any("compact restorer could not be loaded" in w and "X/restorer/config.json" in w for w in res.warnings)


def test_a_bug_in_a_learned_restorer_is_not_hidden_by_the_fallback(monkeypatch, degraded):
    """Only missing weights or a missing optional package fall back; anything else surfaces."""
    from face2scene.restorers import learned

    def buggy(*a, **k):
        raise KeyError("a bug")
    monkeypatch.setattr(learned, "load_learned", buggy)
    with pytest.raises(KeyError):
        Face2ScenePipeline(PipelineConfig(device="cpu")).restore(degraded[0][:128, :128])

    def broken_import(*a, **k):
        raise ModuleNotFoundError("No module named 'face2scene.nonexistent'", name="face2scene.nonexistent")
    monkeypatch.setattr(learned, "load_learned", broken_import)
    with pytest.raises(ModuleNotFoundError):
        Face2ScenePipeline(PipelineConfig(device="cpu")).restore(degraded[0][:128, :128])

    def no_torch(*a, **k):
        raise ModuleNotFoundError("No module named 'torch'", name="torch")
    monkeypatch.setattr(learned, "load_learned", no_torch)
    res = Face2ScenePipeline(PipelineConfig(device="cpu")).restore(degraded[0][:128, :128])
    assert res.backends.restorer == "classical" and any("needs torch" in w for w in res.warnings)


def test_cancel_token_over_a_process_event():
    import multiprocessing
    ev = multiprocessing.get_context("spawn").Event()
    token = CancelToken(ev)
    assert not token.cancelled
    ev.set()  # what a parent process does
    with pytest.raises(Cancelled):
        token.raise_if_cancelled()


def test_classical_restorer_never_imports_torch_or_embeds_without_people(tmp_path):
    """torch costs ~1 s and hundreds of MB; the classical restorer (the fallback) does not need it."""
    import subprocess
    import sys
    code = ("import sys; from face2scene.pipeline import Face2ScenePipeline, PipelineConfig; "
            "from face2scene.samples import load_sample; "
            "r = Face2ScenePipeline(PipelineConfig(restorer='classical')).restore(load_sample()); "
            "print('torch' in sys.modules, r.backends.device, r.faces[0].face.embedding is None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "cpu", "True"]


def test_assignments_decide_whose_references_a_face_gets(sample, degraded):
    """The app passes the person it shows for each face: None (unknown) is restored without anyone's
    references, a name with exactly that person's references; the pipeline's own matcher only
    decides faces the caller left out."""
    img, _ = degraded
    ref = np.ascontiguousarray(sample[:, ::-1])
    pipe = Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical"))
    faces = pipe.detect_faces(img)
    people = {"eileen": [ref], "someone else": [np.ascontiguousarray(sample[::-1])]}
    unknown = pipe.restore(img, people, faces=faces, assignments={0: None})
    assert unknown.faces[0].person is None and unknown.faces[0].references_used == []
    assert unknown.faces[0].restored_crop is None and "no person assigned" in unknown.faces[0].skipped
    named = pipe.restore(img, people, faces=faces, assignments={0: "eileen"})
    assert named.faces[0].person == "eileen" and named.faces[0].references_used
    assert all(u.startswith("eileen: reference") for u in named.faces[0].references_used)
