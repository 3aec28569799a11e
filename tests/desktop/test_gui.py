"""Widgets with pytest-qt (offscreen), the worker driven by a test-double engine (the real
pipeline runs in test_flow.py)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytestmark = pytest.mark.gui

from PySide6.QtCore import QPointF, Qt  # noqa: E402
from PySide6.QtGui import QImage  # noqa: E402
from PySide6.QtWidgets import QDialogButtonBox  # noqa: E402

from f2s_desktop.engine import load_rgb  # noqa: E402

from .fakes import FakeEngine, face_dict, make_photo  # noqa: E402


def _key(p):
    return FakeEngine.key(load_rgb(p))


def _photos(tmp_path, n=3):
    return [make_photo(tmp_path / "album" / f"sub{i % 2}" / f"p{i}.png", 50 + i, size=(120, 90)) for i in range(n)]


def _import(qtbot, win, paths):
    done = []
    win.import_paths([str(p) for p in paths], on_done=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=10000)
    return done[0]


def test_pyside_keeps_refcounts(qapp):
    """PySide6 6.12.0 on Python 3.11 drops references to None/True on every void call / emit
    (fatal after a while); the app refuses such a build with a message. This one must be sound."""
    import sys
    from PySide6.QtCore import QObject, Signal
    from PySide6.QtWidgets import QLabel
    from f2s_desktop.qtcompat import check
    assert check() is None

    class A(QObject):
        s = Signal(int)
    a, lab = A(), QLabel()
    got = []
    a.s.connect(got.append)
    n0, t0 = sys.getrefcount(None), sys.getrefcount(True)
    for i in range(2000):
        a.s.emit(i)
        lab.setText("x")
    assert len(got) == 2000
    assert abs(sys.getrefcount(None) - n0) < 100 and abs(sys.getrefcount(True) - t0) < 100


def test_import_detect_thumbnails_badges(qtbot, make_window, tmp_path):
    files = _photos(tmp_path)
    eng = FakeEngine({_key(files[0]): [face_dict(0)], _key(files[1]): [face_dict(1), face_dict(0, box=(60, 10, 90, 40))]})
    win = make_window(lambda: eng)
    rep = _import(qtbot, win, [tmp_path / "album"])
    assert len(rep.added) == 3 and win.library_page.model.rowCount() == 3
    qtbot.waitUntil(lambda: win.lib.photos.pending_faces() == [], timeout=10000)
    assert sorted(len(win.lib.faces.for_photo(p.id)) for p in win.lib.photos.all()) == [0, 1, 2]
    # thumbnails come from the background pool, then the delegate paints them
    model = win.library_page.model
    for r in range(3):
        model.data(model.index(r), Qt.ItemDataRole.DecorationRole)
    qtbot.waitUntil(lambda: model.thumbnails_loading == 0, timeout=10000)
    assert all(model.data(model.index(r), Qt.ItemDataRole.DecorationRole) is not None for r in range(3))
    assert {model.data(model.index(r), Qt.UserRole + 2) for r in range(3)} == {"none"}
    win.library_page.grid.grab()  # paints the delegate (badges) without error
    # a duplicate import is reported, not added
    rep2 = _import(qtbot, win, [files[0]])
    assert rep2.added == [] and len(rep2.duplicates) == 1


def test_queue_progress_pause_cancel_error(qtbot, make_window, tmp_path):
    files = _photos(tmp_path, 4)
    eng = FakeEngine(fail_on={_key(files[1])}, delay=0.6)
    win = make_window(lambda: eng)
    _import(qtbot, win, files)
    ids = [win.lib.photos.all()[i].id for i in range(4)]
    by_path = {Path(p.path).name: p.id for p in win.lib.photos.all()}
    progress, errors, messages = [], [], []
    win.worker.jobProgress.connect(lambda pid, st, fr, msg, eta: progress.append((pid, st, fr)))
    win.worker.jobFinished.connect(lambda pid, st, vid, err: errors.append(err) if st == "error" else None)
    win.statusBar().messageChanged.connect(messages.append)
    with qtbot.waitSignal(win.worker.jobStarted, timeout=10000):
        win.enqueue(ids)
    # pause halts the running photo at its next progress report
    win.queue_bar.btn_pause.setChecked(True)
    assert win.lib.queue.paused
    n = len(progress)
    time.sleep(0.5)
    qtbot.wait(50)
    assert len(progress) <= n + 1
    with qtbot.waitSignals([win.worker.jobFinished] * 2, timeout=20000):
        win.queue_bar.btn_pause.setChecked(False)
    # cancel the photo being restored now
    qtbot.waitUntil(lambda: win.worker.current_photo is not None, timeout=10000)
    cur = win.worker.current_photo
    with qtbot.waitSignal(win.worker.jobFinished, timeout=10000,
                          check_params_cb=lambda pid, state, vid, err: pid == cur) as blocker:
        win.queue_bar.cancel_current()
    assert blocker.args[1] == "cancelled"
    qtbot.waitUntil(lambda: win.lib.queue.pending() == 0, timeout=20000)
    states = {p.id: p.status for p in win.lib.photos.all()}
    assert states[by_path["p1.png"]] == "error"                      # shown on that photo ...
    assert sum(s == "done" for s in states.values()) == 2            # ... and the batch went on
    assert states[cur] == "none"
    model = win.library_page.model
    err_row = model.row_of(by_path["p1.png"])
    assert "cannot be restored" in model.data(model.index(err_row), Qt.ItemDataRole.ToolTipRole)
    # the error reached the GUI as data of its kind; the user reads the one-line message
    from f2s_desktop.errors import EngineError
    (err,) = errors
    assert err.kind == "engine" and err.file.endswith("p1.png") and type(err.to_exception()) is EngineError
    assert "p1.png: this photo cannot be restored (test)" in messages
    stages = {s for _, s, _ in progress}
    assert "restore" in stages and len(stages) >= 3 and all(0 <= f <= 1 for *_, f in progress)


def test_cancel_whole_queue_and_resume_on_restart(qtbot, make_window, tmp_path):
    files = _photos(tmp_path, 3)
    eng = FakeEngine(delay=1.0)
    win = make_window(lambda: eng)
    _import(qtbot, win, files)
    ids = [p.id for p in win.lib.photos.all()]
    with qtbot.waitSignal(win.worker.jobStarted, timeout=10000):
        win.enqueue(ids)
    # quitting mid-photo: the running job goes back to the queue
    lib = win.lib
    win.shutdown()
    c = win.lib.queue.counts()
    assert c["queued"] == 3 and c["running"] == 0
    eng2 = FakeEngine(delay=0.0)
    win2 = make_window(lambda: eng2, library=lib)
    qtbot.waitUntil(lambda: win2.lib.queue.pending() == 0, timeout=20000)
    assert all(len(lib.versions.for_photo(i)) == 1 for i in ids)
    # cancel everything queued
    eng2.delay = 1.0
    with qtbot.waitSignal(win2.worker.jobStarted, timeout=10000):
        win2.enqueue(ids)
    win2.queue_bar.cancel_all()
    qtbot.waitUntil(lambda: win2.lib.queue.pending() == 0, timeout=10000)
    assert all(len(lib.versions.for_photo(i)) == 1 for i in ids)  # nothing new, nothing lost


def test_compare_view_modes_zoom_faces(qtbot, no_leaked_widgets):
    from f2s_desktop.ui.compare import CompareView, FaceMark
    v = CompareView()
    qtbot.addWidget(v)
    v.resize(800, 400)
    v.show()
    before = QImage(200, 100, QImage.Format.Format_RGB32)
    before.fill(Qt.GlobalColor.red)
    after = QImage(400, 200, QImage.Format.Format_RGB32)  # a 2x upscale
    after.fill(Qt.GlobalColor.blue)
    v.set_images(before, after)
    v.set_faces([FaceMark(0, (20, 20, 60, 60), "Ann 93%")])
    assert v.zoom == pytest.approx(4.0)  # fitted: 800/200
    img = v.grab().toImage()
    assert img.pixelColor(100, 200).red() > 200 and img.pixelColor(700, 200).blue() > 200  # split: red | blue
    v.toggle_before()
    img = v.grab().toImage()
    assert img.pixelColor(700, 200).red() > 200  # whole view shows the original
    v.toggle_before()
    v.set_mode("side")
    v.fit()
    left, right = v._panes()
    # one zoom/centre for both panes: the same image point sits at the same place in each pane
    p = QPointF(50, 30)
    a, b = v.to_view(p, left), v.to_view(p, right)
    assert a.y() == pytest.approx(b.y()) and b.x() - a.x() == pytest.approx(right.left() - left.left())
    v.zoom_by(2.0, a)
    assert v.to_image(a, left).x() == pytest.approx(50) and v.to_image(b, right).x() == pytest.approx(50)
    v.actual_size()
    assert v.zoom == 1.0
    v.fit()
    with qtbot.waitSignal(v.faceClicked) as blk:
        c = v.to_view(QPointF(40, 40), left).toPoint()
        qtbot.mouseClick(v, Qt.MouseButton.LeftButton, pos=c)
    assert blk.args == [0] and v.selected_face == 0
    # panning moves both sides together
    old = QPointF(v.center)
    qtbot.mousePress(v, Qt.MouseButton.LeftButton, pos=v.rect().center())
    qtbot.mouseMove(v, v.rect().center() + QPointF(40, 0).toPoint())
    qtbot.mouseRelease(v, Qt.MouseButton.LeftButton, pos=v.rect().center() + QPointF(40, 0).toPoint())
    assert v.center.x() < old.x()


def test_people_panel_and_face_assignment(qtbot, make_window, tmp_path):
    files = _photos(tmp_path, 2)
    ref = make_photo(tmp_path / "refs" / "ann.png", 90)
    ref2 = make_photo(tmp_path / "refs" / "two.png", 91)
    eng = FakeEngine({_key(files[0]): [face_dict(0, jitter=0.1, seed=1)],
                      _key(files[1]): [face_dict(3, seed=2)],
                      _key(ref): [face_dict(0, jitter=0.1, seed=3)],
                      _key(ref2): [face_dict(5, box=(0, 0, 50, 50)), face_dict(0, box=(60, 0, 80, 20))]})
    win = make_window(lambda: eng)
    _import(qtbot, win, files)
    pid = win.people.add_person("Ann")
    assert win.people.current_person() == pid
    assert win.library_page.person_filter.count() == 2  # all + Ann
    with qtbot.waitSignal(win.people.referencesAdded, timeout=10000):
        win.people.add_references(pid, [str(ref), str(ref2)])
    qtbot.waitUntil(lambda: not win.lib.people.references_pending(), timeout=10000)
    qtbot.waitUntil(lambda: win.lib.photos.pending_faces() == [], timeout=10000)
    refs = win.lib.people.references(pid)
    assert sorted(r.n_faces for r in refs) == [1, 2]
    win.lib.people.choose_reference_face(next(r.id for r in refs if r.n_faces == 2), 1)
    p0 = next(p.id for p in win.lib.photos.all() if p.name == "p0.png")
    p1 = next(p.id for p in win.lib.photos.all() if p.name == "p1.png")
    assert win.lib.faces.for_photo(p0)[0].suggested_person_id == pid
    # the face panel follows the selected photo; assign the unknown face of p1 to a new person
    bob = win.people.add_person("Bob")
    win.select_photo(p1)
    qtbot.waitUntil(lambda: win.face_panel.photo_id == p1, timeout=5000)
    assert win.face_panel.list.count() == 1 and "?" in win.face_panel.list.item(0).text()
    win.face_panel.assign(bob)
    assert win.lib.faces.for_photo(p1)[0].confirmed_person_id == bob
    assert "\u2713" in win.face_panel.list.item(0).text()
    win.face_panel.clear()
    assert win.lib.faces.for_photo(p1)[0].person_id is None
    # the grid filters by person
    win.library_page.person_filter.setCurrentIndex(win.library_page.person_filter.findData(pid))
    assert [r.id for r in win.library_page.model.rows] == [p0]
    win.library_page.person_filter.setCurrentIndex(0)
    assert win.library_page.model.rowCount() == 2
    win.people.select_person(bob)
    win.library.rename_person(bob, "Robert")  # every view follows libraryChanged
    assert win.library_page.person_filter.findText("Photos of Robert") > 0
    assert any("Robert" in win.people.people.item(i).text() for i in range(win.people.people.count()))


def test_shortcuts_and_compare_after_restore(qtbot, make_window, tmp_path):
    files = _photos(tmp_path, 1)
    eng = FakeEngine({_key(files[0]): [face_dict(0)]})
    win = make_window(lambda: eng)
    _import(qtbot, win, files)
    pid = win.lib.photos.all()[0].id
    win.select_photo(pid)
    win.library_page.grid.setFocus()
    with qtbot.waitSignal(win.worker.jobFinished, timeout=10000):
        qtbot.keyClick(win, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    assert len(win.lib.versions.for_photo(pid)) == 1
    qtbot.keyClick(win, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert win.tabs.currentIndex() == 1
    qtbot.waitUntil(lambda: win.compare_page.view.after is not None, timeout=5000)
    assert win.compare_page.version_combo.currentData() == win.lib.versions.latest(pid).id
    win.compare_page.view.setFocus()
    qtbot.keyClick(win.compare_page.view, Qt.Key.Key_Space)
    assert win.compare_page.view.showing_before
    qtbot.keyClick(win.compare_page.view, Qt.Key.Key_Space)
    qtbot.keyClick(win.compare_page.view, Qt.Key.Key_S)
    assert win.compare_page.view.mode == "side"
    qtbot.keyClick(win.compare_page.view, Qt.Key.Key_1)
    assert win.compare_page.view.zoom == 1.0
    qtbot.keyClick(win.compare_page.view, Qt.Key.Key_H)
    assert not win.compare_page.view.show_faces
    # the face panel shows the restored crop and the estimate of the selected face
    assert win.face_panel.crop.pixmap() is not None and not win.face_panel.crop.pixmap().isNull()
    assert "noise" in win.face_panel.estimate.text()


def test_export_dialog_and_background_export(qtbot, make_window, tmp_path):
    from f2s_desktop.ui.dialogs import ExportDialog
    _photos(tmp_path, 2)
    win = make_window(lambda: FakeEngine())
    _import(qtbot, win, [tmp_path / "album"])
    ids = [p.id for p in win.lib.photos.all()]
    with qtbot.waitSignals([win.worker.jobFinished] * 2, timeout=10000):
        win.enqueue(ids)
    dlg = ExportDialog({"folder": str(tmp_path / "out")}, 2, win)
    ok = dlg.buttons.button(QDialogButtonBox.StandardButton.Ok)
    dlg.template.setText("{nope}")
    assert not ok.isEnabled() and "unknown field" in dlg.error.text()
    dlg.template.setText("{name}_v{version}")
    dlg.format.setCurrentText("PNG")
    dlg.mirror.setChecked(True)
    assert ok.isEnabled()
    opts = dlg.options()
    dlg.deleteLater()
    done = []
    win.export(ids, opts, on_done=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=10000)
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in done[0].written) == \
        ["sub0/p0_v1.png", "sub1/p1_v1.png"]


def test_settings_dialog_roundtrip(qtbot, no_leaked_widgets):
    from f2s_desktop.engine import EngineSettings
    from f2s_desktop.ui.dialogs import SettingsDialog
    d = SettingsDialog(EngineSettings(tile_size=256))
    qtbot.addWidget(d)
    assert d.tile.value() == 256
    d.device.setCurrentText("cpu")
    d.strength.setValue(0.4)
    s = d.result_settings()
    assert (s.device, s.strength, s.tile_size) == ("cpu", 0.4, 256)


def test_models_page_status_and_import(qtbot, make_window, tmp_path):
    import hashlib
    win = make_window(lambda: FakeEngine(), start_worker=False)
    page = win.models_page
    page.refresh()
    qtbot.waitUntil(lambda: not page.busy, timeout=10000)
    states = {s.spec.key: s.state for s in page.statuses}
    assert states["dlib"] == "available" and states["sd-turbo"] == "missing"
    assert states["compact"] == "available"  # shipped inside the package
    row = [s.spec.key for s in page.statuses].index("sd-turbo")
    assert str(win.lib.paths.models / "sd-turbo") in page.table.item(row, 2).text()
    # an adapters folder with a wrong checksum is refused; a right one is imported
    import numpy as np
    from safetensors.numpy import save_file
    src = tmp_path / "adapters"
    src.mkdir()
    save_file({"w": np.zeros((4, 4), np.float32)}, str(src / "fadex.safetensors"))  # a real (tiny) weights file
    weights = (src / "fadex.safetensors").read_bytes()
    (src / "SHA256SUMS").write_text("0" * 64 + "  fadex.safetensors\n")
    msgs = []
    page.message.connect(msgs.append)
    page.import_folder(src)
    qtbot.waitUntil(lambda: bool(msgs), timeout=10000)
    assert "checksum mismatch" in msgs[0]
    (src / "SHA256SUMS").write_text(hashlib.sha256(weights).hexdigest() + "  fadex.safetensors\n")
    page.import_folder(src)
    qtbot.waitUntil(lambda: len(msgs) > 1, timeout=10000)
    qtbot.waitUntil(lambda: not page.busy, timeout=10000)
    assert {s.spec.key: s.state for s in page.statuses}["face2scene-adapters"] == "available"
    (win.lib.paths.models / "adapter" / "fadex.safetensors").write_bytes(b"tampered")  # where the library reads it
    page.refresh()
    qtbot.waitUntil(lambda: not page.busy, timeout=10000)
    assert {s.spec.key: s.state for s in page.statuses}["face2scene-adapters"] == "checksum-mismatch"


def test_theme_follows_scheme(qapp):
    from PySide6.QtGui import QPalette
    from f2s_desktop.ui.theme import apply_theme
    try:
        apply_theme(qapp, "dark")
        assert qapp.palette().color(QPalette.ColorRole.Window).lightness() < 100
        apply_theme(qapp, "light")
        assert qapp.palette().color(QPalette.ColorRole.Window).lightness() > 150
        assert apply_theme(qapp) in ("light", "dark")
    finally:
        apply_theme(qapp)


def test_app_main_starts_and_quits(qtbot, tmp_path, capsys):
    from f2s_desktop import app
    rc = app.main(["--home", str(tmp_path / "home"), "--quit-after-ready"])
    assert rc == 0
    assert "startup_to_usable_window_s=" in capsys.readouterr().out
    assert (tmp_path / "home" / "data" / "library.sqlite3").is_file()


def test_app_main_open_with_imports_files(qtbot, tmp_path):
    """"Open with": files on the command line are imported (the import finishes before exit)."""
    from f2s_desktop import app
    from f2s_desktop.library import Library
    from f2s_desktop.paths import app_paths
    photo = make_photo(tmp_path / "in" / "grandma.png", 7)
    home = tmp_path / "home"
    assert app.main(["--home", str(home), "--quit-after-ready", str(photo)]) == 0
    lib = Library(app_paths(home))
    assert [p.name for p in lib.photos.all()] == ["grandma.png"]
    lib.close()


def test_choose_face_dialog(qtbot, no_leaked_widgets, tmp_path):
    from f2s_desktop.ui.people import ChooseFaceDialog
    ref = make_photo(tmp_path / "two.png", 3, size=(120, 80))
    faces = [face_dict(0, box=(5, 5, 40, 40)), face_dict(1, box=(60, 10, 100, 50))]
    d = ChooseFaceDialog(str(ref), faces, 0)
    qtbot.addWidget(d)
    assert d.list.count() == 2 and d.chosen == 0
    d.list.setCurrentRow(1)
    assert d.chosen == 1


def _drop(widget, paths, pos=None):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent
    md = QMimeData()
    md.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = pos if pos is not None else QPointF(widget.rect().center())
    ev = QDropEvent(pos, Qt.DropAction.CopyAction, md, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    widget.dropEvent(ev)


def test_drag_and_drop_photos_and_references(qtbot, make_window, tmp_path):
    _photos(tmp_path, 2)
    ref = make_photo(tmp_path / "refs" / "r.png", 77)
    win = make_window(lambda: FakeEngine())
    with qtbot.waitSignal(win.library_page.grid.filesDropped) as blk:
        _drop(win.library_page.grid, [tmp_path / "album"])
    assert blk.args == [[str(tmp_path / "album")]]
    qtbot.waitUntil(lambda: win.library_page.model.rowCount() == 2, timeout=10000)
    pid = win.people.add_person("Ann")
    item = win.people.people.item(0)
    rect = win.people.people.visualItemRect(item)
    with qtbot.waitSignal(win.people.referencesAdded, timeout=10000):
        _drop(win.people.people, [ref], QPointF(rect.center()))
    assert [Path(r.path).name for r in win.lib.people.references(pid)] == ["r.png"]


def test_big_import_does_not_starve_queued_restoration(qtbot, make_window, tmp_path, monkeypatch):
    """After a burst of face analyses the worker restores a queued photo, then goes on analysing."""
    import f2s_desktop.worker as worker_mod
    monkeypatch.setattr(worker_mod, "DETECT_BURST", 2)
    for i in range(8):
        make_photo(tmp_path / "many" / f"m{i}.png", 200 + i, size=(48, 32))
    eng = FakeEngine()
    order = []
    win = make_window(lambda: eng, start_worker=False)
    win.worker.facesDetected.connect(lambda pid, n: order.append(("faces", pid)))
    win.worker.jobFinished.connect(lambda pid, st, v, e: order.append(("job", pid)))
    win.lib.photos.import_files([tmp_path / "many"])
    win.library_page.model.reload()
    first = win.lib.photos.all()[-1].id  # the last one imported: its faces are analysed last
    win.enqueue([first])
    win.worker.start()
    qtbot.waitUntil(lambda: ("job", first) in order and not win.lib.photos.pending_faces(), timeout=20000)
    assert order.index(("job", first)) <= 3  # not after all 8 analyses


def test_unreadable_original_gets_empty_thumbnail_once(qtbot, make_window, tmp_path):
    f = make_photo(tmp_path / "x.png", 5)
    win = make_window(lambda: FakeEngine(), start_worker=False)
    win.lib.photos.import_files([f])
    f.write_bytes(b"broken after import")
    win.library_page.model.reload()
    idx = win.library_page.model.index(0)
    win.library_page.model.data(idx, Qt.ItemDataRole.DecorationRole)
    qtbot.waitUntil(lambda: win.library_page.model.thumbnails_loading == 0, timeout=5000)
    pm = win.library_page.model.data(idx, Qt.ItemDataRole.DecorationRole)
    assert pm is not None and pm.isNull() and win.library_page.model.thumbnails_loading == 0  # no reload loop
    win.library_page.grid.grab()


def test_second_instance_on_same_library_refused(qtbot, tmp_path, capsys):
    from PySide6.QtCore import QLockFile
    from f2s_desktop import app
    from f2s_desktop.paths import app_paths
    home = tmp_path / "home"
    paths = app_paths(home).ensure()
    held = QLockFile(str(paths.data / "f2s-desktop.lock"))
    assert held.tryLock(100)
    try:
        assert app.main(["--home", str(home), "--quit-after-ready"]) == 4
        assert "already running" in capsys.readouterr().err
    finally:
        held.unlock()
    assert app.main(["--home", str(home), "--quit-after-ready"]) == 0


FALLBACK = ("the compact restorer could not be loaded: no weights in /models/compact (test); "
            "used the classical restorer")


def test_version_warnings_shown_on_compare_page_and_version_list(qtbot, make_window, tmp_path):
    """A version's warnings are on screen: a word-wrapped label under the image (never widening the
    window) and a warning mark, count and tooltip on the version in the list."""
    files = _photos(tmp_path, 2)
    eng = FakeEngine(warnings=[FALLBACK + " " + "and a long explanation " * 12])
    win = make_window(lambda: eng)
    _import(qtbot, win, files)
    ids = [p.id for p in win.lib.photos.all()]
    page = win.compare_page
    width, page_min = win.width(), page.minimumSizeHint().width()
    with qtbot.waitSignal(win.worker.jobFinished, timeout=10000):
        win.enqueue([ids[0]])
    win.select_photo(ids[0])
    win.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: page.warnings.isVisible(), timeout=5000)
    assert FALLBACK in page.warnings.text() and page.warnings.wordWrap()
    combo = page.version_combo
    assert "\u26a0 1 warning" in combo.currentText() and not combo.itemIcon(combo.currentIndex()).isNull()
    assert FALLBACK in combo.itemData(combo.currentIndex(), Qt.ItemDataRole.ToolTipRole)
    assert win.width() == width and page.minimumSizeHint().width() == page_min  # the long warning wraps
    # a photo without a version shows no warnings
    win.select_photo(ids[1])
    qtbot.waitUntil(lambda: page.photo_id == ids[1], timeout=5000)
    assert not page.warnings.isVisible() and combo.currentText() == "not restored yet"


def test_confirm_recomputes_suggestions_off_the_gui_thread(qtbot, make_window, tmp_path, monkeypatch):
    """Confirming a face returns at once; every other face's suggestion is recomputed on the
    background pool, after which the views refresh through libraryChanged."""
    import threading
    from f2s_desktop.library.faces import Faces
    files = _photos(tmp_path, 2)
    eng = FakeEngine({_key(files[0]): [face_dict(3, jitter=0.1, seed=1)],
                      _key(files[1]): [face_dict(3, jitter=0.1, seed=2)]})
    win = make_window(lambda: eng)
    _import(qtbot, win, files)
    qtbot.waitUntil(lambda: win.lib.photos.pending_faces() == [], timeout=10000)
    p0, p1 = (next(p.id for p in win.lib.photos.all() if p.name == n) for n in ("p0.png", "p1.png"))
    assert win.lib.faces.for_photo(p1)[0].suggested_person_id is None
    ran_on = []
    real = Faces.changed_suggestions

    def spy(self, *a, **kw):
        ran_on.append(threading.current_thread() is threading.main_thread())
        return real(self, *a, **kw)
    monkeypatch.setattr(Faces, "changed_suggestions", spy)
    dan = win.people.add_person("Dan")
    win.select_photo(p0)
    qtbot.waitUntil(lambda: win.face_panel.photo_id == p0, timeout=5000)
    with qtbot.waitSignal(win.library.libraryChanged, timeout=5000,
                          check_params_cb=lambda what, ids: what == "suggestions"):
        win.face_panel.assign(dan)
        assert ran_on == []  # returned without recomputing
        assert win.lib.faces.for_photo(p0)[0].confirmed_person_id == dan
    assert ran_on and not any(ran_on)  # recomputed, off the GUI thread
    assert win.lib.faces.for_photo(p1)[0].suggested_person_id == dan
    qtbot.waitUntil(lambda: "Dan" in win.people.people.item(0).text() and "2 faces" in
                    win.people.people.item(0).text(), timeout=5000)
    # a burst of changes makes one recompute; quitting runs a pending one at once
    ran_on.clear()
    win.face_panel.clear()
    win.face_panel.assign(dan)
    win.shutdown()
    assert len(ran_on) == 1


def test_app_choices_come_from_face2scene_options(qtbot, make_window, monkeypatch, tmp_path):
    from PySide6.QtWidgets import QFileDialog
    from face2scene.options import DEVICES, RESTORERS, file_dialog_filter
    from f2s_desktop.engine import EngineSettings
    from f2s_desktop.ui.dialogs import SettingsDialog
    d = SettingsDialog(EngineSettings())
    qtbot.addWidget(d)
    assert [d.device.itemText(i) for i in range(d.device.count())] == list(DEVICES)
    assert sorted(d.restorer.itemText(i) for i in range(d.restorer.count())) == sorted(RESTORERS)
    win = make_window(lambda: FakeEngine(), start_worker=False)
    seen = []
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a: seen.append(a[-1]) or ([], ""))
    win.import_dialog()
    win.people.add_person("Ann")
    win.people._add_ref_files()
    assert seen == [file_dialog_filter()] * 2 and "*.gif" in seen[0]
    gif = tmp_path / "old.gif"
    make_photo(gif, 3, fmt="GIF")
    assert win.lib.photos.import_files([gif]).added
