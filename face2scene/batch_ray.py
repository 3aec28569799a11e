"""Batch restoration on a Ray cluster: ``face2scene batch --ray local|auto|ADDRESS`` (docs/BATCH.md).

:class:`RayEngine` is an ``engine`` for :func:`face2scene.batch.run_batch`: the driver plans,
hashes, skips and keeps the manifest exactly as for the process pool; only the photos to do go
to Ray.

- Ray Data reads the list of photos to do (one row, one block per photo: a failed block loses
  one photo) and ``map_batches`` sends them through an actor pool of ``workers`` actors, each
  holding one pipeline whose models and references are loaded once (:class:`_Restorer`).
- Each actor asks for its share of the cores (``num_cpus``; its torch/OpenCV/BLAS threads are
  capped to it) and, when the cluster has GPUs and the device allows them, a fraction of a GPU
  (``num_gpus`` = GPUs / workers, at most 1).
- The reference photos are decoded by the driver and put in the object store once; every actor
  gets them from there (the inputs and the output folder must be on storage every node sees).
- Actors write the outputs (atomically, with :func:`face2scene.batch.restore_one`: the bytes
  ``face2scene restore`` writes); the driver alone writes the manifest, as the results stream in.
- An actor that dies (killed, out of memory) is restarted and its photos are retried, up to
  :data:`MAX_TASK_RETRIES` times; each start of a photo is counted by a small ledger actor and
  recorded in the manifest (``attempts``). A photo that kills its actor every time is recorded
  ``failed``; the batch goes on.

Ray is optional (``pip install 'face2scene[ray]'``); only this module imports it.
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Dict, List, Optional

from .batch import (BatchItem, BatchSummary, Manifest, _peak_rss_mb, _record, _show, _with_env, clean_temp_files,
                    load_pipeline, restore_one, thread_env)

log = logging.getLogger(__name__)

__all__ = ["RayEngine", "ray_available", "MAX_TASK_RETRIES"]

MAX_TASK_RETRIES = 2  # a photo whose actor dies is started at most 3 times
RAY_HINT = "Ray is not installed: pip install 'face2scene[ray]' (or 'ray[data]')"


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


class _Ledger:
    """How many times each photo was started (a retried photo is started again on a new actor)."""

    def __init__(self) -> None:
        self.starts: Dict[int, int] = {}

    def start(self, idx: int) -> int:
        self.starts[idx] = self.starts.get(idx, 0) + 1
        return self.starts[idx]

    def all(self) -> Dict[int, int]:
        return dict(self.starts)


class _Restorer:
    """One Ray actor: a pipeline loaded once; each call restores a batch of photos and writes them."""

    def __init__(self, config, refs: list, ledger, threads: int) -> None:
        import ray
        people = ray.get(refs[0]) if refs else None  # from the object store, put there once
        self.people = people or None
        self.ledger = ledger
        self.pipe = load_pipeline(config, self.people, threads)

    def __call__(self, batch: dict) -> dict:
        import ray
        out: Dict[str, list] = {k: [] for k in ("idx", "status", "error", "timings", "pid", "peak_rss_mb",
                                                "attempt", "node")}
        node = ray.get_runtime_context().get_node_id()
        for idx, inp, dst, rep in zip(batch["idx"], batch["input"], batch["output"], batch["report"]):
            attempt = ray.get(self.ledger.start.remote(int(idx)))
            res = restore_one(self.pipe, self.people, Path(os.fsdecode(bytes(inp))), Path(os.fsdecode(bytes(dst))),
                              Path(os.fsdecode(bytes(rep))))
            out["idx"].append(int(idx))
            out["status"].append(res["status"])
            out["error"].append(res.get("error") or "")
            out["timings"].append(json.dumps(res.get("timings") or {}))
            out["pid"].append(os.getpid())
            out["peak_rss_mb"].append(float(_peak_rss_mb() or 0.0))
            out["attempt"].append(int(attempt))
            out["node"].append(node)
        return out


def _load_references(people) -> Optional[dict]:
    """{name: [RefImage]}: the reference photos decoded once, labelled with their path (so the
    reports and the results are those of ``face2scene restore`` given the paths)."""
    if not people:
        return None
    from .io import load_image
    from .types import RefImage
    refs = {}
    for name, paths in people.items():
        refs[name] = [RefImage(load_image(Path(p)).rgb, str(p)) for p in paths]
    return refs


class RayEngine:
    """``engine`` for :func:`face2scene.batch.run_batch`: ``address`` is ``"local"`` (start a
    local cluster for this batch, stopped at the end), ``"auto"`` (the cluster this machine
    belongs to, ``ray start``) or an address (``HOST:6379``, ``ray://HOST:10001``).
    ``threads``: CPUs (and threads) per actor; default: the cluster's CPUs / workers."""

    def __init__(self, address: str, threads: Optional[int] = None, max_task_retries: int = MAX_TASK_RETRIES) -> None:
        if not address:
            raise ValueError("--ray needs local, auto or a cluster address")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self.address = address
        self.threads = threads
        self.max_task_retries = max_task_retries

    def _connect(self):
        try:
            import ray
        except ImportError:
            raise RuntimeError(RAY_HINT) from None
        if ray.is_initialized():  # a caller's own session (e.g. a notebook): used as it is
            return ray, False
        kw = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                  configure_logging=True)
        try:
            if self.address == "local":
                ray.init(num_cpus=os.cpu_count() or 1, **kw)
            else:
                ray.init(address=self.address, **kw)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise RuntimeError(f"--ray {_show(self.address)}: cannot connect ({_show(e)})") from None
        return ray, True

    def __call__(self, man: Manifest, summary: BatchSummary, todo: List[BatchItem], config, people, workers: int,
                 on_item, on_message) -> None:
        t0 = time.perf_counter()
        ray, started = self._connect()
        try:
            summary.engine = f"ray ({self.address})"
            cpus = float(ray.cluster_resources().get("CPU", 1.0))
            gpus = float(ray.cluster_resources().get("GPU", 0.0))
            threads = self.threads or max(1, int(cpus // workers))
            summary.threads = threads
            num_gpus = min(1.0, gpus / workers) if gpus and config.device != "cpu" else 0.0
            if config.device == "cuda" and not gpus:
                raise RuntimeError(f"--device cuda: the Ray cluster ({_show(self.address)}) has no GPU")
            summary.startup_s = time.perf_counter() - t0
            self._run(ray, man, summary, todo, config, people, workers, threads, num_gpus, on_item, on_message)
        finally:
            if started:
                ray.shutdown()
            # a killed actor's half-written temp file (its photo was retried, or stays pending)
            clean_temp_files(man.path.parent, {i.output.parent for i in todo if i.output.parent.is_dir()})

    def _run(self, ray, man, summary, todo, config, people, workers, threads, num_gpus, on_item, on_message) -> None:
        import ray.data
        ctx = ray.data.DataContext.get_current()
        ctx.max_errored_blocks = -1  # a photo that keeps killing its actor fails alone
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # our progress lines are the CLI's
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        refs = _load_references(people)
        refs_box = [ray.put(refs)] if refs else []  # once, for every actor
        ledger = ray.remote(num_cpus=0)(_Ledger).remote()
        rows = [{"idx": k, "input": os.fsencode(i.input), "output": os.fsencode(i.output),
                 "report": os.fsencode(i.report)} for k, i in enumerate(todo)]
        ds = ray.data.from_items(rows, override_num_blocks=len(rows))
        remote = {"max_restarts": -1, "max_task_retries": self.max_task_retries,
                  "runtime_env": {"env_vars": thread_env(threads)}}
        pool = ray.data.ActorPoolStrategy(size=min(workers, len(rows)))
        ds = ds.map_batches(_Restorer, batch_size=1, compute=pool, num_cpus=threads,
                            num_gpus=num_gpus or None,
                            fn_constructor_kwargs={"config": config, "refs": refs_box, "ledger": ledger,
                                                   "threads": threads}, **remote)
        seen = set()
        try:
            with _with_env(thread_env(threads)):  # a local cluster's processes inherit it
                for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                    for k in range(len(batch["idx"])):
                        idx = int(batch["idx"][k])
                        if idx in seen:  # a retried block that had already answered
                            continue
                        seen.add(idx)
                        self._record_row(man, summary, todo[idx], batch, k, on_item, on_message)
        except KeyboardInterrupt:  # the photos not recorded stay pending: the next run does them
            summary.interrupted = True
            return
        starts = ray.get(ledger.all.remote())
        for k, item in enumerate(todo):  # blocks that failed every retry: their photo failed
            if k not in seen:
                n = starts.get(k, 0)
                res = {"status": "failed", "timings": {}, "attempts": n,
                       "error": f"the Ray worker died while restoring it ({n} start(s); out of memory or a "
                                "crash); --retry-failed tries again"}
                _record(man, summary, item, res, on_item)

    @staticmethod
    def _record_row(man, summary, item, batch, k, on_item, on_message) -> None:
        attempt = int(batch["attempt"][k])
        res = {"status": str(batch["status"][k]), "error": str(batch["error"][k]) or None,
               "timings": json.loads(str(batch["timings"][k])), "pid": int(batch["pid"][k]),
               "peak_rss_mb": float(batch["peak_rss_mb"][k]) or None, "attempts": attempt}
        if attempt > 1:
            summary.retries += 1
            on_message(f"{_show(item.input)}: restored on attempt {attempt} (a Ray worker died)")
        _record(man, summary, item, res, on_item)
