"""Issue 14's command-line findings, each reproduced and fixed: outputs and reports never overwrite
an input or each other (decided before any work), bad option values and unwritable suffixes are
refused up front, odd file names print as one line, a closed stdout does not stop the batch."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from face2scene.cli import main
from face2scene.cli.restore import plan_outputs, show

FAST = ["--restorer", "classical", "-q"]


def _png(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.random.default_rng(seed).integers(60, 200, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(a).save(path)
    return path


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_report_never_overwrites_an_input(tmp_path, capsys):
    x = _png(tmp_path / "x.png")
    before = _digest(x)
    assert main(["restore", str(x), "-o", str(tmp_path / "out.png"), "--report", str(x), *FAST]) == 2
    assert "refusing to overwrite an input" in capsys.readouterr().err
    assert _digest(x) == before and not (tmp_path / "out.png").exists()  # refused before any work


def test_report_and_output_never_collide(tmp_path, capsys):
    x = _png(tmp_path / "x.png")
    out = tmp_path / "o.png"
    assert main(["restore", str(x), "-o", str(out), "--report", str(out), *FAST]) == 2
    assert "is also where a restored photo goes" in capsys.readouterr().err


def test_an_output_never_overwrites_another_input(tmp_path):
    d = tmp_path / "d"
    x, xr = _png(d / "x.png", 1), _png(d / "x_restored.png", 2)
    digests = {p: _digest(p) for p in (x, xr)}
    assert main(["restore", str(x), str(xr), "-o", str(d), *FAST]) == 0
    assert all(_digest(p) == h for p, h in digests.items())  # both originals untouched
    assert (d / "x_restored-2.png").is_file() and (d / "x_restored_restored.png").is_file()


@pytest.mark.parametrize("names", [("d1/photo.png", "d2/photo.png"), ("pic.png", "pic.jpg")])
def test_same_stem_inputs_get_distinct_outputs(tmp_path, names):
    inputs = [_png(tmp_path / n, i) for i, n in enumerate(names)]
    outs = plan_outputs(inputs, tmp_path / "out", None)
    assert len(set(outs)) == 2
    assert main(["restore", *map(str, inputs), "-o", str(tmp_path / "out"), *FAST]) == 0
    assert all(o.is_file() for o in outs)
    a, b = (np.asarray(Image.open(o)) for o in outs)
    assert not np.array_equal(a, b)  # each input's own result, none lost


def test_unwritable_suffix_and_bad_values_are_refused_before_any_work(tmp_path, capsys):
    x = _png(tmp_path / "x.png")
    for extra, words in ((["-o", str(tmp_path / "x.bmp")], "cannot write .bmp"),
                         (["-o", str(tmp_path / "x"), "--strength", "nan"], "strength"),
                         (["-o", str(tmp_path / "y.png"), "--strength", "2"], "strength"),
                         (["-o", str(tmp_path / "y.png"), "--strength", "-1"], "strength"),
                         (["-o", str(tmp_path / "y.png"), "--strength", "inf"], "strength"),
                         (["-o", str(tmp_path / "y.png"), "--tile-size", "0"], "tile size"),
                         (["-o", str(tmp_path / "y.png"), "--tile-size", "-5"], "tile size"),
                         (["-o", str(tmp_path / "y.png"), "--upscale", "9"], "upscale"),
                         (["-o", str(x)], "refusing to overwrite the input")):
        assert main(["restore", str(x), *extra, *FAST]) == 2, extra
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1, (extra, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]


def test_odd_file_names_print_as_one_line(tmp_path, capsys):
    bad = tmp_path / "two\nlines.png"
    bad.write_bytes(b"not an image")
    assert main(["restore", str(bad), "-o", str(tmp_path / "o.png"), *FAST]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "two\\nlines.png" in err
    assert show(Path("caf\udce9.png")) == "caf\\udce9.png"


@pytest.mark.skipif(sys.platform == "win32" or os.fsencode("x") != b"x", reason="POSIX byte file names")
def test_a_non_utf8_file_name_is_restored_and_reported(tmp_path, capsys):
    name = os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes under a UTF-8 locale: a lone surrogate
    src = _png(tmp_path / name)
    report = tmp_path / "report.json"
    assert main(["restore", str(src), "-o", str(tmp_path / "out"), "--report", str(report), *FAST]) == 0
    assert "caf\\udce9.png" in capsys.readouterr().out
    assert "caf\\\\udce9" in report.read_text()


def test_too_long_output_name_is_one_line_not_a_traceback(tmp_path, capsys):
    x = _png(tmp_path / "x.png")
    out = tmp_path / ("n" * 300 + ".png")
    assert main(["restore", str(x), "-o", str(out), *FAST]) == 2  # refused before the work
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1 and "too long" in err


def test_a_closed_stdout_does_not_stop_the_batch(tmp_path):
    inputs = [_png(tmp_path / f"p{i}.png", i) for i in range(3)]
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "face2scene", "restore", *map(str, inputs), "-o", str(out), *FAST]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # like `| head -c 0`: every print hits a broken pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 0, err
    assert "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == [f"p{i}_restored.png" for i in range(3)]
