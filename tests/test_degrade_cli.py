"""The ``degrade`` subcommand: image + exact parameters out, replay reproduces, bad input is one line."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image

from face2scene import degrade as D
from face2scene.cli import main
from face2scene.io import load_image


def _photo(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    p = tmp_path / "in.png"
    Image.fromarray(a).save(p)
    return p, a


def test_degrade_writes_image_and_params(tmp_path, capsys):
    src, a = _photo(tmp_path)
    before = src.read_bytes()
    out = tmp_path / "o" / "deg.png"
    assert main(["degrade", str(src), "-o", str(out), "--preset", "s3diff", "--seed", "5"]) == 0
    params = json.loads(out.with_suffix(".json").read_text())
    got = load_image(out).rgb
    assert np.array_equal(got, D.apply_params(a, params))
    assert np.array_equal(got, D.degrade(a, "s3diff", 5)[0])
    assert "noise" in capsys.readouterr().out and src.read_bytes() == before
    # replay from the logged params, to another file
    out2 = tmp_path / "again.png"
    pj = tmp_path / "p2.json"
    assert main(["degrade", str(src), "-o", str(out2), "--replay", str(out.with_suffix(".json")),
                 "--params", str(pj)]) == 0
    assert np.array_equal(load_image(out2).rgb, got) and pj.exists()


def test_degrade_clean_preset_is_the_input(tmp_path, capsys):
    src, a = _photo(tmp_path)
    out = tmp_path / "clean.png"
    assert main(["degrade", str(src), "-o", str(out), "--preset", "clean"]) == 0
    assert np.array_equal(load_image(out).rgb, a)
    params = json.loads(out.with_suffix(".json").read_text())
    assert params["stages"] == [] and params["summary"]["noise_sigma"] == 0
    assert main(["degrade", str(src), "-o", str(tmp_path / "nc.png"), "--preset", "near-clean",
                 "--seed", "3"]) == 0
    assert np.array_equal(load_image(tmp_path / "nc.png").rgb, D.degrade(a, "near-clean", 3)[0])


def test_degrade_bad_input_and_protection(tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    assert main(["degrade", str(bad), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.jpg" in err
    src, _ = _photo(tmp_path)
    before = src.read_bytes()
    assert main(["degrade", str(src), "-o", str(src)]) == 2
    assert "original" in capsys.readouterr().err
    assert src.read_bytes() == before


def test_degrade_writes_the_damage_labels_of_old_prints(tmp_path, capsys):
    src, a = _photo(tmp_path)
    big = tmp_path / "big.png"
    Image.fromarray(np.kron(a, np.ones((6, 6, 1), np.uint8))).save(big)  # 240 x 336: room for damage
    out = tmp_path / "old.png"
    assert main(["degrade", str(big), "-o", str(out), "--preset", "old_print", "--seed", "2"]) == 0
    labels = np.asarray(Image.open(tmp_path / "old.mask.png"))
    params = json.loads((tmp_path / "old.json").read_text())
    assert labels.shape == (240, 336) and labels.max() >= 1 and set(np.unique(labels)) <= {0, 1, 2, 3, 4}
    assert np.array_equal(labels, D.defect_label_map(D.defect_masks(params)))
    assert "damage labels in" in capsys.readouterr().out
    assert main(["degrade", str(big), "-o", str(tmp_path / "m.png"), "--preset", "mild"]) == 0
    assert not (tmp_path / "m.mask.png").exists()  # no damage drawn, no label file
