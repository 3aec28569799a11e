"""Reliability of the desktop app (issue 14's desktop findings): bad files, database faults, disk
full, replaced or deleted originals, model-pack import, crashed engine. Each test reproduces the
fault and checks the behaviour the user gets. The kill windows are in test_kill.py."""
from __future__ import annotations

import errno
import os
import signal
import sqlite3
import struct
import zlib
from pathlib import Path

import pytest

from face2scene.errors import ImageError
from f2s_desktop import jobs as jobs_mod
from f2s_desktop.engine import EngineSettings
from f2s_desktop.export import ExportOptions, export_items, items_for_photos
from f2s_desktop.jobs import run_queue, run_restore_job
from f2s_desktop.library import CorruptLibraryError, Library, check_database, move_aside
from f2s_desktop.library.queue import STORAGE_KIND

from .fakes import FakeEngine, make_photo

SETTINGS = EngineSettings().to_json()


@pytest.fixture
def lib():
    lib = Library()
    yield lib
    lib.close()


def header_bomb(path: Path, width: int, height: int) -> Path:
    """A tiny valid PNG whose header claims width x height (what a decompression bomb looks like
    to anything that trusts the header)."""
    make_photo(path, seed=9, size=(8, 8), fmt="PNG")
    data = bytearray(path.read_bytes())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    return path


# ------------------------------------------------------------------ 4/6: bad files, thumbnails
def test_folder_import_goes_on_past_decompression_bombs(lib, tmp_path):
    folder = tmp_path / "album"
    good = [make_photo(folder / f"good{i}.jpg", seed=i) for i in range(3)]
    header_bomb(folder / "bomb_huge.png", 40000, 40000)   # Pillow's own bomb error (> 179 MP)
    header_bomb(folder / "bomb_150mp.png", 12000, 12500)  # over the app's 120 MP limit
    (folder / "not_really.jpg").write_bytes(b"\xff\xd8 garbage")
    rep = lib.photos.import_files([folder])
    assert sorted(Path(p.path).name for p in lib.photos.all()) == sorted(g.name for g in good)
    assert len(rep.added) == 3
    errors = {Path(p).name: m for p, m in rep.errors}
    assert set(errors) == {"bomb_huge.png", "bomb_150mp.png", "not_really.jpg"}
    for name in ("bomb_huge.png", "bomb_150mp.png"):
        assert "too large" in errors[name] and "\n" not in errors[name]


def test_thumbnail_is_bounded_and_atomic(lib, tmp_path):
    bomb = header_bomb(tmp_path / "bomb.png", 20000, 20000)
    with pytest.raises(ImageError, match="too large"):
        lib.files.thumbnail(bomb, "ab" * 32, 256)
    assert not any(lib.paths.thumbnails.rglob("*"))  # nothing half-written
    photo = make_photo(tmp_path / "wide.png", seed=1, size=(800, 200), orientation=6)
    out = lib.files.thumbnail(photo, "cd" * 32, 128)
    from PIL import Image
    with Image.open(out) as im:
        assert im.format == "JPEG" and im.size == (32, 128)  # upright (EXIF 6), fitted, not enlarged
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temp file left


# ------------------------------------------------------------------ 10: one transaction, recover
def test_version_row_and_job_done_are_one_transaction(lib, tmp_path):
    pid = lib.photos.import_files([make_photo(tmp_path / "a.png")]).added[0]
    jid = lib.queue.enqueue([pid], SETTINGS)[0]  # queued, not running: marking it done must fail
    with pytest.raises(Exception, match="not running"):
        lib.versions.add(pid, 1, tmp_path / "v.png", SETTINGS, {}, job_id=jid)
    assert lib.versions.for_photo(pid) == []  # the row was rolled back with it
    job = lib.queue.claim_next()
    vid = lib.versions.add(pid, 1, tmp_path / "v.png", SETTINGS, {}, job_id=job.id)
    j = lib.queue.job(jid)
    assert j.state == "done" and j.version_id == vid


