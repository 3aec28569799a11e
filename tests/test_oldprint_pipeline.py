"""Old prints through the whole pipeline (``PipelineConfig(old_print=True)`` / ``--old-print``):
damage repaired before the restorer sees it, levels fixed, a monochrome print stays monochrome,
the report says what was found; without the flag nothing of this runs."""
from __future__ import annotations

import numpy as np
import pytest

from face2scene.cli import main
from face2scene.degrade import degrade_with_masks
from face2scene.metrics import psnr
from face2scene.pipeline import Face2ScenePipeline, PipelineConfig
from face2scene.samples import load_sample
from face2scene.tone import chroma_residual_std


def _old_print():
    clean = np.ascontiguousarray(load_sample()[:384, :384])
    deg, params, masks = degrade_with_masks(clean, "old_print", seed=4)
    return clean, deg, masks


def test_old_print_is_repaired_toned_and_stays_mono():
    clean, deg, masks = _old_print()
    res = Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical", old_print=True)).restore(deg)
    info = res.to_json()["old_print"]
    assert info["monochrome"]["mono"] and info["damage_fraction"] > 0 and "levels" in info
    assert "print" in res.timings
    gray_clean = np.repeat(clean.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)
    assert psnr(gray_clean, res.image) > psnr(gray_clean, deg) + 2.0  # fading undone, damage repaired
    assert chroma_residual_std(res.image) < 2.0  # a mono print stays mono
    plain = Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical")).restore(deg)
    assert plain.old_print is None and plain.to_json()["old_print"] is None


def test_cli_old_print_flag(tmp_path):
    from PIL import Image
    _, deg, _ = _old_print()
    src = tmp_path / "print.png"
    Image.fromarray(deg).save(src)
    report = tmp_path / "r.json"
    assert main(["restore", str(src), "-o", str(tmp_path / "out.png"), "--restorer", "classical", "--old-print",
                 "--print-tone", "auto", "--report", str(report), "-q"]) == 0
    import json
    assert json.loads(report.read_text())["old_print"]["damage_fraction"] > 0


@pytest.mark.parametrize("kind", ["haze", "warm light"])
def test_clean_photo_with_lifted_blacks_or_a_cast_keeps_its_tone(kind):
    """A clean colour photo with lifted blacks (haze: airlight added, ``J t + A (1 - t)``, its
    highlights stay bright) or a colour cast of its own light (warm indoor light, lifted
    blacks, one bright channel) and nothing else of an old print (no damage, not monochrome,
    whites not dulled in every channel) is not stretched or recoloured: old_print leaves its
    tone (the clean scarlett_johansson photo with blacks at 59 and a warm cast was recoloured,
    26.96 dB against itself, before)."""
    clean = np.ascontiguousarray(load_sample()[:256, :256]).astype(np.float32)
    if kind == "haze":
        photo = clean * 0.8 + 235.0 * 0.2
    else:
        photo = 40 + clean * 0.84 * np.array([1.0, 0.85, 0.7])
    photo = np.clip(photo, 0, 255).astype(np.uint8)
    cfg = dict(device="cpu", restorer="classical")
    res = Face2ScenePipeline(PipelineConfig(**cfg, old_print=True)).restore(photo)
    assert not res.old_print["levels"]["aged"] and res.old_print["levels"]["applied"] == 0.0
    assert "colour" not in res.old_print
    plain = Face2ScenePipeline(PipelineConfig(**cfg)).restore(photo)
    assert psnr(res.image, plain.image) > 40


def test_near_clean_photo_with_old_print_is_not_worse_than_without():
    """old_print on a near-clean photo (the user's folder of good photos): no tone change, and
    a clean photo's few false detections are not inpainted, so the result is the one without
    old_print (it lost 2.4 dB median on the bench's near-clean photos before)."""
    from face2scene.degrade import degrade
    clean = np.ascontiguousarray(load_sample()[:256, :256])
    near, _ = degrade(clean, "near-clean", seed=3)
    cfg = dict(device="cpu", restorer="classical")
    on = Face2ScenePipeline(PipelineConfig(**cfg, old_print=True)).restore(near)
    off = Face2ScenePipeline(PipelineConfig(**cfg)).restore(near)
    assert on.old_print["levels"]["applied"] == 0.0
    assert psnr(on.image, clean) >= psnr(off.image, clean) - 0.05
