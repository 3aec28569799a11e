"""``face2scene bench quality``'s do-no-harm columns: worst photo, photos made worse, texture kept,
face vs whole-photo gain, identity, several presets, scenes, the upscale check. On a tiny synthetic
data folder (the shipped sample portrait and a scikit-image scene), so no real photos are needed."""
from __future__ import annotations

import json
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from face2scene.bench import common, quality
from face2scene.metrics import gmsd
from face2scene.cli import main


def _textured(seed=0, size=96):
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(0, 256, (size // 4, size // 4, 3), dtype=np.uint8), (size, size),
                      interpolation=cv2.INTER_CUBIC)
    return np.clip(base.astype(np.int16) + rng.integers(-20, 21, base.shape), 0, 255).astype(np.uint8)


def test_texture_ratio_and_capped_psnr():
    clean = _textured()
    assert common.capped_psnr(clean, clean) == common.PSNR_CAP
    assert common.texture_ratio(clean, clean) == pytest.approx(1.0)
    assert common.texture_ratio(clean, cv2.GaussianBlur(clean, (0, 0), 1.5)) < 0.5
    noisy = np.clip(clean + np.random.default_rng(1).normal(0, 25, clean.shape), 0, 255).astype(np.uint8)
    assert common.texture_ratio(clean, noisy) > 1.2
    assert common.texture_ratio(np.full((32, 32, 3), 90, np.uint8), clean) is None  # flat clean image
    assert common.laplacian_energy(np.full((32, 32, 3), 90, np.uint8)) == 0.0


def _records(restore):
    """Two photos, each degraded differently, every pipeline row = ``restore(clean, degraded)``."""
    recs = []
    for i, (blur, noise) in enumerate(((1.0, 5.0), (0.5, 12.0))):
        clean = _textured(i)
        deg = cv2.GaussianBlur(clean, (0, 0), blur)
        deg = np.clip(deg + np.random.default_rng(i).normal(0, noise, deg.shape), 0, 255).astype(np.uint8)
        out = restore(clean, deg)
        outs = {"degraded": deg, "opencv": deg, "blind": out, "face": out, "true": out}
        rows = quality.row_metrics(clean, outs, box=(20, 20, 70, 70))
        est = SimpleNamespace(noise_sigma=noise + 1, blur_sigma=blur, jpeg_quality=None, source="face")
        quality.add_estimate_errors(rows, {"blind": est, "face": est},
                                    {"noise_sigma": noise, "blur_sigma": blur, "jpeg_quality": None})
        recs.append({"photo": f"p{i}", "kind": "scene" if i else "person", "rows": rows, "clean": clean, "deg": deg})
    return recs


def test_a_restorer_that_returns_the_input_gains_nothing_and_keeps_the_input_texture():
    recs = _records(lambda clean, deg: deg.copy())
    s = quality.summarize(recs)
    for row in ("blind", "face", "true"):
        assert s[row]["psnr_gain"] == 0 and s[row]["worst_gain"] == 0 and s[row]["n_worse"] == 0
        assert s[row]["face_gain"] == 0 and s[row]["face_minus_whole"] == 0
        want = np.median([common.texture_ratio(r["clean"], r["deg"]) for r in recs])
        assert s[row]["tex"] == pytest.approx(want) and s[row]["tex"] == pytest.approx(s["degraded"]["tex"])
        box = [common.texture_ratio(r["clean"][20:70, 20:70], r["deg"][20:70, 20:70], border=1) for r in recs]
        assert s[row]["face_tex"] == pytest.approx(np.median(box))
    assert s["face"]["err_noise"] == pytest.approx(1.0) and s["face"]["est_noise"] == pytest.approx(9.5)
    assert s["face"]["err_noise_scenes"] == pytest.approx(1.0) and s["face"]["n_scenes"] == 1
    assert s["degraded"]["err_noise_scenes"] is None


def test_worst_photo_and_photos_made_worse():
    def harm_second(clean, deg):  # the first photo back clean, the second blurred further
        return clean.copy() if np.array_equal(clean, _textured(0)) else cv2.GaussianBlur(deg, (0, 0), 3)
    recs = _records(harm_second)
    s = quality.summarize(recs)["face"]
    gains = [r["rows"]["face"]["gain"] for r in recs]
    assert gains[0] > 5 and gains[1] < -1  # one better, one worse
    assert s["worst_gain"] == pytest.approx(min(gains)) and s["worst_photo"] == "p1"
    assert s["worst_gain"] <= s["psnr_gain"] and s["n_worse"] == 1 and s["n"] == 2
    assert recs[0]["rows"]["face"]["tex"] == pytest.approx(1.0)


def test_parse_presets():
    assert quality.parse_presets("clean,near-clean, mild,clean") == ["clean", "near-clean", "mild"]
    assert quality.parse_presets(None) == ["mild"]
    with pytest.raises(ValueError, match="unknown degradation preset nope"):
        quality.parse_presets("clean,nope")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """identities/astronaut/{a,b}.png (the sample portrait and its mirror image) + scenes/coffee.png."""
    from skimage import data as skdata
    from face2scene.samples import load_sample
    root = tmp_path_factory.mktemp("tiny_data")
    (root / "identities" / "astronaut").mkdir(parents=True)
    (root / "scenes").mkdir()
    face = load_sample()
    cv2.imwrite(str(root / "identities" / "astronaut" / "a.png"), face[..., ::-1])
    cv2.imwrite(str(root / "identities" / "astronaut" / "b.png"), np.ascontiguousarray(face[:, ::-1, ::-1]))
    cv2.imwrite(str(root / "scenes" / "coffee.png"), skdata.coffee()[..., ::-1])
    return root


def test_bench_with_an_identity_restorer_on_two_presets_scenes_and_upscale(tiny_data, tmp_path, monkeypatch, capsys):
    """The pipeline replaced by one that returns its input (bicubic-enlarged when upscaling): every
    pipeline row gains exactly 0 and keeps the degraded texture; the upscale check equals bicubic."""
    from face2scene.pipeline import Face2ScenePipeline
    from face2scene.types import DegradationEstimate
    calls = []

    def restore(self, rgb, people=None, **kw):
        calls.append(people)
        up = self.config.upscale
        img = rgb if up == 1 else cv2.resize(rgb, (rgb.shape[1] * up, rgb.shape[0] * up), interpolation=cv2.INTER_CUBIC)
        est = self.config.estimate or DegradationEstimate(2.0, 0.5, None, 1.0, "blind", 0.5)
        return SimpleNamespace(image=img, degradation=est, faces=[])
    monkeypatch.setattr(Face2ScenePipeline, "restore", restore)
    out = tmp_path / "o"
    assert main(["bench", "quality", "--data", str(tiny_data), "--samples", "1", "--scenes", "1",
                 "--preset", "clean,mild", "--max-side", "256", "--upscale-check", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    for col in ("worst", "worse", "texture", "face gain", "face−whole", "face texture", "id better",
                "|Δnoise| scenes", "by preset", "below bicubic"):
        assert col in text
    data = json.loads((out / "quality.json").read_text())
    assert data["presets"] == ["clean", "mild"] and data["preset"] == "clean,mild" and data["samples"] == 2
    assert data["summary"] == data["by_preset"]["clean"]["summary"]  # one-preset readers keep working
    assert [(r["preset"], r["kind"]) for r in data["records"]] == [
        ("clean", "person"), ("clean", "scene"), ("mild", "person"), ("mild", "scene")]
    assert calls.count(None) >= 2 and any(c and "astronaut" in c for c in calls)  # scenes get no references
    for preset in ("clean", "mild"):
        s = data["by_preset"][preset]["summary"]
        for row in ("blind", "face", "true"):
            assert s[row]["psnr_gain"] == 0 and s[row]["worst_gain"] == 0 and s[row]["n_worse"] == 0
            assert s[row]["tex"] == pytest.approx(s["degraded"]["tex"])
            assert s[row]["face_gain"] == 0 and s[row]["face_tex"] == pytest.approx(s["degraded"]["face_tex"])
            assert s[row]["id_better"] == 0.0 and s[row]["n_faces"] == 1  # unchanged: not closer,
            assert s[row]["id_not_worse"] == 1.0  # nor further
        assert s["face"]["n_scenes"] == 1 and s["face"]["err_noise_scenes"] is not None
    clean = data["by_preset"]["clean"]["summary"]
    assert clean["degraded"]["psnr"] == common.PSNR_CAP and clean["degraded"]["tex"] == pytest.approx(1.0)
    assert clean["face"]["est_noise"] == 2.0 and clean["face"]["err_noise"] == 2.0  # clean: true noise 0
    mild = data["by_preset"]["mild"]["summary"]
    assert mild["opencv"]["worst_gain"] <= mild["opencv"]["psnr_gain"]
    up = data["upscale_check"]["summary"]
    assert up["n"] == 2 and up["gain_over_bicubic"] == 0 and up["n_below_bicubic"] == 0
    assert up["tex_pipeline"] == pytest.approx(up["tex_bicubic"]) and up["tex_bicubic"] < 1
    assert (out / "quality.png").stat().st_size > 1000


def test_bench_runs_the_real_pipeline_on_clean_and_mild(tiny_data, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["bench", "quality", "--data", str(tiny_data), "--samples", "1", "--scenes", "1",
                 "--preset", "clean,mild", "--max-side", "192", "--restorer", "classical", "--out", str(out)]) == 0
    data = json.loads((out / "quality.json").read_text())
    for preset in ("clean", "mild"):
        s = data["by_preset"][preset]["summary"]
        for row in quality.ROWS:
            assert s[row]["worst_gain"] <= s[row]["psnr_gain"] + 1e-9
            assert 0 <= s[row]["n_worse"] <= s[row]["n"] == 2
            assert s[row]["tex"] > 0 and s[row]["face_tex"] > 0
        assert s["degraded"]["psnr_gain"] == 0 and s["degraded"]["id_better"] is None
    rec = data["records"][1]
    assert rec["kind"] == "scene" and rec["person"] is None and "face_psnr" not in rec["rows"]["face"]
    assert rec["estimates"]["blind"]["source"] == "blind"
    # mild noise is at least 5: a restorer gains on the portrait
    assert data["records"][2]["rows"]["face"]["gain"] > 0


@pytest.mark.parametrize("argv, message", [
    (["--preset", "clean,bogus"], "unknown degradation preset bogus"),
    (["--scene-names", "nope.png"], "no such scene"),
    (["--samples", "0"], "no photos to benchmark"),
])
def test_bad_bench_options_are_one_line_errors(tiny_data, tmp_path, capsys, argv, message):
    assert main(["bench", "quality", "--data", str(tiny_data), "--out", str(tmp_path / "o")] + argv) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_gmsd_columns_whole_and_face():
    recs = _records(lambda clean, deg: clean.copy())  # a perfect restorer
    s = quality.summarize(recs)
    assert s["face"]["gmsd"] == 0.0 and s["face"]["face_gmsd"] == 0.0
    assert s["degraded"]["gmsd"] > 0.01 and s["degraded"]["face_gmsd"] > 0.01
    want = np.median([gmsd(r["clean"][20:70, 20:70], r["deg"][20:70, 20:70]) for r in recs])
    assert s["degraded"]["face_gmsd"] == pytest.approx(want)
    assert "GMSD" in quality.preset_tables(s) and "face GMSD" in quality.preset_tables(s)
