"""``face2scene restore``: restore photos end to end (one output per input, an optional JSON report)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Dict, List, Sequence

from ..errors import Face2SceneError
from ..options import DEVICES, FACE_BACKENDS, MAX_UPSCALE, RESTORERS, STAGES, is_image_path


def _reference_sources(path: Path) -> List[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if is_image_path(p) and p.is_file())
    return [path]


def parse_refs(items: Sequence[str]) -> Dict[str, List[Path]]:
    """``NAME=PATH`` (repeatable; PATH a folder or one image) -> {name: [paths]}."""
    people: Dict[str, List[Path]] = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--ref expects NAME=PATH, got {item!r}")
        name, path = item.split("=", 1)
        name, p = name.strip(), Path(path).expanduser()
        if not name:
            raise ValueError(f"--ref {item!r}: the name is empty")
        if not p.exists():
            raise ValueError(f"--ref {name}: {p} does not exist")
        found = _reference_sources(p)
        if not found:
            raise ValueError(f"--ref {name}: no images in {p}")
        people.setdefault(name, []).extend(found)
    return people


class _TerminalProgress:
    """A tqdm bar per photo on a terminal; silent otherwise."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm
            self.bar = tqdm(total=600, desc=label, unit="", bar_format="{desc} {bar} {percentage:3.0f}% {postfix}",
                            leave=True, file=sys.stderr)
        self.stages = STAGES

    def __call__(self, stage: str, fraction: float, message: str = "") -> None:
        if self.bar is None:
            return
        pos = int(100 * (self.stages.index(stage) + fraction)) if stage in self.stages else self.bar.n
        self.bar.n = pos
        self.bar.set_postfix_str(f"{stage}: {message}"[:40], refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.n = self.bar.total
            self.bar.close()


def _output_path(out: Path, inp: Path, several: bool, default_suffix: str = ".png") -> Path:
    if several or out.is_dir() or str(out).endswith(("/", "\\")):
        return out / f"{inp.stem}_restored{default_suffix}"
    return out


def cmd_restore(args: argparse.Namespace) -> int:
    from ..io import ImageLoadError, load_image, save_image_atomic, save_json_atomic
    from ..pipeline import Face2ScenePipeline, PipelineConfig

    try:
        people = parse_refs(args.ref)
        config = PipelineConfig(device=args.device, restorer=args.restorer, face_backend=args.face_backend,
                                models_dir=args.models_dir, upscale=args.upscale, tile_size=args.tile_size,
                                seed=args.seed, paste_faces=not args.no_paste_faces, strength=args.strength)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    pipe = Face2ScenePipeline(config)
    several = len(args.inputs) > 1
    reports, failures = [], 0
    for inp in args.inputs:
        entry = {"input": str(inp)}
        try:
            loaded = load_image(inp)
        except ImageLoadError as e:
            print(f"error: {e}", file=sys.stderr)
            failures += 1
            reports.append({**entry, "error": str(e)})
            continue
        bar = _TerminalProgress(inp.name, sys.stderr.isatty() and not args.quiet)
        try:
            result = pipe.restore(loaded.rgb, people, progress=bar)
        except Face2SceneError as e:  # one bad photo never stops the others
            bar.close()
            print(f"error: {inp}: restoration failed: {e}", file=sys.stderr)
            logging.getLogger(__name__).debug("restoration failed", exc_info=True)
            failures += 1
            reports.append({**entry, "error": f"restoration failed: {e}"})
            continue
        bar.close()
        out = _output_path(args.output, inp, several)
        try:
            save_image_atomic(out, result.image, exif=loaded.meta.exif, icc_profile=loaded.meta.icc_profile,
                              protect=inp)
        except (OSError, ValueError) as e:
            print(f"error: {out}: cannot write ({e})", file=sys.stderr)
            failures += 1
            reports.append({**entry, "error": f"cannot write output: {e}"})
            continue
        for w in result.warnings:
            print(f"warning: {inp.name}: {w}", file=sys.stderr)
        d = result.degradation
        q = "none" if d.jpeg_quality is None else f"{d.jpeg_quality:.0f}"
        print(f"{inp} -> {out}  [{len(result.faces)} face(s); degradation ({d.source}): noise {d.noise_sigma:.1f}, "
              f"blur {d.blur_sigma:.2f} px, JPEG q {q}, scale {d.scale:.2f}; restorer {result.backends.restorer}]")
        reports.append({**entry, "output": str(out), **result.to_json()})
    if args.report:
        try:
            save_json_atomic(args.report, reports if several else reports[0])
        except (OSError, ValueError) as e:
            print(f"error: cannot write report {args.report}: {e}", file=sys.stderr)
            return 1
    return 1 if failures else 0


def register(subparsers) -> argparse.ArgumentParser:
    r = subparsers.add_parser("restore", help="restore photos", description="Restore photos end to end.")
    r.add_argument("inputs", nargs="+", type=Path, metavar="INPUT")
    r.add_argument("-o", "--output", type=Path, required=True, help="output file (one input) or folder")
    r.add_argument("--ref", action="append", default=[], metavar="NAME=PATH",
                   help="reference photos of a person: a folder or one image (repeatable)")
    r.add_argument("--report", type=Path, help="write a JSON report (faces, degradation, timings)")
    r.add_argument("--device", default="auto", choices=DEVICES)
    r.add_argument("--upscale", type=int, default=1, help=f"output scale factor (1-{MAX_UPSCALE})")
    r.add_argument("--restorer", "--backend", dest="restorer", default="auto", choices=RESTORERS,
                   help="scene restorer")
    r.add_argument("--weights", "--models-dir", dest="models_dir", type=Path, default=None,
                   help="folder with optional model weights")
    r.add_argument("--face-backend", default="dlib", choices=FACE_BACKENDS)
    r.add_argument("--strength", type=float, default=1.0, help="restoration strength 0..1")
    r.add_argument("--tile-size", type=int, default=512)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--no-paste-faces", action="store_true", help="do not paste reference-detailed faces back")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_restore)
    return r
