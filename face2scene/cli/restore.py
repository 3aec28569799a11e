"""``face2scene restore``: restore photos end to end (one output per input, an optional JSON report)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..errors import Face2SceneError
from ..options import (DEVICES, FACE_BACKENDS, MAX_UPSCALE, OUTPUT_SUFFIXES, PRINT_TONES, RESTORERS, STAGES,
                       is_image_path)


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
            self.bar = tqdm(total=100 * len(STAGES), desc=label, unit="", bar_format="{desc} {bar} {percentage:3.0f}% {postfix}",
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


def show(path) -> str:
    """A path as one printable line: undecodable bytes and control characters (a newline in a
    file name) escaped, so every message stays one line on any terminal."""
    text = str(path).encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def say(line: str, err: bool = False) -> None:
    """print() that survives a closed pipe (``| head``): the batch goes on, output is dropped."""
    stream = sys.stderr if err else sys.stdout
    try:
        print(line, file=stream, flush=True)
    except BrokenPipeError:
        import os
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())  # Python's documented recipe: later writes go nowhere
    except OSError:
        pass


def _key(p: Path) -> str:
    """A path's identity for collision checks (resolved, case-folded where the file system folds)."""
    try:
        return str(p.expanduser().resolve(strict=False))
    except (OSError, RuntimeError):
        return str(p.absolute())


def plan_outputs(inputs: Sequence[Path], out: Path, report: Optional[Path]) -> List[Path]:
    """Where each input's result goes, decided before any work.

    One input and ``out`` a file name (it has a suffix, one we write): ``out`` itself. Otherwise
    ``out/<stem>_restored.png``; when two inputs would get the same name (``a/x.png b/x.png``,
    ``x.png x.jpg``) or a name is one of the inputs (``x.png x_restored.png -o .``), the later one
    gets ``<stem>_restored-2.png`` (-3, ...). Raises ValueError (a one-line reason) when an output
    or the report would overwrite an input or each other."""
    inputs_keys = {_key(p) for p in inputs}
    several = len(inputs) > 1
    # a folder: several inputs, an existing folder, a trailing slash, or a name without a suffix
    to_folder = several or out.is_dir() or str(out).endswith(("/", "\\")) or not out.suffix
    if not to_folder:
        if out.suffix.lower() not in OUTPUT_SUFFIXES:
            raise ValueError(f"-o {show(out)}: cannot write {out.suffix} files "
                             f"(use {', '.join(OUTPUT_SUFFIXES)})")
        if _key(out) in inputs_keys:
            raise ValueError(f"-o {show(out)}: refusing to overwrite the input photo")
        outs = [out]
    else:
        taken = set(inputs_keys)
        outs = []
        for inp in inputs:
            n, cand = 1, out / f"{inp.stem}_restored.png"
            while _key(cand) in taken:
                n += 1
                cand = out / f"{inp.stem}_restored-{n}.png"
            taken.add(_key(cand))
            outs.append(cand)
    if report is not None:
        rk = _key(report)
        if rk in inputs_keys:
            raise ValueError(f"--report {show(report)}: refusing to overwrite an input photo")
        if rk in {_key(o) for o in outs}:
            raise ValueError(f"--report {show(report)}: is also where a restored photo goes")
    return outs


def cmd_restore(args: argparse.Namespace) -> int:
    from ..io import (ImageLoadError, clean_stale_temp_files, install_sigterm_cleanup, load_image,
                      save_image_atomic, save_json_atomic)
    from ..pipeline import Face2ScenePipeline

    log = logging.getLogger(__name__)
    try:  # everything that can be refused is refused here, before any work
        people = parse_refs(args.ref)
        config = pipeline_config(args)
        outputs = plan_outputs(args.inputs, args.output, args.report)
    except (ValueError, OSError) as e:
        say(f"error: {show(e)}", err=True)
        return 2
    install_sigterm_cleanup()  # a SIGTERM during a write removes the temp file, like Ctrl-C
    for folder in {o.parent for o in outputs} | ({args.report.parent} if args.report else set()):
        try:
            clean_stale_temp_files(folder)  # left by a run that was killed (kill -9, power cut)
        except OSError:
            pass
    pipe = Face2ScenePipeline(config)
    several = len(args.inputs) > 1
    reports, failures = [], 0
    for inp, out in zip(args.inputs, outputs):
        entry = {"input": show(inp)}
        try:
            loaded = load_image(inp)
        except (ImageLoadError, OSError) as e:
            say(f"error: {show(e)}", err=True)
            failures += 1
            reports.append({**entry, "error": show(e)})
            continue
        bar = _TerminalProgress(show(inp.name), sys.stderr.isatty() and not args.quiet)
        try:
            result = pipe.restore(loaded.rgb, people, progress=bar)
        except Face2SceneError as e:  # one bad photo never stops the others
            bar.close()
            say(f"error: {show(inp)}: restoration failed: {show(e)}", err=True)
            log.debug("restoration failed", exc_info=True)
            failures += 1
            reports.append({**entry, "error": f"restoration failed: {show(e)}"})
            continue
        bar.close()
        try:
            save_image_atomic(out, result.image, exif=loaded.meta.exif, icc_profile=loaded.meta.icc_profile,
                              protect=inp)
        except (OSError, ValueError) as e:
            say(f"error: {show(out)}: cannot write ({show(e)})", err=True)
            failures += 1
            reports.append({**entry, "error": f"cannot write output: {show(e)}"})
            continue
        for w in result.warnings:
            say(f"warning: {show(inp.name)}: {w}", err=True)
        d = result.degradation
        q = "none" if d.jpeg_quality is None else f"{d.jpeg_quality:.0f}"
        say(f"{show(inp)} -> {show(out)}  [{len(result.faces)} face(s); degradation ({d.source}): noise "
            f"{d.noise_sigma:.1f}, blur {d.blur_sigma:.2f} px, JPEG q {q}, scale {d.scale:.2f}; "
            f"restorer {result.backends.restorer}]")
        if "keep_grain" in d.details:
            from ..grain import describe_grain
            say(f"  grain: {describe_grain(d.details['keep_grain'])}")
        fb = d.details.get("fine_bands")
        if fb:
            say("  fine bands: " + (f"skipped ({fb['skipped']})" if "skipped" in fb else "octave gains " + ", ".join(
                f"{g:.2f}" for _, g in sorted(fb.get("gains", {}).items()))))
        reports.append({**entry, "output": show(out), **result.to_json()})
    if args.report:
        try:
            save_json_atomic(args.report, reports if several else reports[0])
        except (OSError, ValueError) as e:
            say(f"error: cannot write report {show(args.report)}: {show(e)}", err=True)
            return 1
    return 1 if failures else 0


