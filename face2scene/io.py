"""Safe image loading and atomic writing.

Public API (all importable from ``face2scene.io``):

- :func:`load_image` ``(path, *, max_pixels=DEFAULT_MAX_PIXELS) -> LoadedImage``: any supported
  photo as an upright HxWx3 uint8 RGB array plus the metadata worth keeping (:class:`ImageMeta`:
  EXIF, ICC profile, ...), or :class:`ImageError` with one line that names the file and the reason.
- :func:`load_thumbnail` ``(path, size, *, max_pixels=DEFAULT_MAX_PIXELS) -> ndarray``: the same
  checks, but decoded at reduced size where the format allows it (JPEG ``draft``), fitted into
  ``size`` (an int or a (w, h) box); HxWx3 uint8, EXIF orientation applied.
- :func:`save_image_atomic`, :func:`save_json_atomic`, :func:`atomic_write`: write to a temporary
  file in the target folder and ``os.replace`` it onto the target, so a crash, an encoder error or
  Ctrl-C never leaves a partial file. Write failures are ``OSError`` (one line naming the target).
- :func:`clean_stale_temp_files`, :func:`install_sigterm_cleanup`: temp-file hygiene.
- :data:`PIL_FORMATS`, :data:`DEFAULT_MAX_PIXELS`, :data:`MAX_ICC_BYTES`; :class:`ImageLoadError`
  is :class:`face2scene.errors.ImageError` (the same class, kept under its old name).

Reading policy (every decode goes through one function, ``_decode``, whatever the caller):

- Pillow is only ever asked for :data:`PIL_FORMATS` (derived from ``options.IMAGE_SUFFIXES``), so
  EPS/PostScript (which would start Ghostscript), PDF, SVG, ICO, PPM ... are refused as "not an
  image" whatever their file name. Content decides, not the suffix: a PNG named ``.jpg`` loads.
- Size: the pixel count from the header is checked against ``max_pixels`` (default
  :data:`DEFAULT_MAX_PIXELS` = 120 MP, which admits 100-MP medium-format photos) before anything
  is decoded; refusing by compressed size is deliberately not done (flat or tiny images compress
  extremely well). Pillow's own decompression-bomb error/warning become :class:`ImageError`.
  Decode time is bounded through the pixel count and, for JPEG, by the truncation checks below
  running before the full decode (a 2 KB file claiming 100 MP is refused in well under 1 s).
- Truncation: files cut short are refused, never returned as a half-grey picture. Pillow refuses
  a file whose data simply stops (``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` must stay False). A
  JPEG whose end marker was put back after the cut decodes without any error (libjpeg fills the
  rest with grey), so JPEGs get two more checks. (1) Structure, no decoding: the marker segments
  are walked as libjpeg does; a file without EOI, or whose scans do not code every coefficient of
  every component to full precision (a progressive file cut between two scans), is refused.
  (2) A probe decode: the file is decoded a second time, at the same size, with 2 KB of fixed
  filler inserted after each scan's entropy-coded data. A complete scan never reads it (libjpeg
  skips bytes between a finished scan and the next marker), a cut one decodes it as picture, so
  the two decodes differ exactly when data is missing (a cut inside the very last block can
  escape, rarely: its effect is a few pixels). Real grey (128) areas are never taken for missing
  data. Cost: a JPEG load takes about twice its decode time (12 MP: ~0.45 s instead of ~0.2 s).
  Files under half a bit per pixel are probed at 1/8 scale first, so a header bomb is refused
  before the full decode.
  Other formats rely on their decoders: data that stops is refused, but data overwritten with
  zeros (a pre-allocated download) is not detected in PNG/TIFF/BMP/WebP, and a GIF frame whose
  LZW data ends before its last pixel keeps its background colour there, as in GIF viewers.
- Pillow warnings (decompression bomb, corrupt EXIF, ...) never reach stderr during a load; the
  loader never writes to the file.

Writing policy: temp files are named ``.f2s-<8 hex>.tmp`` (17 bytes, so any valid target name
works, up to 255 bytes) and removed on any exception, including KeyboardInterrupt and, once
:func:`install_sigterm_cleanup` was called, SIGTERM. ICC profiles over :data:`MAX_ICC_BYTES` and
JPEG EXIF blocks over 64 KB are dropped with a logged warning, so every output re-loads.
"""
from __future__ import annotations

import atexit
import errno
import json
import logging
import os
import random
import re
import secrets
import signal
import stat
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, BinaryIO, Callable, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

from .errors import ImageError
from .options import IMAGE_SUFFIXES

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["ImageError", "ImageLoadError", "ImageMeta", "LoadedImage", "load_image", "image_size",
           "load_thumbnail", "save_image_atomic", "save_json_atomic", "atomic_write",
           "clean_stale_temp_files", "install_sigterm_cleanup", "DEFAULT_MAX_PIXELS",
           "PIL_FORMATS", "MAX_ICC_BYTES"]

log = logging.getLogger(__name__)

