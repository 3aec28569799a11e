"""The guided compact restorer (a residual on top of the classical restorer's output) with the
global token modulation: it starts exactly at its base, needs the base, tiles like the plain model,
the tokens reach the ResNet blocks through the projection, and the backend builds the base from
the pipeline's estimate (the blind estimate when there is none)."""
import numpy as np
import pytest
import torch

from face2scene.models import CompactRestorer, FaDeXEncoder, MapNet
from face2scene.estimate.learned import FaceCrops
from face2scene.restorers.compact import load_compact_restorer
from face2scene.restorers.classical import ClassicalRestorer
from face2scene.types import DegradationEstimate

from .conftest import TINY_FADEX, TINY_RESTORER, randomize_output

GUIDED = dict(TINY_RESTORER, guided=True, global_condition=True)


def _tokens(seed, n=22, dim=16):
    return torch.randn(1, n, dim, generator=torch.Generator().manual_seed(seed))


def test_guided_starts_at_its_base_and_requires_it():
    torch.manual_seed(0)
    m = CompactRestorer(**GUIDED).eval()
    x, base = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(m(x, _tokens(0), base), base)
    with pytest.raises(ValueError, match="guided"):
        m(x, _tokens(0))
    with pytest.raises(ValueError, match="guided"):
        m.restore_tensor(x, _tokens(0))


def test_guided_roundtrip_and_tiling(tmp_path):
    torch.manual_seed(0)
    m = randomize_output(CompactRestorer(**GUIDED)).eval()
    m.save_pretrained(tmp_path / "r")
    m2 = CompactRestorer.from_pretrained(tmp_path / "r", low_cpu_mem_usage=False).eval()
    assert m2.config.guided and m2.config.global_condition
    g = torch.Generator().manual_seed(5)
    x, base = torch.rand(1, 3, 160, 224, generator=g), torch.rand(1, 3, 160, 224, generator=g)
    with torch.no_grad():
        whole = m2.restore_tensor(x, _tokens(1), base=base, tile=1024)
        tiled = m2.restore_tensor(x, _tokens(1), base=base, tile=128, overlap=64)
        ref = m.restore_tensor(x, _tokens(1), base=base, tile=1024)
    assert torch.allclose(whole, ref, atol=1e-6)
    assert whole.shape == x.shape and float((whole - base).abs().mean()) > 0.02
    diff = (whole - tiled).abs()  # as the plain model: only zero padding at tile borders differs
    assert float(diff.mean()) < 2e-3 and float(diff.max()) < 3e-2, (float(diff.mean()), float(diff.max()))


def test_global_condition_gets_the_token_mean():
    torch.manual_seed(0)
    m = randomize_output(CompactRestorer(**GUIDED)).eval()
    seen = []
    m.unet.class_embedding.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].clone()))
    tok = _tokens(2)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        a = m(x, tok, x)
        # same cross-attention keys/values on average, different mean: only the global path differs
        b = m(x, tok + 0.5, x)
    assert torch.allclose(seen[0], tok.mean(1))
    assert float((a - b).abs().max()) > 1e-4


@pytest.fixture
def guided_dir(tmp_path):
    torch.manual_seed(0)
    fadex = FaDeXEncoder(**TINY_FADEX).eval()
    mapnet = MapNet(in_channels=16, dim=16, num_heads=2, token_dim=16).eval()
    restorer = CompactRestorer(**GUIDED).eval()  # zero output conv: returns its base exactly
    for name, m in (("fadex", fadex), ("mapnet", mapnet), ("restorer", restorer)):
        m.save_pretrained(tmp_path / "compact" / name)
    return tmp_path / "compact"


def test_backend_base_is_the_classical_restorer(guided_dir):
    b = load_compact_restorer(folder=guided_dir)
    assert b.guided
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:96, 0:112]
    clean = np.stack([(128 + 60 * np.sin(xx / 5.0) * np.cos(yy / 7.0))] * 3, -1)
    photo = np.clip(clean + rng.normal(0, 12, clean.shape), 0, 255).astype(np.uint8)
    est = DegradationEstimate(12.0, 1.0, None, 1.0, source="face")
    code = b.face_code([FaceCrops(photo[:64, :64], clean[:64, :64].astype(np.uint8))])
    seen = []
    out = b.restore_with_tokens(photo, code, estimate=est, tile=64, overlap=16,
                                progress=lambda f, m: seen.append((f, m)))
    expected = ClassicalRestorer().restore_array(photo, est)
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1
    assert any("base restoration" in m for _, m in seen) and seen[-1][0] == pytest.approx(1.0)
    # no estimate: the base is made with the photo's blind estimate (it still denoises)
    blind = b.restore_with_tokens(photo, None, tile=64, overlap=16)
    assert np.std(blind.astype(float) - clean) < 0.8 * np.std(photo.astype(float) - clean)


def test_pipeline_passes_its_estimate_to_the_guided_base(guided_dir):
    from face2scene.restorers.learned import load_learned
    r = load_learned("compact", guided_dir.parent, "cpu", tile_size=64)
    rng = np.random.default_rng(1)
    photo = rng.integers(60, 200, (64, 80, 3), dtype=np.uint8)
    est = DegradationEstimate(20.0, 0.0, None, 1.0, source="face")
    out = r.restore(photo, est)
    assert np.abs(out.image.astype(int) - ClassicalRestorer().restore_array(photo, est).astype(int)).max() <= 1
    assert out.code.source == "estimate"


def test_strength_blends_with_the_input(guided_dir):
    from face2scene.restorers.learned import load_learned
    rng = np.random.default_rng(2)
    photo = rng.integers(60, 200, (64, 80, 3), dtype=np.uint8)
    est = DegradationEstimate(20.0, 0.0, None, 1.0, source="face")
    full = load_learned("compact", guided_dir.parent, "cpu", tile_size=64).restore(photo, est).image
    half = load_learned("compact", guided_dir.parent, "cpu", tile_size=64, strength=0.5).restore(photo, est).image
    none = load_learned("compact", guided_dir.parent, "cpu", tile_size=64, strength=0.0).restore(photo, est).image
    assert np.array_equal(none, photo)
    expected = (photo.astype(float) + full.astype(float)) / 2
    assert np.abs(half.astype(float) - expected).max() <= 1.0
