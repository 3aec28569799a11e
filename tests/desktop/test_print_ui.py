"""Old prints in the app: the damage brush on the compare view, the overlay, the per-photo
switches and the per-face reference-detail slider — stored in the library, passed by the job and
the engine's child process to the pipeline, and ending up in the mask the pipeline repaired."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytestmark = pytest.mark.gui

from PySide6.QtCore import QPoint, QPointF, Qt  # noqa: E402

from f2s_desktop.library import Library  # noqa: E402
from f2s_desktop.library.prints import PrintOptions, decode_marks, encode_marks  # noqa: E402

from .fakes import FakeEngine, face_dict, make_photo  # noqa: E402


def _scratched_png(path):
    """The small synthetic print of tests/test_damage_edits.py (a bright scratch, a dark line)."""
    from PIL import Image
    from tests.test_damage_edits import scratched_photo
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(scratched_photo()).save(path)
    return path


def _open_in_compare(qtbot, win, path):
    done = []
    win.import_paths([str(path)], on_done=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=10000)
    pid = done[0].added[0]
    page = win.compare_page
    win.tabs.setCurrentIndex(1)   # the Compare tab (its keys work while it is shown)
    page.set_photo(pid)
    qtbot.waitUntil(lambda: page.view.before is not None, timeout=10000)
    return pid, page


def _view_pos(view, x, y, pane=0):
    """The widget point over the centre of the photo's pixel (x, y), computed here from the view's
    zoom and centre (not with the view's own mapping)."""
    r = view._panes()[pane]
    return QPoint(round(r.center().x() + (x + 0.5 - view.center.x()) * view.zoom),
                  round(r.center().y() + (y + 0.5 - view.center.y()) * view.zoom))


def _stroke(qtbot, view, points, pane=0):
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=_view_pos(view, *points[0], pane))
    for p in points[1:]:
        qtbot.mouseMove(view, _view_pos(view, *p, pane))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=_view_pos(view, *points[-1], pane))


def _disc(shape, cx, cy, r):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def test_brush_marks_exactly_the_painted_pixels_at_any_zoom(qtbot, make_window, tmp_path):
    win = make_window(lambda: FakeEngine(), start_worker=False)
    pid, page = _open_in_compare(qtbot, win, make_photo(tmp_path / "p.png", 1, size=(200, 160)))
    view = page.view
    assert not page.brush_add.isEnabled()          # the brush is for old prints
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_B)               # not even by its key
    assert view.brush is None
    page.old_print.setChecked(True)
    assert page.brush_add.isEnabled()
    qtbot.keyClick(view, Qt.Key.Key_B)
    assert view.brush == "add" and page.brush_add.isChecked()
    qtbot.keyClick(view, Qt.Key.Key_Escape)
    assert view.brush is None
    page.brush_add.setChecked(True)
    page.brush_size.setValue(1)
    view.zoom, view.center = 3.0, QPointF(57.3, 41.9)  # zoomed in, panned off-centre
    view.update()
    _stroke(qtbot, view, [(50, 40)])                     # one click: one pixel
    expect = np.zeros((160, 200), np.int8)
    expect[40, 50] = 1
    assert np.array_equal(win.lib.prints.marks(pid), expect)
    _stroke(qtbot, view, [(45, 30), (52, 30), (60, 30)])  # a drag along a row
    expect[30, 45:61] = 1
    assert np.array_equal(win.lib.prints.marks(pid), expect)
    # a wider brush on the other pane of the side-by-side view, zoomed out: a disc of radius 3
    page.cycle_mode()
    view.zoom, view.center = 1.5, QPointF(100.0, 80.0)
    page.brush_size.setValue(7)
    page.brush_erase.setChecked(True)
    assert not page.brush_add.isChecked() and view.brush == "erase"
    _stroke(qtbot, view, [(120, 100)], pane=1)
    expect[_disc(expect.shape, 120, 100, 3)] = -1
    assert np.array_equal(win.lib.prints.marks(pid), expect)
    assert np.array_equal(view.marks, expect)
    # right-drag pans, never paints
    c0 = QPointF(view.center)
    qtbot.mousePress(view, Qt.MouseButton.RightButton, pos=_view_pos(view, 20, 20))
    qtbot.mouseMove(view, _view_pos(view, 40, 40))
    qtbot.mouseRelease(view, Qt.MouseButton.RightButton, pos=_view_pos(view, 40, 40))
    assert view.center != c0 and np.array_equal(win.lib.prints.marks(pid), expect)
    # the overlay draws the marks: a marked pixel is tinted red, an erased one blue
    page.brush_erase.setChecked(False)
    page.damage_toggle.setChecked(True)
    view.zoom, view.center = 4.0, QPointF(50.5, 40.5)
    view.set_mode("split")
    view.split = 1.0
    shot = view.grab().toImage()
    before = view.before.pixelColor(50, 40)
    at = shot.pixelColor(_view_pos(view, 50, 40))
    assert at.red() > before.red() + 20 and before.red() == 200  # the photo's red corner, redder
    page.clear_marks.click()
    assert win.lib.prints.marks(pid) is None and view.marks is None


