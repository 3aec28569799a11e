"""The compact backend as the pipeline uses it: loading a weights folder, clear errors for missing
files, face codes (fused, native scale), the null path, tiled restoration with progress/cancel."""
import numpy as np
import pytest
import torch

from face2scene.errors import WeightsNotFoundError
from face2scene.estimate.learned import FaceCrops, to_native_scale
from face2scene.progress import CancelToken, Cancelled
from face2scene.restorers.compact import CompactBackend, load_compact_restorer


@pytest.fixture
def backend_dir(tmp_path, tiny_models):
    fadex, mapnet, restorer = tiny_models
    for name, m in (("fadex", fadex), ("mapnet", mapnet), ("restorer", restorer)):
        m.save_pretrained(tmp_path / "compact" / name)
    return tmp_path / "compact"


def test_missing_files_are_listed(tmp_path, backend_dir):
    (backend_dir / "mapnet" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(WeightsNotFoundError) as e:
        load_compact_restorer(folder=backend_dir)
    assert str(backend_dir / "mapnet" / "diffusion_pytorch_model.safetensors") in str(e.value)
    with pytest.raises(FileNotFoundError) as e:
        load_compact_restorer(folder=tmp_path / "nowhere")
    assert str(tmp_path / "nowhere" / "restorer" / "config.json") in str(e.value)


def test_face_code_and_restore(backend_dir):
    b = load_compact_restorer(folder=backend_dir)
    assert isinstance(b, CompactBackend)
    rng = np.random.default_rng(0)
    face = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    noisy = np.clip(face + rng.normal(0, 20, face.shape), 0, 255).astype(np.uint8)
    code = b.face_code([FaceCrops(noisy, face, weight=2.0), FaceCrops(noisy[:48, :48], face[:48, :48])])
    assert code.source == "face" and code.faces_used == 2
    assert code.tokens.shape == (1, 22, 16)
    est = code.estimate
    assert est.source == "face" and est.noise_sigma >= 0 and est.scale > 0
    null = b.face_code([FaceCrops(noisy[:16, :16], face[:16, :16])])  # too small: the null path
    assert null.source == "null" and null.estimate is None
    assert torch.equal(null.tokens[0, :21], b.mapnet.null_tokens)
    photo = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
    seen = []
    out_face = b.restore_with_tokens(photo, code, tile=32, overlap=8, progress=lambda f, m: seen.append(f))
    out_null = b.restore_with_tokens(photo, None, tile=32, overlap=8)
    assert out_face.shape == photo.shape and seen and seen[-1] == 1.0
    assert not np.array_equal(out_face, out_null)
    tok = CancelToken()
    tok.cancel()
    with pytest.raises(Cancelled):
        b.restore_with_tokens(photo, code, tile=32, overlap=8, cancel=tok)


def test_native_scale():
    crop = np.zeros((512, 512, 3), np.uint8)
    aff = np.array([[4.0, 0, 10], [0, 4.0, 5]])  # the face was 128 px in the photo
    assert to_native_scale(crop, aff).shape == (128, 128, 3)
    assert to_native_scale(crop, None) is crop


def test_learned_restorer_seam(backend_dir):
    """load_learned(name, models_dir, device) gives a SceneRestorer: restore(rgb, estimate, faces=...,
    upscale=...) -> RestorerOutput that says which code conditioned it."""
    from types import SimpleNamespace
    from face2scene.restorers import SceneRestorer
    from face2scene.restorers.learned import load_learned
    from face2scene.types import DegradationEstimate
    r = load_learned("compact", backend_dir.parent, "cpu", tile_size=32)
    assert isinstance(r, SceneRestorer)
    assert r.name == "compact" and "no generative prior" in r.description
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    est = DegradationEstimate(noise_sigma=12, blur_sigma=1.0, jpeg_quality=60, scale=1.0, source="face")
    a = r.restore(photo, est, upscale=2)
    assert a.image.shape == (80, 100, 3) and a.code.source == "estimate" and a.learned_estimate is None
    b = r.restore(photo, DegradationEstimate(5, 0.5, None, source="blind"))
    assert b.code.source == "null" and b.image.shape == (40, 50, 3)
    face = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    fr = SimpleNamespace(degraded_crop=face, restored_crop=face, affine=None,
                         face=SimpleNamespace(size=60.0, score=0.9))
    c = r.restore(photo, est, faces=[fr])
    assert c.code.source == "face" and c.code.faces_used == 1
    assert c.learned_estimate is not None and c.learned_estimate.details["estimator"] == "fadex-learned"
    assert not np.array_equal(c.image, r.restore(photo, None).image)
    with pytest.raises(ValueError):
        load_learned("nonsense", backend_dir.parent)
    with pytest.raises(FileNotFoundError, match="sd-turbo"):
        load_learned("sd-turbo", None)