ImageLoadError = ImageError  # the name this module has always exported: the very same class

#: the largest image (pixels, from the header) any caller decodes: photos, references, thumbnails
DEFAULT_MAX_PIXELS = 120_000_000

_PIL_FORMAT_OF_SUFFIX = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".tif": "TIFF",
                         ".tiff": "TIFF", ".webp": "WEBP", ".bmp": "BMP", ".gif": "GIF"}
#: the only Pillow formats ever opened (a KeyError here means a suffix was added to
#: options.IMAGE_SUFFIXES without saying which Pillow format it is)
PIL_FORMATS: Tuple[str, ...] = tuple(dict.fromkeys(_PIL_FORMAT_OF_SUFFIX[s]
                                                 for s in IMAGE_SUFFIXES))

#: ICC profiles larger than this are not embedded in outputs (PNG readers refuse iCCP chunks over
#: 1 MiB; real profiles are a few KB to a few hundred KB)
MAX_ICC_BYTES = 1_000_000
_MAX_JPEG_EXIF = 65533  # one APP1 segment

_ORIENTATION_TAG = 0x0112
_SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF",
                 ".webp": "WEBP"}
_NAME_MAX = 255  # bytes in one file name on every file system the app supports

TEMP_PREFIX, TEMP_SUFFIX = ".f2s-", ".tmp"
_TEMP_NAME = re.compile(r"\.f2s-[0-9a-f]{8}\.tmp\Z")


@dataclass
class ImageMeta:
    """What was known about the file, beside its pixels.

    size: (w, h) after the EXIF orientation was applied. bit_depth: bits per sample of the stored
    image (1, 8, 16 or 32). exif: the EXIF block with its Orientation reset to 1 (the pixels are
    upright now), or None. orientation: the file's original EXIF orientation (1 when absent).
    """

    path: Path
    format: Optional[str]
    original_mode: str
    size: Tuple[int, int]
    bit_depth: int
    exif: Optional[bytes] = None
    icc_profile: Optional[bytes] = None
    had_alpha: bool = False
    orientation: int = 1


@dataclass
class LoadedImage:
    rgb: np.ndarray  # HxWx3 uint8, C-contiguous, upright
    meta: ImageMeta


# ------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------