def test_recover_removes_orphans_and_temps_and_requeues(lib, tmp_path):
    pid = lib.photos.import_files([make_photo(tmp_path / "a.png")]).added[0]
    lib.queue.enqueue([pid], SETTINGS)
    run_queue(lib, FakeEngine())
    d = lib.files.version_dir(pid)
    for name in ("v002.png", "v002_face0.png", ".f2s-0123abcd.tmp"):
        (d / name).write_bytes(b"x")
    (lib.paths.thumbnails / "ab").mkdir(parents=True, exist_ok=True)
    (lib.paths.thumbnails / "ab" / ".f2s-89abcdef.tmp").write_bytes(b"x")
    lib.queue.enqueue([pid], SETTINGS)
    lib.queue.claim_next()  # "running" when the app died
    lib.db.conn.execute("UPDATE versions SET path='/moved/library/v001.png'")  # the folder was moved
    assert lib.recover() == {"requeued": 1, "orphans": 2, "temps": 2}
    assert sorted(p.name for p in d.iterdir()) == ["v001.png"]
    run_queue(lib, FakeEngine())
    assert [v.number for v in lib.versions.for_photo(pid)] == [1, 2]  # 2 reused: no gap


def test_export_folder_temps_cleaned_at_start(tmp_path):
    out = tmp_path / "export"
    (out / "family" / "1999").mkdir(parents=True)
    stale = [out / ".f2s-00000001.tmp", out / "family" / "1999" / ".f2s-00000002.tmp"]
    for f in stale:
        f.write_bytes(b"half an image")
        os.utime(f, (1, 1))
    (out / "family" / "keep.jpg").write_bytes(b"x")
    assert Library.clean_export_temps(str(out)) == 2
    assert not any(f.exists() for f in stale) and (out / "family" / "keep.jpg").exists()
    assert Library.clean_export_temps("") == 0


# ------------------------------------------------------------------ 11: disk full
def _enospc(*a, **k):
    raise OSError(errno.ENOSPC, "No space left on device", str(a[0]) if a else None)


def test_disk_full_fails_the_job_once_and_resume_retries(lib, tmp_path, monkeypatch):
    ids = lib.photos.import_files([make_photo(tmp_path / f"p{i}.png", seed=i) for i in range(3)]).added
    lib.queue.enqueue(ids, SETTINGS)
    monkeypatch.setattr(jobs_mod, "save_png_atomic", _enospc)
    job = lib.queue.claim_next()
    assert run_restore_job(lib, FakeEngine(), job) is None
    j = lib.queue.job(job.id)
    assert j.state == "error" and j.error_info.kind == STORAGE_KIND
    assert "disk is full" in j.error and "\n" not in j.error and "resume" in j.error
    assert not any(lib.files.version_dir(ids[0]).iterdir())
    lib.queue.set_paused(True)
    monkeypatch.undo()  # space freed
    lib.queue.set_paused(False)  # resuming retries the job that hit the full disk
    assert lib.queue.job(job.id).state == "queued"
    assert run_queue(lib, FakeEngine()) == 3
    assert [j.state for j in lib.queue.jobs()] == ["done"] * 3


def _wait_signal_count(qtbot, worker, rounds=3):
    """Let the worker go round a few more times (woken, not timed)."""
    for _ in range(rounds):
        worker.wake()
        qtbot.wait(50)


