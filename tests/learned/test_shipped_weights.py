"""The weights shipped in the package: complete, safetensors only, within the size limit, loadable,
and they restore a synthetic noisy image (better than the input)."""
from pathlib import Path

import numpy as np

from face2scene.metrics import psnr
from face2scene.estimate.learned import FaceCrops
from face2scene.restorers.compact import WEIGHTS_DIR, load_compact_restorer


def test_shipped_weights_files():
    files = [p for p in Path(WEIGHTS_DIR).rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 40 * 2 ** 20
    assert not [p for p in files if p.suffix in {".pt", ".pth", ".pkl", ".ckpt", ".bin"}]
    for name in ("README.md", "train_config.json", "fadex_train_config.json", "split.json"):
        assert (Path(WEIGHTS_DIR) / name).is_file(), name


def test_shipped_weights_restore_noise():
    b = load_compact_restorer()
    assert b.restorer.is_diffusion is False
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:96, 0:128]
    clean = np.stack([(xx * 2) % 256, (yy * 2) % 256, ((xx + yy) * 3) % 256], -1).astype(np.float32)
    clean = np.clip(128 + 0.4 * (clean - 128), 0, 255).astype(np.uint8)
    noisy = np.clip(clean + rng.normal(0, 15, clean.shape), 0, 255).astype(np.uint8)
    code = b.face_code([FaceCrops(noisy[:64, :64], clean[:64, :64])])
    assert code.source == "face" and 5 < code.estimate.noise_sigma < 30
    assert b.guided  # the shipped model refines the classical restorer's output
    out = b.restore_with_tokens(noisy, code, estimate=code.estimate)
    assert out.shape == noisy.shape
    assert psnr(out, clean) > psnr(noisy, clean) + 1.0
    blind = b.restore_with_tokens(noisy, None)  # no face, no estimate: null code, blind base
    assert psnr(blind, clean) > psnr(noisy, clean) + 1.0
