#!/usr/bin/env python
"""Device check for the paper-scale configuration: SD-Turbo-shaped UNet + VAE (random weights) with
the Face2Scene adapters (FaDeX, MapNet, UNet LoRA r32, VAE-encoder LoRA r16), one step at t=999,
restoring a SIZE x SIZE image. Prints seconds per image and peak memory.

    python scripts/gpu_check_sdturbo.py --size 1024 --device cuda [--dtype fp16] [--modulation]
    python scripts/gpu_check_sdturbo.py --tiny --size 64 --device cpu      # CPU smoke test
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel  # noqa: E402

from face2scene.models import FaDeXEncoder, MapNet  # noqa: E402
from face2scene.models.sd_turbo import SDTurboRestorer  # noqa: E402

SD_UNET = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
               block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20),
               use_linear_projection=True,
               down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
               up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
SD_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=768,
              block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
              up_block_types=("UpDecoderBlock2D",) * 4, scaling_factor=0.18215)
TINY_UNET = dict(sample_size=16, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
                 cross_attention_dim=32, attention_head_dim=8, norm_num_groups=8,
                 down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))
TINY_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, sample_size=64,
                block_out_channels=(16, 32), norm_num_groups=8, down_block_types=("DownEncoderBlock2D",) * 2,
                up_block_types=("UpDecoderBlock2D",) * 2)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", choices=["fp32", "fp16", "bf16"], default=None)
    ap.add_argument("--tiny", action="store_true", help="tiny UNet/VAE (CPU smoke test)")
    ap.add_argument("--modulation", action="store_true", help="S3Diff-style per-block LoRA modulation")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--latent-tile", type=int, default=96)
    args = ap.parse_args(argv)
    dev = torch.device(args.device)
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[
        args.dtype or ("fp16" if dev.type == "cuda" else "fp32")]
    torch.set_flush_denormal(True)
    torch.manual_seed(0)
    unet_cfg, vae_cfg = (TINY_UNET, TINY_VAE) if args.tiny else (SD_UNET, SD_VAE)
    dim = unet_cfg["cross_attention_dim"]
    fadex = FaDeXEncoder()
    model = SDTurboRestorer(UNet2DConditionModel(**unet_cfg), AutoencoderKL(**vae_cfg),
                            DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012),
                            fadex, MapNet(in_channels=fadex.config.channels[-1], token_dim=dim),
                            torch.randn(1, 77, dim) * 0.1,
                            {"unet_rank": 32, "vae_rank": 16, "modulation": args.modulation})
    model = model.to(device=dev, dtype=dtype).eval()
    n_lora = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    n_all = sum(p.numel() for p in model.parameters())
    print(f"device {dev} ({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu'}), dtype {dtype}, "
          f"params {n_all / 1e6:.1f} M (LoRA {n_lora / 1e6:.2f} M), image {args.size}x{args.size}")
    rgb = np.random.default_rng(0).integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
    face = torch.randn(1, fadex.config.channels[-1], 16, 16, device=dev, dtype=dtype)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    times = []
    for i in range(max(1, args.repeats)):
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        out = model.restore(rgb, face, latent_tile=args.latent_tile)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        times.append(time.perf_counter() - t0)
        print(f"run {i}: {times[-1]:.3f} s/image (output {out.shape[1]}x{out.shape[0]})")
    best = min(times)
    if dev.type == "cuda":
        peak = f"peak GPU memory {torch.cuda.max_memory_allocated(dev) / 2 ** 30:.2f} GiB"
    else:
        peak = f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20:.2f} GiB"
    print(f"result: {best:.3f} s/image at {args.size}x{args.size} ({best / (args.size ** 2 / 1e6):.3f} s/MP), {peak}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