def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1..8) to an HxW[xC] array, as ImageOps.exif_transpose does."""
    if orientation == 2:
        a = a[:, ::-1]
    elif orientation == 3:
        a = a[::-1, ::-1]
    elif orientation == 4:
        a = a[::-1]
    elif orientation == 5:
        a = a.swapaxes(0, 1)
    elif orientation == 6:
        a = np.rot90(a, -1)
    elif orientation == 7:
        a = a[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        a = np.rot90(a, 1)
    return a


def _composite_on_white(rgb: np.ndarray, alpha: np.ndarray, amax: float) -> np.ndarray:
    """rgb (float, any range) over a white background of value ``amax``."""
    a = alpha.astype(np.float32)[..., None] / np.float32(amax)
    return rgb.astype(np.float32) * a + np.float32(amax) * (1 - a)


def _to_uint8(x: np.ndarray, maxval: float) -> np.ndarray:
    """Scale [0, maxval] to [0, 255] with rounding (65535 -> 255, not clipped)."""
    return np.clip(np.rint(x.astype(np.float64) * (255.0 / maxval)), 0, 255).astype(np.uint8)


def _tile_rawmode(im) -> str:
    try:
        args = im.tile[0].args if hasattr(im.tile[0], "args") else im.tile[0][3]
    except (IndexError, AttributeError, TypeError):
        return ""
    if isinstance(args, tuple):
        args = args[0] if args else ""
    return args if isinstance(args, str) else ""


def _decode_16bit_color(path: Path, name: str) -> np.ndarray:
    """16-bit RGB(A) through OpenCV (PIL truncates it to 8 bits); returns float RGB 0..255."""
    import cv2
    data = np.fromfile(str(path), dtype=np.uint8)  # read-only; works with any file name
    arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if arr is None or arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ImageError(f"{name}: cannot decode this 16-bit colour image")
    maxval = 65535.0 if arr.dtype == np.uint16 else 255.0
    rgb = arr[..., 2::-1].astype(np.float32)
    if arr.shape[2] == 4:
        rgb = _composite_on_white(rgb, arr[..., 3], maxval)
    return rgb * np.float32(255.0 / maxval)


def _pil_to_rgb(im, name: str) -> Tuple[np.ndarray, bool]:
    """Decoded PIL image -> (HxWx3 uint8, had_alpha), for every mode we accept."""
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    elif mode == "PA":
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode == "1":
        return np.repeat(np.asarray(im.convert("L"))[..., None], 3, axis=2), False
    if mode == "L":
        return np.repeat(np.asarray(im)[..., None], 3, axis=2), False
    if mode == "LA":
        a = np.asarray(im)
        g = _composite_on_white(a[..., :1], a[..., 1], 255.0)
        return np.repeat(_to_uint8(g, 255.0), 3, axis=2), True
    if mode == "RGB":
        return np.asarray(im), False
    if mode in ("RGBA", "RGBa"):
        a = np.asarray(im.convert("RGBA"))
        return _to_uint8(_composite_on_white(a[..., :3], a[..., 3], 255.0), 255.0), True
    if mode.startswith("I;16"):
        g = _to_uint8(np.asarray(im).astype(np.float64), 65535.0)
        return np.repeat(g[..., None], 3, axis=2), False
    if mode in ("I", "F"):
        a = np.asarray(im).astype(np.float64)
        finite = a[np.isfinite(a)]
        hi = float(finite.max()) if finite.size else 0.0
        lo = float(finite.min()) if finite.size else 0.0
        if mode == "F" and lo >= 0 and hi <= 1.0:
            maxval, offset = 1.0, 0.0  # normalised float data
        elif lo >= 0 and hi <= 255 and mode == "I" and "16" not in _tile_rawmode(im):
            maxval, offset = 255.0, 0.0
        elif lo >= 0 and hi <= 65535:
            maxval, offset = 65535.0, 0.0
        else:  # unusual range: stretch what is there
            maxval, offset = max(hi - lo, 1e-12), lo
        g = _to_uint8(np.nan_to_num(a - offset), maxval)
        return np.repeat(g[..., None], 3, axis=2), False
    if mode == "CMYK":
        icc = im.info.get("icc_profile")
        if icc:
            try:
                from PIL import ImageCms
                src = ImageCms.ImageCmsProfile(BytesIO(icc))
                dst = ImageCms.createProfile("sRGB")
                return np.asarray(ImageCms.profileToProfile(im, src, dst, outputMode="RGB")), False
            except Exception:  # a broken profile: fall back to the plain conversion
                pass
        return np.asarray(im.convert("RGB")), False
    try:
        return np.asarray(im.convert("RGB")), False
    except Exception as exc:
        raise ImageError(f"{name}: unsupported image mode {mode}") from exc


def _bit_depth(mode: str, rawmode: str) -> int:
    if mode == "1":
        return 1
    if "16" in rawmode or mode.startswith("I;16"):
        return 16
    if mode in ("I", "F"):
        return 32
    return 8


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


_warn_lock = threading.Lock()
_warn_depth = 0
_warn_ctx: Optional[warnings.catch_warnings] = None


@contextmanager
def _quiet_warnings() -> Iterator[None]:
    """Silence warnings (Pillow's bomb / EXIF / palette ones, numpy's) while an image is decoded.

    Before Python 3.14, ``warnings.catch_warnings`` swaps process-wide state and two threads that
    nest it can restore the filters in the wrong order (leaving them changed for good), so loads
    running at the same time share one window: the first one in saves the filters, the last one
    out restores them. With context-aware warnings (3.14+) each load has its own.
    """
    global _warn_depth, _warn_ctx
    if getattr(sys.flags, "context_aware_warnings", False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
        return
    with _warn_lock:
        if _warn_depth == 0:
            ctx = warnings.catch_warnings()
            ctx.__enter__()
            warnings.simplefilter("ignore")
            _warn_ctx = ctx
        _warn_depth += 1
    try:
        yield
    finally:
        with _warn_lock:
            _warn_depth -= 1
            if _warn_depth == 0 and _warn_ctx is not None:
                ctx, _warn_ctx = _warn_ctx, None
                ctx.__exit__(None, None, None)


# -- JPEG truncation ---------------------------------------------------------------------------

# in entropy-coded data only FF00 (a stuffed FF) and RSTn are not the start of a marker
_ENTROPY_END = re.compile(rb"\xff[^\x00\xd0-\xd7]")


def _probe_filler(n: int = 2048) -> bytes:
    """n fixed pseudo-random bytes that decode as Huffman codes, never as a marker (no 0xFF), and
    do not start like libjpeg's own padding (zero bits) or an invalid code (a run of one bits)."""
    b = bytearray(random.Random(14).randbytes(n))
    for i, v in enumerate(b):
        if v in (0x00, 0xFF):
            b[i] = 0x5A if v == 0x00 else 0xA5
    b[0] = 0x5A
    return bytes(b)


_PROBE_FILLER = _probe_filler()


_ALL_COEFFICIENTS = (1 << 64) - 1
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # not DHT, JPG, DAC
_LOSSLESS_SOF = frozenset({0xC3, 0xC7, 0xCB, 0xCF})
_PROGRESSIVE_SOF = frozenset({0xC2, 0xC6, 0xCA, 0xCE})


