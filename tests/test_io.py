"""Loading every kind of awkward photo, refusing broken ones clearly, and writing atomically."""
from __future__ import annotations

import errno
import json
import logging
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
import zlib
from io import BytesIO
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms

import face2scene.io
from face2scene.errors import ImageError
from face2scene.io import (DEFAULT_MAX_PIXELS, MAX_ICC_BYTES, PIL_FORMATS, ImageLoadError,
                           LoadedImage, atomic_write, clean_stale_temp_files,
                           install_sigterm_cleanup, load_image, load_thumbnail,
                           save_image_atomic, save_json_atomic)
from face2scene.options import IMAGE_SUFFIXES

REPO = Path(face2scene.io.__file__).resolve().parents[1]


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


# -- only the formats the project lists (issue 14) ------------------------------------------------

EPS = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n%%EndComments\n"
       b"newpath 0 0 moveto 16 0 lineto 16 16 lineto closepath fill\nshowpage\n%%EOF\n")


def test_error_class_is_the_one_root():
    assert ImageLoadError is ImageError and face2scene.io.ImageError is ImageError


def test_pil_formats_follow_image_suffixes():
    ext = Image.registered_extensions()
    assert PIL_FORMATS == tuple(dict.fromkeys(ext[s] for s in IMAGE_SUFFIXES))
    assert set(PIL_FORMATS) == {"JPEG", "PNG", "TIFF", "WEBP", "BMP", "GIF"}


def _run_bounded(fn, limit_s):
    """fn() in a daemon thread; (result or exception, seconds). Fails the test past limit_s."""
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box["value"] = exc
    t0 = time.perf_counter()
    th = threading.Thread(target=target, daemon=True)
    th.start()
    th.join(limit_s)
    assert not th.is_alive(), f"still running after {limit_s} s"
    return box["value"], time.perf_counter() - t0


@pytest.fixture
def no_subprocesses(monkeypatch):
    """Any attempt to start a process is recorded and fails; Pillow is told Ghostscript exists."""
    from PIL import EpsImagePlugin
    started = []

    def refuse(*args, **kwargs):
        started.append(args[0] if args else kwargs.get("args"))
        raise AssertionError(f"a subprocess was started: {started[-1]!r}")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setattr(os, "posix_spawn", refuse, raising=False)
    monkeypatch.setattr(os, "system", refuse)
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", "gs")  # as on a machine with Ghostscript
    return started


@pytest.mark.parametrize("loader", ["load_image", "load_thumbnail"])
def test_eps_named_jpg_refused_at_once_without_ghostscript(tmp_path, no_subprocesses, loader):
    p = tmp_path / "holiday.jpg"
    p.write_bytes(EPS)
    fn = (lambda: load_image(p)) if loader == "load_image" else (lambda: load_thumbnail(p, 64))
    err, seconds = _run_bounded(fn, 10)
    assert no_subprocesses == []
    assert isinstance(err, ImageError), err
    msg = str(err)
    assert "\n" not in msg and "holiday.jpg" in msg and "not an image" in msg, msg
    assert seconds < 3


def _foreign_files():
    """(name, bytes) of formats Pillow could read but the project does not list, and non-images."""
    small = Image.fromarray(_photo(16, 16))
    out = [("eps.png", EPS), ("svg.png", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/'
                                         b'2000/svg" width="16" height="16"><rect width="16" '
                                         b'height="16"/></svg>\n')]
    for fmt in ("PDF", "ICO", "PPM", "TGA", "PCX", "SGI", "DDS", "JPEG2000", "QOI"):
        b = BytesIO()
        try:
            small.save(b, fmt)
        except (KeyError, OSError, ValueError):
            continue  # this Pillow cannot write it
        out.append((f"{fmt.lower()}.png", b.getvalue()))
    return out


@pytest.mark.parametrize("name,data", _foreign_files(),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_unlisted_formats_refused(tmp_path, name, data, no_subprocesses):
    p = tmp_path / name
    p.write_bytes(data)
    _expect_error(p, "not an image")
    with pytest.raises(ImageError):
        load_thumbnail(p, 32)
    assert no_subprocesses == []


def test_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (30, 20), c) for c in ((255, 0, 0), (0, 0, 255))]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=100, loop=0)
    img = load_image(p)
    assert img.rgb.shape == (20, 30, 3) and img.meta.format == "GIF"
    assert tuple(img.rgb[10, 10]) == (255, 0, 0)


