"""The insightface backend's own code, against a stand-in for the insightface package (its model
packs cannot be downloaded here): folder checks, error wrapping, landmark order, embeddings."""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from face2scene.faces import FFHQ_TEMPLATE_512, get_face_backend
from face2scene.faces.base import FaceBackendError
from face2scene.faces.insightface_backend import REQUIRED_ONNX, check_pack


class _Face:
    def __init__(self, box, kps, score, emb):
        self.bbox, self.kps, self.det_score, self.normed_embedding = box, kps, score, emb


@pytest.fixture
def fake_insightface(monkeypatch):
    state = {"fail": None, "prepared": None}

    class FaceAnalysis:
        def __init__(self, name, root, providers, allowed_modules):
            if state["fail"]:
                raise state["fail"]
            state["root"], state["providers"] = root, providers

        def prepare(self, ctx_id, det_size):
            state["prepared"] = (ctx_id, det_size)

        def get(self, bgr):
            state["last_shape"] = bgr.shape
            kps = FFHQ_TEMPLATE_512 * 0.2 + np.float32([10, 20])  # a small face, FFHQ order
            big = FFHQ_TEMPLATE_512 * 0.5 + np.float32([200, 20])
            e = np.ones(512, np.float32) / np.sqrt(512)
            return [_Face(np.array([10, 20, 112, 122.0]), kps, 0.9, e),
                    _Face(np.array([200, 20, 456, 276.0]), big, 0.8, e)]

    mod = types.ModuleType("insightface")
    app = types.ModuleType("insightface.app")
    app.FaceAnalysis = FaceAnalysis
    mod.app = app
    monkeypatch.setitem(sys.modules, "insightface", mod)
    monkeypatch.setitem(sys.modules, "insightface.app", app)
    return state


def _pack(tmp_path):
    folder = tmp_path / "models" / "buffalo_l"
    folder.mkdir(parents=True)
    for f in REQUIRED_ONNX:
        (folder / f).write_bytes(b"onnx")
    return tmp_path


def test_check_pack_lists_what_is_missing(tmp_path):
    (tmp_path / "models" / "buffalo_l").mkdir(parents=True)
    problems = check_pack(tmp_path)
    assert len(problems) == len(REQUIRED_ONNX) and all("missing file" in p for p in problems)
    assert check_pack(_pack(tmp_path / "ok")) == []


def test_detect_keeps_ffhq_order_and_sorts_by_size(fake_insightface, tmp_path):
    backend = get_face_backend("insightface", models_dir=_pack(tmp_path))
    assert fake_insightface["prepared"][0] == -1  # CPU
    faces = backend.detect(np.zeros((300, 500, 3), np.uint8))
    assert fake_insightface["last_shape"] == (300, 500, 3)
    assert len(faces) == 2
    assert faces[0].box[0] == 200  # largest first
    lm = faces[0].landmarks
    assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]  # left eye / left mouth corner first
    assert faces[0].embedding.shape == (512,)
    assert backend.metric == "cosine" and backend.distance(faces[0].embedding, faces[1].embedding) < 1e-6


def test_broken_pack_gives_a_clear_error(fake_insightface, tmp_path):
    fake_insightface["fail"] = AssertionError()
    with pytest.raises(FaceBackendError, match="incomplete or unrecognised"):
        get_face_backend("insightface", models_dir=_pack(tmp_path))
    fake_insightface["fail"] = RuntimeError("onnx parse error")
    with pytest.raises(FaceBackendError, match="onnx parse error"):
        get_face_backend("insightface", models_dir=tmp_path)


def test_pipeline_falls_back_to_dlib_with_a_warning(tmp_path):
    from face2scene.pipeline import Face2ScenePipeline, PipelineConfig
    from face2scene.samples import load_sample
    pipe = Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical", face_backend="insightface",
                                             models_dir=tmp_path))
    res = pipe.restore(load_sample()[:256, 100:356])
    assert res.backends.faces == "dlib"
    assert any("insightface" in w and "dlib" in w for w in res.warnings)
