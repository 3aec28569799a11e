"""``face2scene batch``: restore many photos into a folder, in parallel, resumable (docs/BATCH.md)."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .restore import add_restoration_options, parse_refs, pipeline_config, say, show


def _fmt_s(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class _Progress:
    """tqdm on a terminal; otherwise one line per photo on stderr (count, time, ETA)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet, self.bar, self.t0 = quiet, None, time.perf_counter()

    def plan(self, summary, reset: int) -> None:
        extra = [f"{summary.skipped} done already"] if summary.skipped else []
        if summary.failed_before:
            extra.append(f"{summary.failed_before} failed before (--retry-failed to try again)")
        if reset:
            extra.append(f"{reset} left running by an interrupted run")
        say(f"{summary.todo} to do" + (f" ({'; '.join(extra)})" if extra else ""), err=True)
        self.t0 = time.perf_counter()
        if summary.todo and not self.quiet and sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=summary.todo, unit="photo", file=sys.stderr, dynamic_ncols=True)

    def item(self, item, res: dict, k: int, n: int) -> None:
        if res["status"] == "failed":
            err = res["error"] or "failed"
            line = f"error: {err}" if err.startswith(show(item.input)) else f"error: {show(item.input)}: {err}"
            if self.bar is not None:
                self.bar.write(line, file=sys.stderr)
            else:
                say(line, err=True)
        if self.bar is not None:
            self.bar.update(1)
            return
        if self.quiet or res["status"] not in ("done", "failed"):
            return
        el = time.perf_counter() - self.t0
        eta = el / k * (n - k) if k else 0.0
        took = (res.get("timings") or {}).get("total", 0.0)
        if res["status"] == "done":
            say(f"[{k}/{n}] {show(item.input)} -> {show(item.output)} ({took:.1f} s; ETA {_fmt_s(eta)})", err=True)
        else:
            say(f"[{k}/{n}] failed ({took:.1f} s; ETA {_fmt_s(eta)})", err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def summary_table(s) -> str:
    lines = [f"done {s.done}   failed {s.failed}   skipped {s.skipped}"
             + (f"   failed before {s.failed_before}" if s.failed_before else "")
             + (f"   left {s.left}" if s.left else ""),
             f"{s.photos_per_minute:.1f} photos/min with {s.workers} worker(s) x {s.threads} thread(s) "
             f"({s.engine}), {_fmt_s(s.wall_s)} wall" + (f", {s.startup_s:.1f} s to start" if s.startup_s else "")
             + (f", {s.retries} photo(s) retried after a worker died" if s.retries else "")]
    if s.stage_means:
        lines.append("mean seconds per photo: " + "  ".join(f"{k} {v:.2f}" for k, v in s.stage_means.items()))
    if s.peak_rss_mb:
        lines.append("peak memory per worker: " + ", ".join(f"{v:.0f} MB" for v in s.peak_rss_mb.values()))
    return "\n".join(lines)


def cmd_batch(args: argparse.Namespace) -> int:
    from ..batch import REPORT_NAME, gather_inputs, read_people_json, run_batch
    from ..io import install_sigterm_cleanup
    try:  # everything that can be refused is refused here, before any work
        if args.people and args.ref:
            raise ValueError("use --people or --ref, not both")
        people = read_people_json(args.people) if args.people else parse_refs(args.ref)
        config = pipeline_config(args)
        if args.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {args.workers}")
        if args.threads is not None and args.threads < 1:
            raise ValueError(f"--threads must be at least 1, got {args.threads}")
        engine = None
        if args.ray:
            from ..batch_ray import RAY_HINT, RayEngine, ray_available
            if not ray_available():
                raise ValueError(f"--ray: {RAY_HINT}")
            engine = RayEngine(args.ray, threads=args.threads)
        items = gather_inputs(args.sources, args.output)
        if not items:
            raise ValueError("no photos in the inputs")
    except (ValueError, OSError) as e:
        say(f"error: {show(e)}", err=True)
        return 2
    install_sigterm_cleanup()
    progress = _Progress(args.quiet)
    try:
        summary = run_batch(items, args.output, config, people, workers=args.workers, threads=args.threads,
                            engine=engine, retry_failed=args.retry_failed, on_plan=progress.plan, on_item=progress.item,
                            on_message=lambda m: say(m, err=True))
    except RuntimeError as e:  # another batch holds the folder; no Ray cluster there
        say(f"error: {show(e)}", err=True)
        return 2
    finally:
        progress.close()
    say(summary_table(summary))
    say(f"report: {show(Path(args.output) / REPORT_NAME)}")
    if summary.interrupted:
        say("interrupted: run the same command again to continue", err=True)
        return 130
    return 1 if summary.any_failed else 0


def register(subparsers) -> argparse.ArgumentParser:
    r = subparsers.add_parser(
        "batch", help="restore many photos into a folder (parallel, resumable)",
        description="Restore every photo of files, folders (recursive) and @lists into a folder that "
                    "mirrors the inputs; a manifest there makes re-runs continue where they stopped.")
    r.add_argument("sources", nargs="+", metavar="SRC", help="a photo, a folder, or @LIST.txt (one path a line)")
    r.add_argument("-o", "--output", type=Path, required=True, metavar="DST", help="output folder")
    r.add_argument("--people", type=Path, metavar="PEOPLE.json",
                   help='reference photos: {"name": ["folder or photo", ...]}')
    r.add_argument("--ref", action="append", default=[], metavar="NAME=PATH",
                   help="reference photos of a person: a folder or one image (repeatable)")
    r.add_argument("--workers", type=int, default=1,
                   help="worker processes, or Ray actors with --ray (each loads the models once)")
    r.add_argument("--threads", type=int, default=None,
                   help="torch/OpenCV/BLAS threads per worker (default: the cores / --workers; "
                        "with --ray: the cluster's CPUs / --workers, each actor's num_cpus)")
    r.add_argument("--ray", metavar="local|auto|ADDRESS", default=None,
                   help="run on Ray (pip install 'face2scene[ray]'): local starts a cluster on this machine, "
                        "auto joins this machine's cluster (ray start), ADDRESS joins that one")
    r.add_argument("--resume", action="store_true",
                   help="continue an interrupted batch (the default anyway: done photos are skipped)")
    r.add_argument("--retry-failed", action="store_true", help="try the photos that failed before again")
    add_restoration_options(r)  # the same options as `face2scene restore`
    r.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    r.set_defaults(func=cmd_batch)
    return r
