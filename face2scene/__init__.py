"""Face2Scene: faces restored from reference photos tell how the whole photo was degraded.

The method library. It never imports Qt; the desktop app (``f2s_desktop``) only calls it.
"""
import os as _os

# PyTorch's OpenMP threads spin while they wait for each other. On a machine busier than its
# cores (a shared 2-core box, the app's own threads, a batch of worker processes) a spinning
# thread burns its core waiting for one that is not running: the compact restorer on a 256 px
# tile, 2 threads, load 13-16, took 52-76 CPU s/MP and 8-17 s wall spinning, 8.3 CPU s/MP and
# 1.7 s wall waiting passively (1 thread: 9.4 CPU s/MP, 1.2 s wall). Read once, when libgomp loads (with torch), so set before anything imports torch; a
# value the user set wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .errors import (Cancelled, ConfigError, Face2SceneError, FaceBackendError, ImageError,
                     WeightsError)
from .progress import CancelToken
from .types import (Backends, CodeInfo, DegradationEstimate, DetectedFace, FaceResult, Person, RefImage,
                    RestoreResult)

__version__ = "0.1.0"

__all__ = [
    "CancelToken", "Cancelled", "Face2SceneError", "ImageError", "FaceBackendError", "WeightsError",
    "ConfigError", "Backends", "CodeInfo", "DegradationEstimate", "DetectedFace", "FaceResult", "Person",
    "RefImage", "RestoreResult", "Face2ScenePipeline", "PipelineConfig",
]


def __getattr__(name):  # heavy modules load on first use
    if name in ("Face2ScenePipeline", "PipelineConfig"):
        from . import pipeline
        return getattr(pipeline, name)
    raise AttributeError(name)