def test_worker_pauses_once_on_disk_full_then_resumes(qtbot, lib, tmp_path, monkeypatch):
    from f2s_desktop.worker import PipelineWorker
    ids = lib.photos.import_files([make_photo(tmp_path / f"p{i}.png", seed=i) for i in range(3)]).added
    lib.queue.enqueue(ids, SETTINGS)
    monkeypatch.setattr(jobs_mod, "save_png_atomic", _enospc)
    w = PipelineWorker(lib, FakeEngine)
    storage, other, finished = [], [], []
    w.storageError.connect(storage.append)
    w.engineError.connect(other.append)
    w.jobFinished.connect(lambda pid, st, vid, err: finished.append((pid, st)))
    w.start()
    try:
        qtbot.waitUntil(lambda: bool(storage), timeout=10000)
        _wait_signal_count(qtbot, w)
        assert len(storage) == 1 and not other and w.paused and lib.queue.paused
        assert "disk is full" in storage[0].message
        assert [j.state for j in lib.queue.jobs()] == ["error", "queued", "queued"]  # the rest waits
        monkeypatch.undo()
        w.set_paused(False)
        qtbot.waitUntil(lambda: lib.queue.counts()["done"] == 3, timeout=10000)
        assert len(storage) == 1
    finally:
        w.stop()


# ------------------------------------------------------------------ 9: database faults
def _read_only_connections(monkeypatch, lib):
    import f2s_desktop.library.db as db_mod
    real = sqlite3.connect
    monkeypatch.setattr(db_mod.sqlite3, "connect", lambda path, **kw: real(
        f"file:{Path(path).as_posix()}?mode=ro", uri=True, **kw))
    lib.db.close()


def test_worker_reports_a_read_only_database_once(qtbot, lib, tmp_path, monkeypatch):
    from f2s_desktop.worker import PipelineWorker
    ids = lib.photos.import_files([make_photo(tmp_path / "p.png")]).added
    lib.queue.enqueue(ids, SETTINGS)
    _read_only_connections(monkeypatch, lib)
    w = PipelineWorker(lib, FakeEngine)
    storage, other = [], []
    w.storageError.connect(storage.append)
    w.engineError.connect(other.append)
    w.start()
    try:
        qtbot.waitUntil(lambda: bool(storage), timeout=10000)
        _wait_signal_count(qtbot, w)
        assert w.isRunning() and len(storage) == 1 and not other  # alive, said once
        assert "database cannot be written" in storage[0].message
    finally:
        w.stop()


def test_corrupt_database_detected_and_moved_aside(tmp_path):
    lib = Library()
    db = lib.paths.database
    lib.close()
    db.write_bytes(b"this is not an SQLite file at all" * 100)
    assert "not a database" in check_database(db)
    with pytest.raises(CorruptLibraryError) as exc:
        Library()
    assert "damaged" in str(exc.value)
    moved = move_aside(db, now=0)
    assert moved.name.startswith("library.sqlite3.corrupt-") and moved.read_bytes().startswith(b"this is")
    assert not db.exists()
    lib = Library()  # a fresh one
    assert lib.photos.all() == [] and check_database(db) is None
    lib.close()


class _FakeBox:
    """QMessageBox stand-in: records what the user would be shown, answers ``answer``."""
    calls: list = []
    answer = "No"

    def __init__(self):
        raise AssertionError("not constructed")

    from PySide6.QtWidgets import QMessageBox as _Q
    StandardButton = _Q.StandardButton

    @classmethod
    def question(cls, parent, title, text, *a):
        cls.calls.append(("question", text))
        return getattr(cls.StandardButton, cls.answer)

    @classmethod
    def critical(cls, parent, title, text):
        cls.calls.append(("critical", text))

    @classmethod
    def information(cls, parent, title, text):
        cls.calls.append(("information", text))


@pytest.fixture
def fake_box(monkeypatch):
    import PySide6.QtWidgets as qw
    _FakeBox.calls = []
    monkeypatch.setattr(qw, "QMessageBox", _FakeBox)
    return _FakeBox


