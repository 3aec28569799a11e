"""The fuzz corpus, generated at test time (nothing binary is committed).

Every case is (name, bytes, expectation). ``size`` is the upright (w, h) a valid file must load
as; ``refuse`` names a word the error must contain when the file must be refused; neither: any
outcome is fine as long as the loader keeps its contract (see test_fuzz_load.py).
"""
from __future__ import annotations

import struct
import zipfile
import zlib
from dataclasses import dataclass
from io import BytesIO
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np
from PIL import Image

W, H = 45, 29  # odd sizes: partial JPEG blocks and MCUs, odd TIFF strips


@dataclass
class Case:
    name: str  # file name (its suffix is what a user would see)
    data: bytes
    size: Optional[Tuple[int, int]] = None  # must load, upright (w, h)
    refuse: Optional[str] = None  # must raise ImageError containing this word
    base: str = ""  # the valid file it was made from


def _rgb(h=H, w=W, seed=0) -> np.ndarray:
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.stack([xx * 255 // w, yy * 255 // h, (xx * yy) % 256], -1)
    return np.clip(a + r.integers(-20, 20, a.shape), 0, 255).astype(np.uint8)


def _save(im: Image.Image, fmt: str, **kw) -> bytes:
    b = BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


def _cv(arr: np.ndarray, ext: str) -> bytes:
    ok, buf = cv2.imencode(ext, arr)
    assert ok
    return buf.tobytes()


def _exif(orientation: int) -> bytes:
    ex = Image.Exif()
    ex[0x0112] = orientation
    ex[0x010F] = "Fuzz"
    return ex.tobytes()


def valid_files() -> List[Case]:
    """Valid images of every mode and format the loader accepts."""
    rgb = _rgb()
    im = Image.fromarray(rgb)
    gray = im.convert("L")
    pal = im.quantize(32)
    rgba = Image.fromarray(np.dstack([rgb, _rgb(seed=1)[..., 0]]))  # mode RGBA
    la = Image.merge("LA", [Image.fromarray(rgb[..., 0]), Image.fromarray(rgb[..., 1])])
    bw = gray.point(lambda v: 255 if v > 128 else 0).convert("1")
    cmyk = im.convert("CMYK")
    g16 = Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)  # mode I;16
    i32 = Image.fromarray(rgb[..., 0].astype(np.int32) * 1000)  # mode I
    f32 = Image.fromarray(rgb[..., 1].astype(np.float32) / 255)  # mode F
    c16 = (rgb.astype(np.uint16) * 257)[..., ::-1]  # BGR for OpenCV
    c16a = np.dstack([c16, np.full((H, W), 40000, np.uint16)])
    size = (W, H)
    out: Dict[str, bytes] = {
        # PNG
        "png_1.png": _save(bw, "PNG"), "png_L.png": _save(gray, "PNG"),
        "png_LA.png": _save(la, "PNG"), "png_P.png": _save(pal, "PNG"),
        "png_P_trns.png": _save(pal, "PNG", transparency=3), "png_RGB.png": _save(im, "PNG"),
        "png_RGBA.png": _save(rgba, "PNG"), "png_I16.png": _save(g16, "PNG"),
        "png_rgb16.png": _cv(c16, ".png"), "png_rgba16.png": _cv(c16a, ".png"),
        "png_opt.png": _save(im, "PNG", optimize=True),
        # JPEG
        "jpg_L.jpg": _save(gray, "JPEG", quality=90),
        "jpg_baseline.jpg": _save(im, "JPEG", quality=90),
        "jpg_444.jpg": _save(im, "JPEG", quality=95, subsampling=0),
        "jpg_progressive.jpg": _save(im, "JPEG", quality=90, progressive=True),
        "jpg_optimize.jpg": _save(im, "JPEG", quality=75, optimize=True),
        "jpg_restart.jpg": _save(im, "JPEG", quality=90, restart_marker_blocks=2),
        "jpg_CMYK.jpg": _save(cmyk, "JPEG", quality=90),
        "jpg_CMYK_prog.jpg": _save(cmyk, "JPEG", quality=90, progressive=True),
        "jpg_L_prog.jpg": _save(gray, "JPEG", quality=90, progressive=True),
        "jpg_mpo.jpg": _save(im, "MPO", save_all=True, append_images=[gray.convert("RGB")]),
        # TIFF
        "tif_1.tif": _save(bw, "TIFF"), "tif_L.tif": _save(gray, "TIFF"),
        "tif_P.tif": _save(pal, "TIFF"), "tif_RGB.tif": _save(im, "TIFF"),
        "tif_RGBA.tif": _save(rgba, "TIFF"), "tif_CMYK.tif": _save(cmyk, "TIFF"),
        "tif_I16.tif": _save(g16, "TIFF"), "tif_I32.tif": _save(i32, "TIFF"),
        "tif_F.tif": _save(f32, "TIFF"), "tif_rgb16.tif": _cv(c16, ".tif"),
        "tif_lzw.tif": _save(im, "TIFF", compression="tiff_lzw"),
        "tif_deflate.tif": _save(im, "TIFF", compression="tiff_adobe_deflate"),
        "tif_packbits.tif": _save(im, "TIFF", compression="packbits"),
        "tif_jpeg.tif": _save(im, "TIFF", compression="jpeg"),
        "tif_pages.tif": _save(im, "TIFF", save_all=True, append_images=[gray]),
        # WEBP
        "webp_lossy.webp": _save(im, "WEBP", quality=80),
        "webp_lossless_rgba.webp": _save(rgba, "WEBP", lossless=True),
        "webp_anim.webp": _save(im, "WEBP", save_all=True, append_images=[gray.convert("RGB")]),
        # BMP
        "bmp_1.bmp": _save(bw, "BMP"), "bmp_L.bmp": _save(gray, "BMP"),
        "bmp_P.bmp": _save(pal, "BMP"), "bmp_RGB.bmp": _save(im, "BMP"),
        "bmp_RGBA.bmp": _save(rgba, "BMP"),
        # GIF
        "gif_P.gif": _save(pal, "GIF"), "gif_L.gif": _save(gray, "GIF"),
        "gif_trns.gif": _save(pal, "GIF", transparency=0),
        "gif_anim.gif": _save(pal, "GIF", save_all=True, append_images=[gray.convert("P")]),
        "gif_interlace.gif": _save(pal, "GIF", interlace=True),
    }
    cases = [Case(n, d, size=size, base=n) for n, d in out.items()]
    for o in range(1, 9):  # EXIF orientations, in the formats that carry EXIF
        upright = (W, H) if o < 5 else (H, W)
        for fmt, ext in (("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("TIFF", "tif")):
            if ext != "jpg" and o not in (3, 6, 8):
                continue
            n = f"orient{o}_{ext}.{ext}"
            cases.append(Case(n, _save(im, fmt, exif=_exif(o)), size=upright, base=n))
    return cases


# -- damaged copies ------------------------------------------------------------------------------

def _png_iend() -> bytes:
    return struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))


_END = {"jpg": b"\xff\xd9", "png": _png_iend(), "gif": b"\x3b"}
TRUNCATE_AT = (0.02, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 0.95, 0.99)


def _jpeg_scan_span(data: bytes) -> Tuple[int, int]:
    """(end of the first SOS header, start of the EOI): the entropy-coded data of every scan."""
    sos = data.find(b"\xff\xda")
    length = struct.unpack(">H", data[sos + 2:sos + 4])[0]
    return sos + 2 + length, data.rfind(b"\xff\xd9")


def truncated(valid: List[Case]) -> List[Case]:
    """Each valid file (one per format/mode, no orientation copies) cut at many offsets, as it
    is and with its end marker put back (or zero-filled to its full length, as a pre-allocated
    download leaves it). A JPEG cut inside its picture data must be refused."""
    out = []
    for c in valid:
        if c.name.startswith("orient"):
            continue
        ext = c.name.rsplit(".", 1)[1]
        offsets = sorted({max(1, int(len(c.data) * f)) for f in TRUNCATE_AT} | {len(c.data) - 1})
        for off in offsets:
            cut = c.data[:off]
            variants = {"cut": cut, "zeros": cut + bytes(len(c.data) - off)}
            if ext in _END:
                variants["end"] = cut + _END[ext]
            must = None
            if ext == "jpg" and "mpo" not in c.name:
                lo, hi = _jpeg_scan_span(c.data)
                if lo < off <= lo + (hi - lo) * 0.95:
                    must = "truncated"
            for v, data in variants.items():
                out.append(Case(f"cut{off}_{v}_{c.name}", data, refuse=must, base=c.name))
    return out


def bit_flips(valid: List[Case], per_file: int = 4, seed: int = 1) -> List[Case]:
    """Single bit flips and short overwrites at random places of every valid file."""
    rng = np.random.default_rng(seed)
    out = []
    for c in valid:
        for k in range(per_file):
            b = bytearray(c.data)
            if k < per_file - 1:
                pos = int(rng.integers(0, len(b)))
                b[pos] ^= 1 << int(rng.integers(0, 8))
                tag = f"flip{pos}"
            else:
                pos = int(rng.integers(0, max(1, len(b) - 8)))
                b[pos:pos + 8] = rng.integers(0, 256, 8, dtype=np.uint8).tobytes()
                tag = f"over{pos}"
            out.append(Case(f"{tag}_{c.name}", bytes(b), base=c.name))
    return out


# -- header bombs --------------------------------------------------------------------------------

def _small(fmt: str, **kw) -> bytes:
    return _save(Image.fromarray(_rgb(16, 16, seed=3)), fmt, **kw)


def _bomb_png(w: int, h: int) -> bytes:
    d = _small("PNG")
    ihdr = struct.pack(">II", w, h) + d[24:29]
    return (d[:8] + struct.pack(">I", 13) + b"IHDR" + ihdr
            + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + d[33:])


def _bomb_jpeg(w: int, h: int, progressive: bool) -> bytes:
    d = _small("JPEG", progressive=progressive)
    sof = d.find(b"\xff\xc2" if progressive else b"\xff\xc0")
    return d[:sof + 5] + struct.pack(">HH", min(h, 65535), min(w, 65535)) + d[sof + 9:]


def _bomb_gif(w: int, h: int) -> bytes:
    d = bytearray(_small("GIF"))
    d[6:10] = struct.pack("<HH", min(w, 65535), min(h, 65535))
    i = d.find(b"\x2c", 13)  # the image descriptor
    d[i + 5:i + 9] = struct.pack("<HH", min(w, 65535), min(h, 65535))
    return bytes(d)


def _bomb_bmp(w: int, h: int) -> bytes:
    d = bytearray(_small("BMP"))
    d[18:26] = struct.pack("<ii", w, h)
    return bytes(d)


def _bomb_tiff(w: int, h: int) -> bytes:
    d = bytearray(_small("TIFF"))
    ifd = struct.unpack("<I", d[4:8])[0]
    for k in range(struct.unpack("<H", d[ifd:ifd + 2])[0]):
        e = ifd + 2 + 12 * k
        tag, typ = struct.unpack("<HH", d[e:e + 4])
        if tag in (256, 257):
            v = w if tag == 256 else h
            if typ == 3:
                d[e + 8:e + 10] = struct.pack("<H", min(v, 65535))
            else:
                d[e + 8:e + 12] = struct.pack("<I", v)
    return bytes(d)


def _bomb_webp(w: int, h: int) -> bytes:
    d = bytearray(_small("WEBP", lossless=True))
    i = d.find(b"VP8L") + 9  # after the chunk header and the signature byte
    rest = struct.unpack("<I", d[i:i + 4])[0]
    rest = (rest & ~((1 << 28) - 1)) | (min(w, 16384) - 1) | ((min(h, 16384) - 1) << 14)
    d[i:i + 4] = struct.pack("<I", rest)
    return bytes(d)


def header_bombs() -> List[Case]:
    """Tiny files whose headers claim huge pictures: over the limit they must be refused (from
    the header, so at once); just under it (~60-100 MP) anything goes, within the time limit."""
    makers = {"png": _bomb_png, "gif": _bomb_gif, "bmp": _bomb_bmp, "tif": _bomb_tiff,
              "webp": _bomb_webp, "jpg": lambda w, h: _bomb_jpeg(w, h, False),
              "prog.jpg": lambda w, h: _bomb_jpeg(w, h, True)}
    out = []
    for ext, make in makers.items():
        over = (16384, 16384) if ext == "webp" else (40000, 40000)  # 268 MP / 1.6 GP
        out.append(Case(f"bomb_over_{over[0]}.{ext}", make(*over), refuse="too large"))
        out.append(Case(f"bomb_over_just.{ext}", make(11000, 11000), refuse="too large"))  # 121 MP
        out.append(Case(f"bomb_under.{ext}", make(10000, 6000)))  # 60 MP
    return out


# -- not images, or not a format the project lists -----------------------------------------------

def wrong_formats() -> List[Case]:
    small = Image.fromarray(_rgb(16, 16, seed=4))
    eps = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n%%EndComments\n"
           b"newpath 0 0 moveto 16 0 lineto 16 16 lineto closepath fill\nshowpage\n%%EOF\n")
    zb = BytesIO()
    with zipfile.ZipFile(zb, "w") as z:
        z.writestr("photo.jpg", _small("JPEG"))
    rng = np.random.default_rng(7)
    data = {"eps.jpg": eps, "eps.png": eps,
            "svg.png": b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>\n',
            "text.jpg": b"just some words, no picture\n" * 20, "zip.jpg": zb.getvalue(),
            "zeros.png": bytes(4096), "ff.jpg": b"\xff" * 4096,
            "random.jpg": rng.integers(0, 256, 5000, dtype=np.uint8).tobytes(),
            "random.png": rng.integers(0, 256, 300, dtype=np.uint8).tobytes(),
            "soi_only.jpg": b"\xff\xd8", "png_sig_only.png": b"\x89PNG\r\n\x1a\n",
            "html.gif": b"<html><body>404 Not Found</body></html>"}
    for fmt in ("PDF", "ICO", "PPM", "TGA", "PCX", "SGI", "DDS", "JPEG2000", "QOI", "XBM"):
        try:
            data[f"{fmt.lower()}.jpg"] = _save(small.convert("1") if fmt == "XBM" else small, fmt)
        except (KeyError, OSError, ValueError):
            continue  # this Pillow cannot write it
    cases = [Case(n, d, refuse="not an image") for n, d in data.items()]
    cases.append(Case("empty.jpg", b"", refuse="empty"))
    return cases


def corpus() -> List[Case]:
    valid = valid_files()
    return valid + truncated(valid) + bit_flips(valid) + header_bombs() + wrong_formats()
