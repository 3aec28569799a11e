"""Loading every kind of awkward photo, refusing broken ones clearly, and writing atomically."""
from __future__ import annotations

import json
import os
import struct
import tracemalloc
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms

import face2scene.io
from face2scene.io import (ImageLoadError, LoadedImage, load_image, save_image_atomic,
                           save_json_atomic)


def _photo(h=48, w=64, seed=0) -> np.ndarray:
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 255 // (w + h)], -1)
    return np.clip(a + r.integers(-10, 10, a.shape), 0, 255).astype(np.uint8)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_with_header(w: int, h: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


def _expect_error(path, *words, **kw):
    with pytest.raises(ImageLoadError) as ei:
        load_image(path, **kw)
    msg = str(ei.value)
    assert "\n" not in msg and Path(path).name in msg
    for w in words:
        assert w in msg.lower(), msg
    assert isinstance(ei.value, ValueError)
    return msg


# -- refusing what cannot be read --------------------------------------------------------------

def test_missing_directory_empty(tmp_path):
    _expect_error(tmp_path / "nope.jpg", "not found")
    d = tmp_path / "folder.png"
    d.mkdir()
    _expect_error(d, "folder")
    e = tmp_path / "empty.jpg"
    e.write_bytes(b"")
    _expect_error(e, "empty")


def test_not_an_image_and_corrupt(tmp_path):
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    _expect_error(junk, "not an image")
    text = tmp_path / "notes.png"
    text.write_text("hello, this is not a picture\n")
    _expect_error(text, "not an image")
    # valid PNG signature and header, garbage image data
    bad = tmp_path / "bad.png"
    good = _png_with_header(8, 8)
    bad.write_bytes(good[:33] + _png_chunk(b"IDAT", b"\x01\x02garbage") + _png_chunk(b"IEND", b""))
    _expect_error(bad, "corrupt")


@pytest.mark.parametrize("fmt,suffix", [("JPEG", ".jpg"), ("PNG", ".png")])
@pytest.mark.parametrize("keep", [0.5, 0.95])
def test_truncated_files_are_refused(tmp_path, fmt, suffix, keep):
    full = tmp_path / f"full{suffix}"
    Image.fromarray(_photo(120, 160)).save(full, fmt)
    data = full.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: int(len(data) * keep)])
    _expect_error(cut, "truncated")
    assert load_image(full).rgb.shape == (120, 160, 3)


def test_decompression_bomb_header_refused_without_allocating(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_with_header(100_000, 100_000))  # claims 10 gigapixels, 90 bytes on disk
    tracemalloc.start()
    try:
        _expect_error(bomb, "too large")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000


def test_max_pixels_checked_from_header(tmp_path):
    p = tmp_path / "big.png"
    p.write_bytes(_png_with_header(3000, 2000))  # 6 MP header, no real pixel data
    _expect_error(p, "too large", "6 mp", max_pixels=1_000_000)


def test_zero_size_image(tmp_path):
    p = tmp_path / "zero.png"
    p.write_bytes(_png_with_header(0, 10))
    msg = _expect_error(p)
    assert "zero" in msg.lower() or "corrupt" in msg.lower()


# -- loading awkward but valid files -------------------------------------------------------------

def test_plain_rgb_png_exact_and_meta(tmp_path):
    a = _photo()
    p = tmp_path / "a.png"
    Image.fromarray(a).save(p)
    img = load_image(p)
    assert isinstance(img, LoadedImage)
    assert np.array_equal(img.rgb, a) and img.rgb.flags["C_CONTIGUOUS"]
    m = img.meta
    assert (m.format, m.original_mode, m.size, m.bit_depth, m.had_alpha, m.orientation) == \
        ("PNG", "RGB", (64, 48), 8, False, 1)


def test_16bit_gray_png_scaled_not_clipped(tmp_path):
    g = np.linspace(0, 65535, 48 * 64).reshape(48, 64).astype(np.uint16)
    p = tmp_path / "g16.png"
    assert cv2.imwrite(str(p), g)
    img = load_image(p)
    assert img.meta.bit_depth == 16
    expected = np.rint(g / 257.0).astype(np.uint8)
    assert np.abs(img.rgb[..., 0].astype(int) - expected).max() <= 1
    assert img.rgb[..., 0].max() == 255 and img.rgb[..., 0].min() == 0
    assert np.array_equal(img.rgb[..., 0], img.rgb[..., 2])


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_color_scaled(tmp_path, suffix):
    rgb16 = (np.random.default_rng(1).integers(0, 65536, (30, 40, 3))).astype(np.uint16)
    rgb16[0, 0] = (65535, 0, 32896)
    p = tmp_path / f"c16{suffix}"
    assert cv2.imwrite(str(p), rgb16[..., ::-1])  # OpenCV writes BGR
    img = load_image(p)
    assert img.meta.bit_depth == 16
    expected = np.rint(rgb16 / 257.0).astype(np.uint8)
    assert np.abs(img.rgb.astype(int) - expected).max() <= 1
    assert tuple(img.rgb[0, 0]) == (255, 0, 128)


