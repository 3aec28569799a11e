"""Safe image loading and atomic writing.

``load_image`` turns any supported photo into an upright HxWx3 uint8 RGB array plus the metadata
worth keeping (EXIF, ICC profile), or raises :class:`ImageLoadError` with a one-line message that
names the file and the reason. It never writes to the file, checks the pixel count from the header
before decoding (decompression bombs), and refuses truncated files instead of returning a half-grey
picture (``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` must stay False, its default).

``save_image_atomic`` / ``save_json_atomic`` write to a temporary file in the target folder and
``os.replace`` it onto the target, so a crash or an encoder error never leaves a partial file.
"""
from __future__ import annotations

import json
import os
from io import BytesIO
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Optional, Tuple, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["ImageLoadError", "ImageMeta", "LoadedImage", "load_image", "save_image_atomic",
           "save_json_atomic", "DEFAULT_MAX_PIXELS"]

DEFAULT_MAX_PIXELS = 200_000_000
_ORIENTATION_TAG = 0x0112
_SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF",
                 ".webp": "WEBP"}


class ImageLoadError(ValueError):
    """An image could not be read; ``str(err)`` is one user-readable line naming the file."""


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
        raise ImageLoadError(f"{name}: cannot decode this 16-bit colour image")
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
        raise ImageLoadError(f"{name}: unsupported image mode {mode}") from exc


def _bit_depth(mode: str, rawmode: str) -> int:
    if mode == "1":
        return 1
    if "16" in rawmode or mode.startswith("I;16"):
        return 16
    if mode in ("I", "F"):
        return 32
    return 8


def load_image(path: PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Load a photo as upright RGB uint8; raise :class:`ImageLoadError` for anything unreadable.

    Alpha is composited on white, 16-bit data is scaled (not clipped) to 8 bits, CMYK goes
    through its embedded ICC profile when it has one, and the EXIF orientation is applied.
    The pixel count is checked from the header against ``max_pixels`` before decoding. Pillow's
    own decompression-bomb guard (``PIL.Image.MAX_IMAGE_PIXELS``, by default refusing more than
    ~179 MP and warning above ~89 MP) also applies; it is global state and is left untouched.
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    name = str(p)
    if not p.exists():
        raise ImageLoadError(f"{name}: file not found")
    if p.is_dir():
        raise ImageLoadError(f"{name}: is a folder, not an image")
    try:
        if p.stat().st_size == 0:
            raise ImageLoadError(f"{name}: empty file")
        fh = open(p, "rb")
    except PermissionError:
        raise ImageLoadError(f"{name}: permission denied") from None
    except OSError as exc:
        raise ImageLoadError(f"{name}: cannot open ({exc.strerror or exc})") from None
    with fh:
        try:
            im = Image.open(fh)
        except Image.DecompressionBombError:
            raise ImageLoadError(f"{name}: image dimensions too large (possible decompression "
                                 "bomb)") from None
        except UnidentifiedImageError:
            raise ImageLoadError(f"{name}: not an image (unknown or unsupported format)") from None
        except Exception as exc:
            raise ImageLoadError(f"{name}: corrupt image header ({_reason(exc)})") from None
        with im:
            w, h = im.size
            if w <= 0 or h <= 0:
                raise ImageLoadError(f"{name}: zero-size image ({w}x{h})")
            if w * h > max_pixels:
                raise ImageLoadError(f"{name}: image too large ({w}x{h} = {w * h / 1e6:.0f} MP, "
                                     f"limit {max_pixels / 1e6:.0f} MP)")
            fmt, mode, rawmode = im.format, im.mode, _tile_rawmode(im)
            try:
                im.load()  # before getexif(): PNG's getexif() loads and would swallow errors
                if mode in ("RGB", "RGBA") and "16" in rawmode:
                    rgb_f = _decode_16bit_color(p, name)
                    rgb, had_alpha = _to_uint8(rgb_f, 255.0), mode == "RGBA"
                else:
                    rgb, had_alpha = _pil_to_rgb(im, name)
            except ImageLoadError:
                raise
            except MemoryError:
                raise ImageLoadError(f"{name}: not enough memory to decode {w}x{h}") from None
            except Exception as exc:
                raise ImageLoadError(f"{name}: corrupt or truncated image ({_reason(exc)})") from None
            try:
                exif = im.getexif()
                orientation = int(exif.get(_ORIENTATION_TAG, 1) or 1)
            except Exception:  # unreadable EXIF must not make the photo unreadable
                exif, orientation = None, 1
            if orientation not in range(1, 9):
                orientation = 1
            icc = im.info.get("icc_profile") or None
    rgb = np.ascontiguousarray(_orient(rgb, orientation), dtype=np.uint8)
    exif_bytes = None
    if exif is not None and len(exif):
        try:
            if _ORIENTATION_TAG in exif:
                exif[_ORIENTATION_TAG] = 1
            exif_bytes = exif.tobytes()
        except Exception:
            exif_bytes = None
    meta = ImageMeta(path=p, format=fmt, original_mode=mode, size=(rgb.shape[1], rgb.shape[0]),
                     bit_depth=_bit_depth(mode, rawmode), exif=exif_bytes, icc_profile=icc,
                     had_alpha=had_alpha, orientation=orientation)
    return LoadedImage(rgb=rgb, meta=meta)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


# ------------------------------------------------------------------------------------------
# Atomic writing
# ------------------------------------------------------------------------------------------

def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()  # read once at import: os.umask cannot be read without setting it


def atomic_write(path: PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Write through a temp file in the target folder, fsync, then os.replace onto ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return target


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
    ValueError. EXIF and ICC bytes are embedded when given.
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
    data = (json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default) + "\n").encode()
    return atomic_write(path, lambda fh: fh.write(data))