def test_start_up_offers_to_move_a_corrupt_database_aside(qapp, tmp_path, fake_box, capsys):
    from f2s_desktop import app
    from f2s_desktop.paths import app_paths
    home = tmp_path / "home"
    paths = app_paths(home).ensure()
    db = paths.database
    db.write_bytes(b"garbage" * 500)
    fake_box.answer = "No"  # the user declines: nothing is touched, the app does not start
    assert app.main(["--home", str(home)]) == 2
    assert fake_box.calls[0][0] == "question" and "damaged" in fake_box.calls[0][1]
    assert db.read_bytes().startswith(b"garbage")
    assert "Traceback" not in capsys.readouterr().err
    fake_box.calls.clear()
    fake_box.answer = "Yes"  # the user accepts: moved aside, a fresh library opens
    lib = app.open_library(paths)
    try:
        assert lib is not None and lib.photos.all() == []
        kept = list(paths.data.glob("library.sqlite3.corrupt-*"))
        assert len(kept) == 1 and kept[0].read_bytes().startswith(b"garbage")
        assert [c[0] for c in fake_box.calls] == ["question", "information"]
    finally:
        lib.close()


def test_read_only_data_folder_is_not_reported_as_already_running(qapp, tmp_path, monkeypatch, capsys):
    import tempfile

    from f2s_desktop import app
    from f2s_desktop.paths import app_paths

    def refuse(*a, **k):
        raise PermissionError(errno.EROFS, "Read-only file system")
    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    assert "cannot write to its library folder" in app.data_folder_problem(app_paths(tmp_path / "h"))
    assert app.main(["--home", str(tmp_path / "h"), "--quit-after-ready"]) == 5
    err = capsys.readouterr().err
    assert "cannot write to its library folder" in err and "already running" not in err


# ------------------------------------------------------------------ 12: originals
def test_replaced_original_is_detected_and_reimport_redetects(lib, tmp_path):
    orig = make_photo(tmp_path / "a.png", seed=1)
    pid = lib.photos.import_files([orig]).added[0]
    lib.faces.store(pid, [])
    assert lib.photos.get(pid).faces_state == "done"
    make_photo(orig, seed=2)  # another picture at the same path
    lib.queue.enqueue([pid], SETTINGS)
    run_queue(lib, FakeEngine())
    j = lib.queue.jobs()[-1]
    assert j.state == "error" and "changed since it was imported; re-import it" in j.error
    rep = lib.photos.import_files([orig])
    assert rep.updated == [pid] and not rep.added
    p = lib.photos.get(pid)
    assert p.faces_state == "pending"  # faces detected again
    lib.queue.enqueue([pid], SETTINGS)
    run_queue(lib, FakeEngine())
    assert lib.queue.jobs()[-1].state == "done"


def test_deleted_original_keeps_versions_exportable(lib, tmp_path):
    orig = make_photo(tmp_path / "a.jpg", seed=1, exif_date="2001:02:03 04:05:06")
    pid = lib.photos.import_files([orig]).added[0]
    lib.queue.enqueue([pid], SETTINGS)
    run_queue(lib, FakeEngine())
    orig.unlink()
    rep = export_items(items_for_photos(lib, [pid]), ExportOptions(folder=str(tmp_path / "out")))
    assert rep.errors == [] and len(rep.written) == 1 and rep.written[0].is_file()
    lib.queue.enqueue([pid], SETTINGS)  # restoring again needs it: a clear message
    run_queue(lib, FakeEngine())
    assert "original is missing" in lib.queue.jobs()[-1].error


# ------------------------------------------------------------------ engine crash message
def _exit_3():
    os._exit(3)


def _sigkill_self():
    os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX")
def test_engine_crash_names_the_exit_code_or_signal():
    import multiprocessing as mp

    from f2s_desktop.engine_process import exit_description
    ctx = mp.get_context("fork")
    for target, want in ((_exit_3, "exit code 3"), (_sigkill_self, "killed by SIGKILL")):
        p = ctx.Process(target=target)
        p.start()
        assert want in exit_description(p)
    assert exit_description(None) == "no exit status"


# ------------------------------------------------------------------ 13: model-pack import
def _sha(b: bytes) -> str:
    import hashlib
    return hashlib.sha256(b).hexdigest()


