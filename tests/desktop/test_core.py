"""Qt-free state and logic: paths, library, queue/resume, jobs, export, settings. No display."""
from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from f2s_desktop.engine import EngineSettings, load_rgb
from f2s_desktop.export import ExportError, ExportItem, ExportOptions, export_items, items_for_photos
from f2s_desktop.jobs import analyse_photo, analyse_reference, run_queue, run_restore_job
from f2s_desktop.library import SCHEMA_VERSION, Library, LibraryError
from f2s_desktop.paths import app_paths
from f2s_desktop.settings import Settings

from .fakes import FakeEngine, face_dict, make_photo


def sha(p):
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


@pytest.fixture
def lib():
    lib = Library()
    yield lib
    lib.close()


# ------------------------------------------------------------------ paths
def test_home_env_moves_whole_tree(tmp_path, monkeypatch):
    monkeypatch.setenv("FACE2SCENE_HOME", str(tmp_path / "h"))
    p = app_paths().ensure()
    for d in (p.data, p.cache, p.config, p.logs):
        assert d.is_dir() and tmp_path / "h" in d.parents
    assert p.database.parent == p.data and p.thumbnails.is_relative_to(p.cache)


def test_platformdirs_without_env(monkeypatch):
    monkeypatch.delenv("FACE2SCENE_HOME", raising=False)
    p = app_paths()
    assert "Face2Scene" in str(p.data) and "Face2Scene" in str(p.cache)


# ------------------------------------------------------------------ library
def test_schema_versioned_and_reopen(lib):
    assert lib.schema_version == SCHEMA_VERSION
    pid = lib.people.add("Ann")
    lib.close()
    lib2 = Library(lib.paths)
    assert [p.name for p in lib2.people.all()] == ["Ann"] and lib2.people.id_of("ann") == pid
    lib2.close()


def test_newer_schema_refused(lib):
    lib.db.conn.execute("PRAGMA user_version = 99")
    lib.close()
    with pytest.raises(LibraryError, match="newer"):
        Library(lib.paths)


def test_people_add_rename_merge_remove(lib, tmp_path):
    a, b = lib.people.add("Ann"), lib.people.add("Bob")
    with pytest.raises(LibraryError, match="already"):
        lib.people.add("ann")
    with pytest.raises(LibraryError):
        lib.people.add("  ")
    lib.people.rename(b, "Robert")
    assert lib.people.name_of(b) == "Robert"
    with pytest.raises(LibraryError):
        lib.people.rename(b, "Ann")
    r1 = make_photo(tmp_path / "r1.png", 1)
    r2 = make_photo(tmp_path / "r2.png", 2)
    assert len(lib.people.add_references(a, [r1]).added) == 1
    rep = lib.people.add_references(b, [r1, r2])
    assert len(rep.added) == 2
    lib.people.merge(b, a)
    assert [p.name for p in lib.people.all()] == ["Ann"]
    assert sorted(Path(r.path).name for r in lib.people.references(a)) == ["r1.png", "r2.png"]  # r1 not twice
    with pytest.raises(LibraryError):
        lib.people.merge(a, a)
    lib.people.remove(a)
    assert lib.people.all() == [] and lib.people.references() == []
    assert r1.is_file()  # reference files are never touched


def test_import_recursive_duplicates_and_originals_untouched(lib, tmp_path):
    root = tmp_path / "album"
    files = [make_photo(root / "1950" / "a.png", 1), make_photo(root / "1960" / "deep" / "b.jpg", 2, fmt="JPEG"),
             make_photo(root / "c.png", 3)]
    (root / "notes.txt").write_text("not an image")
    (root / "broken.jpg").write_bytes(b"not really a jpeg")
    before = {f: (sha(f), f.stat().st_mtime_ns) for f in files}
    rep = lib.photos.import_files([root])
    assert len(rep.added) == 3
    assert len(rep.errors) == 1 and "broken.jpg" in rep.errors[0][0]
    dup = make_photo(tmp_path / "copy_of_a.png", 1)  # same content elsewhere
    rep2 = lib.photos.import_files([dup, files[0]])
    assert rep2.added == [] and len(rep2.duplicates) == 2
    photos = lib.photos.all()
    assert {p.rel_path.as_posix() for p in photos} == {"1950/a.png", "1960/deep/b.jpg", "c.png"}
    assert all(p.status == "none" and p.faces_state == "pending" for p in photos)
    assert {f: (sha(f), f.stat().st_mtime_ns) for f in files} == before


