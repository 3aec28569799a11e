"""Qt-free helpers that turn library rows into what the views show (labels, matched results)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from .errors import ErrorInfo
from .library import FaceRow, Library, VersionRow


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def result_face_for(version: Optional[VersionRow], box: Sequence[float], min_iou: float = 0.3
                    ) -> Optional[Dict[str, Any]]:
    """The pipeline's face record (restored crop index, references, estimate) that matches a
    library face box (the pipeline detects again, so faces are matched by overlap)."""
    if version is None or not version.result:
        return None
    best, best_iou = None, min_iou
    for f in version.result.get("faces", []):
        v = iou(f["box"], box)
        if v >= best_iou:
            best, best_iou = f, v
    return best


def face_label(lib: Library, f: FaceRow, names: Optional[Dict[int, str]] = None) -> str:
    """"Ann 92%" (suggestion), "Ann ✓" (confirmed), "?" (unknown). ``names`` (person id -> name,
    from ``dict(lib.people.names())``) spares a query per face when labelling many."""
    name_of = names.get if names is not None else lib.people.name_of
    if f.confirmed_person_id is not None:
        return f"{name_of(f.confirmed_person_id)} \u2713"
    if f.suggested_person_id is not None:
        conf = f.suggested_confidence or 0.0
        return f"{name_of(f.suggested_person_id)}? {conf * 100:.0f}%"
    return "?"


_SOURCES = {"face": "estimated from the faces", "blind": "estimated from the whole photo",
            "given": "given"}

# a downscale is only claimed when its estimate is at least this sure (item 10 of issue 13: a
# wrong "scale 0.35" on photos that were never downscaled, shown as if it were a fact)
SCALE_SURE = 0.7


def _sure(conf: float) -> str:
    word = "low" if conf < 0.4 else "medium" if conf < SCALE_SURE else "high"
    return f"{word}, {conf * 100:.0f} %"


def scale_confidence(est: Dict[str, Any]) -> Optional[float]:
    """How sure the estimate is of its scale: its own ``details["scale_confidence"]`` when the
    estimator gives one, else the estimate's overall confidence (None when it has neither)."""
    details = est.get("details") or {}
    conf = details.get("scale_confidence", est.get("confidence"))
    try:
        return None if conf is None else float(conf)
    except (TypeError, ValueError):
        return None


def scale_text(est: Dict[str, Any]) -> Optional[str]:
    """"looks downscaled to 35 % (≈ 2.9× smaller; how sure: high, 80 %)", or None: nothing is said
    about the resolution unless the photo looks downscaled *and* the estimate is sure of it."""
    try:
        scale = float(est.get("scale", 1) or 1)
    except (TypeError, ValueError):
        return None
    conf = scale_confidence(est)
    if scale >= 0.95 or conf is None or conf < SCALE_SURE:
        return None
    return (f"looks downscaled to {scale * 100:.0f} % (\u2248 {1 / max(scale, 1e-3):.1f}\u00d7 smaller; "
            f"how sure: {_sure(conf)})")


def estimate_text(est: Optional[Dict[str, Any]]) -> str:
    """The degradation estimate in plain words, e.g. "noise level 3.0, blur 1.2 px, JPEG quality 70
    — estimated from the faces; how sure: low, 30 %". A downscale is named only when the estimate
    is sure of it (:func:`scale_text`), with its own confidence."""
    if not est:
        return "no estimate"
    q = est.get("jpeg_quality")
    parts = [f"noise level {est.get('noise_sigma', 0):.1f}", f"blur {est.get('blur_sigma', 0):.1f} px",
             "JPEG: not compressed" if q is None else f"JPEG quality {q:.0f}"]
    sc = scale_text(est)
    if sc:
        parts.append(sc)
    src = est.get("source")
    conf = est.get("confidence")
    tail = []
    if src:
        tail.append(_SOURCES.get(src, f"estimated from {src}"))
    if conf is not None:
        tail.append(f"how sure: {_sure(float(conf))}")
    return ", ".join(parts) + (f" \u2014 {'; '.join(tail)}" if tail else "")


def grain_text(est: Optional[Dict[str, Any]]) -> str:
    """What "keep grain" did to a version, in words (the estimate's ``details["keep_grain"]``)."""
    info = ((est or {}).get("details") or {}).get("keep_grain")
    if not info:
        return "not put back (keep grain off)" if est else "—"
    g = info.get("grain") or {}
    kind = f"{'mono' if g.get('mono', True) else 'colour'} grain of {g.get('size', 0.0):.1f} px, " \
           f"{g.get('amplitude', 0.0):.1f} levels"
    if info.get("applied"):
        return f"put back: {info.get('added', 0.0):.1f} levels added ({kind} read on the photo)"
    return f"not added: {info.get('reason', 'nothing was missing')} ({kind})"


def fallback_of(v: Optional[VersionRow]) -> Optional[str]:
    """The restorer a version fell back to ("classical"), or None when it used the one asked for."""
    if v is None:
        return None
    import re
    for w in (v.result or {}).get("warnings") or []:
        m = re.search(r"used the ([\w-]+) restorer", str(w))
        if m:
            return m.group(1)
    asked = (v.settings or {}).get("restorer")
    used = (v.backends or {}).get("restorer")
    if asked and used and asked not in ("auto", used) and str(used) == "classical":
        return str(used)
    return None


def version_warnings(v: Optional[VersionRow]) -> List[str]:
    """What the user should know about how a version was made: the pipeline's warnings (a restorer
    that fell back, a face without an estimate, a reference not used) and each face restored
    without references, with the reason."""
    if v is None or not v.result:
        return []
    out = [str(w) for w in v.result.get("warnings") or []]
    for f in v.result.get("faces") or []:
        if f.get("skipped"):
            out.append(f"face {int(f['index']) + 1}: {f['skipped']}")
    return out


def version_summary(v: VersionRow) -> str:
    """One line for the version list: number, time, duration, restorer and device, warnings."""
    import time
    be = ", ".join(f"{k}: {v.backends[k]}" for k in ("restorer", "device") if k in v.backends)
    t = time.strftime("%Y-%m-%d %H:%M", time.localtime(v.created))
    el = f", {v.elapsed:.1f} s" if v.elapsed else ""
    n = len(version_warnings(v))
    warn = f" \u2014 \u26a0 {n} warning{'s' if n > 1 else ''}" if n else ""
    fb = fallback_of(v)
    fb = f" (fallback: {fb})" if fb else ""
    return f"v{v.number} ({t}{el}) \u2014 {be}{fb}{warn}"


def error_text(info: Optional[ErrorInfo]) -> str:
    """A job's error for the status bar: the one-line message, and where to look for a remedy."""
    if info is None:
        return ""
    hint = {"weights": " (see the Models page)", "bug": " (an internal error; details in the log)"}
    return info.message + hint.get(info.kind, "")


def plural(n: int, word: str) -> str:
    """"1 face", "2 faces"."""
    return f"{n} {word}{'' if n == 1 else 's'}"