def _buffalo(folder: Path, content=b"v1", sums="gnu", extra=None) -> Path:
    """An insightface buffalo_l pack folder (two .onnx files) with a SHA256SUMS in one format."""
    folder.mkdir(parents=True)
    files = {"det_10g.onnx": b"det" + content, "w600k_r50.onnx": b"rec" + content}
    for n, b in files.items():
        (folder / n).write_bytes(b)
    line = {"gnu": "{h}  {n}", "binary": "{h} *{n}", "bsd": "SHA256 ({n}) = {h}"}[sums]
    (folder / "SHA256SUMS").write_text("".join(line.format(h=_sha(b), n=n) + "\n" for n, b in files.items())
                                       + (extra or ""))
    return folder


def _installed(models: Path) -> dict:
    d = models / "models" / "buffalo_l"
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())} if d.is_dir() else {}


@pytest.mark.parametrize("fmt", ["gnu", "binary", "bsd"])
def test_model_import_accepts_each_checksum_format(tmp_path, fmt):
    from f2s_desktop.models import check_pack, import_model_folder
    models = tmp_path / "models"
    st = import_model_folder(_buffalo(tmp_path / "src", sums=fmt), models)
    assert st.state in ("available", "missing-package") and _installed(models)["det_10g.onnx"] == b"detv1"
    assert not list((models / "models").glob(".import-*"))  # no staging left
    assert check_pack(st.spec, models).state == st.state


@pytest.mark.parametrize("sums, message", [
    (b"\x00\x01\xfe\xff binary junk", "not a text file"),
    (b"this is not a checksum\n", "line 1 is not a checksum line"),
    (b"MD5 (det_10g.onnx) = d41d8cd98f00b204e9800998ecf8427e\n", "only SHA256"),
    (("0" * 64 + "  ../outside.onnx\n").encode(), "points outside the pack"),
    (("0" * 64 + "  /etc/passwd\n").encode(), "points outside the pack"),
])
def test_model_import_refuses_bad_checksum_lists(tmp_path, sums, message):
    from f2s_desktop.models import ModelImportError, import_model_folder
    models = tmp_path / "models"
    import_model_folder(_buffalo(tmp_path / "good"), models)
    bad = _buffalo(tmp_path / "bad", content=b"v2")
    (bad / "SHA256SUMS").write_bytes(sums)
    with pytest.raises(ModelImportError, match=message):
        import_model_folder(bad, models)
    assert _installed(models)["det_10g.onnx"] == b"detv1"  # the working pack is untouched


def test_model_import_refuses_symlinks(tmp_path):
    from f2s_desktop.models import ModelImportError, import_model_folder
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    src = _buffalo(tmp_path / "src")
    (src / "notes.txt").symlink_to(secret)
    with pytest.raises(ModelImportError, match="symbolic link"):
        import_model_folder(src, tmp_path / "models")
    (src / "notes.txt").unlink()
    (src / "sub").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(ModelImportError, match="symbolic link"):
        import_model_folder(src, tmp_path / "models")
    assert _installed(tmp_path / "models") == {}


def test_model_import_verifies_every_file_and_refuses_unlisted_weights(tmp_path):
    from f2s_desktop.models import ModelImportError, check_pack, import_model_folder
    models = tmp_path / "models"
    import_model_folder(_buffalo(tmp_path / "good"), models)
    mismatch = _buffalo(tmp_path / "mismatch", content=b"v2")
    (mismatch / "w600k_r50.onnx").write_bytes(b"tampered")
    with pytest.raises(ModelImportError, match="checksum mismatch.*w600k_r50.onnx"):
        import_model_folder(mismatch, models)
    listed_missing = _buffalo(tmp_path / "listed", content=b"v2", extra=f"{'a' * 64}  extra.onnx\n")
    with pytest.raises(ModelImportError, match="does not have: extra.onnx"):
        import_model_folder(listed_missing, models)
    unlisted = _buffalo(tmp_path / "unlisted", content=b"v2")
    (unlisted / "sneaky.onnx").write_bytes(b"unverified weights")
    with pytest.raises(ModelImportError, match="not listed in SHA256SUMS.*sneaky.onnx"):
        import_model_folder(unlisted, models)
    assert _installed(models)["det_10g.onnx"] == b"detv1"
    # a weight file added to an installed pack behind the app's back: shown unverified, not available
    (models / "models" / "buffalo_l" / "sneaky.onnx").write_bytes(b"x")
    from f2s_desktop.models import PACKS
    st = check_pack(next(s for s in PACKS if s.key == "insightface-buffalo_l"), models)
    assert st.state == "unverified" and "sneaky.onnx" in st.detail and not st.ok