def test_exif_rotated_size(lib, tmp_path):
    f = make_photo(tmp_path / "rot.jpg", 4, size=(80, 40), orientation=6, fmt="JPEG")
    lib.photos.import_files([f])
    p = lib.photos.all()[0]
    assert (p.width, p.height) == (40, 80)
    assert load_rgb(f).shape == (80, 40, 3)


def test_transaction_rolls_back(lib):
    lib.people.add("Ann")
    with pytest.raises(sqlite3.IntegrityError):
        with lib.db.tx() as c:
            c.execute("INSERT INTO people(name, created) VALUES ('Zed', 0)")
            c.execute("INSERT INTO people(name, created) VALUES ('ann', 0)")
    assert [p.name for p in lib.people.all()] == ["Ann"]


def _key(path):
    return FakeEngine.key(load_rgb(path))


def test_faces_suggest_confirm_and_improve(lib, tmp_path):
    ann = lib.people.add("Ann")
    bob = lib.people.add("Bob")
    refs = [make_photo(tmp_path / "refs" / f"ann{i}.png", 10 + i) for i in range(2)]
    bref = make_photo(tmp_path / "refs" / "bob.png", 20)
    photos = [make_photo(tmp_path / "p" / f"p{i}.png", 30 + i) for i in range(3)]
    faces = {
        _key(refs[0]): [face_dict(0, jitter=0.1, seed=1)],
        # a reference with two faces: the larger is picked, the user can choose the other
        _key(refs[1]): [face_dict(1, box=(0, 0, 60, 60), seed=2), face_dict(0, box=(60, 0, 90, 30), seed=3)],
        _key(bref): [face_dict(1, jitter=0.1, seed=4)],
        _key(photos[0]): [face_dict(0, jitter=0.15, seed=5), face_dict(1, box=(50, 10, 80, 40), jitter=0.15, seed=6)],
        _key(photos[1]): [face_dict(2, jitter=0.1, seed=7)],  # a third person, not in the album
        _key(photos[2]): [face_dict(2, jitter=0.1, seed=8)],
    }
    eng = FakeEngine(faces)
    lib.people.add_references(ann, refs)
    lib.people.add_references(bob, [bref])
    for r in lib.people.references_pending():
        analyse_reference(lib, eng, r.id)
    multi = next(r for r in lib.people.references(ann) if r.n_faces == 2)
    assert multi.face_index == 0  # the largest face
    lib.photos.import_files([tmp_path / "p"])
    for pid in lib.photos.pending_faces():
        assert analyse_photo(lib, eng, pid) >= 1
    assert lib.photos.pending_faces() == []
    p0 = lib.photos.all()[0].id
    f0, f1 = lib.faces.for_photo(p0)
    # the wrong face picked in Ann's two-face reference: person 1's face is in Ann's gallery
    assert f1.suggested_person_id in (ann, bob)
    lib.people.choose_reference_face(multi.id, 1)
    f0, f1 = lib.faces.for_photo(p0)
    assert f0.suggested_person_id == ann and f0.suggested_confidence > 0.5
    assert f1.suggested_person_id == bob
    with pytest.raises(LibraryError):
        lib.people.choose_reference_face(multi.id, 5)
    # an unknown person gets no suggestion until one of their faces is confirmed
    p1, p2 = lib.photos.all()[1].id, lib.photos.all()[2].id
    assert lib.faces.for_photo(p1)[0].suggested_person_id is None
    cara = lib.people.add("Cara")
    lib.faces.confirm(lib.faces.for_photo(p1)[0].id, cara)
    assert lib.faces.for_photo(p1)[0].person_id == cara
    g = lib.faces.for_photo(p2)[0]
    assert g.suggested_person_id == cara and g.confirmed_person_id is None  # learned from the confirmation
    assert [p.id for p in lib.photos.all(person_id=cara)] == [p1, p2]
    lib.faces.confirm(g.id, None)  # clear
    g = lib.faces.for_photo(p2)[0]
    assert g.person_id is None
    people = lib.people_for_pipeline(p0)
    assert set(people) == {"Ann", "Bob"}
    assert any(r["box"] for r in people["Ann"])  # the multi-face reference carries its chosen box


