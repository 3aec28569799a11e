"""Refuse to run on PySide6 builds that corrupt Python's reference counts, with a clear message
instead of a crash minutes later.

Seen here: PySide6-Essentials 6.12.0 on CPython 3.11 drops one reference to ``None`` on every call
of a void method (``label.setText(...)``) and one to ``True``/``False`` on every ``Signal.emit()``
(it treats them as immortal, which they are only from Python 3.12). A GUI makes such calls
constantly, so the interpreter aborts ("Fatal Python error: none_dealloc / bool_dealloc").
6.11.3 is fine. The check measures the behaviour; it never trusts version numbers.
"""
from __future__ import annotations

import sys
from typing import Optional

_result: Optional[str] = None
_checked = False


def check() -> Optional[str]:
    """None when this PySide6 keeps reference counts intact, else a one-line explanation."""
    global _result, _checked
    if _checked:
        return _result
    _checked = True
    if sys.version_info >= (3, 12):  # None/True/False are immortal: such bugs are harmless there
        return None
    import PySide6
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        sig = Signal()

    p = _Probe()
    n = 32
    none0, true0 = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(n):
        p.setObjectName("probe")   # a void method: returns None
    rs = [p.sig.emit() for _ in range(n)]
    lost_none = sys.getrefcount(None) - none0
    lost_true = sys.getrefcount(True) - true0 - sum(r is True for r in rs)
    del rs
    if lost_none <= -n // 2 or lost_true <= -n // 2:
        _result = (f"PySide6 {PySide6.__version__} corrupts Python {sys.version_info.major}."
                   f"{sys.version_info.minor}'s reference counts (the app would crash). Install another "
                   "build, e.g. pip install 'PySide6-Essentials==6.11.3', or use Python 3.12 or newer.")
    return _result