def _adapter(folder: Path, config=None, shape=(4, 4)) -> Path:
    """An adapter pack: one safetensors file (header only matters) and optionally a config."""
    import json
    folder.mkdir(parents=True)
    header = json.dumps({"w": {"dtype": "F32", "shape": list(shape), "data_offsets": [0, 64]}}).encode()
    (folder / "lora.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 64)
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config) if not isinstance(config, str) else config)
    return folder


def test_model_import_caps_sizes_and_parameter_counts(tmp_path, monkeypatch):
    from f2s_desktop import models as models_mod
    from f2s_desktop.models import ModelImportError, import_model_folder
    models = tmp_path / "models"
    st = import_model_folder(_adapter(tmp_path / "ok", {"hidden_size": 64, "num_hidden_layers": 2}), models)
    assert st.ok
    with pytest.raises(ModelImportError, match="about 120 G parameters"):
        import_model_folder(_adapter(tmp_path / "huge_cfg", {"hidden_size": 100_000, "num_hidden_layers": 1}),
                            models)
    with pytest.raises(ModelImportError, match="10.0 G parameters"):
        import_model_folder(_adapter(tmp_path / "huge_w", shape=(100_000, 100_000)), models)
    with pytest.raises(ModelImportError, match="a config may be at most 1 MB"):
        import_model_folder(_adapter(tmp_path / "big_cfg", '{"pad": "' + "x" * (1 << 20) + '"}'), models)
    monkeypatch.setattr(models_mod, "MAX_FILE_BYTES", 100)
    with pytest.raises(ModelImportError, match="over the 0 GB a model file may be"):
        import_model_folder(_adapter(tmp_path / "big_file", {}, shape=(2, 2)), models)
    monkeypatch.undo()
    assert (models / "adapter" / "config.json").read_text() == '{"hidden_size": 64, "num_hidden_layers": 2}'


def test_model_import_swap_never_loses_the_working_pack(tmp_path, monkeypatch):
    from f2s_desktop import models as models_mod
    from f2s_desktop.models import import_model_folder
    models = tmp_path / "models"
    import_model_folder(_buffalo(tmp_path / "v1"), models)
    real = os.replace
    calls = []

    def failing_second_rename(a, b):
        calls.append((a, b))
        if len(calls) == 2:  # staging -> pack
            raise OSError(errno.EIO, "Input/output error")
        return real(a, b)
    monkeypatch.setattr(models_mod.os, "replace", failing_second_rename)
    with pytest.raises(OSError):
        import_model_folder(_buffalo(tmp_path / "v2", content=b"v2"), models)
    monkeypatch.undo()
    assert _installed(models)["det_10g.onnx"] == b"detv1"
    assert sorted(p.name for p in (models / "models").iterdir()) == ["buffalo_l"]  # no staging, no .old
    # a crash between the two renames (old aside, new not in): the next import puts it back first
    os.replace(models / "models" / "buffalo_l", models / "models" / ".buffalo_l.old")
    import_model_folder(_buffalo(tmp_path / "v3", content=b"v3"), models)
    assert _installed(models)["det_10g.onnx"] == b"detv3"
