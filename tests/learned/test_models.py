"""Learned modules: config round trips through the real from_pretrained path, conditioning reaches
every cross-attention layer, tiling agrees with whole-image inference, odd sizes, bad input."""
import json

import numpy as np
import pytest
import torch

from face2scene.models import CompactRestorer, FaDeXEncoder, MapNet, fuse_feature_maps
from face2scene.models.fadex import params_to_targets
from face2scene.models.imageops import to_tensor, wavelet_colour_fix

from .conftest import TINY_RESTORER


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_roundtrip_all_modules(tmp_path, tiny_models):
    fadex, mapnet, restorer = tiny_models
    x = torch.rand(2, 3, 48, 40)
    r = torch.rand(2, 3, 48, 40)
    with torch.no_grad():
        f0 = fadex(x, r)
        t0 = mapnet(f0.feature_map)
        y0 = restorer(torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)), t0)
    for name, m in (("fadex", fadex), ("mapnet", mapnet), ("restorer", restorer)):
        m.save_pretrained(tmp_path / name)
        assert _files(tmp_path / name) == ["config.json", "diffusion_pytorch_model.safetensors"]
    fadex2 = FaDeXEncoder.from_pretrained(tmp_path / "fadex", low_cpu_mem_usage=False).eval()
    mapnet2 = MapNet.from_pretrained(tmp_path / "mapnet", low_cpu_mem_usage=False).eval()
    restorer2 = CompactRestorer.from_pretrained(tmp_path / "restorer", low_cpu_mem_usage=False).eval()
    assert json.loads((tmp_path / "restorer" / "config.json").read_text())["unshuffle"] == 2
    with torch.no_grad():
        f1 = fadex2(x, r)
        t1 = mapnet2(f1.feature_map)
        y1 = restorer2(torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)), t1)
    assert torch.equal(f0.code, f1.code) and torch.equal(t0, t1) and torch.equal(y0, y1)


def test_fadex_outputs(tiny_models):
    fadex = tiny_models[0]
    out = fadex(torch.rand(3, 3, 64, 48), torch.rand(3, 3, 64, 48))
    assert out.feature_map.shape == (3, 16, 16, 12)
    assert out.code.shape == (3, 16)
    assert torch.allclose(out.code.norm(dim=1), torch.ones(3), atol=1e-5)
    assert out.params.shape == (3, 4)
    est = FaDeXEncoder.decode_params(torch.tensor([[0.5, 0.5, 0.0, 0.0]]))[0]
    assert est["noise_sigma"] == pytest.approx(15.0) and est["blur_sigma"] == pytest.approx(1.5)
    assert est["jpeg_quality"] is None and est["scale"] == pytest.approx(1.0)
    t = params_to_targets({"noise_sigma": 15, "blur_sigma": 1.5, "jpeg_quality": 65, "scale": 0.5})
    back = FaDeXEncoder.decode_params(torch.tensor([t]))[0]
    assert back["jpeg_quality"] == pytest.approx(65) and back["scale"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="too small"):
        fadex(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError, match="differ"):
        fadex(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 32))


def test_mapnet_tokens_and_null_path(tiny_models):
    _, mapnet, _ = tiny_models
    fmap = torch.randn(2, 16, 8, 8)
    tok = mapnet(fmap)
    assert mapnet.num_degradation_tokens == 21
    assert tok.shape == (2, 22, 16)  # 21 degradation tokens + 1 text token
    null = mapnet(None, batch_size=2)
    assert null.shape == (2, 22, 16)
    assert torch.equal(null[0, :21], mapnet.null_tokens) and torch.equal(null[0], null[1])
    mixed = mapnet(fmap, null_mask=torch.tensor([True, False]))
    assert torch.equal(mixed[0], null[0]) and torch.equal(mixed[1], tok[1])
    text = torch.randn(77, 16)  # a precomputed prompt embedding replaces the learned text token
    assert mapnet(fmap, text_embeds=text).shape == (2, 21 + 77, 16)
    with pytest.raises(ValueError, match="feature maps"):
        mapnet(torch.randn(1, 7, 8, 8))