def add_restoration_options(p: argparse.ArgumentParser) -> None:
    """The options that decide a restoration (one place for ``restore`` and ``batch``);
    :func:`pipeline_config` turns them into a PipelineConfig."""
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--upscale", type=int, default=1, help=f"output scale factor (1-{MAX_UPSCALE})")
    p.add_argument("--restorer", "--backend", dest="restorer", default="auto", choices=RESTORERS,
                   help="scene restorer")
    p.add_argument("--weights", "--models-dir", dest="models_dir", type=Path, default=None,
                   help="folder with optional model weights")
    p.add_argument("--face-backend", default="dlib", choices=FACE_BACKENDS)
    p.add_argument("--strength", type=float, default=1.0, help="restoration strength 0..1")
    p.add_argument("--tile-size", type=int, default=1024,
                   help="tile side in input pixels for the restorer (smaller: less memory, more overlap work)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-paste-faces", action="store_true", help="do not paste reference-detailed faces back")
    p.add_argument("--old-print", action="store_true",
                   help="a scanned print: remove halftone screens, repair scratches and dust, fix fading")
    p.add_argument("--print-tone", default="auto", choices=PRINT_TONES,
                   help="old prints' levels and colour: off, auto (from the photo), faces (+ colour from the references)")
    p.add_argument("--neutral-tone", action="store_true", help="old prints: turn a sepia print neutral grey")
    p.add_argument("--keep-grain", action=argparse.BooleanOptionalAction, default=None,
                   help="put the photo's film grain back on the result (only what the restoration removed); "
                        "default: on for photos that read as film")
    p.add_argument("--fine-bands", type=float, nargs="?", const=1.0, default=0.0, metavar="AMOUNT",
                   help="with --restorer gan and --upscale 2-4 on a clean-enough photo: scale the octaves above "
                        "the input's resolution by the GAN's own deficit measured one scale down (AMOUNT 0-2, "
                        "default 1 when given; more texture, a little less PSNR: see docs/GAN.md)")


def pipeline_config(args: argparse.Namespace):
    """The PipelineConfig of the options :func:`add_restoration_options` added (ValueError on a bad one)."""
    from ..pipeline import PipelineConfig
    return PipelineConfig(device=args.device, restorer=args.restorer, face_backend=args.face_backend,
                          models_dir=args.models_dir, upscale=args.upscale, tile_size=args.tile_size,
                          seed=args.seed, paste_faces=not args.no_paste_faces, strength=args.strength,
                          old_print=args.old_print, print_tone=args.print_tone, keep_tone=not args.neutral_tone,
                          keep_grain="auto" if getattr(args, "keep_grain", None) is None else bool(args.keep_grain),
                          fine_bands=float(getattr(args, "fine_bands", 0.0) or 0.0))


def register(subparsers) -> argparse.ArgumentParser:
    r = subparsers.add_parser("restore", help="restore photos", description="Restore photos end to end.")
    r.add_argument("inputs", nargs="+", type=Path, metavar="INPUT")
    r.add_argument("-o", "--output", type=Path, required=True, help="output file (one input) or folder")
    r.add_argument("--ref", action="append", default=[], metavar="NAME=PATH",
                   help="reference photos of a person: a folder or one image (repeatable)")
    r.add_argument("--report", type=Path, help="write a JSON report (faces, degradation, timings)")
    add_restoration_options(r)
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_restore)
    return r
