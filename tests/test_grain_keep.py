"""Film grain read from a photo and put back on the restored one (face2scene/grain.py): known
grain is recovered, a clean photo reads none, synthesised grain re-measures as its model, the
synthesis is deterministic and tile-independent, and matching adds only what the result lacks."""
from __future__ import annotations

import numpy as np
import pytest

from face2scene.grain import GrainModel, estimate_grain, grain_field, match_grain, synthesize
from tests.test_grain import _scene


def _model(amp, size, rho=1.0, levels=(0.0, 255.0), amps=None):
    return GrainModel(float(amp), tuple(levels), tuple(amps or (amp,) * len(levels)), size, rho, 1.0, 0)


def _grainy(clean, model, seed=3):
    return np.clip(np.rint(clean + synthesize(clean, model, seed)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("amp,size", [(2.0, 0.8), (4.0, 0.0), (6.0, 0.6), (6.0, 1.0), (10.0, 1.4)])
def test_known_grain_is_recovered(amp, size):
    e = estimate_grain(_grainy(_scene(384, 512), _model(amp, size)))
    assert e.amplitude == pytest.approx(amp, rel=0.1)
    # below ~0.3 px a grain is white noise to any reading (neighbours correlate by < 1 %)
    assert e.size == pytest.approx(size, abs=0.15 if size else 0.3)
    assert e.mono and e.confidence > 0.8


def test_amplitude_follows_luminance():
    ramp = np.repeat(np.linspace(20, 235, 512, dtype=np.float32)[None, :, None], 384, 0)  # every grey level
    clean = np.repeat(np.clip(ramp, 0, 255).astype(np.uint8), 3, 2)
    m = _model(6.0, 0.8, levels=(0.0, 255.0), amps=(9.0, 3.0))  # stronger in the shadows
    e = estimate_grain(_grainy(clean, m))
    lv = np.asarray(e.levels)
    assert len(lv) >= 5 and lv.max() - lv.min() > 120
    np.testing.assert_allclose(e.amplitudes, m.amplitude_at(lv), rtol=0.15)


def test_colour_grain_reads_as_colour():
    e = estimate_grain(_grainy(_scene(384, 512), _model(6.0, 1.0, rho=0.6)))
    assert not e.mono
    assert e.rho == pytest.approx(0.6, abs=0.1)
    assert e.amplitude == pytest.approx(6.0, rel=0.12)


def test_clean_photo_reads_no_grain():
    e = estimate_grain(_scene(384, 512))
    assert e.amplitude < 0.5 and e.confidence < 0.2 and not e.is_film()
    flat = estimate_grain(np.full((256, 256, 3), 120, np.uint8))
    assert flat.amplitude == 0 and not flat.is_film()


def test_synthesised_grain_remeasures_as_the_estimate():
    clean = _scene(384, 512)
    read = estimate_grain(_grainy(clean, _model(5.0, 0.9, levels=(40.0, 220.0), amps=(7.0, 4.0)), seed=11))
    again = estimate_grain(_grainy(clean, read, seed=12))
    assert again.amplitude == pytest.approx(read.amplitude, rel=0.1)
    assert again.size == pytest.approx(read.size, abs=0.1)
    assert again.is_film() and read.is_film()


def test_synthesis_is_deterministic_and_tile_independent():
    whole = grain_field((100, 150), 1.2, seed=5)
    assert whole.std() == pytest.approx(1.0, abs=0.1)
    np.testing.assert_array_equal(whole, grain_field((100, 150), 1.2, seed=5))
    tiles = np.concatenate([grain_field((100, 70), 1.2, 5, origin=(0, 0)),
                            grain_field((100, 80), 1.2, 5, origin=(0, 70))], axis=1)
    np.testing.assert_allclose(tiles, whole, atol=1e-5)
    np.testing.assert_allclose(grain_field((30, 40), 1.2, 5, origin=(50, 60)), whole[50:80, 60:100], atol=1e-5)
    assert np.abs(grain_field((100, 150), 1.2, seed=6) - whole).mean() > 0.5
    rgb = _scene(64, 96)
    with pytest.raises(ValueError):
        synthesize(rgb[..., 0], _model(3, 1))
    with pytest.raises(ValueError):
        estimate_grain(rgb[..., 0])


def test_matching_adds_only_what_the_result_lacks():
    clean = _scene(384, 512)
    grainy = _grainy(clean, _model(6.0, 0.8))
    m = estimate_grain(grainy)
    # the restorer removed the grain: it comes back at the input's amplitude
    out, info = match_grain(grainy, clean, m, seed=1)
    assert info["added"] > 3.0
    assert estimate_grain(out).amplitude == pytest.approx(m.amplitude, rel=0.12)
    # the result still holds its grain: nothing is doubled
    same, info2 = match_grain(grainy, grainy, m, seed=1)
    assert estimate_grain(same).amplitude < 1.1 * m.amplitude
    # half of it left: the rest is added, not all of it again
    half = _grainy(clean, _model(3.0, 0.8), seed=4)
    part, info3 = match_grain(grainy, half, m, seed=1)
    assert 0 < info3["added"] < info["added"]
    assert estimate_grain(part).amplitude == pytest.approx(m.amplitude, rel=0.15)


def test_inpainted_areas_alone_get_grain():
    import cv2
    flat = np.full((256, 256, 3), 120, np.uint8)
    grainy = _grainy(flat, _model(6.0, 0.8))
    m = estimate_grain(grainy)
    mask = np.zeros((256, 256), bool)
    mask[100:140, 60:200] = True                       # a repaired tear: smooth, no grain
    filled = grainy.copy()
    filled[mask] = 120
    out, info = match_grain(grainy, filled, m, seed=1, only=mask)
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    np.testing.assert_array_equal(out[~grown], filled[~grown])       # untouched outside
    inner = out[104:136, 64:196, 1].astype(np.float32)
    assert inner.std() == pytest.approx(m.amplitude, rel=0.15)       # the photo's grain inside
    assert info["where"].startswith("repaired areas only")


def test_matching_follows_the_tone_curve():
    clean = _scene(384, 512)
    grainy = _grainy(clean, _model(4.0, 0.8))
    m = estimate_grain(grainy)
    stretched = np.clip((clean.astype(np.float32) - 128) * 1.5 + 128, 0, 255).astype(np.uint8)
    out, info = match_grain(grainy, stretched, m, seed=1)
    # contrast x1.5: the grain too (read where nothing clipped)
    assert estimate_grain(out).amplitude == pytest.approx(1.5 * m.amplitude, rel=0.2)


# ------------------------------------------------------------------------------ in the pipeline
def _blurred_grainy(amp=6.0):
    import cv2
    clean = _scene()
    return clean, _grainy(cv2.GaussianBlur(clean, (0, 0), 1.5), _model(amp, 0.8))


def _given(noise=7.0):
    from face2scene.types import DegradationEstimate
    return DegradationEstimate(noise_sigma=noise, blur_sigma=1.5, jpeg_quality=None, scale=1.0, confidence=1.0,
                               source="given")


def test_config_checks_keep_grain():
    from face2scene.errors import ConfigError
    from face2scene.pipeline import PipelineConfig
    for ok in ("auto", True, False):
        assert PipelineConfig(keep_grain=ok).keep_grain == ok
    for bad in ("yes", 1, 0, None, "on"):
        with pytest.raises(ConfigError, match="keep grain"):
            PipelineConfig(keep_grain=bad)


def test_pipeline_puts_the_grain_back_last_and_only_on_restored_film():
    from face2scene.pipeline import Face2ScenePipeline, PipelineConfig
    _clean, grainy = _blurred_grainy()
    read = estimate_grain(grainy)
    assert read.is_film()
    out = {}
    for kg in (False, "auto", True):
        pipe = Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical", keep_grain=kg, estimate=_given()))
        out[kg] = pipe.restore(grainy)
    assert "keep_grain" not in out[False].degradation.details
    smooth = estimate_grain(out[False].image).amplitude
    assert smooth < 0.5 * read.amplitude                               # the restorer took it away
    info = out["auto"].degradation.details["keep_grain"]
    assert info["applied"] and info["mode"] == "auto" and info["added"] > 0
    assert estimate_grain(out["auto"].image).amplitude == pytest.approx(read.amplitude, rel=0.15)
    assert "grain" in out["auto"].timings
    np.testing.assert_array_equal(out[True].image, out["auto"].image)  # the same grain: seeded
    # a clean photo is left as it is, grain or not: "auto" and even "on" change nothing
    clean = _scene()
    for kg in ("auto", True):
        res = Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical", keep_grain=kg)).restore(clean)
        np.testing.assert_array_equal(res.image, clean)
        assert res.degradation.details["keep_grain"]["applied"] is False


def test_auto_leaves_noise_the_estimate_calls_damage_and_texture():
    from face2scene.pipeline import Face2ScenePipeline, PipelineConfig
    _clean, grainy = _blurred_grainy()
    res = {kg: Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical", keep_grain=kg,
                                                 estimate=_given(15.0))).restore(grainy) for kg in (False, "auto", True)}
    np.testing.assert_array_equal(res["auto"].image, res[False].image)
    assert "noisy" in res["auto"].degradation.details["keep_grain"]["reason"]
    assert res[True].degradation.details["keep_grain"]["applied"]     # asked for: kept all the same
    # "grain" the estimate hardly sees as noise is texture: auto leaves it to the restorer
    low = Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical", estimate=_given(1.0))).restore(grainy)
    assert "texture" in low.degradation.details["keep_grain"]["reason"]


