"""The whole flow on real photos with the real pipeline (fast configuration: CPU, classical
restorer, downscaled copies): import -> assign people -> restore -> compare -> export."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytestmark = pytest.mark.gui

from PySide6.QtCore import Qt  # noqa: E402


def _small(src: Path, dst: Path, side: int) -> Path:
    from PIL import Image, ImageOps
    with Image.open(src) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        im.thumbnail((side, side))
        dst.parent.mkdir(parents=True, exist_ok=True)
        im.save(dst, quality=90)
    return dst


@pytest.fixture
def fast_engine(monkeypatch):
    """The app's own engine (pipeline in a child process), CPU, classical restorer, 1 thread."""
    pytest.importorskip("face2scene.pipeline")
    monkeypatch.setenv("F2S_TORCH_THREADS", "1")
    from f2s_desktop.engine import EngineSettings
    from f2s_desktop.engine_process import ProcessEngine
    settings = EngineSettings(device="cpu", restorer="classical")
    return settings, (lambda: ProcessEngine(settings))


@pytest.mark.data
def test_process_engine_restore_cancel_crash(tmp_path, identities, fast_engine):
    """Detect, restore, cancel and survive a crash of the child process."""
    import os
    import signal
    import threading
    from face2scene.progress import CancelToken, Cancelled
    from f2s_desktop.engine import EngineError, load_rgb
    settings, factory = fast_engine
    eng = factory()
    try:
        rgb = load_rgb(_small(identities["angelina_jolie"][3], tmp_path / "p.jpg", 320))
        faces = eng.detect(rgb)
        assert faces and len(faces[0]["embedding"]) == 128
        assert eng.matcher().metric == "euclidean"
        stages = []
        res = eng.restore(rgb, {}, settings, progress=lambda s, f, m: stages.append(s))
        assert res.image.shape == rgb.shape and "restore" in stages
        # a reference given as pixels crosses the pipe and is reported by its label
        from face2scene.types import RefImage
        ref = RefImage(load_rgb(_small(identities["angelina_jolie"][0], tmp_path / "r.jpg", 320)), "/album/group.jpg")
        res = eng.restore(rgb, {"Angelina": [ref]}, settings)
        assert [f.references_used for f in res.faces if f.person == "Angelina"] == [["/album/group.jpg"]]
        tok = CancelToken()
        with pytest.raises(Cancelled):
            eng.restore(rgb, {}, settings, progress=lambda s, f, m: tok.cancel(), cancel=tok)
        # pause halts the child at its next progress report; resume lets it finish
        eng.set_paused(True)
        seen, out = [], []
        t = threading.Thread(target=lambda: out.append(
            eng.restore(rgb, {}, settings, progress=lambda s, f, m: seen.append(s))))
        t.start()
        import time
        time.sleep(1.0)
        n_paused = len(seen)
        assert not out and n_paused <= 1
        eng.set_paused(False)
        t.join(60)
        assert out and len(seen) > n_paused
        # a crash of the child ends that call with an error; the next call starts a new child
        pid = eng.pid
        threading.Timer(0.3, lambda: os.kill(pid, signal.SIGKILL)).start()
        with pytest.raises(EngineError, match="stopped unexpectedly"):
            while True:  # keep it busy until the kill lands
                eng.restore(rgb, {}, settings)
        assert len(eng.detect(rgb)) == len(faces) and eng.pid != pid
    finally:
        eng.close()
    assert eng.pid is None


