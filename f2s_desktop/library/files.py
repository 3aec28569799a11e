"""The files the library itself writes: version files (``versions/<photo id>/vNNN.png`` and the
restored face crops next to them) and cached thumbnails. Originals are never written. Qt-free."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from ..paths import AppPaths


def face_crop_path(version_path: str | os.PathLike, idx: int) -> Path:
    """Where the restored crop of face ``idx`` of a version is kept (next to the version file)."""
    p = Path(version_path)
    return p.with_name(f"{p.stem}_face{idx}.png")


def damage_mask_path(version_path: str | os.PathLike) -> Path:
    """Where the damage mask a version repaired (old prints) is kept (next to the version file)."""
    p = Path(version_path)
    return p.with_name(f"{p.stem}_damage.png")


class Files:
    def __init__(self, paths: AppPaths) -> None:
        self.paths = paths

    # ---------------------------------------------------------------- versions
    def version_dir(self, photo_id: int) -> Path:
        d = self.paths.versions / str(photo_id)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def version_path(self, photo_id: int, number: int) -> Path:
        return self.version_dir(photo_id) / f"v{number:03d}.png"

    def version_number_taken(self, photo_id: int, number: int) -> bool:
        """A file of this number exists (e.g. left by a crash between writing and recording it)."""
        return any(self.version_dir(photo_id).glob(f"v{number:03d}.*"))

    @staticmethod
    def remove_version_files(version_paths: Iterable[str | os.PathLike]) -> None:
        """Delete version files and their face crops."""
        for v in version_paths:
            f = Path(v)
            for g in f.parent.glob(f.stem + "*"):
                g.unlink(missing_ok=True)

    # ---------------------------------------------------------------- thumbnails
    def thumbnail_path(self, sha256: str, size: int) -> Path:
        return self.paths.thumbnails / f"{sha256[:2]}" / f"{sha256}_{size}.jpg"

    def thumbnail(self, path: str | os.PathLike, sha256: str, size: int = 256) -> Path:
        """The cached thumbnail of an image (made on first use; call it off the GUI thread).

        Decoded by ``face2scene.io.load_thumbnail`` (pixel limit checked from the header, JPEGs
        at a reduced DCT scale), written with ``save_image_atomic``; an unreadable image is an
        ImageError naming the file."""
        out = self.thumbnail_path(sha256, size)
        if out.is_file():
            return out
        from face2scene.io import load_thumbnail, save_image_atomic
        save_image_atomic(out, load_thumbnail(path, size), format="JPEG", quality=88)
        return out