def test_detection_error_recorded(lib, tmp_path):
    f = make_photo(tmp_path / "x.png", 1)
    lib.photos.import_files([f])
    f.write_bytes(b"gone bad")  # the original became unreadable after import
    pid = lib.photos.all()[0].id
    assert analyse_photo(lib, FakeEngine(), pid) == 0
    p = lib.photos.get(pid)
    assert p.faces_state == "error" and p.faces_error


def test_thumbnail_cached(lib, tmp_path):
    f = make_photo(tmp_path / "t.png", 1, size=(400, 300))
    lib.photos.import_files([f])
    p = lib.photos.all()[0]
    t = lib.files.thumbnail(p.path, p.sha256, 128)
    assert t.is_file() and max(Image.open(t).size) == 128
    mtime = t.stat().st_mtime_ns
    assert lib.files.thumbnail(p.path, p.sha256, 128).stat().st_mtime_ns == mtime


# ------------------------------------------------------------------ queue, jobs, resume
def _setup_photos(lib, tmp_path, n=3):
    files = [make_photo(tmp_path / "in" / f"p{i}.png", 40 + i) for i in range(n)]
    lib.photos.import_files(files)
    return files


def test_queue_states_versions_never_overwritten(lib, tmp_path):
    files = _setup_photos(lib, tmp_path)
    q = lib.queue
    eng = FakeEngine(fail_on={_key(files[1])})
    ids = [p.id for p in lib.photos.all()]
    assert len(q.enqueue(ids, EngineSettings().to_json())) == 3
    assert q.enqueue(ids, {}) == []  # not queued twice
    assert {p.status for p in lib.photos.all()} == {"queued"}
    assert run_queue(lib, eng) == 3
    st = {p.id: p for p in lib.photos.all()}
    assert st[ids[0]].status == "done" and st[ids[2]].status == "done"
    assert st[ids[1]].status == "error" and "cannot be restored" in st[ids[1]].status_error  # batch went on
    v1 = lib.versions.latest(ids[0])
    assert v1.number == 1 and Path(v1.path).is_file() and v1.backends["restorer"] == "fake"
    assert v1.degradation["noise_sigma"] == 3.0 and v1.settings["tile_size"] == 1024
    first = Path(v1.path).read_bytes()
    q.enqueue([ids[0]], EngineSettings(strength=0.5).to_json())
    run_queue(lib, eng)
    vs = lib.versions.for_photo(ids[0])
    assert [v.number for v in vs] == [1, 2] and Path(vs[0].path).read_bytes() == first
    assert vs[1].settings["strength"] == 0.5
    a, b = (np.asarray(Image.open(v.path)) for v in vs)
    assert not np.array_equal(a, b)  # strength changed the result
    assert q.eta() is not None and q.counts()["done"] == 3


def test_resume_after_crash(lib, tmp_path):
    _setup_photos(lib, tmp_path, 4)
    q = lib.queue
    ids = [p.id for p in lib.photos.all()]
    q.enqueue(ids, EngineSettings().to_json())
    eng = FakeEngine()
    run_restore_job(lib, eng, q.claim_next())  # photo 0 done
    q.claim_next()                                 # photo 1 running when the app "crashes"
    lib.close()
    lib2 = Library(lib.paths)
    q2 = lib2.queue
    assert q2.recover() == 1
    eng2 = FakeEngine()
    assert run_queue(lib2, eng2) == 3
    assert len(eng2.restored) == 3  # the finished photo was not redone
    assert [len(lib2.versions.for_photo(i)) for i in ids] == [1, 1, 1, 1]
    lib2.close()