def test_fuse_feature_maps():
    a, b = torch.zeros(1, 4, 6, 6), torch.ones(1, 4, 3, 3)
    f = fuse_feature_maps([a, b], [1.0, 3.0])
    assert f.shape == (1, 4, 6, 6) and torch.allclose(f, torch.full_like(f, 0.75))
    with pytest.raises(ValueError):
        fuse_feature_maps([], [])


def _cross_attention_modules(restorer):
    from diffusers.models.attention_processor import Attention
    return [(n, m) for n, m in restorer.unet.named_modules() if isinstance(m, Attention) and m.is_cross_attention]


def test_tokens_reach_every_cross_attention_layer(tiny_models):
    _, mapnet, restorer = tiny_models
    layers = _cross_attention_modules(restorer)
    assert len(layers) >= 4  # down, mid, up blocks (two cross-attentions each: no self-attention)
    seen = {}

    def hook(name):
        def fn(mod, args, kwargs, out):
            seen.setdefault(name, []).append(out.detach().clone())
        return fn

    handles = [m.register_forward_hook(hook(n), with_kwargs=True) for n, m in layers]
    x = torch.rand(1, 3, 32, 32)
    g = torch.Generator().manual_seed(3)
    code_a = mapnet(torch.randn(1, 16, 8, 8, generator=g))
    code_b = mapnet(torch.randn(1, 16, 8, 8, generator=g))
    with torch.no_grad():
        ya = restorer(x, code_a)
        yb = restorer(x, code_b)
        yn = restorer(x, mapnet(None))
    for h in handles:
        h.remove()
    assert set(seen) == {n for n, _ in layers}
    for name, outs in seen.items():  # every layer's output depends on the code
        assert not torch.allclose(outs[0], outs[1]), name
    assert (ya - yb).abs().max() > 1e-4
    assert (ya - yn).abs().max() > 1e-4
    assert torch.isfinite(yn).all()


def test_restorer_starts_as_identity():
    r = CompactRestorer(**TINY_RESTORER).eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(r(x, torch.randn(1, 22, 16)), x)
    assert CompactRestorer.is_diffusion is False


def test_tiled_matches_untiled(tiny_models):
    _, mapnet, restorer = tiny_models
    x = torch.rand(1, 3, 160, 224, generator=torch.Generator().manual_seed(5))
    tok = mapnet(None)
    whole = restorer.restore_tensor(x, tok, tile=1024)
    tiled = restorer.restore_tensor(x, tok, tile=128, overlap=64)
    assert (whole - x).abs().mean() > 0.02  # the (random) model really changes the image
    diff = (whole - tiled).abs()
    # the network is local (per-pixel norms, cross-attention only): only zero-padding at tile
    # borders differs, and the Gaussian weights down-weight tile borders
    assert float(diff.mean()) < 2e-3 and float(diff.max()) < 3e-2, (float(diff.mean()), float(diff.max()))


@pytest.mark.parametrize("h,w,up", [(37, 53, 1), (33, 20, 2), (8, 8, 1)])
def test_odd_sizes(tiny_models, h, w, up):
    _, mapnet, restorer = tiny_models
    rgb = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    out = restorer.restore(rgb, mapnet(None), upscale=up, tile=32, overlap=8)
    assert out.shape == (h * up, w * up, 3) and out.dtype == np.uint8


def test_bad_input(tiny_models):
    _, mapnet, restorer = tiny_models
    with pytest.raises(ValueError, match="uint8"):
        restorer.restore(np.zeros((16, 16, 3), np.float32), mapnet(None))
    with pytest.raises(ValueError, match="RGB"):
        restorer.restore(np.zeros((16, 16), np.uint8), mapnet(None))
    with pytest.raises(ValueError, match="multiple"):
        restorer(torch.rand(1, 3, 30, 30), mapnet(None))


