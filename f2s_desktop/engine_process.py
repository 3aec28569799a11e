"""The pipeline in a child process, behind the same interface as :class:`engine.Engine`.

Why: loading dlib's models and importing torch hold Python's GIL for hundreds of milliseconds at
a time, and a thread in the GUI process would freeze the window for that long (measured: 260-430
ms). In a separate process the GUI keeps its GIL to itself, and a crash in native code (dlib,
torch, a GPU driver) ends one photo with an error instead of the app.

Protocol (a multiprocessing pipe, spawn context): the parent sends ``(op, payload)``; the child
answers ``("progress", stage, fraction, message)`` any number of times, then ``("ok", value)`` or
``("error", {kind, message, file, detail})`` (:class:`errors.ErrorInfo` as plain data), which the
parent raises again as the matching exception type. Values are pickled: numpy arrays, the
pipeline's dataclasses (``RestoreResult``, ``RefImage`` references) cross as they are. Cancel and
pause are shared events the child's progress hook and cancel token read, so they act between
stages, faces and tiles; a child that does not stop within ``cancel_grace`` seconds of a cancel
(a long step that never reports) is terminated, so cancelling a photo or quitting never waits for
the step to end (the next photo starts a new child). Qt-free.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import threading
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from face2scene.progress import CancelToken, Cancelled

from .engine import Engine, EngineSettings
from .errors import EngineError, ErrorInfo, error_info

log = logging.getLogger(__name__)


def exit_description(proc, wait_s: float = 5.0) -> str:
    """How a child process ended, for a message: "exit code 3", "killed by SIGKILL" (the usual
    sign of running out of memory), or "no exit status" when it could not be had. The pipe breaks
    a moment before the process is reaped, so this waits (briefly) for its status first."""
    if proc is None:
        return "no exit status"
    try:
        proc.join(wait_s)
    except (AssertionError, ValueError, OSError):
        pass
    code = proc.exitcode
    if code is None:
        return "no exit status"
    if code < 0:
        import signal
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " — probably out of memory" if name == "SIGKILL" else ""
        return f"killed by {name}{hint}"
    return f"exit code {code}"


class MatcherInfo:
    def __init__(self, metric: str, match_threshold: float) -> None:
        self.metric, self.match_threshold = metric, match_threshold


def _serve(conn, cancel_ev, pause_ev, settings_json: Dict[str, Any],
           engine_factory: Optional[Callable[[EngineSettings], Engine]] = None) -> None:
    """Child process main loop (``engine_factory``: a module-level callable, for tests)."""
    threads = os.environ.get("F2S_TORCH_THREADS")
    if threads:
        try:
            import torch
            torch.set_num_threads(int(threads))
        except ImportError:
            pass
    engine = (engine_factory or Engine)(EngineSettings.from_json(settings_json))
    cancel = CancelToken(cancel_ev)  # shared with the parent, which sets it

    def progress(stage: str, fraction: float, message: str = "") -> None:
        while pause_ev.is_set() and not cancel_ev.is_set():
            time.sleep(0.05)
        cancel.raise_if_cancelled()
        conn.send(("progress", stage, float(fraction), str(message)))

    while True:
        try:
            op, payload = conn.recv()
        except (EOFError, OSError):
            return
        if op == "quit":
            return
        try:
            if op == "detect":
                value = engine.detect(payload["rgb"])
            elif op == "restore":
                s = EngineSettings.from_json(payload["settings"])
                engine.settings = s
                value = engine.restore(payload["rgb"], payload["people"], settings=s, progress=progress,
                                       cancel=cancel, faces=payload.get("faces"),
                                       assignments=payload.get("assignments"),
                                       print_options=payload.get("print_options"),
                                       damage_edit=payload.get("damage_edit"))
            elif op == "matcher":
                m = engine.matcher()
                value = None if m is None else (m.metric, float(m.match_threshold))
            elif op == "settings":
                engine.settings = EngineSettings.from_json(payload)
                value = None
            else:
                raise EngineError(f"unknown request {op!r}")
            conn.send(("ok", value))
        except Exception as e:  # noqa: BLE001 - sent to the parent (Cancelled too), the loop goes on
            conn.send(("error", error_info(e).to_json()))  # a bug's traceback is logged here too


class ProcessEngine(Engine):
    """Engine whose pipeline runs in a child process (started on first use, restarted after a crash)."""

    def __init__(self, settings: Optional[EngineSettings] = None, start_timeout: float = 120.0,
                 cancel_grace: float = 1.5,
                 engine_factory: Optional[Callable[[EngineSettings], Engine]] = None) -> None:
        super().__init__(settings)
        self.cancel_grace = cancel_grace      # s a cancelled child may take to stop by itself
        self._engine_factory = engine_factory  # what the child runs (default: the real Engine)
        self._ctx = mp.get_context("spawn")
        self._proc = None
        self._conn = None
        self._close_lock = threading.Lock()
        self._cancel_ev = self._ctx.Event()
        self._pause_ev = self._ctx.Event()
        self._io_lock = threading.Lock()
        self.start_timeout = start_timeout

    # ---------------------------------------------------------------- process
    def _ensure(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            return
        parent, child = self._ctx.Pipe()
        self._proc = self._ctx.Process(target=_serve, args=(child, self._cancel_ev, self._pause_ev,
                                                            self.settings.to_json(), self._engine_factory),
                                       name="face2scene-engine", daemon=True)
        self._proc.start()
        child.close()
        self._conn = parent

    def close(self, timeout: float = 5.0) -> None:
        # the worker thread (on stop) and the GUI (on quit) may both close: only the first one does
        with self._close_lock:
            proc, conn = self._proc, self._conn
            self._proc = self._conn = None
        if proc is None or conn is None:
            return
        self._cancel_ev.set()
        try:
            conn.send(("quit", None))
        except (OSError, ValueError):
            pass
        proc.join(timeout)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout)
        conn.close()
        self._cancel_ev.clear()

    def _stop_child(self, proc, conn) -> None:
        """Terminate a child that did not stop when cancelled; the next call starts a new one."""
        with self._close_lock:
            if self._proc is proc:
                self._proc = self._conn = None
        proc.terminate()
        proc.join(2.0)
        if proc.is_alive():
            proc.kill()
            proc.join(2.0)
        conn.close()

    def set_paused(self, paused: bool) -> None:
        (self._pause_ev.set if paused else self._pause_ev.clear)()

    @property
    def pid(self) -> Optional[int]:
        return None if self._proc is None else self._proc.pid

    def _call(self, op: str, payload: Any, progress: Optional[Callable] = None, cancel=None) -> Any:
        with self._io_lock:
            self._ensure()
            self._cancel_ev.clear()
            conn, proc = self._conn, self._proc
            asked = None   # when the cancel was seen
            try:
                conn.send((op, payload))
                while True:
                    if cancel is not None and cancel.cancelled:
                        self._cancel_ev.set()
                    if self._cancel_ev.is_set():
                        asked = asked or time.monotonic()
                        if time.monotonic() - asked > self.cancel_grace:
                            # inside a long step that never reports: do not wait for it to end
                            log.info("the restoration process did not stop within %.1f s of the cancel; "
                                     "stopping it", self.cancel_grace)
                            self._stop_child(proc, conn)
                            raise Cancelled("cancelled by the user")
                    if not conn.poll(0.1):
                        if not proc.is_alive():
                            raise EOFError
                        continue
                    msg = conn.recv()
                    if msg[0] == "progress":
                        if progress is not None:
                            try:
                                progress(msg[1], msg[2], msg[3])
                            except Exception:  # the caller cancelled from its callback
                                self._cancel_ev.set()
                        continue
                    if msg[0] == "ok":
                        return msg[1]
                    info = ErrorInfo.from_json(msg[1])
                    if info.detail:
                        log.error("the restoration process failed (%s):\n%s", op, info.detail)
                    raise info.to_exception()
            except (EOFError, BrokenPipeError, ConnectionResetError):
                how = exit_description(proc)
                self._proc = self._conn = None
                raise EngineError(f"the restoration process stopped unexpectedly ({how}); "
                                  "it restarts for the next photo") from None

    # ---------------------------------------------------------------- Engine interface
    @staticmethod
    def available():
        return Engine.available()

    def pipeline(self, settings=None):  # the pipeline lives in the child
        raise EngineError("the pipeline runs in a child process")

    def matcher(self):
        v = self._call("matcher", None)
        return None if v is None else MatcherInfo(*v)

    def detect(self, rgb: np.ndarray) -> List[Dict[str, Any]]:
        return self._call("detect", {"rgb": rgb})

    def restore(self, rgb, people, settings=None, progress=None, cancel=None, faces=None, assignments=None,
                print_options=None, damage_edit=None):
        s = settings or self.settings
        return self._call("restore", {"rgb": rgb, "people": people, "settings": s.to_json(), "faces": faces,
                                      "assignments": assignments, "print_options": print_options,
                                      "damage_edit": damage_edit}, progress, cancel)