@dataclass
class _JpegLayout:
    scan_ends: List[int]  # offsets where each scan's entropy-coded data ends, in file order
    eoi_end: Optional[int]  # offset just past the EOI marker; None when the file has none
    components: Tuple[int, ...] = ()  # component ids of the (first) frame header
    lossless: bool = False
    progressive: bool = False
    coded: Optional[Dict[int, int]] = None  # component -> bit k set when coefficient k is final
    broken: str = ""  # why the marker walk stopped early

    def missing(self) -> Optional[str]:
        """Why the file is structurally incomplete (a message), or None.

        A complete JPEG ends with EOI, and its scans code every coefficient of every component
        to full precision (libjpeg's encoder refuses a scan script that does not); a progressive
        file cut between two scans decodes without an error but lacks the later scans.
        """
        if self.eoi_end is None:
            if self.broken.startswith("a marker"):
                return f"corrupt image ({self.broken})"
            return f"truncated image ({self.broken or 'no end marker'})"
        if self.lossless or not self.components:
            return None
        coded = self.coded or {}
        if any(coded.get(c, 0) != _ALL_COEFFICIENTS for c in self.components):
            return "truncated image (the file ends before its last scans)"
        return None

    def probe(self, data: bytes) -> bytes:
        """``data`` with the filler inserted after every scan (and an EOI when it had none)."""
        parts, start = [], 0
        for end in self.scan_ends:
            parts += [data[start:end], _PROBE_FILLER]
            start = end
        parts.append(data[start:self.eoi_end] if self.eoi_end else data[start:] + b"\xff\xd9")
        return b"".join(parts)


