"""The benchmark commands run and write their table, JSON and plot (numbers are not asserted)."""
from __future__ import annotations

import json

import pytest

from face2scene.cli import main


def test_bench_speed_small(tmp_path, capsys):
    assert main(["bench", "speed", "--sizes", "0.1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "s/MP" in out and "peak RSS" in out
    data = json.loads((tmp_path / "speed.json").read_text())
    r = data["results"][0]
    assert r["faces"] >= 1 and r["total_s"] > 0 and r["peak_rss_mb"] > 0
    assert r["cpu_s"] > 0 and r["load_s"] > 0 and "load avg" in out  # the models load outside the timed photo
    # every stage the pipeline timed also has its CPU time, and together they are the photo's
    assert set(r["stages_cpu"]) == set(r["stages"]) and "CPU s/MP" in out
    assert 0 < sum(r["stages_cpu"].values()) <= r["cpu_s"] * 1.01
    assert (tmp_path / "speed.png").stat().st_size > 1000


@pytest.mark.data
def test_bench_quality_one_photo(shared_data, tmp_path, capsys):
    assert main(["bench", "quality", "--samples", "1", "--max-side", "384", "--data", str(shared_data),
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for label in ("degraded input", "OpenCV", "blind estimate", "face-derived", "true parameters"):
        assert label in out
    data = json.loads((tmp_path / "quality.json").read_text())
    rec = data["records"][0]
    assert set(rec["rows"]) == {"degraded", "opencv", "blind", "face", "true"}
    assert rec["estimates"]["blind"]["source"] == "blind"
    assert {"noise_sigma", "blur_sigma", "jpeg_quality", "scale"} <= set(rec["truth"])
    assert (tmp_path / "quality.png").is_file()


def test_bench_quality_without_data_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("F2S_SHARED_DATA", str(tmp_path / "nothing"))
    monkeypatch.chdir(tmp_path)
    import face2scene.bench.common as b
    monkeypatch.setattr(b, "default_data", lambda: None)
    assert main(["bench", "quality", "--out", str(tmp_path / "o")]) == 1
    assert "no development photos" in capsys.readouterr().err


def test_bench_learned_errors_are_one_line(tmp_path, capsys, monkeypatch):
    import face2scene.bench.common as b
    monkeypatch.setattr(b, "default_data", lambda: None)
    assert main(["bench", "learned", "--out", str(tmp_path / "o")]) == 1
    assert "no photo folder" in capsys.readouterr().err
    (tmp_path / "data" / "scenes").mkdir(parents=True)
    assert main(["bench", "learned", "--data", str(tmp_path / "data"), "--weights", str(tmp_path / "none"),
                 "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "incomplete" in err and str(tmp_path / "none" / "restorer" / "config.json") in err