def test_wavelet_colour_fix_takes_low_frequencies_from_source():
    g = torch.Generator().manual_seed(0)
    detail = torch.rand(1, 3, 64, 64, generator=g)
    flat = torch.full((1, 3, 64, 64), 0.3)
    fixed = wavelet_colour_fix(detail + 0.4, flat)
    # mean colour comes from the source, the detail from the restored image
    assert abs(float(fixed.mean()) - 0.3) < 0.02
    assert float((fixed - fixed.mean()).std()) > 0.2
    assert to_tensor(np.zeros((4, 5, 3), np.uint8)).shape == (1, 3, 4, 5)


def test_restorer_is_local(tiny_models):
    """No global operation (self-attention, image-wide norms): away from the borders, a crop's
    output equals the whole image's output exactly — what makes tiling safe."""
    _, mapnet, restorer = tiny_models
    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(2))
    tok = mapnet(None)
    with torch.no_grad():
        full = restorer(x, tok)
        crop = restorer(x[:, :, 64:192, 64:192], tok)
    centre = (slice(None), slice(None), slice(56, 72), slice(56, 72))
    assert torch.allclose(full[:, :, 64:192, 64:192][centre], crop[centre], atol=1e-5)


def test_tile_count_bounded_when_overlap_exceeds_tile():
    from face2scene.models.imageops import tiled_apply
    calls = []
    x = torch.rand(1, 3, 96, 128)
    y = tiled_apply(lambda t: (calls.append(1), t)[1], x, tile=32, overlap=128, align=4)
    assert torch.allclose(y, x, atol=1e-6) and len(calls) <= 5 * 7  # stride 16 (overlap clamped to tile / 2)


@pytest.mark.parametrize("groups,affine", [(1, True), (4, True), (2, False)])
def test_pixel_group_norm_fast_path_is_the_per_pixel_norm(groups, affine):
    from face2scene.models.compact import PixelGroupNorm
    torch.manual_seed(0)
    norm = PixelGroupNorm(groups, 16, affine=affine)
    if affine:
        with torch.no_grad():
            norm.weight.normal_()
            norm.bias.normal_()
    x = torch.randn(2, 16, 9, 7) * 3 + 1
    fast = norm(x)  # 4-D: the channels-last layer_norm path
    # the general path, per pixel over each group's channels (a 5-D input takes it)
    slow = norm(x[..., None])[..., 0]
    xs = x.reshape(2, groups, 16 // groups, 9, 7)
    ref = ((xs - xs.mean(2, keepdim=True)) / torch.sqrt(xs.var(2, unbiased=False, keepdim=True) + norm.eps)).reshape(x.shape)
    if affine:
        ref = ref * norm.weight.view(1, -1, 1, 1) + norm.bias.view(1, -1, 1, 1)
    assert fast.shape == x.shape
    assert torch.allclose(fast, ref, atol=1e-5) and torch.allclose(slow, ref, atol=1e-5)


def test_even_tiles_cover_with_the_overlap_and_never_more_tiles():
    from face2scene.models.imageops import even_tiles, tile_starts
    assert even_tiles(1000, 512, 128, 8) == (424, [0, 296, 576])  # 3 tiles of 424 px, not of 512
    assert even_tiles(1000, 1024, 128, 8) == (1000, [0])
    for length in range(8, 700, 8):
        for tile in (32, 64, 256):
            for overlap in (0, 8, 16, min(64, tile // 2)):
                t, starts = even_tiles(length, tile, overlap, 8)
                assert t <= tile and t % 8 == 0 and all(s % 8 == 0 for s in starts)
                assert starts[0] == 0 and starts[-1] + t == length
                assert all(a + t - b >= overlap for a, b in zip(starts, starts[1:]))
                assert len(starts) <= len(tile_starts(length, tile, overlap, 8))


def test_restore_runs_channels_last_and_matches_the_plain_forward(tiny_models):
    _, _, restorer = tiny_models
    x = torch.rand(1, 3, 64, 48)
    tok = torch.randn(1, 5, 16)
    with torch.no_grad():
        plain = restorer(x, tok)  # contiguous NCHW weights and input
    y = restorer.restore_tensor(x, tok, tile=512)
    assert restorer.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(y, plain.clamp(0, 1), atol=1e-5)
