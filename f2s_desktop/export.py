"""Export restored versions to a folder. Qt-free.

- formats: PNG, JPEG, TIFF, WebP (quality where it applies)
- a name template, e.g. ``{name}_restored_{version}`` (fields: name, ext, version, id, date, people)
- optionally the folder structure of the import mirrored under the target folder
- metadata from the original: EXIF (orientation reset to 1, because the pixels are already upright;
  pixel dimensions — ImageWidth/ImageLength and ExifImageWidth/ExifImageHeight — set to those of
  each file written, the side-by-side image included), ICC profile, EXIF dates, and the file's modification time
- every file written to a temporary name in the target folder, flushed, then renamed (atomic)
- an existing file is never overwritten unless asked: a " (2)" suffix is added instead
- optionally a before/after side-by-side image next to each export
"""
from __future__ import annotations

import os
import re
import string
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from face2scene.io import PIL_FORMATS

FORMATS = {"PNG": ".png", "JPEG": ".jpg", "TIFF": ".tif", "WEBP": ".webp"}
TEMPLATE_FIELDS = {"name", "ext", "version", "id", "date", "people"}
DEFAULT_TEMPLATE = "{name}_restored_{version}"

_ORIENTATION = 0x0112
_SOFTWARE = 0x0131
_EXIF_IFD = 0x8769
_PIXEL_X, _PIXEL_Y = 0xA002, 0xA003
_IMAGE_WIDTH, _IMAGE_LENGTH = 0x0100, 0x0101
_DATETIME_ORIGINAL = 0x9003


class ExportError(Exception):
    """A user-level export problem (bad template, unwritable folder...)."""


@dataclass
class ExportOptions:
    folder: Path
    format: str = "JPEG"
    quality: int = 92
    template: str = DEFAULT_TEMPLATE
    mirror: bool = False
    side_by_side: bool = False
    keep_metadata: bool = True
    overwrite: bool = False

    def validate(self) -> None:
        fmt = self.format.upper()
        if fmt not in FORMATS:
            raise ExportError(f"unknown format {self.format!r}; choose one of {', '.join(FORMATS)}")
        if not 1 <= int(self.quality) <= 100:
            raise ExportError("quality must be between 1 and 100")
        check_template(self.template)


@dataclass
class ExportItem:
    original: Path              # the untouched original (metadata source)
    restored: Path              # the version file
    version: int
    photo_id: int = 0
    rel_dir: Path = Path(".")   # folder relative to the import root (for mirroring)
    people: Sequence[str] = ()


@dataclass
class ExportReport:
    written: List[Path] = field(default_factory=list)
    errors: List[Tuple[str, str]] = field(default_factory=list)


def check_template(template: str) -> None:
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as e:
        raise ExportError(f"bad name template {template!r}: {e}") from None
    unknown = [f for f in fields if f not in TEMPLATE_FIELDS]
    if unknown:
        raise ExportError(f"unknown field {{{unknown[0]}}} in the name template; "
                          f"use {', '.join('{' + f + '}' for f in sorted(TEMPLATE_FIELDS))}")
    if not template.strip():
        raise ExportError("the name template is empty")


def _safe_name(s: str) -> str:
    s = re.sub(r'[\\/:*?"<>|\x00-\x1f]', "_", s).strip().strip(".")
    return s or "photo"


def render_name(item: ExportItem, template: str, date: Optional[str] = None) -> str:
    check_template(template)
    return _safe_name(template.format(
        name=item.original.stem, ext=item.original.suffix.lstrip("."), version=item.version,
        id=item.photo_id, date=date or "", people="-".join(item.people) or "unknown"))


def atomic_save(im, path: Path, fmt: str, params: Dict[str, Any]) -> None:
    """Save a PIL image to ``path`` via a temporary file in the same folder and a rename."""
    from face2scene.io import atomic_write
    atomic_write(path, lambda f: im.save(f, fmt, **params))


def _metadata(original: Path):
    """(EXIF to carry over or None, icc profile, original date 'YYYY:MM:DD HH:MM:SS') of the original."""
    from PIL import Image
    with Image.open(original, formats=PIL_FORMATS) as im:
        icc = im.info.get("icc_profile")
        exif = im.getexif()
        sub = exif.get_ifd(_EXIF_IFD)
        date = sub.get(_DATETIME_ORIGINAL) or exif.get(0x0132)
        if not len(exif) and not sub:
            return None, icc, date
        exif[_ORIENTATION] = 1
        exif[_SOFTWARE] = "Face2Scene"
        return exif, icc, date