def test_brush_marks_end_up_in_the_mask_the_pipeline_repaired(qtbot, make_window, tmp_path, monkeypatch):
    """The whole path with the real pipeline in the engine's child process: marks painted on the
    compare view -> library -> "Restore again" -> job -> child process -> pipeline; the version's
    damage mask (the one the pipeline returned) holds every pixel marked "damage" and none of the
    dark line marked "not damage", which the detector alone takes for a scratch."""
    import cv2
    pytest.importorskip("face2scene.pipeline")
    from tests.test_damage_edits import ROPE, SCRATCH, line_mask
    from f2s_desktop.engine import EngineSettings
    from f2s_desktop.engine_process import ProcessEngine
    from f2s_desktop.library.files import damage_mask_path
    monkeypatch.setenv("F2S_TORCH_THREADS", "1")
    settings = EngineSettings(device="cpu", restorer="classical")
    win = make_window(lambda: ProcessEngine(settings))
    win.settings.engine = settings
    pid, page = _open_in_compare(qtbot, win, _scratched_png(tmp_path / "print.png"))
    qtbot.waitUntil(lambda: win.lib.photos.pending_faces() == [], timeout=60000)
    view = page.view
    page.old_print.setChecked(True)
    page.brush_add.setChecked(True)
    page.brush_size.setValue(5)
    view.zoom, view.center = 2.0, QPointF(120.0, 60.0)
    _stroke(qtbot, view, [(150, 22), (160, 22), (168, 22)])          # a stain the detector misses
    page.brush_erase.setChecked(True)
    page.brush_size.setValue(9)
    view.zoom, view.center = 1.0, QPointF(100.0, 80.0)
    _stroke(qtbot, view, [(x, ROPE[0][1]) for x in range(24, 180, 6)])  # "this line is a rope"
    marks = win.lib.prints.marks(pid)
    added, erased = marks > 0, marks < 0
    rope = line_mask(marks.shape, ROPE)
    assert added[22, 150:169].all() and (erased | ~rope).all()
    page.restore_again.click()
    qtbot.waitUntil(lambda: win.lib.versions.latest(pid) is not None, timeout=180000)
    v = win.lib.versions.latest(pid)
    used = cv2.imread(str(damage_mask_path(v.path)), cv2.IMREAD_GRAYSCALE) > 127
    assert used[added].all()                      # every marked pixel was repaired
    assert not used[erased].any()                 # nothing the user erased was
    scratch = line_mask(marks.shape, SCRATCH)
    assert (used & scratch).sum() > 0.8 * scratch.sum()   # the detector's real find stays
    assert v.result["old_print"]["user_marks"] == {"added": int(added.sum()), "erased": int(erased.sum())}
    # the compare view shows that mask as its overlay
    qtbot.waitUntil(lambda: view.damage is not None, timeout=10000)
    assert np.array_equal(view.damage, used)


def test_switches_and_face_detail_persist_across_a_library_reopen(qtbot, make_window, tmp_path):
    from f2s_desktop.paths import app_paths
    win = make_window(lambda: FakeEngine(), start_worker=False)
    pid, page = _open_in_compare(qtbot, win, make_photo(tmp_path / "p.png", 2, size=(120, 90)))
    win.lib.faces.store(pid, [face_dict(0, (10, 10, 50, 50)), face_dict(1, (60, 10, 100, 50))])
    page.update_face_marks()
    assert not page.face_detail.isEnabled()
    page.old_print.setChecked(True)
    page.repair.setChecked(False)
    page.tone.setCurrentIndex(page.tone.findData("faces"))
    page.keep_tone.setChecked(False)
    page.view.select_face(1)
    assert page.face_detail.isEnabled() and page.face_detail.value() == 50
    page.face_detail.setValue(80)
    page.view.select_face(0)
    assert page.face_detail.value() == 50   # face 0 keeps the default
    lib2 = Library(app_paths())
    try:
        o = lib2.prints.options(pid)
    finally:
        lib2.close()
    assert o == PrintOptions(old_print=True, repair_damage=False, print_tone="faces", keep_tone=False,
                             face_detail={1: 0.8})
    page.set_photo(None)
    assert not page.old_print.isChecked() and not page.old_print.isEnabled()
    page.set_photo(pid)
    assert page.old_print.isChecked() and not page.repair.isChecked() and page.tone.currentData() == "faces"
    page.view.select_face(1)
    assert page.face_detail.value() == 80


