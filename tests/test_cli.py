"""The CLI contract other tools script against, and bad input at the door."""
from __future__ import annotations

import hashlib
import io
import json
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from face2scene.cli import main
from face2scene.cli.restore import parse_refs
from face2scene.degrade import degrade
from face2scene.samples import load_sample


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    d = tmp_path_factory.mktemp("photos")
    s = load_sample()
    small = s  # 512 x 512: the face must stay findable after degradation
    deg, _ = degrade(small, "mild", seed=4)
    Image.fromarray(deg).save(d / "old.png")
    Image.fromarray(np.ascontiguousarray(small[:, ::-1])).save(d / "ref.png")
    return d


def test_restore_one_photo_with_report(photos, tmp_path, capsys):
    out = tmp_path / "restored.png"
    report = tmp_path / "r.json"
    before = _sha(photos / "old.png")
    rc = main(["restore", str(photos / "old.png"), "-o", str(out), "--ref", f"eileen={photos / 'ref.png'}",
               "--report", str(report), "--device", "cpu", "-q"])
    assert rc == 0
    assert _sha(photos / "old.png") == before  # the original is never modified
    with Image.open(out) as im:
        assert im.size == (512, 512)
    r = json.loads(report.read_text())
    assert isinstance(r, dict)
    assert r["faces"] and set(r["faces"][0]) >= {"box", "person", "score"}
    assert len(r["faces"][0]["box"]) == 4
    assert r["faces"][0]["person"] == "eileen"
    assert set(r["degradation"]) >= {"noise_sigma", "blur_sigma", "jpeg_quality", "scale", "source"}
    assert r["degradation"]["source"] == "face"
    assert "->" in capsys.readouterr().out


def test_several_inputs_one_unreadable_and_upscale(photos, tmp_path, capsys):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    outdir = tmp_path / "outdir"
    report = tmp_path / "r.json"
    rc = main(["restore", str(bad), str(photos / "old.png"), "-o", str(outdir), "--upscale", "2",
               "--report", str(report), "-q"])
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len([l for l in err if l.startswith("error:")]) == 1 and "broken.jpg" in err[0]
    done = outdir / "old_restored.png"
    with Image.open(done) as im:
        assert im.size == (1024, 1024)
    r = json.loads(report.read_text())
    assert isinstance(r, list) and "error" in r[0] and r[1]["output"] == str(done)
    assert not (outdir / "broken_restored.png").exists()


def test_ref_parsing_errors(tmp_path):
    with pytest.raises(ValueError, match="NAME=PATH"):
        parse_refs(["nobody"])
    with pytest.raises(ValueError, match="does not exist"):
        parse_refs([f"a={tmp_path / 'missing'}"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        parse_refs([f"a={tmp_path / 'empty'}"])
    assert main(["restore", str(tmp_path / "x.png"), "-o", str(tmp_path / "y.png"), "--ref", "bad"]) == 2


def test_refuses_to_overwrite_the_input(photos, tmp_path, capsys):
    src = tmp_path / "in.png"
    src.write_bytes((photos / "old.png").read_bytes())
    before = _sha(src)
    assert main(["restore", str(src), "-o", str(src), "-q"]) == 2  # refused before any work
    assert _sha(src) == before
    assert "refusing to overwrite the input" in capsys.readouterr().err


def test_degrade_command_logs_parameters(photos, tmp_path):
    out = tmp_path / "d.png"
    params = tmp_path / "d.json"
    assert main(["degrade", str(photos / "ref.png"), "-o", str(out), "--preset", "mild", "--seed", "3",
                 "--params", str(params)]) == 0
    p = json.loads(params.read_text())
    assert p["summary"]["noise_sigma"] > 0 and out.is_file()


def test_demo_runs_end_to_end(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path / "demo")]) == 0
    text = capsys.readouterr().out
    assert "restored" in text and "PSNR" in text
    assert "Scene restorer: compact token-conditioned restorer" in text  # the default, and it says so
    for name in ("degraded.png", "restored.png", "report.json", "comparison_degraded_restored_original.png"):
        assert (tmp_path / "demo" / name).is_file()
    rep = json.loads((tmp_path / "demo" / "report.json").read_text())
    assert rep["psnr_restored"] > rep["psnr_degraded"] + 1.0


# ---- bad input: a clear error or a correct result, never a crash ---------------------------

def _write_variants(d: Path, rgb: np.ndarray) -> dict:
    """name -> (path, expected output size or None for 'must be refused')."""
    h, w = rgb.shape[:2]
    v = {}
    p = d / "gray.png"; Image.fromarray(rgb).convert("L").save(p); v["gray"] = (p, (w, h))
    p = d / "palette.png"; Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE).save(p); v["palette"] = (p, (w, h))
    p = d / "alpha.png"; Image.fromarray(np.dstack([rgb, np.full((h, w), 200, np.uint8)])).save(p); v["alpha"] = (p, (w, h))
    p = d / "cmyk.jpg"; Image.fromarray(rgb).convert("CMYK").save(p, quality=92); v["cmyk"] = (p, (w, h))
    p = d / "sixteen.png"; cv2.imwrite(str(p), (rgb[..., ::-1].astype(np.uint16) * 257)); v["16-bit"] = (p, (w, h))
    p = d / "rotated.jpg"
    ex = Image.Exif(); ex[0x0112] = 6
    Image.fromarray(rgb).save(p, quality=92, exif=ex.tobytes()); v["exif-rotated"] = (p, (h, w))
    full = io.BytesIO(); Image.fromarray(rgb).save(full, "JPEG", quality=90)
    p = d / "truncated.jpg"; p.write_bytes(full.getvalue()[: len(full.getvalue()) // 2]); v["truncated"] = (p, None)
    p = d / "corrupt.png"; p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 200); v["corrupt"] = (p, None)
    ihdr = struct.pack(">IIBBBBB", 200000, 200000, 8, 2, 0, 0, 0)
    chunk = lambda k, data: struct.pack(">I", len(data)) + k + data + struct.pack(">I", zlib.crc32(k + data))
    p = d / "bomb.png"; p.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    v["bomb"] = (p, None)
    return v


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    rgb = cv2.resize(load_sample(), (96, 128), interpolation=cv2.INTER_AREA)  # w=96, h=128
    return _write_variants(d, rgb)


@pytest.mark.parametrize("name", ["gray", "palette", "alpha", "cmyk", "16-bit", "exif-rotated",
                                  "truncated", "corrupt", "bomb"])
def test_bad_input(variants, name, tmp_path, capsys):
    path, expected = variants[name]
    before = _sha(path)
    out = tmp_path / "o.png"
    rc = main(["restore", str(path), "-o", str(out), "-q", "--device", "cpu"])
    assert _sha(path) == before
    err = capsys.readouterr().err
    if expected is None:
        assert rc == 1 and not out.exists()
        lines = [l for l in err.splitlines() if l.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and path.name in lines[0]
    else:
        assert rc == 0, err
        with Image.open(out) as im:
            assert im.size == expected and im.mode == "RGB"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".") or "tmp" in p.name]
