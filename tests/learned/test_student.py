"""``face2scene train student``: teacher targets on tiny crops (seeded, resumable), a few fine-tuning
steps through the CLI with tiny networks and a cheap stand-in teacher (finite losses, resumable),
and the result loads back through ``--weights`` as the compact restorer. The texture term: the
detail ratio the bench reports, in torch. Photos made from the public-domain sample."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from face2scene.metrics import laplacian_energy
from face2scene.models import CompactRestorer, FaDeXEncoder, MapNet
from face2scene.train import student
from face2scene.train.gan import write_sample_dataset

from .conftest import TINY_FADEX, TINY_RESTORER

TINY = {"batch": 2, "crop": 32, "face_crop": 48, "max_steps": 3, "ckpt_every": 3, "log_every": 1,
        "val_count": 2, "val_size": 48, "max_side": 256, "lr": 1e-3, "threads": 1, "presets": ["simple"],
        "teacher_count": 6, "teacher_part": 3, "teacher_minutes": 0, "adv_weight": 0.05, "disc_channels": 8}


def sharpen_teacher(rgb: np.ndarray) -> np.ndarray:
    """A cheap stand-in for Real-ESRGAN (tests only): unsharp masking."""
    import cv2
    blur = cv2.GaussianBlur(rgb, (0, 0), 1.0)
    return cv2.addWeighted(rgb, 1.6, blur, -0.6, 0)


@pytest.fixture
def tiny_guided(tmp_path):
    torch.manual_seed(0)
    folder = tmp_path / "compact"
    FaDeXEncoder(**TINY_FADEX).save_pretrained(folder / "fadex")
    mapnet = MapNet(in_channels=16, dim=16, num_heads=2, token_dim=16)
    mapnet.save_pretrained(folder / "mapnet")
    CompactRestorer(**dict(TINY_RESTORER, guided=True, global_condition=True)).save_pretrained(folder / "restorer")
    return folder


def test_detail_term_matches_the_bench_measure():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 44, 3), dtype=np.uint8)
    import cv2
    b = cv2.GaussianBlur(a, (0, 0), 1.2)
    ta, tb = (torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255 for x in (a, b))
    ea, eb = student.laplacian_energy_t(torch.cat([ta, tb])).tolist()
    # the same luma and Laplacian as metrics.laplacian_energy (float luma vs its rounding: within 1 %)
    assert ea == pytest.approx(laplacian_energy(a, border=2), rel=0.01)
    assert eb == pytest.approx(laplacian_energy(b, border=2), rel=0.01)
    assert float(student.detail_log_ratio(ta, ta)) == 0.0
    assert float(student.detail_log_ratio(tb, ta)) > 1.0  # blurred: far less detail than the clean crop


def test_teacher_targets_are_seeded_and_resumable(tmp_path):
    from face2scene.train.restorer import start_pairs
    data = write_sample_dataset(tmp_path / "data")
    cfg = dict(student.DEFAULTS, **TINY)
    out, train_any, train_faces, degrader, _ = start_pairs(data, tmp_path / "run", cfg, log=lambda s: None)
    calls = []

    def teacher(rgb):
        calls.append(rgb.shape)
        return sharpen_teacher(rgb)
    n = student.build_teacher_targets(train_any, train_faces, degrader, cfg, out / "teacher", teacher)
    assert n == 6 and len(calls) == 6
    first = student.load_teacher_targets(out / "teacher")
    assert first["clean"].shape == (6, 32, 32, 3) and first["face_deg"].shape == (6, 48, 48, 3)
    assert all(first[k].dtype == np.uint8 for k in student.ARRAYS)
    assert np.array_equal(first["teacher"], np.stack([sharpen_teacher(d) for d in first["deg"]]))
    assert not np.array_equal(first["deg"], first["clean"])
    # a rerun keeps what is on disk; a lost part is made again, identical (seeded by part)
    (out / "teacher" / "part_0001.npz").unlink()
    assert student.build_teacher_targets(train_any, train_faces, degrader, cfg, out / "teacher", teacher) == 6
    assert len(calls) == 9
    again = student.load_teacher_targets(out / "teacher")
    assert all(np.array_equal(first[k], again[k]) for k in student.ARRAYS)


def test_train_student_cli_smoke_resume_and_load(tmp_path, tiny_guided, monkeypatch):
    from face2scene.cli import main
    data = write_sample_dataset(tmp_path / "data")
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(TINY))
    run = tmp_path / "run"
    # the CLI builds its teacher from the config; here the stand-in (no Real-ESRGAN weights in tests)
    monkeypatch.setattr(student, "torch_teacher", lambda **kw: sharpen_teacher)
    rc = main(["train", "student", "--data", *data, "--out", str(run), "--config", str(cfg_path),
               "--compact", str(tiny_guided)])
    assert rc == 0
    state = json.loads((run / "checkpoint_student" / "state.json").read_text())
    assert state["step"] == 3 and all(np.isfinite(state["history"]["loss"]))
    assert state["history"]["val_step"] == [0, 3] and np.isfinite(state["val"]["psnr"])
    before = CompactRestorer.from_pretrained(tiny_guided / "restorer", low_cpu_mem_usage=False).state_dict()
    after = CompactRestorer.from_pretrained(run / "compact" / "restorer", low_cpu_mem_usage=False).state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # it trained
    # resume: one more step from the checkpoint
    cfg_path.write_text(json.dumps(dict(TINY, max_steps=4)))
    assert main(["train", "student", "--data", *data, "--out", str(run), "--config", str(cfg_path),
                 "--compact", str(tiny_guided)]) == 0
    assert json.loads((run / "checkpoint_student" / "state.json").read_text())["step"] == 4
    # the result is a compact folder: --restorer compact --weights RUN runs it
    from face2scene.restorers import load_restorer
    r, warn = load_restorer("compact", models_dir=run)
    assert warn is None and r.backend.folder == run / "compact"
    img = np.random.default_rng(1).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    from face2scene.types import DegradationEstimate
    assert r.restore(img, DegradationEstimate(5.0, 1.0, None, source="given")).image.shape == img.shape


def test_bad_config_is_a_clear_error(tmp_path, tiny_guided):
    from face2scene.cli import main
    data = write_sample_dataset(tmp_path / "data")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"teacher": "onnx"}))
    assert main(["train", "student", "--data", *data, "--out", str(tmp_path / "r"), "--config", str(bad),
                 "--compact", str(tiny_guided)]) == 2
    bad.write_text(json.dumps({"no_such_key": 1}))
    assert main(["train", "student", "--data", *data, "--out", str(tmp_path / "r"), "--config", str(bad)]) == 2
    unguided = tmp_path / "unguided"
    for sub in ("fadex", "mapnet"):
        import shutil
        shutil.copytree(tiny_guided / sub, unguided / sub)
    CompactRestorer(**TINY_RESTORER).save_pretrained(unguided / "restorer")
    assert main(["train", "student", "--data", *data, "--out", str(tmp_path / "r"), "--compact", str(unguided)]) == 2