def test_marks_and_switches_reach_the_engine(tmp_path):
    """The job passes the photo's switches and marks; marks made for another size are left out,
    with a note in the version; without "Old print" they wait."""
    from f2s_desktop.engine import EngineSettings
    from f2s_desktop.jobs import run_queue
    from f2s_desktop.paths import app_paths
    lib = Library(app_paths())
    try:
        a = lib.photos.import_files([make_photo(tmp_path / "a.png", 1, size=(60, 40))]).added[0]
        b = lib.photos.import_files([make_photo(tmp_path / "b.png", 2, size=(60, 40))]).added[0]
        marks = np.zeros((40, 60), np.int8)
        marks[5:9, 10:20] = 1
        marks[20, :] = -1
        lib.prints.set_options(a, PrintOptions(old_print=True, face_detail={0: 0.25}))
        lib.prints.set_marks(a, marks)
        lib.prints.set_marks(b, np.ones((10, 10), np.int8))   # another size
        lib.prints.set_options(b, PrintOptions(old_print=True))
        eng = FakeEngine()
        lib.queue.enqueue([a, b], EngineSettings().to_json())
        assert run_queue(lib, eng) == 2
        ca, cb = eng.calls
        assert np.array_equal(ca["damage_edit"], marks) and ca["print_options"].face_detail == {0: 0.25}
        assert cb["damage_edit"] is None
        vb = lib.versions.latest(b)
        assert any("another size" in w or "painted on a 10x10" in w for w in vb.result["warnings"])
        assert lib.versions.latest(a).settings["print"]["old_print"] is True
        lib.prints.set_options(a, PrintOptions(old_print=False))
        lib.queue.enqueue([a], EngineSettings().to_json())
        run_queue(lib, eng)
        assert eng.calls[-1]["damage_edit"] is None and eng.calls[-1]["print_options"].old_print is False
        lib.photos.remove(a)   # the photo's row goes with it
        assert lib.db.conn.execute("SELECT COUNT(*) FROM photo_print WHERE photo_id=?", (a,)).fetchone()[0] == 0
    finally:
        lib.close()


def test_marks_round_trip_and_an_old_library_is_migrated(tmp_path):
    m = np.zeros((7, 9), np.int8)
    m[1, 2], m[3, 4] = 1, -1
    assert np.array_equal(decode_marks(encode_marks(m)), m)   # only the box (2..4, 1..3) is stored
    assert np.array_equal(decode_marks(encode_marks(np.zeros((5, 6), np.int8))), np.zeros((5, 6), np.int8))
    for bad in (b"", b"PNG...", encode_marks(m)[:30]):
        with pytest.raises(Exception, match="cannot be read"):
            decode_marks(bad)
    from f2s_desktop.library.db import Database
    from f2s_desktop.library.schema import MIGRATIONS, SCHEMA_V1, SCHEMA_VERSION
    from f2s_desktop.paths import app_paths
    paths = app_paths(tmp_path / "home").ensure()
    db = Database(paths.database)   # a library of schema 3 (before old prints)
    with db.tx() as t:
        for stmt in SCHEMA_V1.split(";"):
            if stmt.strip():
                t.execute(stmt)
        for step in MIGRATIONS[:2]:
            step(t)
        t.execute("PRAGMA user_version = 3")
    db.close()
    lib = Library(paths)
    try:
        assert lib.schema_version == SCHEMA_VERSION >= 4
        pid = lib.photos.import_files([make_photo(tmp_path / "p.png", 3, size=(30, 20))]).added[0]
        assert lib.prints.options(pid) == PrintOptions() and lib.prints.marks(pid) is None
        lib.prints.set_marks(pid, np.zeros((20, 30), np.int8))   # nothing marked: nothing stored
        assert lib.prints.marks(pid) is None
        lib.db.conn.execute("UPDATE photo_print SET marks=? WHERE photo_id=?", (b"garbage", pid))
        assert lib.prints.marks(pid) is None                     # unreadable: left out (and logged)
    finally:
        lib.close()


def test_face_detail_default_is_the_pipelines():
    from face2scene.pipeline import PipelineConfig
    from f2s_desktop.library.prints import FACE_DETAIL_DEFAULT, PRINT_TONE_LABELS
    from face2scene.options import PRINT_TONES
    assert FACE_DETAIL_DEFAULT == PipelineConfig().face_detail
    assert set(PRINT_TONE_LABELS) == set(PRINT_TONES)