def exif_for(exif, size: Tuple[int, int]) -> Optional[bytes]:
    """The EXIF bytes for a file of ``size`` (width, height): its real pixel dimensions written in
    IFD0 (ImageWidth/ImageLength) and the EXIF IFD (ExifImageWidth/ExifImageHeight)."""
    if exif is None:
        return None
    w, h = int(size[0]), int(size[1])
    exif[_IMAGE_WIDTH], exif[_IMAGE_LENGTH] = w, h
    sub = exif.get_ifd(_EXIF_IFD)
    sub[_PIXEL_X], sub[_PIXEL_Y] = w, h
    return exif.tobytes()


def _save_params(fmt: str, quality: int, exif: Optional[bytes], icc: Optional[bytes]) -> Dict[str, Any]:
    p: Dict[str, Any] = {}
    if fmt == "JPEG":
        p.update(quality=int(quality), optimize=True, subsampling=0 if quality >= 90 else 2)
    elif fmt == "WEBP":
        p.update(quality=int(quality), lossless=quality >= 100, method=4)
    elif fmt == "TIFF" and not exif:
        # libtiff (used for compressed TIFF) cannot write Pillow's EXIF sub-IFD, so the dates would be
        # lost: TIFF with EXIF is written uncompressed by Pillow's own writer, which keeps them.
        p.update(compression="tiff_lzw")
    elif fmt == "PNG":
        p.update(compress_level=6)
    if exif:
        p["exif"] = exif
    if icc:
        p["icc_profile"] = icc
    return p


def _unique(path: Path, taken: set, overwrite: bool) -> Path:
    if overwrite and path not in taken:
        return path
    cand, n = path, 2
    while cand in taken or cand.exists():
        cand = path.with_name(f"{path.stem} ({n}){path.suffix}")
        n += 1
    return cand


def side_by_side(before, after, gap: int = 8):
    """Original (resized to the restored size) left, restored right, a neutral gap between."""
    from PIL import Image
    before = before.convert("RGB").resize(after.size, Image.Resampling.LANCZOS)
    out = Image.new("RGB", (after.width * 2 + gap, after.height), (128, 128, 128))
    out.paste(before, (0, 0))
    out.paste(after.convert("RGB"), (after.width + gap, 0))
    return out


def export_items(items: Iterable[ExportItem], opts: ExportOptions,
                 progress: Optional[Callable[[int, int, str], None]] = None,
                 cancel: Optional[Callable[[], bool]] = None) -> ExportReport:
    """Export every item; one item's failure is reported and the rest continue."""
    from PIL import Image, ImageOps
    opts.validate()
    fmt = opts.format.upper()
    ext = FORMATS[fmt]
    items = list(items)
    rep = ExportReport()
    taken: set = set()
    for i, it in enumerate(items):
        if cancel is not None and cancel():
            break
        try:
            with Image.open(it.restored, formats=PIL_FORMATS) as im:
                restored = im.convert("RGB")
            exif = icc = date = None
            src = it.original if it.original.is_file() else it.restored  # a deleted original: the version alone
            if opts.keep_metadata and src is it.original:
                exif, icc, date = _metadata(it.original)
            day = (date or time.strftime("%Y:%m:%d", time.localtime(src.stat().st_mtime)))[:10]
            name = render_name(it, opts.template, day.replace(":", "-"))
            folder = Path(opts.folder) / it.rel_dir if opts.mirror else Path(opts.folder)
            out = _unique(folder / (name + ext), taken, opts.overwrite)
            taken.add(out)
            atomic_save(restored, out, fmt, _save_params(fmt, opts.quality, exif_for(exif, restored.size), icc))
            st = src.stat()
            os.utime(out, (st.st_atime, st.st_mtime))
            rep.written.append(out)
            if opts.side_by_side:
                with Image.open(it.original, formats=PIL_FORMATS) as o:
                    before = ImageOps.exif_transpose(o)
                    pair = side_by_side(before, restored)
                cmp = _unique(out.with_name(out.stem + "_before_after" + ext), taken, opts.overwrite)
                taken.add(cmp)
                atomic_save(pair, cmp, fmt, _save_params(fmt, opts.quality, exif_for(exif, pair.size), icc))
                rep.written.append(cmp)
        except (OSError, ValueError, ExportError) as e:
            rep.errors.append((str(it.original), str(e)))
        if progress is not None:
            progress(i + 1, len(items), str(it.original))
    return rep


def items_for_photos(lib, photo_ids: Sequence[int], version: str = "latest") -> List[ExportItem]:
    """Export items for photos from the library (their latest version; photos without one skipped)."""
    out = []
    for pid in photo_ids:
        p = lib.photos.get(pid)
        v = lib.versions.latest(pid)
        if v is None:
            continue
        people = sorted({lib.people.name_of(f.confirmed_person_id) for f in lib.faces.for_photo(pid)
                         if f.confirmed_person_id is not None} - {None})
        out.append(ExportItem(Path(p.path), Path(v.path), v.number, pid, p.rel_path.parent, people))
    return out
