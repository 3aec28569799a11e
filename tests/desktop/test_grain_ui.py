"""Keep grain in the app: the per-photo switch on the compare page (any photo, not only old
prints), stored with the other print switches (a row written before the switch existed reads as
its default, "if film"), passed by the job to the engine and on to the pipeline's config, and what
the pipeline did shown in the face panel."""
from __future__ import annotations

import dataclasses
import json

import pytest

pytest.importorskip("PySide6")
pytestmark = pytest.mark.gui

from f2s_desktop.library import Library  # noqa: E402
from f2s_desktop.library.prints import KEEP_GRAIN_LABELS, PrintOptions  # noqa: E402
from f2s_desktop.present import grain_text  # noqa: E402

from .fakes import FakeEngine, make_photo  # noqa: E402
from .test_print_ui import _open_in_compare  # noqa: E402
from .test_usability import _restore  # noqa: E402


def test_switch_is_any_photos_and_persists(qtbot, make_window, tmp_path):
    from f2s_desktop.paths import app_paths
    win = make_window(lambda: FakeEngine(), start_worker=False)
    page = win.compare_page
    assert not page.keep_grain.isEnabled()                       # no photo: nothing to switch
    pid, page = _open_in_compare(qtbot, win, make_photo(tmp_path / "p.png", 1, size=(80, 60)))
    assert page.keep_grain.isEnabled() and not page.old_print.isChecked()   # not only for old prints
    assert page.keep_grain.currentData() == "auto"
    page.keep_grain.setCurrentIndex(page.keep_grain.findData("off"))
    lib2 = Library(app_paths())
    try:
        assert lib2.prints.options(pid).keep_grain == "off"
    finally:
        lib2.close()
    page.set_photo(None)
    assert not page.keep_grain.isEnabled()
    page.set_photo(pid)
    assert page.keep_grain.currentData() == "off"
    page.old_print.setChecked(True)                              # the other switches keep it
    assert win.lib.prints.options(pid) == PrintOptions(old_print=True, keep_grain="off")


def test_rows_from_before_the_switch_read_as_auto(tmp_path):
    from f2s_desktop.paths import app_paths
    lib = Library(app_paths())
    try:
        pid = lib.photos.import_files([make_photo(tmp_path / "p.png", 2, size=(30, 20))]).added[0]
        lib.prints.set_options(pid, PrintOptions(old_print=True))
        old = {"old_print": True, "repair_damage": False, "print_tone": "faces", "keep_tone": True, "face_detail": {}}
        lib.db.conn.execute("UPDATE photo_print SET options=? WHERE photo_id=?", (json.dumps(old), pid))
        o = lib.prints.options(pid)
        assert o.keep_grain == "auto" and o.repair_damage is False and o.print_tone == "faces"
        for bad in ("yes", True, 1, None):                       # a hand-edited or future value: the default
            assert PrintOptions.from_json({**old, "keep_grain": bad}).keep_grain == "auto"
    finally:
        lib.close()


def test_switch_values_are_the_pipelines():
    from face2scene.pipeline import PipelineConfig
    assert set(KEEP_GRAIN_LABELS) == {"auto", "on", "off"}
    assert PipelineConfig().keep_grain == "auto" == PrintOptions().pipeline_fields()["keep_grain"]
    for key, want in (("auto", "auto"), ("on", True), ("off", False)):
        fields = PrintOptions(keep_grain=key).pipeline_fields()
        assert fields["keep_grain"] is want or fields["keep_grain"] == want
        assert dataclasses.replace(PipelineConfig(), **fields).keep_grain == want


def test_switch_reaches_the_engine_and_the_panel_shows_what_was_done(qtbot, make_window, tmp_path):
    from face2scene.types import DegradationEstimate
    eng = FakeEngine()
    win = make_window(lambda: eng)
    pid, page = _open_in_compare(qtbot, win, make_photo(tmp_path / "p.png", 3, size=(64, 48)))
    page.keep_grain.setCurrentIndex(page.keep_grain.findData("on"))
    info = {"mode": "on", "applied": True, "added": 3.4, "target": [4.0], "residual": [1.0],
            "grain": {"amplitude": 4.1, "size": 0.9, "mono": True, "confidence": 0.8}}
    eng.estimate = DegradationEstimate(2.0, 1.0, None, 1.0, "blind", 0.5, details={"keep_grain": info})
    _restore(qtbot, win, [pid])
    assert eng.calls[-1]["print_options"].keep_grain == "on"
    assert eng.calls[-1]["print_options"].pipeline_fields()["keep_grain"] is True
    win.select_photo(pid)
    label = win.face_panel.photo_grain
    qtbot.waitUntil(lambda: "3.4 levels added" in label.text(), timeout=5000)
    assert "mono grain of 0.9 px" in label.text()


def test_grain_text_in_words():
    assert grain_text(None) == "—"
    assert "keep grain off" in grain_text({"noise_sigma": 1.0, "details": {}})
    off = {"details": {"keep_grain": {"applied": False, "reason": "the photo does not read as film",
                                      "grain": {"amplitude": 0.4, "size": 0.2, "mono": False}}}}
    assert grain_text(off).startswith("not added: the photo does not read as film") and "colour grain" in grain_text(off)