def test_orphan_version_file_not_reused(lib, tmp_path):
    _setup_photos(lib, tmp_path, 1)
    pid = lib.photos.all()[0].id
    orphan = lib.files.version_dir(pid) / "v001.png"
    orphan.write_bytes(b"left by a crash")
    q = lib.queue
    q.enqueue([pid], {})
    run_queue(lib, FakeEngine())
    assert lib.versions.latest(pid).number == 2 and orphan.read_bytes() == b"left by a crash"


def test_pause_persists_and_cancel(lib, tmp_path):
    _setup_photos(lib, tmp_path, 3)
    q = lib.queue
    ids = [p.id for p in lib.photos.all()]
    q.enqueue(ids, {})
    q.set_paused(True)
    assert Library(lib.paths).queue.paused and q.claim_next() is None
    q.set_paused(False)
    assert q.cancel_queued([ids[2]]) == 1
    from face2scene.progress import CancelToken
    tok = CancelToken()
    eng = FakeEngine()
    job = q.claim_next()
    tok.cancel()
    assert run_restore_job(lib, eng, job, cancel=tok) is None
    assert q.job(job.id).state == "cancelled" and lib.versions.for_photo(ids[0]) == []
    assert lib.photos.get(ids[0]).status == "none" and lib.photos.get(ids[2]).status == "none"
    assert q.cancel_queued() == 1 and q.pending() == 0


def test_worker_thread_connection(lib, tmp_path):
    """The worker thread uses its own connection; the GUI thread sees its writes."""
    _setup_photos(lib, tmp_path, 2)
    q = lib.queue
    q.enqueue([p.id for p in lib.photos.all()], {})
    t = threading.Thread(target=run_queue, args=(lib, FakeEngine()))
    t.start()
    t.join(30)
    assert all(p.status == "done" for p in lib.photos.all())


