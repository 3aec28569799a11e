"""Face2Scene: faces restored from reference photos tell how the whole photo was degraded.

The method library. It never imports Qt; the desktop app (``f2s_desktop``) only calls it.
"""
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