@pytest.mark.data
def test_import_assign_restore_compare_export(qtbot, make_window, tmp_path, identities, shared_data, fast_engine):
    settings, factory = fast_engine
    person = "angelina_jolie"
    files = identities[person]
    refs = [_small(files[0], tmp_path / "refs" / "r1.jpg", 400), _small(files[1], tmp_path / "refs" / "r2.jpg", 400)]
    photo = _small(files[3], tmp_path / "album" / "family" / "photo.jpg", 360)
    old = sorted((shared_data / "old_photos").glob("*"))
    other = _small(old[0], tmp_path / "album" / "old.png", 320) if old else None
    originals = {p: p.read_bytes() for p in [photo] + ([other] if other else [])}

    win = make_window(factory)
    win.settings.engine = settings
    # import (background) -> faces detected by the worker
    done = []
    win.import_paths([str(tmp_path / "album")], on_done=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=20000)
    assert len(done[0].added) == (2 if other else 1)
    pid = next(p.id for p in win.lib.photos.all() if p.name == "photo.jpg")
    # assign people: a person with a reference album
    person_id = win.people.add_person("Angelina")
    win.people.add_references(person_id, [str(r) for r in refs])
    qtbot.waitUntil(lambda: len(win.lib.people.references(person_id)) == 2 and not win.lib.people.references_pending()
                    and not win.lib.photos.pending_faces(), timeout=60000)
    faces = win.lib.faces.for_photo(pid)
    assert len(faces) >= 1
    face = max(faces, key=lambda f: (f.box[2] - f.box[0]))
    assert face.suggested_person_id == person_id and face.suggested_confidence > 0.5
    win.select_photo(pid)
    qtbot.waitUntil(lambda: win.face_panel.photo_id == pid, timeout=5000)
    win.face_panel.select_index(face.idx)
    win.face_panel.assign(person_id)  # confirm
    assert win.lib.faces.get(face.id).confirmed_person_id == person_id
    # restore (shortcut), one worker thread, progress per stage
    stages = []
    win.worker.jobProgress.connect(lambda p, st, fr, m, eta: stages.append(st))
    win.library_page.grid.setFocus()
    with qtbot.waitSignal(win.worker.jobFinished, timeout=120000,
                          check_params_cb=lambda p, state, vid, err: p == pid) as blk:
        qtbot.keyClick(win, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    assert blk.args[1] == "done", blk.args[3]
    # progress per stage (a stage over within a few ms of the last report may be folded into the next:
    # a clean photo's restore step is instant since the do-no-harm gate)
    assert len(set(stages)) >= 3 and {"ref-fr", "fadex", "restore"} & set(stages), stages
    v = win.lib.versions.latest(pid)
    assert v.backends["restorer"] == "classical" and v.degradation["source"] in ("face", "blind")
    rf = next(f for f in v.result["faces"] if f["person"] == "Angelina")
    assert rf["references_used"] and Path(v.face_crop_path(rf["index"])).is_file()
    # compare: versions listed, after image shown, faces highlighted with the person's name
    win.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: win.compare_page.view.after is not None, timeout=10000)
    assert win.compare_page.view.before.size() == win.compare_page.view.after.size()
    assert any("Angelina" in m.label for m in win.compare_page.view.faces)
    assert "noise" in win.face_panel.estimate.text() and "r" in win.face_panel.refs.text()
    img = win.compare_page.view.grab().toImage()
    assert not img.isNull()
    # re-running adds a version, never overwrites
    first = Path(v.path).read_bytes()
    with qtbot.waitSignal(win.worker.jobFinished, timeout=120000):
        win.enqueue([pid])
    assert [x.number for x in win.lib.versions.for_photo(pid)] == [1, 2] and Path(v.path).read_bytes() == first
    # export (background), EXIF/ICC carried, originals untouched
    from f2s_desktop.export import ExportOptions
    out = []
    win.export([pid], ExportOptions(tmp_path / "out", "JPEG", 90, side_by_side=True, mirror=True),
               on_done=out.append)
    qtbot.waitUntil(lambda: bool(out), timeout=20000)
    assert out[0].errors == [] and len(out[0].written) == 2
    exported = out[0].written[0]
    assert exported.relative_to(tmp_path / "out").as_posix() == "family/photo_restored_2.jpg"
    from PIL import Image
    with Image.open(exported) as im:
        arr = np.asarray(im.convert("RGB"))
    assert arr.shape[:2] == (win.compare_page.view.after.height(), win.compare_page.view.after.width())
    assert all(p.read_bytes() == b for p, b in originals.items())


def test_app_self_test_restores_sample(qtbot, tmp_path, monkeypatch):
    """`f2s-desktop --self-test` (what a packaged build is checked with) on the public-domain sample."""
    pytest.importorskip("face2scene.pipeline")
    monkeypatch.setenv("F2S_TORCH_THREADS", "1")
    from f2s_desktop import app
    from f2s_desktop.library import Library
    from f2s_desktop.paths import app_paths
    home = tmp_path / "home"
    assert app.main(["--home", str(home), "--self-test"]) == 0
    lib = Library(app_paths(home))
    assert len(lib.versions.for_photo(lib.photos.all()[0].id)) == 1
    lib.close()


def _row(paths, height: int, dst: Path) -> Path:
    """Photos side by side at one height (a "group photo" made of portraits)."""
    from PIL import Image, ImageOps
    ims = []
    for p in paths:
        with Image.open(p) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            ims.append(im.resize((round(im.width * height / im.height), height)))
    out = Image.new("RGB", (sum(i.width for i in ims), height), (128, 128, 128))
    x = 0
    for i in ims:
        out.paste(i, (x, 0))
        x += i.width
    dst.parent.mkdir(parents=True, exist_ok=True)
    out.save(dst, quality=92)
    return dst