# ------------------------------------------------------------------ what the pipeline receives
def test_pipeline_gets_an_assignment_for_every_face(lib, tmp_path):
    """What the user sees is what is restored: every face goes to the pipeline with the person the
    app shows (confirmed, else suggested) or None (unknown or cleared: restored without anyone's
    references); the people given are exactly those named; a group-photo reference carries the
    chosen face's box."""
    from f2s_desktop.present import face_label, version_warnings
    ann, bob, cara = (lib.people.add(n) for n in ("Ann", "Bob", "Cara"))
    aref, bref = make_photo(tmp_path / "refs" / "ann.png", 10), make_photo(tmp_path / "refs" / "bob.png", 11)
    group = make_photo(tmp_path / "refs" / "group.png", 12)
    cref = make_photo(tmp_path / "refs" / "cara.png", 13)
    photo = make_photo(tmp_path / "p" / "family.png", 20, size=(200, 64))
    eng = FakeEngine({
        _key(aref): [face_dict(0, seed=1)], _key(bref): [face_dict(1, seed=2)],
        _key(group): [face_dict(1, box=(0, 0, 60, 60), seed=3), face_dict(5, box=(60, 0, 80, 20), seed=4)],
        _key(cref): [face_dict(2, seed=5)],
        _key(photo): [face_dict(0, box=(0, 10, 30, 40), jitter=0.1, seed=6),      # Ann, suggested
                      face_dict(1, box=(40, 10, 70, 40), jitter=0.1, seed=7),     # Bob, confirmed
                      face_dict(2, box=(80, 10, 110, 40), jitter=0.1, seed=8),    # Cara, cleared by the user
                      face_dict(7, box=(120, 10, 150, 40), jitter=0.1, seed=9)]})  # nobody in the library
    lib.people.add_references(ann, [aref])
    lib.people.add_references(bob, [bref, group])
    lib.people.add_references(cara, [cref])
    for r in lib.people.references_pending():
        analyse_reference(lib, eng, r.id)
    lib.photos.import_files([photo])
    pid = lib.photos.all()[0].id
    analyse_photo(lib, eng, pid)
    f = lib.faces.for_photo(pid)
    assert [x.suggested_person_id for x in f] == [ann, bob, cara, None]
    lib.faces.confirm(f[1].id, bob)
    lib.faces.confirm(f[2].id, None)
    shown = [face_label(lib, x) for x in lib.faces.for_photo(pid)]
    assert shown[0].startswith("Ann?") and shown[1] == "Bob \u2713" and shown[2:] == ["?", "?"]
    faces, assignments = lib.faces_for_pipeline(pid)
    assert len(faces) == 4 and assignments == {0: "Ann", 1: "Bob", 2: None, 3: None}
    people = lib.people_for_pipeline(pid)
    assert set(people) == {"Ann", "Bob"}
    assert [r["box"] is not None for r in people["Bob"]] == [False, True]  # the group photo's chosen face
    lib.queue.enqueue([pid], EngineSettings().to_json())
    run_queue(lib, eng)
    got = eng.calls[-1]
    assert got["assignments"] == assignments and set(got["people"]) == {"Ann", "Bob"}
    v = lib.versions.latest(pid)
    rf = v.result["faces"]
    assert rf[0]["references_used"] == [str(aref.resolve())]
    assert rf[1]["references_used"] == [str(bref.resolve()), str(group.resolve())]
    for unknown in rf[2:]:
        assert unknown["references_used"] == [] and unknown["skipped"]
    assert "face 4: no person assigned (shown as unknown): restored without references" in version_warnings(v)
    # a person the app shows whose references are all gone is still given (with none), never dropped
    aref.unlink()
    assert lib.people_for_pipeline(pid)["Ann"] == []


def test_group_reference_goes_to_the_pipeline_as_refimage(tmp_path):
    """A reference whose chosen face is one of several is cropped out and passed as a RefImage
    labelled with its file (so the report names the file); a one-face reference stays a path."""
    from face2scene.types import RefImage
    from f2s_desktop.engine import Engine
    group = make_photo(tmp_path / "group.png", 3, size=(160, 100))
    single = make_photo(tmp_path / "single.png", 4)
    out = Engine().people_images({"Bob": [{"path": str(group), "box": [100, 20, 140, 60]},
                                          {"path": str(single), "box": None}]})
    crop, path = out["Bob"]
    assert isinstance(crop, RefImage) and crop.label == str(group) and crop.image.shape[2] == 3
    assert crop.image.shape[:2] != (100, 160) and path == str(single)


def test_refimage_crosses_a_process_pipe():
    """The engine process's pipe pickles what it carries: a RefImage arrives whole."""
    import multiprocessing as mp
    from face2scene.types import RefImage
    a, b = mp.get_context("spawn").Pipe()
    ref = RefImage(np.arange(48, dtype=np.uint8).reshape(4, 4, 3), label="/photos/group.jpg")
    a.send({"Ann": [ref]})
    got = b.recv()["Ann"][0]
    assert isinstance(got, RefImage) and got.label == ref.label and np.array_equal(got.image, ref.image)
    a.close()
    b.close()