def _jpeg_layout(data: bytes) -> Optional[_JpegLayout]:
    """Walk the marker segments as libjpeg does; None without an SOI or a scan."""
    n = len(data)
    if data[:2] != b"\xff\xd8":
        return None
    lay = _JpegLayout([], None, coded={})
    i = 2
    while True:
        j = data.find(b"\xff", i)  # libjpeg skips stray bytes before a marker
        if j < 0:
            break
        k = j + 1
        while k < n and data[k] == 0xFF:  # fill bytes
            k += 1
        if k >= n:
            break
        marker, i = data[k], k + 1
        if marker == 0xD9:
            lay.eoi_end = i
            break
        if marker in (0x00, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
            continue
        if i + 2 > n:
            lay.broken = "the file ends inside a marker segment"
            break
        length = int.from_bytes(data[i:i + 2], "big")
        if length < 2 or i + length > n:
            lay.broken = "a marker segment has a bad length" if length < 2 else \
                "the file ends inside a marker segment"
            break
        seg, i = data[i + 2:i + length], i + length
        if marker in _SOF_MARKERS and not lay.components and len(seg) >= 6:
            nf = seg[5]
            lay.components = tuple(seg[6 + 3 * c] for c in range(nf) if 6 + 3 * c < len(seg))
            lay.lossless = marker in _LOSSLESS_SOF
            lay.progressive = marker in _PROGRESSIVE_SOF
        elif marker == 0xDA:  # SOS: the entropy-coded data runs to the next real marker
            if seg:
                ns = seg[0]
                if len(seg) >= 1 + 2 * ns + 3:
                    ss, se, al = seg[1 + 2 * ns], seg[2 + 2 * ns], seg[3 + 2 * ns] & 0x0F
                    # a sequential scan codes whole blocks (libjpeg only warns about odd Ss,
                    # Se or Al there); a progressive one codes band Ss..Se, final when Al is 0
                    band = 0
                    if not lay.progressive:
                        band = _ALL_COEFFICIENTS
                    elif al == 0 and ss <= se <= 63:
                        band = ((1 << (se + 1)) - 1) ^ ((1 << ss) - 1)
                    if band:
                        for c in range(ns):
                            cid = seg[1 + 2 * c]
                            lay.coded[cid] = lay.coded.get(cid, 0) | band
            m = _ENTROPY_END.search(data, i)
            lay.scan_ends.append(m.start() if m else n)
            if m is None:
                break
            i = m.start()
    return lay if lay.scan_ends else None


def _decode_jpeg_bytes(buf: bytes, draft: Optional[Tuple[int, int]]):
    """The loaded PIL image of a JPEG held in memory (the caller closes it)."""
    from PIL import Image
    im = Image.open(BytesIO(buf), formats=("JPEG",))
    try:
        if draft is not None:
            im.draft(None, draft)
        im.load()
    except BaseException:
        im.close()
        raise
    return im


def _same_pixels(a, b, rows: int = 256) -> bool:
    """Two loaded PIL images hold the same pixels (compared in strips: no full-size copies)."""
    if a.size != b.size or a.mode != b.mode:
        return False
    w, h = a.size
    for y in range(0, h, rows):
        box = (0, y, w, min(h, y + rows))
        if not np.array_equal(np.asarray(a.crop(box)), np.asarray(b.crop(box))):
            return False
    return True


def _check_jpeg_complete(data: bytes, lay: _JpegLayout, name: str,
                         draft: Optional[Tuple[int, int]], decoded=None) -> None:
    """Raise ImageError when the entropy-coded data of a scan stops early.

    The file is decoded again with filler bytes inserted where each scan's data ends: a complete
    scan never reads them (libjpeg skips bytes between a finished scan and the next marker), a
    cut one decodes them as more picture, so the result differs from ``decoded`` (the loaded PIL
    image of the file as it is, with the same ``draft`` request) exactly when data is missing.
    """
    own = decoded is None
    if own:
        try:
            decoded = _decode_jpeg_bytes(data, draft)
        except MemoryError:
            raise
        except Exception:
            return  # undecodable as it is: the full decode reports why
    try:
        try:
            probe = _decode_jpeg_bytes(lay.probe(data), draft)
        except MemoryError:
            raise
        except Exception:
            same = False
        else:
            with probe:
                same = _same_pixels(probe, decoded)
    finally:
        if own:
            decoded.close()
    if not same:
        raise ImageError(f"{name}: truncated image (its picture data stops before the last "
                         "pixels; the file is incomplete)")


# -- the one decode path -----------------------------------------------------------------------

@dataclass
class _Decoded:
    rgb: np.ndarray  # HxWx3 uint8 as stored (orientation not applied yet)
    format: Optional[str]
    mode: str
    rawmode: str
    had_alpha: bool
    exif: Optional[bytes]  # with Orientation reset to 1 (load_image only)
    orientation: int
    icc: Optional[bytes]


def _open_file(p: Path, name: str) -> BinaryIO:
    try:
        st = p.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise ImageError(f"{name}: file not found") from None
    except PermissionError:
        raise ImageError(f"{name}: permission denied") from None
    except OSError as exc:
        raise ImageError(f"{name}: cannot open ({exc.strerror or _reason(exc)})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageError(f"{name}: is a folder, not an image")
    if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block or never end
        raise ImageError(f"{name}: not a regular file")
    if st.st_size == 0:
        raise ImageError(f"{name}: empty file")
    try:
        return open(p, "rb")
    except PermissionError:
        raise ImageError(f"{name}: permission denied") from None
    except OSError as exc:
        raise ImageError(f"{name}: cannot open ({exc.strerror or _reason(exc)})") from None


def _pil_formats() -> Tuple[str, ...]:
    """PIL_FORMATS that this Pillow build can open (Image.open fails on an unknown name)."""
    from PIL import Image
    Image.init()
    return tuple(f for f in PIL_FORMATS if f in Image.OPEN)


def _bomb_error(name: str, exc: BaseException, max_pixels: int) -> ImageError:
    """Pillow's own guard (PIL.Image.MAX_IMAGE_PIXELS) fired before ours: say it the same way."""
    m = re.search(r"\((\d+) pixels\)", str(exc))
    claimed = f"{int(m.group(1)) / 1e6:.0f} MP, " if m else ""
    return ImageError(f"{name}: image too large ({claimed}limit {max_pixels / 1e6:.0f} MP; "
                      "possible decompression bomb)")


def _open_pil(fh: BinaryIO, name: str, max_pixels: int):
    from PIL import Image, UnidentifiedImageError
    try:
        im = Image.open(fh, formats=_pil_formats())
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb_error(name, exc, max_pixels) from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image (unknown or unsupported format)") from None
    except MemoryError:
        raise ImageError(f"{name}: not enough memory to read the image header") from None
    except Exception as exc:
        raise ImageError(f"{name}: corrupt image header ({_reason(exc)})") from None
    w, h = im.size
    if w <= 0 or h <= 0:
        im.close()
        raise ImageError(f"{name}: zero-size image ({w}x{h})")
    if w * h > max_pixels:
        im.close()
        raise ImageError(f"{name}: image too large ({w}x{h} = {w * h / 1e6:.0f} MP, "
                         f"limit {max_pixels / 1e6:.0f} MP)")
    return im


@contextmanager
def _open_checked(p: Path, max_pixels: int) -> Iterator[Tuple[str, BinaryIO, Any]]:
    """(name, file, PIL image) with every header check passed (the file is a regular non-empty
    one, one of PIL_FORMATS, within ``max_pixels``); Pillow's warnings quiet meanwhile."""
    name = str(p)
    fh = _open_file(p, name)
    with fh, _quiet_warnings():
        im = _open_pil(fh, name, max_pixels)
        with im:
            yield name, fh, im


def _exif_of(im) -> Tuple[Any, int]:
    try:
        exif = im.getexif()
        orientation = int(exif.get(_ORIENTATION_TAG, 1) or 1)
    except Exception:  # unreadable EXIF must not make the photo unreadable
        return None, 1
    return exif, orientation if orientation in range(1, 9) else 1


def _fit(w: int, h: int, box: Tuple[int, int]) -> Tuple[int, int]:
    """(w, h) scaled down (never up) to fit ``box``, aspect kept, at least 1x1."""
    f = min(box[0] / w, box[1] / h, 1.0)
    return max(1, round(w * f)), max(1, round(h * f))


def _decode(p: Path, max_pixels: int, box: Optional[Tuple[int, int]] = None) -> _Decoded:
    """Every read goes through here: the format restriction, the pixel limit and the truncation
    checks are the same for photos, references and thumbnails. ``box``: the (w, h) the caller
    will fit the upright picture into; JPEGs are then decoded at a reduced scale (``draft``)."""
    from PIL import Image

    with _open_checked(p, max_pixels) as (name, fh, im):
        w, h = im.size
        fmt, mode, rawmode = im.format, im.mode, _tile_rawmode(im)
        exif, orientation = None, 1
        data, lay, draft = b"", None, None
        try:
            if fmt in ("JPEG", "MPO"):
                fh.seek(0)
                data = fh.read()
                lay = _jpeg_layout(data)
                missing = lay.missing() if lay is not None else None
                if missing:
                    raise ImageError(f"{name}: {missing}")
                exif, orientation = _exif_of(im)  # JPEG EXIF comes from the header
                if box is not None:
                    bw, bh = box if orientation < 5 else (box[1], box[0])
                    tw, th = _fit(w, h, (bw, bh))
                    draft = (2 * tw, 2 * th)  # then a good filter takes it the rest of the way
                    im.draft(None, draft)
            if lay is not None and box is None and len(data) * 16 < w * h:
                # under half a bit per pixel (a header bomb?): check at 1/8 scale before the
                # full decode, so a tiny file claiming many pixels is refused fast
                _check_jpeg_complete(data, lay, name, (max(1, w // 8), max(1, h // 8)))
            im.load()  # before getexif(): PNG's getexif() loads and would swallow errors
            if lay is not None:  # at the decoded size (thumbnail: the draft scale)
                _check_jpeg_complete(data, lay, name, draft, im)
            if mode in ("RGB", "RGBA") and "16" in rawmode:
                rgb_f = _decode_16bit_color(p, name)
                rgb, had_alpha = _to_uint8(rgb_f, 255.0), mode == "RGBA"
            else:
                rgb, had_alpha = _pil_to_rgb(im, name)
        except ImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _bomb_error(name, exc, max_pixels) from None
        except MemoryError:
            raise ImageError(f"{name}: not enough memory to decode {w}x{h}") from None
        except Exception as exc:
            raise ImageError(f"{name}: corrupt or truncated image ({_reason(exc)})") from None
        if lay is None:
            exif, orientation = _exif_of(im)
        icc = im.info.get("icc_profile") or None
        exif_bytes = _upright_exif_bytes(exif) if box is None else None  # parsing may warn
    return _Decoded(rgb=rgb, format=fmt, mode=mode, rawmode=rawmode, had_alpha=had_alpha,
                    exif=exif_bytes, orientation=orientation, icc=icc)


def _upright_exif_bytes(exif) -> Optional[bytes]:
    """The EXIF block with Orientation reset to 1 (the pixels are upright now), or None."""
    if exif is None or not len(exif):
        return None
    try:
        if _ORIENTATION_TAG in exif:
            exif[_ORIENTATION_TAG] = 1
        return exif.tobytes()
    except Exception:
        return None


def load_image(path: PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Load a photo as upright RGB uint8; raise :class:`ImageError` for anything unreadable.

    Alpha is composited on white, 16-bit data is scaled (not clipped) to 8 bits, CMYK goes
    through its embedded ICC profile when it has one, the EXIF orientation is applied, and only
    the first frame of a GIF / multi-page TIFF / animation is read. Only :data:`PIL_FORMATS` are
    opened; the pixel count is checked from the header against ``max_pixels`` before decoding;
    truncated files are refused (see the module docstring). Pillow's own decompression-bomb
    guard (``PIL.Image.MAX_IMAGE_PIXELS``, global state left untouched) still refuses more than
    ~179 MP, whatever ``max_pixels`` says; its warnings are silenced during the load.
    """
    p = Path(path)
    d = _decode(p, max_pixels)
    rgb = np.ascontiguousarray(_orient(d.rgb, d.orientation), dtype=np.uint8)
    meta = ImageMeta(path=p, format=d.format, original_mode=d.mode,
                     size=(rgb.shape[1], rgb.shape[0]), bit_depth=_bit_depth(d.mode, d.rawmode),
                     exif=d.exif, icc_profile=d.icc, had_alpha=d.had_alpha,
                     orientation=d.orientation)
    return LoadedImage(rgb=rgb, meta=meta)


def image_size(path: PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Tuple[int, int]:
    """(width, height) as shown (after the EXIF orientation), read from the header only.

    Same file checks, format restriction and pixel limit as :func:`load_image` (a header
    claiming more than ``max_pixels`` is refused before anything is decoded); anything
    unreadable is one :class:`ImageError` naming the file.
    """
    with _open_checked(Path(path), max_pixels) as (_name, _fh, im):
        w, h = im.size
        _exif, orientation = _exif_of(im)
    return (h, w) if orientation >= 5 else (w, h)


def load_thumbnail(path: PathLike, size: Union[int, Tuple[int, int]], *,
                   max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """An upright HxWx3 uint8 thumbnail fitting ``size`` (int: a square box; or (w, h)).

    Same formats, pixel limit and truncation checks as :func:`load_image`. JPEGs are decoded at
    the smallest DCT scale that still gives twice the thumbnail size (``Image.draft``, up to 8x
    fewer pixels in each direction) and the truncation check runs at that scale: a cut that
    shows in the thumbnail is refused, while a progressive JPEG that lacks only its last
    (fine-detail) scans yields exactly the complete file's thumbnail (load_image refuses it).
    Other formats are decoded in full and shrunk with ``reduce`` + Lanczos. Never enlarges.
    """
    from PIL import Image

    box = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if box[0] < 1 or box[1] < 1:
        raise ValueError(f"thumbnail size must be positive, got {size!r}")
    d = _decode(Path(path), max_pixels, box)
    rgb = d.rgb
    h, w = rgb.shape[:2]
    bw, bh = box if d.orientation < 5 else (box[1], box[0])
    tw, th = _fit(w, h, (bw, bh))
    if (tw, th) != (w, h):
        small = Image.fromarray(np.ascontiguousarray(rgb)).resize(
            (tw, th), Image.Resampling.LANCZOS, reducing_gap=2.0)
        rgb = np.asarray(small)
    return np.ascontiguousarray(_orient(rgb, d.orientation), dtype=np.uint8)


# ------------------------------------------------------------------------------------------
# Atomic writing
# ------------------------------------------------------------------------------------------

def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()  # read once at import: os.umask cannot be read without setting it

_live_temps: set = set()  # absolute paths of temp files of writes in progress
_live_lock = threading.Lock()
_atexit_registered = False


def _remember_temp(tmp: Path) -> None:
    with _live_lock:
        _live_temps.add(os.path.abspath(tmp))


def _forget_temp(tmp: Path) -> None:
    with _live_lock:
        _live_temps.discard(os.path.abspath(tmp))


def _unlink_quietly(path: PathLike) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _remove_live_temps() -> None:
    """atexit: temp files of writes that never finished (daemon threads killed at exit)."""
    with _live_lock:
        paths = list(_live_temps)
        _live_temps.clear()
    for p in paths:
        _unlink_quietly(p)


def _write_error(exc: OSError, target: Path, what: str) -> OSError:
    """The same kind of OSError (errno kept, so PermissionError stays one) as one line."""
    reason = exc.strerror or _reason(exc)
    if exc.errno is None:
        return OSError(f"{target}: {what} ({reason})")
    return OSError(exc.errno, f"{what} ({reason})", str(target))


def _make_temp(folder: Path) -> Tuple[int, Path]:
    flags = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
             | getattr(os, "O_CLOEXEC", 0))
    for _ in range(64):
        tmp = folder / f"{TEMP_PREFIX}{secrets.token_hex(4)}{TEMP_SUFFIX}"
        _remember_temp(tmp)  # before it exists: a signal right after creation still finds it
        try:
            return os.open(tmp, flags, 0o600), tmp
        except FileExistsError:
            _forget_temp(tmp)
        except BaseException:
            _forget_temp(tmp)
            raise
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(folder))


def atomic_write(path: PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Write through a temp file in the target folder, fsync, then ``os.replace`` onto ``path``.

    The temp file is ``.f2s-<8 hex>.tmp`` in the target's folder (created with its parents) and
    is removed on any exception, KeyboardInterrupt and SystemExit included. Errors: a target
    name over 255 bytes, a folder that cannot be created or written into, and a failed flush,
    fsync or rename raise ``OSError`` (the errno's own subclass, e.g. PermissionError) whose
    ``str()`` is one line naming the target; whatever ``write`` itself raises propagates as is.
    """
    target = Path(path)
    # POSIX file systems count a name's bytes, Windows its UTF-16 characters
    n = len(target.name) if os.name == "nt" else len(os.fsencode(target.name))
    if n > _NAME_MAX:
        unit = "characters" if os.name == "nt" else "bytes"
        raise OSError(errno.ENAMETOOLONG, f"file name too long ({n} {unit}, the limit is "
                      f"{_NAME_MAX})", str(target))
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _write_error(exc, target, f"cannot create the folder {folder}") from None
    try:
        fd, tmp = _make_temp(folder)
    except OSError as exc:
        raise _write_error(exc, target, f"cannot write into {folder}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            try:
                fh.flush()
                os.fsync(fh.fileno())
            except OSError as exc:
                raise _write_error(exc, target, "cannot write") from None
        try:
            os.chmod(tmp, 0o666 & ~_UMASK)
            os.replace(tmp, target)
        except OSError as exc:
            raise _write_error(exc, target, "cannot write") from None
    except BaseException:
        _unlink_quietly(tmp)
        raise
    finally:
        _forget_temp(tmp)
    return target


def clean_stale_temp_files(folder: PathLike, older_than_s: float = 3600.0) -> List[Path]:
    """Remove this project's temp files (``.f2s-<8 hex>.tmp``) older than ``older_than_s``.

    Only ``folder`` itself is looked at (not sub-folders), only regular files whose name matches
    exactly, never one a write in this process is still using. A missing or unreadable folder
    removes nothing. Returns the paths removed.
    """
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    with _live_lock:
        live = set(_live_temps)
    now = time.time()
    removed: List[Path] = []
    for e in entries:
        if not _TEMP_NAME.match(e.name) or os.path.abspath(e.path) in live:
            continue
        try:
            st = e.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or now - st.st_mtime < older_than_s:
                continue
            os.unlink(e.path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("cannot remove the stale temp file %s: %s", e.path, exc)
            continue
        removed.append(Path(e.path))
    return removed


def _raise_system_exit(signum, frame) -> None:
    raise SystemExit(128 + signum)


def install_sigterm_cleanup():
    """Make SIGTERM raise ``SystemExit(143)`` in the main thread; returns the previous handler.

    An atomic write in progress in the main thread then removes its temp file (it cleans up on
    any exception) and the program exits through normal interpreter shutdown; temp files of
    writes still running in daemon threads at exit are removed by an ``atexit`` hook installed
    here. Nothing of this happens at import: a program (the CLI) opts in by calling this once.
    Raises RuntimeError when called from another thread (Python only handles signals there).
    """
    global _atexit_registered
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("install_sigterm_cleanup() must be called from the main thread")
    previous = signal.signal(signal.SIGTERM, _raise_system_exit)
    with _live_lock:
        if not _atexit_registered:
            atexit.register(_remove_live_temps)
            _atexit_registered = True
    return previous


def _same_file(a: Path, b: PathLike) -> bool:
    b = Path(b)
    try:
        if a.exists() and b.exists():
            return a.samefile(b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def save_image_atomic(path: PathLike, rgb: np.ndarray, *, format: Optional[str] = None,
                      quality: int = 95, exif: Optional[bytes] = None,
                      icc_profile: Optional[bytes] = None,
                      protect: Optional[PathLike] = None) -> Path:
    """Save an HxWx3 (or HxW) uint8 image atomically; returns the path written.

    ``format`` defaults to the suffix (png, jpg/jpeg, tif/tiff, webp). ``protect`` names a file
    (normally the original photo) that must never be overwritten: saving onto it raises
    ValueError. EXIF and ICC bytes are embedded when given, except an ICC profile over
    :data:`MAX_ICC_BYTES` (any format) or EXIF over 64 KB in a JPEG: those are dropped with a
    logged warning, so the output always re-loads with :func:`load_image`. Write errors are
    ``OSError`` (see :func:`atomic_write`).
    """
    from PIL import Image

    target = Path(path)
    if protect is not None and _same_file(target, protect):
        raise ValueError(f"{target}: refusing to overwrite the original photo")
    fmt = (format or _SAVE_FORMATS.get(target.suffix.lower(), "")).upper()
    if fmt == "JPG":
        fmt = "JPEG"
    if fmt not in ("PNG", "JPEG", "TIFF", "WEBP"):
        raise ValueError(f"{target}: cannot tell the image format (use .png, .jpg, .tif or .webp)")
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8 or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ValueError(f"expected an HxWx3 or HxW uint8 image, got {arr.dtype} {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError("cannot save an empty image")
    if arr.shape[0] * arr.shape[1] > DEFAULT_MAX_PIXELS:
        log.warning("%s: %dx%d is over the %d MP load_image reads by default", target,
                    arr.shape[1], arr.shape[0], DEFAULT_MAX_PIXELS // 1_000_000)
    if icc_profile and len(icc_profile) > MAX_ICC_BYTES:
        log.warning("%s: ICC profile of %d bytes not embedded (over %d bytes, readers refuse it)",
                    target, len(icc_profile), MAX_ICC_BYTES)
        icc_profile = None
    if exif and fmt == "JPEG" and len(exif) > _MAX_JPEG_EXIF:
        log.warning("%s: EXIF block of %d bytes not embedded (a JPEG holds at most %d)",
                    target, len(exif), _MAX_JPEG_EXIF)
        exif = None
    im = Image.fromarray(np.ascontiguousarray(arr))
    opts: dict = {}
    if fmt in ("JPEG", "WEBP"):
        opts["quality"] = int(quality)
    if fmt == "JPEG" and quality >= 90:
        opts["subsampling"] = 0  # keep full colour resolution at high quality
    if fmt == "TIFF" and not exif:
        # libtiff (used for compressed TIFF) cannot write an EXIF sub-IFD (where the dates
        # are): with EXIF, Pillow's own uncompressed writer keeps it.
        opts["compression"] = "tiff_lzw"
    if exif:
        opts["exif"] = exif
    if icc_profile:
        opts["icc_profile"] = icc_profile
    return atomic_write(target, lambda fh: im.save(fh, format=fmt, **opts))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def save_json_atomic(path: PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented UTF-8 JSON atomically (numpy values and paths allowed)."""
    data = (json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default) + "\n").encode(
        "utf-8", "backslashreplace")  # a lone surrogate (an undecodable file name) stays readable
    return atomic_write(path, lambda fh: fh.write(data))


def sha256_file(path: PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks (what the app, the batch manifest and model
    checksums compare)."""
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