def test_auto_leaves_photos_that_do_not_read_as_film():
    from face2scene.pipeline import Face2ScenePipeline, PipelineConfig
    import cv2
    clean = _scene()
    blurred = cv2.GaussianBlur(clean, (0, 0), 1.5)
    noisy = np.clip(blurred + np.random.default_rng(0).normal(0, 1.0, clean.shape), 0, 255).astype(np.uint8)
    assert not estimate_grain(noisy).is_film()                         # faint white noise is not film grain
    res = {kg: Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical", keep_grain=kg,
                                                 estimate=_given())).restore(noisy) for kg in (False, "auto")}
    np.testing.assert_array_equal(res["auto"].image, res[False].image)
    assert "not read as film" in res["auto"].degradation.details["keep_grain"]["reason"]


def test_cli_flag_and_report(tmp_path, capsys):
    import json

    from PIL import Image

    from face2scene.cli import main
    _clean, grainy = _blurred_grainy()
    src = tmp_path / "grainy.png"
    Image.fromarray(grainy).save(src)
    for flag, want in (("--keep-grain", "on"), ("--no-keep-grain", None), (None, "auto")):
        rep = tmp_path / f"{flag}.json"
        args = ["restore", str(src), "-o", str(tmp_path / f"{flag}.png"), "--report", str(rep), "-q",
                "--restorer", "classical", "--device", "cpu"] + ([flag] if flag else [])
        assert main(args) == 0
        details = json.loads(rep.read_text())["degradation"]["details"]
        assert (details["keep_grain"]["mode"] if "keep_grain" in details else None) == want
        if want:
            assert "grain:" in capsys.readouterr().out


def test_quality_bench_runs_without_grain_unless_asked():
    import argparse

    from face2scene.bench import quality
    p = argparse.ArgumentParser()
    quality.add_arguments(p)
    assert p.parse_args([]).keep_grain is False and p.parse_args(["--keep-grain"]).keep_grain is True
    assert quality._Pipes("classical", 0).cfg.keep_grain is False
    assert quality._Pipes("classical", 0, keep_grain=True).cfg.keep_grain == "auto"