def test_listed_format_under_another_suffix_loads(tmp_path):
    p = tmp_path / "really_a.png.jpg"
    Image.fromarray(_photo()).save(p, "PNG")
    assert load_image(p).meta.format == "PNG"


# -- truncated JPEGs with the end marker put back (issue 14) --------------------------------------

def _jpeg_bytes(rgb: np.ndarray, progressive: bool, quality: int = 90) -> bytes:
    b = BytesIO()
    Image.fromarray(rgb).save(b, "JPEG", quality=quality, progressive=progressive)
    return b.getvalue()


def _scene(h=240, w=320) -> np.ndarray:
    """A synthetic photo: gradients, shapes and noise (enough detail for many scans)."""
    a = _photo(h, w, seed=5).astype(np.int16)
    yy, xx = np.mgrid[0:h, 0:w]
    a[((yy - h / 2) ** 2 + (xx - w / 3) ** 2) < (h / 4) ** 2] //= 2
    a[:, (xx[0] // 16) % 2 == 1] += 40
    return np.clip(a, 0, 255).astype(np.uint8)


def _check_cut_jpegs_refused(tmp_path, rgb, progressive):
    data = _jpeg_bytes(rgb, progressive)
    full = tmp_path / "whole.jpg"
    full.write_bytes(data)
    assert load_image(full).rgb.shape == rgb.shape
    thumb = load_thumbnail(full, 64)
    thumbs_refused = 0
    for keep in (0.3, 0.6, 0.9):
        p = tmp_path / f"cut{int(keep * 100)}{'_prog' if progressive else ''}.jpg"
        p.write_bytes(data[: int(len(data) * keep)] + b"\xff\xd9")
        with Image.open(p) as im:  # what the old loader saw: no error at all from Pillow
            im.load()
        _expect_error(p, "truncated")
        # a thumbnail is refused when it would show the missing data; a progressive file that
        # lacks only fine detail (the last scans) gives exactly the complete file's thumbnail
        try:
            t = load_thumbnail(p, 64)
        except ImageError as exc:
            assert "truncated" in str(exc) and p.name in str(exc)
            thumbs_refused += 1
        else:
            assert progressive and np.array_equal(t, thumb), keep
    assert thumbs_refused >= (3 if not progressive else 1)


@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
def test_cut_jpeg_with_end_marker_refused(tmp_path, progressive):
    _check_cut_jpegs_refused(tmp_path, _scene(), progressive)


@pytest.mark.data
@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
def test_cut_real_jpeg_with_end_marker_refused(tmp_path, shared_data, progressive):
    src = sorted((shared_data / "scenes").glob("*.jpg"))[0]
    _check_cut_jpegs_refused(tmp_path, load_image(src).rgb, progressive)


def _grey_sky(rgb: np.ndarray) -> np.ndarray:
    """The photo with a large flat (128,128,128) band at the top and at the bottom: exactly the
    value libjpeg fills missing data with, where a pixel test would see a cut."""
    a = rgb.copy()
    h = a.shape[0]
    a[: h * 2 // 5] = 128
    a[h * 3 // 5:] = 128
    return a


def _check_grey_sky_loads(tmp_path, rgb):
    a = _grey_sky(rgb)
    for progressive in (False, True):
        p = tmp_path / f"sky{int(progressive)}.jpg"
        p.write_bytes(_jpeg_bytes(a, progressive))
        got = load_image(p).rgb
        with Image.open(p) as im:
            assert np.array_equal(got, np.asarray(im.convert("RGB")))  # pixels untouched
        h = a.shape[0]
        assert (got[: h // 3] == 128).all() and (got[-(h // 3):] == 128).all()
        assert load_thumbnail(p, 64).shape[2] == 3


def test_grey_sky_jpeg_is_not_taken_for_a_cut_one(tmp_path):
    _check_grey_sky_loads(tmp_path, _scene())


@pytest.mark.data
def test_real_photo_with_grey_sky_loads(tmp_path, shared_data):
    src = sorted((shared_data / "scenes").glob("*.jpg"))[0]
    _check_grey_sky_loads(tmp_path, load_image(src).rgb)


def test_jpeg_with_trailer_after_end_marker_loads(tmp_path):
    """Motion photos append a video after the JPEG's end marker: still a complete photo."""
    data = _jpeg_bytes(_scene(), progressive=True)
    p = tmp_path / "motion.jpg"
    p.write_bytes(data + b"\x00\x00\x00\x18ftypmp42" + bytes(4000))
    assert load_image(p).rgb.shape == (240, 320, 3)


def test_jpeg_with_restart_markers_loads_and_cut_refused(tmp_path):
    b = BytesIO()
    Image.fromarray(_scene()).save(b, "JPEG", quality=90, restart_marker_blocks=4)
    data = b.getvalue()
    assert b"\xff\xd0" in data
    p = tmp_path / "rst.jpg"
    p.write_bytes(data)
    assert load_image(p).rgb.shape == (240, 320, 3)
    p.write_bytes(data[: len(data) * 2 // 3] + b"\xff\xd9")
    _expect_error(p, "truncated")


# -- one pixel limit, bounded in time (issue 14) --------------------------------------------------

def _jpeg_claiming(w: int, h: int, progressive: bool = False, size: int = 2000) -> bytes:
    """A real JPEG's first ``size`` bytes, its frame header claiming w x h, end marker put back."""
    data = _jpeg_bytes(_photo(64, 64), progressive)
    sof = data.find(b"\xff\xc2" if progressive else b"\xff\xc0")
    data = data[: sof + 5] + struct.pack(">HH", h, w) + data[sof + 9:]
    return data[:size] + b"\xff\xd9"


def test_default_limit_is_sane():
    assert 100_000_000 <= DEFAULT_MAX_PIXELS <= 150_000_000


def test_jpeg_header_bomb_over_the_limit_refused_fast(tmp_path):
    p = tmp_path / "bomb.jpg"
    p.write_bytes(_jpeg_claiming(13000, 13000))  # 169 MP in 2 KB: 19 s and 1.9 GB before
    err, seconds = _run_bounded(lambda: load_image(p), 30)
    assert isinstance(err, ImageError) and "too large" in str(err) and "bomb.jpg" in str(err)
    assert seconds < 1.0
    with pytest.raises(ImageError, match="too large"):
        load_thumbnail(p, 128)


@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
def test_jpeg_header_bomb_under_the_limit_refused_in_bounded_time(tmp_path, progressive):
    p = tmp_path / "bomb.jpg"
    p.write_bytes(_jpeg_claiming(10000, 10000, progressive))  # 100 MP, under the limit
    err, seconds = _run_bounded(lambda: load_image(p), 60)
    assert isinstance(err, ImageError) and "truncated" in str(err), err
    assert seconds < 5.0, seconds  # ~0.1-1 s: the cut is found at 1/8 scale before decoding


def test_pillow_bomb_warning_and_error_become_image_error(tmp_path, monkeypatch):
    p = tmp_path / "forty.png"
    Image.fromarray(_photo(40, 40)).save(p)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1600 px: Pillow warns
    with warnings_recorded() as seen:
        assert load_image(p).rgb.shape == (40, 40, 3)
        assert load_thumbnail(p, 20).shape == (20, 20, 3)
    assert seen == []  # nothing leaked to stderr
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a program that turns warnings into errors
        assert load_image(p).rgb.shape == (40, 40, 3)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 700)  # over twice the limit: Pillow's error
    _expect_error(p, "too large")


class warnings_recorded:
    def __enter__(self):
        import warnings
        self._ctx = warnings.catch_warnings(record=True)
        seen = self._ctx.__enter__()
        warnings.simplefilter("always")
        return seen

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def test_corrupt_exif_warning_does_not_leak(tmp_path, capfd):
    im = Image.fromarray(_photo())
    p = tmp_path / "badexif.jpg"
    im.save(p, exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05\x01\x0f\x00\x02\xff\xff\xff\xff")
    with warnings_recorded() as seen:
        assert load_image(p).rgb.shape == (48, 64, 3)
    assert seen == [] and capfd.readouterr().err == ""


def test_one_limit_for_every_caller(tmp_path):
    p = tmp_path / "big.png"
    p.write_bytes(_png_with_header(12000, 11000))  # 132 MP header
    _expect_error(p, "too large", "limit 120 mp")
    with pytest.raises(ImageError, match="too large"):
        load_thumbnail(p, 256)
    with pytest.raises(ImageError, match="too large"):
        load_thumbnail(tmp_path / "big.png", 256, max_pixels=10)


# -- thumbnails -----------------------------------------------------------------------------------

def test_thumbnail_jpeg_uses_draft_and_orientation(tmp_path, monkeypatch):
    a = _scene(960, 1280)
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6
    p = tmp_path / "big.jpg"
    im.save(p, quality=92, exif=exif.tobytes())
    drafts = []
    from PIL import JpegImagePlugin
    real_draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        out = real_draft(self, mode, size)
        drafts.append((size, self.size))
        return out
    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    t = load_thumbnail(p, 160)
    assert t.shape == (160, 120, 3) and t.dtype == np.uint8 and t.flags["C_CONTIGUOUS"]
    assert drafts and all(got[0] < 1280 for _, got in drafts)  # decoded at a reduced DCT scale
    full = load_image(p).rgb  # upright, 1280 high
    ref = np.asarray(Image.fromarray(full).resize((120, 160), Image.Resampling.LANCZOS))
    assert np.abs(t.astype(int) - ref).mean() < 6


def test_thumbnail_other_formats_and_box(tmp_path):
    a = _scene(200, 300)
    for suffix in (".png", ".tif", ".webp", ".bmp", ".gif"):
        p = tmp_path / f"t{suffix}"
        Image.fromarray(a).save(p)
        assert load_thumbnail(p, 60).shape == (40, 60, 3), suffix
        assert load_thumbnail(p, (1000, 20)).shape == (20, 30, 3), suffix
        assert load_thumbnail(p, 5000).shape == (200, 300, 3), suffix  # never enlarged
    with pytest.raises(ValueError):
        load_thumbnail(tmp_path / "t.png", 0)


# -- outputs the tool can read back (issue 14) ----------------------------------------------------

def _big_icc(nbytes: int) -> bytes:
    """A valid-looking ICC blob of nbytes (an sRGB profile padded with a private tag's worth)."""
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return icc + bytes(np.random.default_rng(0).integers(0, 256, nbytes - len(icc), dtype=np.uint8))


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif", ".webp"])
def test_every_output_reloads(tmp_path, suffix, caplog):
    small_icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    huge_icc = _big_icc(4_000_000)
    ex = Image.Exif()
    ex[0x010F] = "Cam"
    big_exif = Image.Exif()
    big_exif[0x010E] = "x" * 100_000  # ImageDescription: 100 KB, more than a JPEG segment holds
    cases = {"plain": {}, "meta": {"exif": ex.tobytes(), "icc_profile": small_icc},
             "huge_icc": {"icc_profile": huge_icc}, "big_exif": {"exif": big_exif.tobytes()}}
    for label, kw in cases.items():
        for arr in (_photo(), _photo()[..., 0], np.zeros((1, 1, 3), np.uint8), _photo(7, 5)):
            out = tmp_path / f"{label}_{arr.ndim}_{arr.shape[0]}{suffix}"
            with caplog.at_level(logging.WARNING, logger="face2scene.io"):
                save_image_atomic(out, arr, **kw)
            img = load_image(out)
            assert img.rgb.shape[:2] == arr.shape[:2], (label, out.name)
            if label == "huge_icc":
                assert img.meta.icc_profile is None
            if label == "meta":
                assert img.meta.icc_profile == small_icc
    assert "ICC profile of 4000000 bytes not embedded" in caplog.text
    assert (suffix == ".jpg") == ("EXIF block of" in caplog.text)
    assert _leftovers(tmp_path) == []


def test_icc_at_the_limit_is_kept(tmp_path):
    icc = _big_icc(MAX_ICC_BYTES)
    out = save_image_atomic(tmp_path / "limit.png", _photo(), icc_profile=icc)
    assert load_image(out).meta.icc_profile == icc


# -- temp names, long names, unwritable folders (issue 14) ----------------------------------------

@pytest.mark.parametrize("nbytes", [240, 250, 255])
def test_long_valid_file_names_can_be_written(tmp_path, nbytes):
    name = "é" * ((nbytes - 4) // 2) + "a" * ((nbytes - 4) % 2) + ".png"  # two bytes per é
    assert len(name.encode()) == nbytes
    out = save_image_atomic(tmp_path / name, _photo())
    assert load_image(out).rgb.shape == (48, 64, 3)
    save_json_atomic(tmp_path / (name[:-4] + ".jsn"), {"ok": 1})
    assert _leftovers(tmp_path) == []


def test_temp_names_are_short_and_ours(tmp_path):
    seen = []

    def write(fh):
        seen.extend(p.name for p in tmp_path.iterdir())
        fh.write(b"x")
    atomic_write(tmp_path / ("b" * 200 + ".bin"), write)
    assert len(seen) == 1 and len(seen[0]) == 17
    assert face2scene.io._TEMP_NAME.match(seen[0])


def test_too_long_name_is_one_clear_oserror(tmp_path):
    target = tmp_path / ("n" * 256 + ".png")
    with pytest.raises(OSError) as ei:
        save_image_atomic(target, _photo())
    assert ei.value.errno == errno.ENAMETOOLONG
    msg = str(ei.value)
    assert "\n" not in msg and "too long" in msg and target.name in msg
    assert list(tmp_path.iterdir()) == []


def test_unwritable_folder_is_one_clear_oserror(tmp_path, monkeypatch):
    real_open = os.open

    def denied(path, *args, **kwargs):
        if ".f2s-" in os.fspath(path):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(PermissionError) as ei:
        save_image_atomic(tmp_path / "out.png", _photo())
    msg = str(ei.value)
    assert "\n" not in msg and "out.png" in msg and ".f2s-" not in msg
    assert "permission" in msg.lower()
    monkeypatch.undo()
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a file where a folder is needed
    with pytest.raises(OSError) as ei:
        save_json_atomic(blocker / "sub" / "r.json", {})
    assert "\n" not in str(ei.value) and "r.json" in str(ei.value)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores modes")
def test_read_only_folder_is_one_clear_oserror(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(PermissionError) as ei:
            save_image_atomic(ro / "out.png", _photo())
        assert "\n" not in str(ei.value) and "out.png" in str(ei.value)
    finally:
        ro.chmod(0o700)


# -- stale temp files and interrupted writes (issue 14) -------------------------------------------

def test_clean_stale_temp_files_removes_only_ours(tmp_path):
    old = time.time() - 7200
    ours = [tmp_path / ".f2s-0123abcd.tmp", tmp_path / ".f2s-ffffffff.tmp"]
    fresh = tmp_path / ".f2s-89abcdef.tmp"
    others = [tmp_path / n for n in (".f2s-0123ABCD.tmp", ".f2s-0123abc.tmp", ".f2s-0123abcd.tmp.x",
                                     "x.f2s-0123abcd.tmp", ".photo.png.abcdefgh.tmp", "photo.tmp")]
    for p in ours + [fresh] + others:
        p.write_bytes(b"partial")
    (tmp_path / ".f2s-aaaaaaaa.tmp").mkdir()  # a folder with our name: not ours to remove
    link = tmp_path / ".f2s-bbbbbbbb.tmp"
    link.symlink_to(tmp_path / "photo.tmp")
    for p in ours + others + [tmp_path / ".f2s-aaaaaaaa.tmp"]:
        os.utime(p, (old, old))
    os.utime(link, (old, old), follow_symlinks=False)
    removed = clean_stale_temp_files(tmp_path)
    assert sorted(removed) == sorted(ours)
    assert fresh.exists() and all(p.exists() for p in others) and link.is_symlink()
    assert clean_stale_temp_files(tmp_path, older_than_s=0) == [fresh]
    assert clean_stale_temp_files(tmp_path / "missing") == []


def test_write_in_progress_is_not_stale(tmp_path):
    removed = []

    def write(fh):
        removed.extend(clean_stale_temp_files(tmp_path, older_than_s=-1))
        fh.write(b"data")
    atomic_write(tmp_path / "a.bin", write)
    assert removed == [] and (tmp_path / "a.bin").read_bytes() == b"data"


def test_keyboard_interrupt_during_write_removes_temp(tmp_path):
    def write(fh):
        fh.write(b"half")
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "k.bin", write)
    assert list(tmp_path.iterdir()) == []


_SIGTERM_CHILD = """
import sys, time
from face2scene.io import atomic_write, install_sigterm_cleanup
if sys.argv[2] == "install":
    install_sigterm_cleanup()
def write(fh):
    fh.write(b"half a photo")
    fh.flush()
    print("writing", flush=True)
    time.sleep(60)
atomic_write(sys.argv[1], write)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("install", [True, False], ids=["installed", "default"])
def test_sigterm_during_write(tmp_path, install):
    target = tmp_path / "out.png"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    child = subprocess.Popen([sys.executable, "-c", _SIGTERM_CHILD, str(target),
                              "install" if install else "no"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        assert child.stdout.readline().strip() == "writing", child.stderr.read()
        assert len(list(tmp_path.glob(".f2s-*.tmp"))) == 1
        child.send_signal(signal.SIGTERM)
        rc = child.wait(20)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert not target.exists()
    if install:
        assert rc == 128 + signal.SIGTERM  # SystemExit(143): the temp file was removed
        assert list(tmp_path.iterdir()) == []
    else:  # killed outright: the temp stays until someone cleans up
        assert rc == -signal.SIGTERM
        assert len(clean_stale_temp_files(tmp_path, older_than_s=0)) == 1
        assert list(tmp_path.iterdir()) == []


def test_install_sigterm_cleanup_only_from_main_thread():
    err, _ = _run_bounded(install_sigterm_cleanup, 10)
    assert isinstance(err, RuntimeError)
    previous = install_sigterm_cleanup()
    try:
        assert signal.getsignal(signal.SIGTERM) is face2scene.io._raise_system_exit
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_cuts_in_the_last_bytes_are_refused(tmp_path):
    """Cuts inside the final blocks (the hardest: no whole block is missing) are still found."""
    data = _jpeg_bytes(_scene(96, 128), progressive=False)
    eoi = data.rfind(b"\xff\xd9")
    with Image.open(BytesIO(data)) as im:
        full = np.asarray(im.convert("RGB"))
    damaged = missed = 0
    for k in range(1, 80):
        cut = data[: eoi - k] + b"\xff\xd9"
        with Image.open(BytesIO(cut)) as im:
            if np.array_equal(np.asarray(im.convert("RGB")), full):
                continue  # only padding bits were lost
        damaged += 1
        p = tmp_path / f"tail{k}.jpg"
        p.write_bytes(cut)
        try:
            load_image(p)
            missed += 1
        except ImageError as exc:
            assert "truncated" in str(exc)
    assert damaged > 60 and missed <= damaged // 50, (missed, damaged)


def test_progressive_cut_between_two_scans_refused(tmp_path):
    """Cut exactly where a scan ends: a well-formed file with fewer scans, no decoder error."""
    data = _jpeg_bytes(_scene(), progressive=True)
    sos = [i for i in range(len(data) - 1) if data[i:i + 2] == b"\xff\xda"]
    assert len(sos) > 4
    p = tmp_path / "fewer_scans.jpg"
    p.write_bytes(data[: sos[len(sos) // 2]] + b"\xff\xd9")
    with Image.open(p) as im:
        im.load()  # Pillow: fine
    _expect_error(p, "truncated", "scans")


def test_jpeg_with_zero_filled_tail_refused(tmp_path):
    """A pre-allocated download: zeros after the cut, no end marker. Libjpeg decodes zero bits as
    picture data, so given enough of them Pillow returns a complete-looking garbage picture."""
    data = _jpeg_bytes(_scene(96, 128), progressive=False)
    for keep in (0.4, 0.6, 0.8):
        p = tmp_path / f"preallocated{int(keep * 100)}.jpg"
        p.write_bytes(data[: int(len(data) * keep)] + bytes(8 * len(data)))
        with Image.open(p) as im:
            im.load()  # no error from Pillow
        _expect_error(p, "truncated", "end marker")


def test_loads_in_threads_leave_the_warning_filters_as_they_were(tmp_path, monkeypatch):
    """Pillow's warnings are silenced during each load; concurrent loads must not leave the
    process-wide filters changed (nested catch_warnings from several threads would)."""
    import warnings
    p = tmp_path / "w.png"
    Image.fromarray(_photo(40, 40)).save(p)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # every load warns inside Pillow
    before = list(warnings.filters)
    errors = []

    def work():
        try:
            for _ in range(25):
                load_image(p)
                load_thumbnail(p, 16)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and warnings.filters == before