def test_16bit_rgba_png_composited(tmp_path):
    bgra = np.zeros((10, 12, 4), np.uint16)
    bgra[..., 2] = 65535  # red
    bgra[..., 3] = 0
    bgra[:5, :, 3] = 65535
    p = tmp_path / "rgba16.png"
    assert cv2.imwrite(str(p), bgra)
    img = load_image(p)
    assert img.meta.had_alpha
    assert tuple(img.rgb[0, 0]) == (255, 0, 0) and tuple(img.rgb[9, 0]) == (255, 255, 255)


def test_cmyk_jpeg(tmp_path):
    cmyk = Image.new("CMYK", (32, 24), (0, 255, 255, 0))  # pure red ink-wise
    p = tmp_path / "cmyk.jpg"
    cmyk.save(p, quality=95)
    img = load_image(p)
    assert img.meta.original_mode == "CMYK"
    r, g, b = img.rgb.reshape(-1, 3).mean(0)
    assert r > 230 and g < 25 and b < 25
    # a CMYK JPEG with an unusable ICC profile still loads (plain conversion)
    p2 = tmp_path / "cmyk_badicc.jpg"
    cmyk.save(p2, quality=95, icc_profile=b"not really a profile")
    img2 = load_image(p2)
    assert np.abs(img2.rgb.astype(int) - img.rgb.astype(int)).max() <= 2


def test_grayscale_modes(tmp_path):
    g = _photo()[..., 0]
    for mode, suffix in [("L", ".png"), ("L", ".jpg")]:
        p = tmp_path / f"gray_{mode}{suffix}"
        Image.fromarray(g).save(p)
        img = load_image(p)
        assert img.rgb.shape == (48, 64, 3)
        assert np.array_equal(img.rgb[..., 0], img.rgb[..., 1])
        if suffix == ".png":
            assert np.array_equal(img.rgb[..., 0], g)
    bw = tmp_path / "bw.png"
    Image.fromarray(g > 128).convert("1").save(bw)
    img = load_image(bw)
    assert img.meta.bit_depth == 1 and set(np.unique(img.rgb)) <= {0, 255}
    la = tmp_path / "la.png"
    arr = np.stack([g, np.full_like(g, 255)], -1)
    arr[:, :10, 1] = 0
    Image.fromarray(arr, "LA").save(la)
    img = load_image(la)
    assert img.meta.had_alpha and (img.rgb[:, :10] == 255).all()
    assert np.array_equal(img.rgb[:, 10:, 0], g[:, 10:])
    f = tmp_path / "float.tif"
    Image.fromarray(g.astype(np.float32) / 255.0, "F").save(f)
    img = load_image(f)
    assert np.abs(img.rgb[..., 0].astype(int) - g).max() <= 1


def test_palette_with_transparency(tmp_path):
    idx = np.zeros((20, 30), np.uint8)
    idx[:, 15:] = 1
    im = Image.fromarray(idx, "P")
    im.putpalette([0, 0, 255, 0, 128, 0] + [0] * (256 * 3 - 6))
    p = tmp_path / "pal.png"
    im.save(p, transparency=0)
    img = load_image(p)
    assert img.meta.had_alpha and img.meta.original_mode == "P"
    assert tuple(img.rgb[0, 0]) == (255, 255, 255)  # transparent index -> white
    assert tuple(img.rgb[0, 20]) == (0, 128, 0)
    gif = tmp_path / "pal.gif"
    im.save(gif)
    assert tuple(load_image(gif).rgb[0, 0]) == (0, 0, 255)  # no transparency: the colour itself


def test_rgba_composited_on_white(tmp_path):
    a = np.zeros((10, 10, 4), np.uint8)
    a[..., 0] = 255
    a[..., 3] = 128
    p = tmp_path / "rgba.png"
    Image.fromarray(a, "RGBA").save(p)
    img = load_image(p)
    assert img.meta.had_alpha
    r, g, b = img.rgb[5, 5].astype(int)
    assert r == 255 and abs(g - 127) <= 1 and abs(b - 127) <= 1


def test_exif_orientation_applied(tmp_path):
    a = np.full((20, 40, 3), 200, np.uint8)  # h=20, w=40
    a[:6, :6] = (255, 0, 0)  # red marker at the stored top-left
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    exif[0x010F] = "TestCam"  # Make
    p = tmp_path / "rot.jpg"
    im.save(p, quality=95, exif=exif.tobytes())
    img = load_image(p)
    assert img.rgb.shape == (40, 20, 3) and img.meta.size == (20, 40)
    assert img.meta.orientation == 6
    assert img.rgb[2, 17, 0] > 200 and img.rgb[2, 17, 1] < 60  # marker now top-right
    assert img.rgb[2, 2, 1] > 150  # top-left is background
    ex = Image.Exif()
    ex.load(img.meta.exif)
    assert ex[0x0112] == 1 and ex[0x010F] == "TestCam"