# ------------------------------------------------------------------ errors as data
def test_errors_cross_boundaries_as_typed_data(caplog):
    """{kind, message, file} survives JSON (the pipe, the database) and comes back as the same type;
    anything else is a "bug" whose traceback is logged where it happened."""
    import json
    from face2scene.errors import (Cancelled, ConfigError, Face2SceneError, FaceBackendError, ImageError,
                                   WeightsError)
    from f2s_desktop.errors import EngineError, ErrorInfo, InternalError, error_info
    for cls in (ImageError, WeightsError, ConfigError, FaceBackendError, EngineError):
        info = error_info(cls("it went wrong\nsecond line"), file="/photos/a.jpg")
        back = ErrorInfo.from_json(json.loads(json.dumps(info.to_json())))
        e = back.to_exception()
        assert type(e) is cls and back.kind == cls.kind and str(e) == "it went wrong"
        assert e.file == "/photos/a.jpg" and error_info(e) == back
    assert type(error_info(Cancelled("stop")).to_exception()) is Cancelled
    try:
        {}["missing"]
    except KeyError as exc:
        with caplog.at_level("ERROR"):
            bug = error_info(exc)
    assert bug.kind == "bug" and bug.message == "KeyError: 'missing'" and "Traceback" in bug.detail
    assert "KeyError" in caplog.text and "Traceback" in caplog.text
    e = bug.to_exception()
    assert isinstance(e, InternalError) and isinstance(e, Face2SceneError) and str(e) == bug.message


def test_job_errors_keep_kind_and_file(lib, tmp_path, monkeypatch):
    files = _setup_photos(lib, tmp_path, 3)
    eng = FakeEngine(fail_on={_key(files[0])})
    broken = files[2]
    ids = [p.id for p in lib.photos.all()]
    real = FakeEngine.restore

    def restore(self, rgb, *a, **kw):
        if self.key(rgb) == _key(files[1]):
            raise ZeroDivisionError("division by zero")  # a bug in the engine
        return real(self, rgb, *a, **kw)
    monkeypatch.setattr(FakeEngine, "restore", restore)
    broken.write_bytes(b"not an image any more")
    lib.queue.enqueue(ids, {})
    run_queue(lib, eng)
    jobs = {j.photo_id: j for j in lib.queue.jobs()}
    e0, e1, e2 = (jobs[i].error_info for i in ids)
    assert (e0.kind, e0.message) == ("engine", "this photo cannot be restored (test)")
    assert (e1.kind, e1.message) == ("bug", "ZeroDivisionError: division by zero")
    assert e2.kind == "image" and "p2.png" in e2.message
    assert e0.file == lib.photos.get(ids[0]).path and e2.file == lib.photos.get(ids[2]).path
    assert lib.photos.get(ids[1]).status_error == "ZeroDivisionError: division by zero"  # one line for the user
    lib.queue.retry_errors()
    assert all(j.error_info is None for j in lib.queue.jobs())


def test_process_engine_errors_are_typed(caplog):
    """Across the engine process's pipe: a bad option arrives as ConfigError, a bug in the child as
    InternalError with its traceback logged in the app's log."""
    pytest.importorskip("face2scene.pipeline")
    from face2scene.errors import ConfigError
    from f2s_desktop.engine_process import ProcessEngine
    from f2s_desktop.errors import InternalError
    eng = ProcessEngine(EngineSettings(device="cpu", restorer="nope"))
    try:
        with pytest.raises(ConfigError, match="unknown restorer 'nope'"):
            eng.matcher()
        eng._call("settings", EngineSettings(device="cpu", restorer="classical").to_json())
        with caplog.at_level("ERROR"), pytest.raises(InternalError) as bug:
            eng.detect("not an image")
        assert bug.value.info.kind == "bug" and "\n" not in str(bug.value)
        assert "Traceback" in caplog.text and "the restoration process failed" in caplog.text
    finally:
        eng.close()


def test_schema_1_library_is_migrated(tmp_path):
    """A library made before job errors kept their kind opens, migrated, with its rows kept."""
    from f2s_desktop.library.schema import SCHEMA_V1
    paths = app_paths(tmp_path / "old").ensure()
    c = sqlite3.connect(paths.database)
    c.executescript(SCHEMA_V1)
    c.execute("INSERT INTO photos(id, path, sha256, imported) VALUES (1, '/a.jpg', 'x', 0)")
    c.execute("INSERT INTO jobs(photo_id, state, settings, created, error) VALUES (1, 'error', '{}', 0, 'old')")
    c.execute("PRAGMA user_version = 1")
    c.commit()
    c.close()
    lib = Library(paths)
    try:
        assert lib.schema_version == SCHEMA_VERSION > 1
        (job,) = lib.queue.jobs()
        assert job.error == "old" and job.error_info.kind == "error" and lib.photos.get(1).status == "error"
    finally:
        lib.close()


