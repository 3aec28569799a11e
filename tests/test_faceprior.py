"""FacePriorNet (issue 9's learned face prior, an experiment: not wired into the pipeline, see
scripts/faceprior_train.py): identity at initialisation, a luma-only change, any crop size, clear
errors, and a tiny model saved and loaded back."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from face2scene.models.faceprior import CODE_DIM, FacePriorNet, degradation_code  # noqa: E402


def _crops(size=38, seed=0):
    rng = np.random.default_rng(seed)
    scene = rng.integers(40, 216, (size, size, 3), dtype=np.uint8)
    degraded = np.clip(scene.astype(int) + rng.integers(-20, 21, scene.shape), 0, 255).astype(np.uint8)
    return degraded, scene


def _perturbed(net, seed=1, scale=0.05):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return net.eval()


def test_untrained_net_returns_the_scene_face():
    degraded, scene = _crops()
    net = FacePriorNet(width=8, blocks=1).eval()
    out = net.refine(degraded, scene, degradation_code(5, 1, 80, False))
    np.testing.assert_array_equal(out, scene)


def test_change_is_luma_only_and_any_size_works():
    from face2scene.reffr import to_ycc
    degraded, scene = _crops(size=37)  # odd: padded to the unshuffle multiple and cropped back
    net = _perturbed(FacePriorNet(width=8, blocks=2))
    ref = _crops(size=37, seed=3)[1]
    out = net.refine(degraded, scene, degradation_code(8, 1.2, 60, True), [ref, ref])
    assert out.shape == scene.shape and out.dtype == np.uint8
    a, b = to_ycc(out.astype(np.float32)), to_ycc(scene.astype(np.float32))
    inside = (out > 2).all(-1) & (out < 253).all(-1)  # not clipped
    assert np.abs(a[..., 0] - b[..., 0]).max() > 1.0  # the net changed the face
    assert np.abs(a[..., 1:] - b[..., 1:])[inside].max() <= 1.5  # but not its colour (rounding only)


def test_code_conditions_the_output():
    degraded, scene = _crops()
    net = _perturbed(FacePriorNet(width=8, blocks=2))
    a = net.refine(degraded, scene, degradation_code(2, 0.2, None, False))
    b = net.refine(degraded, scene, degradation_code(20, 2.0, 40, False))
    assert np.abs(a.astype(int) - b.astype(int)).max() > 0


def test_bad_input_gives_clear_errors():
    degraded, scene = _crops()
    net = FacePriorNet(width=8, blocks=1)
    with pytest.raises(ValueError, match="same shape"):
        net.refine(degraded, scene[:-2], degradation_code(5, 1, 80, False))
    with pytest.raises(ValueError, match="references"):
        net.refine(degraded, scene, degradation_code(5, 1, 80, True), [scene[:-2]])
    with pytest.raises(ValueError, match="FacePriorNet"):
        FacePriorNet(width=0)
    assert degradation_code(5, 1, None, True).shape == (CODE_DIM,)


def test_tiny_model_saved_and_loaded_back(tmp_path):
    """The folder format the training script writes and scripts/facefix_faces.py --faceprior reads."""
    degraded, scene = _crops()
    net = _perturbed(FacePriorNet(width=8, blocks=2, in_images=2))
    net.save_pretrained(tmp_path / "fp")
    back = FacePriorNet.from_pretrained(tmp_path / "fp", low_cpu_mem_usage=False).eval()
    assert back.config.in_images == 2 and back.config.width == 8
    code = degradation_code(6, 0.8, 70, False)
    np.testing.assert_array_equal(back.refine(degraded, scene, code), net.refine(degraded, scene, code))

