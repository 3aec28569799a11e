"""scripts/backend_panels.py: the crop/window choice and the panel, on synthetic images (no weights);
one real old photo through the classical column when ../shared/data is there."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "backend_panels.py"


@pytest.fixture(scope="module")
def bp():
    spec = importlib.util.spec_from_file_location("backend_panels", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_largest_box_picks_the_biggest_face(bp):
    assert bp.largest_box([]) is None
    assert bp.largest_box([(0, 0, 10, 10), (50, 50, 90, 80), (5, 5, 30, 30)]) == (50, 50, 90, 80)


def test_fit_scale_shrinks_only_faces_too_big_for_the_crop(bp):
    assert bp.fit_scale(None, 160, 0.7) == 1.0
    assert bp.fit_scale((0, 0, 100, 80), 160, 0.7) == 1.0  # 100 <= 112
    s = bp.fit_scale((10, 20, 410, 320), 160, 0.7)  # a 400 px face
    assert s == pytest.approx(112 / 400)


def test_crop_window_centres_on_the_face_and_stays_inside(bp):
    shape = (300, 400, 3)
    c, win = bp.crop_window(shape, (200, 100, 260, 160), 100, 8)
    assert c == (180, 80, 280, 180)  # centred on (230, 130)
    assert win == (172, 72, 288, 188)
    # a face at the corner: the crop is shifted inside, the context clipped at the border
    c, win = bp.crop_window(shape, (0, 0, 20, 20), 100, 8)
    assert c == (0, 0, 100, 100) and win == (0, 0, 108, 108)
    # no face: the centre; a photo smaller than the crop: the whole photo
    c, _ = bp.crop_window(shape, None, 100, 0)
    assert c == (150, 100, 250, 200)
    c, win = bp.crop_window((60, 90, 3), None, 100, 8)
    assert c == (0, 0, 90, 60) and win == (0, 0, 90, 60)
    with pytest.raises(ValueError):
        bp.crop_window(shape, None, 8, 0)
    with pytest.raises(ValueError):
        bp.crop_window(shape, None, 100, -1)


def test_make_panel_keeps_tiles_at_100_percent_with_labels(bp):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (40, 70, 3), dtype=np.uint8)
    p = bp.make_panel([(a, ["input"]), (b, ["gan", "strength 1.00"])])
    assert p.dtype == np.uint8 and p.shape[2] == 3
    assert p.shape[1] == 60 + 4 + 70  # side by side, a 4 px gap, no resizing
    assert np.array_equal(p[:50, :60], a) and np.array_equal(p[:40, 64:134], b)
    assert p.shape[0] > 50  # label bands under the tiles
    assert (p[50:, :60] < 128).any()  # the label's text is drawn
    with pytest.raises(ValueError):
        bp.make_panel([])


def test_bad_column_and_missing_data_give_clear_errors(bp, tmp_path, capsys):
    assert bp.main(["--columns", "diffusion", "--data", str(tmp_path)]) == 2
    assert "unknown column" in capsys.readouterr().err
    assert bp.main(["--data", str(tmp_path)]) == 2
    assert "no old photos" in capsys.readouterr().err
    for bad in (["--crop", "8"], ["--margin", "-1"], ["--face-frac", "0"], ["--threads", "0"]):
        assert bp.main(bad + ["--data", str(tmp_path)]) == 2
        assert "error: need" in capsys.readouterr().err


def test_one_real_old_photo_classical_column_and_cache(bp, tmp_path):
    data = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not (data / "old_photos" / "codeformer_04.jpg").is_file():
        pytest.skip("no ../shared/data/old_photos")
    args = ["--data", str(data), "--only", "codeformer_04.jpg", "--columns", "classical", "--crop", "96",
            "--margin", "4", "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"), "--threads", "1"]
    assert bp.main(args) == 0
    log = json.loads((tmp_path / "out" / "panels.json").read_text())
    rec = log["photos"]["codeformer_04.jpg"]
    col = rec["columns"]["classical"]
    assert col["restorer_ran"] == "classical" and col["cpu_s"] > 0
    assert col["detail"] is not None and col["strength"] is not None
    assert (tmp_path / "out" / "codeformer_04.jpg").is_file()
    # a rerun reads the cache: same record, no new restore
    first = (tmp_path / "cache" / "codeformer_04" / "classical.json").stat().st_mtime_ns
    assert bp.main(args) == 0
    assert (tmp_path / "cache" / "codeformer_04" / "classical.json").stat().st_mtime_ns == first
    again = json.loads((tmp_path / "out" / "panels.json").read_text())["photos"]["codeformer_04.jpg"]
    assert again["columns"]["classical"] == col


def test_summary_table_has_a_row_per_photo_and_marks_decisions(bp):
    rec = {"scale": 1.0, "columns": {
        "classical": {"strength": 0.0, "detail": 1.0, "wall_s": 3.2, "cpu_s": 0.7},
        "gan": {"strength": None, "detail": 1.44, "wall_s": 84.0, "cpu_s": 21.0}}}
    t = bp.summary_table({"a.png": rec, "b.png": dict(rec, scale=0.5)})
    lines = t.splitlines()
    assert lines[0] == "| photo | scale | classical | gan |" and len(lines) == 4
    assert "| a.png | 1.00 | = / 1.00 / 3 s (1) | off / 1.44 / 84 s (21) |" == lines[2]
    assert lines[3].startswith("| b.png | 0.50 |")