def test_loading_never_modifies_the_file(tmp_path):
    p = tmp_path / "orig.jpg"
    im = Image.fromarray(_photo())
    exif = im.getexif()
    exif[0x0112] = 8
    im.save(p, exif=exif.tobytes())
    os.utime(p, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    before, st = p.read_bytes(), p.stat()
    load_image(p)
    after = p.stat()
    assert p.read_bytes() == before and after.st_mtime_ns == st.st_mtime_ns
    assert after.st_size == st.st_size


@pytest.mark.data
def test_real_photos_load(identities):
    paths = [ps[0] for ps in list(identities.values())[:3]]
    for path in paths:
        img = load_image(path)
        assert img.rgb.ndim == 3 and img.rgb.dtype == np.uint8 and img.rgb.shape[2] == 3


# -- atomic writing ------------------------------------------------------------------------------

def _leftovers(folder: Path):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".tmp")


@pytest.mark.parametrize("suffix", [".png", ".tif", ".webp", ".jpg"])
def test_save_roundtrip_and_no_temp_files(tmp_path, suffix):
    a = _photo()
    out = tmp_path / "deep" / "er" / f"out{suffix}"
    assert save_image_atomic(out, a) == out
    b = load_image(out).rgb
    if suffix in (".png", ".tif"):
        assert np.array_equal(a, b)
    else:
        assert np.abs(a.astype(int) - b).mean() < 6
    assert _leftovers(out.parent) == []
    assert out.stat().st_mode & 0o777 == 0o666 & ~face2scene.io._UMASK  # not mkstemp's 0600


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "out.png"

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG partial data")
        raise RuntimeError("encoder exploded")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(RuntimeError):
        save_image_atomic(target, _photo())
    assert not target.exists() and list(tmp_path.iterdir()) == []
    # an existing file survives a failed overwrite untouched
    monkeypatch.undo()
    save_image_atomic(target, _photo(seed=1))
    good = target.read_bytes()
    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(RuntimeError):
        save_image_atomic(target, _photo(seed=2))
    assert target.read_bytes() == good and _leftovers(tmp_path) == []


def test_save_keeps_exif_and_icc(tmp_path):
    exif = Image.Exif()
    exif[0x010F] = "Face2Scene test"
    exif[0x0112] = 1
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for suffix in (".jpg", ".png", ".tif", ".webp"):
        p = tmp_path / f"meta{suffix}"
        save_image_atomic(p, _photo(), exif=exif.tobytes(), icc_profile=icc)
        m = load_image(p).meta
        assert m.icc_profile == icc, suffix
        got = Image.Exif()
        got.load(m.exif)
        assert got[0x010F] == "Face2Scene test", suffix


def test_save_refuses_to_overwrite_original(tmp_path):
    orig = tmp_path / "orig.png"
    save_image_atomic(orig, _photo())
    data = orig.read_bytes()
    with pytest.raises(ValueError, match="original"):
        save_image_atomic(orig, _photo(seed=3), protect=orig)
    with pytest.raises(ValueError):
        save_image_atomic(tmp_path / "sub" / ".." / "orig.png", _photo(seed=3), protect=orig)
    assert orig.read_bytes() == data
    save_image_atomic(tmp_path / "restored.png", _photo(seed=3), protect=orig)


def test_save_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        save_image_atomic(tmp_path / "x.bmpx", _photo())
    with pytest.raises(ValueError):
        save_image_atomic(tmp_path / "x.png", _photo().astype(np.float32))
    with pytest.raises(ValueError):
        save_image_atomic(tmp_path / "x.png", np.zeros((0, 4, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []
    p = save_image_atomic(tmp_path / "noext", _photo(), format="png")
    assert load_image(p).meta.format == "PNG"


def test_save_json_atomic(tmp_path):
    obj = {"a": np.float32(1.5), "b": np.arange(3), "c": Path("x/y"), "d": "é"}
    p = save_json_atomic(tmp_path / "r" / "report.json", obj)
    assert json.loads(p.read_text(encoding="utf-8")) == {"a": 1.5, "b": [0, 1, 2], "c": "x/y", "d": "é"}
    with pytest.raises(TypeError):
        save_json_atomic(tmp_path / "r" / "bad.json", {"x": object()})
    assert not (tmp_path / "r" / "bad.json").exists() and _leftovers(tmp_path / "r") == []


def test_tiff_keeps_exif_with_dates(tmp_path):
    ex = Image.Exif()
    ex[0x0110] = "Camera"
    ex.get_ifd(0x8769)[0x9003] = "1962:07:14 10:00:00"
    out = save_image_atomic(tmp_path / "t.tif", _photo(), exif=ex.tobytes())
    with Image.open(out) as im:
        assert im.getexif().get_ifd(0x8769).get(0x9003) == "1962:07:14 10:00:00"