@pytest.mark.data
def test_what_the_app_shows_is_what_is_restored(tmp_path, identities):
    """The real pipeline (in-process, CPU, classical restorer) on a photo of three faces: the one
    the app shows as Angelina is restored with her references (one of them cut out of a group
    photo, reported by its file); the one the user cleared and the one of a stranger, both shown
    as unknown, are restored without anyone's references, and the report says why."""
    pytest.importorskip("face2scene.pipeline")
    from f2s_desktop.engine import Engine, EngineSettings
    from f2s_desktop.jobs import analyse_photo, analyse_reference, run_queue
    from f2s_desktop.library import Library
    from f2s_desktop.present import face_label
    a, m, g = identities["angelina_jolie"], identities["matt_damon"], identities["george_clooney"]
    by = {p.name: p for p in a}
    photo = _row([by["img1.jpg"], by["img5.jpg"], m[0]], 300, tmp_path / "album" / "three.jpg")
    single = _small(by["img10.jpg"], tmp_path / "refs" / "angelina.jpg", 320)
    group = _row([by["img11.jpg"], g[1]], 300, tmp_path / "refs" / "with_george.jpg")
    _small(group, group, 520)
    lib = Library()
    eng = Engine(EngineSettings(device="cpu", restorer="classical"))
    try:
        ann = lib.people.add("Angelina")
        lib.people.add_references(ann, [single, group])
        for r in lib.people.references_pending():
            assert analyse_reference(lib, eng, r.id) >= 1
        assert sorted(r.n_faces for r in lib.people.references(ann)) == [1, 2]
        pid = lib.photos.import_files([photo]).added[0]
        assert analyse_photo(lib, eng, pid) == 3
        f = sorted(lib.faces.for_photo(pid), key=lambda x: x.box[0])  # left to right
        assert [x.suggested_person_id for x in f] == [ann, ann, None], [x.suggested_distance for x in f]
        lib.faces.confirm(f[0].id, None)  # "that is not her"
        assert [face_label(lib, lib.faces.get(x.id))[:9] for x in f] == ["?", "Angelina?", "?"]
        lib.queue.enqueue([pid], eng.settings.to_json())
        assert run_queue(lib, eng) == 1
        v = lib.versions.latest(pid)
        assert v is not None, lib.queue.jobs()[-1].error
        by_index = {r["index"]: r for r in v.result["faces"]}
        cleared, shown, stranger = (by_index[x.idx] for x in f)
        assert shown["person"] == "Angelina" and shown["skipped"] is None
        assert set(shown["references_used"]) <= {str(single.resolve()), str(group.resolve())}
        assert str(group.resolve()) in shown["references_used"]  # the RefImage's label: its file
        for face in (cleared, stranger):
            assert face["person"] is None and face["references_used"] == []
            assert face["skipped"].startswith("no person assigned")
    finally:
        lib.close()


def test_restorer_fallback_warning_shown(qtbot, make_window, tmp_path, monkeypatch):
    """The real pipeline in the app (in-process engine) asked for the compact restorer whose
    weights cannot be loaded: the version is made by the classical restorer and the fallback
    warning is on screen, under the image and on the version."""
    pytest.importorskip("face2scene.pipeline")
    learned = pytest.importorskip("face2scene.restorers.learned")
    from face2scene.errors import WeightsError
    from f2s_desktop.engine import Engine, EngineSettings
    from .fakes import make_photo

    def no_weights(*_a, **_kw):
        raise WeightsError(f"no weights in {tmp_path / 'models' / 'compact'} (test)")
    monkeypatch.setattr(learned, "load_learned", no_weights)
    settings = EngineSettings(device="cpu", restorer="compact", models_dir=str(tmp_path / "models"))
    win = make_window(lambda: Engine(settings))
    win.settings.engine = settings
    photo = make_photo(tmp_path / "in" / "tiny.png", 5, size=(96, 64))
    done = []
    win.import_paths([str(photo)], on_done=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=20000)
    pid = done[0].added[0]
    with qtbot.waitSignal(win.worker.jobFinished, timeout=120000) as blk:
        win.enqueue([pid])
    assert blk.args[1] == "done", blk.args[3]
    v = win.lib.versions.latest(pid)
    assert v.backends["restorer"] == "classical"
    win.select_photo(pid)
    win.tabs.setCurrentIndex(1)
    page = win.compare_page
    qtbot.waitUntil(lambda: page.warnings.isVisible(), timeout=10000)
    expected = "the compact restorer could not be loaded: no weights in"
    assert expected in page.warnings.text() and "used the classical restorer" in page.warnings.text()
    assert expected in page.version_combo.itemData(page.version_combo.currentIndex(), Qt.ItemDataRole.ToolTipRole)
    assert "\u26a0" in page.version_combo.currentText()