# ------------------------------------------------------------------ export


def _srgb_icc():
    from PIL import ImageCms
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF", "WEBP"])
def test_export_formats_metadata(tmp_path, fmt):
    icc = _srgb_icc()
    orig = make_photo(tmp_path / "src" / "old.jpg", 5, size=(60, 40), exif_date="1952:06:01 10:00:00",
                      orientation=6, icc=icc, fmt="JPEG")
    os.utime(orig, (1e9, 1e9))
    restored = tmp_path / "v001.png"
    Image.fromarray(load_rgb(orig)).save(restored)  # an upright "restoration"
    opts = ExportOptions(tmp_path / "out", format=fmt, quality=90, side_by_side=True)
    rep = export_items([ExportItem(orig, restored, 1, 7)], opts)
    assert rep.errors == [] and len(rep.written) == 2
    out = rep.written[0]
    assert out.name == "old_restored_1" + {"PNG": ".png", "JPEG": ".jpg", "TIFF": ".tif", "WEBP": ".webp"}[fmt]
    with Image.open(out) as im:
        assert im.size == (40, 60)
        ex = im.getexif()
        assert ex.get(0x0112) == 1  # orientation normalised: the pixels are already upright
        assert ex.get_ifd(0x8769).get(0x9003) == "1952:06:01 10:00:00"
        assert im.info.get("icc_profile") == icc
    assert abs(out.stat().st_mtime - 1e9) < 2
    with Image.open(rep.written[1]) as im:
        assert im.size == (40 * 2 + 8, 60)
    assert not list((tmp_path / "out").glob(".*tmp"))


def test_export_template_mirror_no_overwrite(lib, tmp_path):
    root = tmp_path / "album"
    make_photo(root / "1950" / "a.png", 1)
    make_photo(root / "b.png", 2)
    lib.photos.import_files([root])
    q = lib.queue
    ids = [p.id for p in lib.photos.all()]
    by_name = {p.name: p.id for p in lib.photos.all()}
    q.enqueue(ids, {})
    run_queue(lib, FakeEngine())
    items = items_for_photos(lib, ids)
    opts = ExportOptions(tmp_path / "out", format="PNG", template="{name}-{id}-v{version}", mirror=True)
    rep = export_items(items, opts)
    rel = sorted(p.relative_to(tmp_path / "out").as_posix() for p in rep.written)
    a, b = by_name["a.png"], by_name["b.png"]
    assert rel == sorted([f"1950/a-{a}-v1.png", f"b-{b}-v1.png"])
    rep2 = export_items(items, opts)
    assert sorted(p.name for p in rep2.written) == sorted([f"a-{a}-v1 (2).png", f"b-{b}-v1 (2).png"])
    with pytest.raises(ExportError, match="unknown field"):
        export_items(items, ExportOptions(tmp_path / "o", template="{nme}"))
    with pytest.raises(ExportError, match="format"):
        export_items(items, ExportOptions(tmp_path / "o", format="BMPX"))
    # a missing version file is an error for that photo only
    Path(items[0].restored).unlink()
    rep3 = export_items(items, ExportOptions(tmp_path / "o3", format="JPEG"))
    assert len(rep3.errors) == 1 and len(rep3.written) == 1


# ------------------------------------------------------------------ settings
def test_settings_roundtrip_and_broken_file():
    p = app_paths().ensure()
    s = Settings(p)
    e = s.engine
    e.tile_size = 256
    s.engine = e
    s["thumb_size"] = 200
    s.save()
    s2 = Settings(p)
    assert s2.engine.tile_size == 256 and s2["thumb_size"] == 200 and s2["export"]["format"] == "JPEG"
    p.settings_file.write_text("{broken")
    s3 = Settings(p)
    assert s3.engine.tile_size == 1024


def test_models_status_and_import_insightface_layout(tmp_path):
    import hashlib
    from f2s_desktop.models import import_model_folder, model_status
    models = tmp_path / "models"
    st = {s.spec.key: s for s in model_status(models)}
    assert st["dlib"].ok and not st["insightface-buffalo_l"].ok
    assert str(models / "models" / "buffalo_l") in st["insightface-buffalo_l"].detail
    # the compact model ships inside the package; a copy in the models folder replaces it
    assert st["compact"].ok and st["compact"].folder.parts[-2:] == ("weights", "compact")
    src = tmp_path / "buffalo_l"
    src.mkdir()
    for n in ("det_10g.onnx", "w600k_r50.onnx"):
        (src / n).write_bytes(n.encode())
    (src / "SHA256SUMS").write_text("".join(f"{hashlib.sha256(n.encode()).hexdigest()}  {n}\n"
                                            for n in ("det_10g.onnx", "w600k_r50.onnx")))
    res = import_model_folder(src, models)
    # the files land where face2scene's insightface backend reads them
    assert (models / "models" / "buffalo_l" / "det_10g.onnx").is_file()
    assert res.state in ("available", "missing-package")
    with pytest.raises(ValueError, match="does not look like"):
        import_model_folder(tmp_path / "in", models) if (tmp_path / "in").mkdir() is None else None
    assert Settings(app_paths().ensure()).engine.models_dir == str(app_paths().models)
    shipped = st["compact"].folder
    res = import_model_folder(shipped, models)
    assert res.ok and res.folder == models / "compact" and (models / "compact" / "restorer" / "config.json").is_file()
    assert (shipped / "restorer" / "config.json").is_file()  # the installed copy is never touched


def test_changed_suggestions_announce_and_write_only_what_changed(lib, tmp_path):
    """Naming one face reports the photos whose suggestions changed (the views reload only those)
    and writes only changed rows; the people's face counts follow the shown-as rule."""
    photos = [make_photo(tmp_path / "p" / f"p{i}.png", 40 + i) for i in range(3)]
    faces = {_key(photos[0]): [face_dict(0, jitter=0.1, seed=1)],
             _key(photos[1]): [face_dict(0, jitter=0.1, seed=2)],
             _key(photos[2]): [face_dict(1, jitter=0.1, seed=3)]}
    eng = FakeEngine(faces)
    lib.photos.import_files([tmp_path / "p"])
    for pid in lib.photos.pending_faces():
        analyse_photo(lib, eng, pid)
    by_name = {p.name: p.id for p in lib.photos.all()}
    ann, bob = lib.people.add("Ann"), lib.people.add("Bob")
    assert lib.faces.changed_suggestions() == {}                       # nobody known yet: nothing changes
    lib.faces.confirm(lib.faces.for_photo(by_name["p0.png"])[0].id, ann, update=False)
    writes = lib.db.conn.total_changes
    assert lib.faces.changed_suggestions() == {by_name["p1.png"]: 1}   # Ann's look-alike, not Bob's photo
    assert lib.faces.for_photo(by_name["p1.png"])[0].suggested_person_id == ann
    assert lib.db.conn.total_changes - writes <= 2      # p1's new suggestion (and p2's distance to Ann)
    writes = lib.db.conn.total_changes
    assert lib.faces.changed_suggestions() == {} and lib.db.conn.total_changes == writes
    counts = {p.name: (p.n_faces, p.n_refs) for p in lib.people.all()}
    assert counts == {"Ann": (2, 0), "Bob": (0, 0)}                     # one confirmed, one suggested
    assert lib.people.names() == [(ann, "Ann"), (bob, "Bob")]
    plan = lib.db.conn.execute("EXPLAIN QUERY PLAN SELECT COALESCE(confirmed_person_id, suggested_person_id) AS pid,"
                               " COUNT(*) FROM faces GROUP BY pid").fetchall()
    assert "faces_shown" in " ".join(str(tuple(r)) for r in plan)      # counted from the index
