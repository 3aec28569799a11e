"""Naming faces in the app: what each naming costs the GUI process (behaviour, not timing)."""
from __future__ import annotations

import threading

import pytest

pytest.importorskip("PySide6")

from .test_usability import _group_of_three  # noqa: E402


def test_naming_faces_while_thumbnails_read_does_not_restart_the_read(qtbot, make_window, tmp_path, monkeypatch):
    """Each naming reloads the face list; a thumbnail read still under way (a big photo, a busy
    machine) is neither started again nor thrown away: one read per photo, and the icons land."""
    import f2s_desktop.ui.faces as faces_ui
    win, pid, ann = _group_of_three(qtbot, make_window, tmp_path)
    # a thumbnail read the window queued while importing must not start after the patch below (it
    # would look up read_image then and count as a second read: seen once on a busy CI machine)
    qtbot.waitUntil(lambda: not win.bg.busy, timeout=10000)
    gate, reads = threading.Event(), []
    real = faces_ui.read_image

    def slow_read(path, *a):
        reads.append(path)
        gate.wait(10)
        return real(path, *a)
    monkeypatch.setattr(faces_ui, "read_image", slow_read)
    panel = win.face_panel
    panel.set_photo(None, None)               # the photo shown afresh: its thumbnails are read again
    win.select_photo(pid)
    panel.set_photo(pid, None)
    qtbot.waitUntil(lambda: panel.list.count() == 3 and len(reads) == 1, timeout=5000)
    for f in list(panel.faces):               # name every face before the read is done
        win.library.confirm_face(f.id, ann)
    assert panel.list.count() == 3 and len(reads) == 1
    gate.set()
    qtbot.waitUntil(lambda: all(not panel.list.item(i).icon().isNull() for i in range(3)), timeout=5000)
    assert len(reads) == 1
    win.library.confirm_face(panel.faces[0].id, None)   # later reloads reuse the icons
    qtbot.waitUntil(lambda: not win.bg.busy, timeout=5000)
    assert len(reads) == 1 and all(not panel.list.item(i).icon().isNull() for i in range(3))


def test_naming_a_face_updates_the_face_list_in_place(qtbot, make_window, tmp_path):
    """Naming a face changes its row's text; the rows themselves (with their icons) stay, and the
    person menu is rebuilt only when the people change."""
    win, pid, ann = _group_of_three(qtbot, make_window, tmp_path)
    win.select_photo(pid)
    panel = win.face_panel
    qtbot.waitUntil(lambda: panel.list.count() == 3 and not panel.list.item(2).icon().isNull(), timeout=5000)
    items = [panel.list.item(i) for i in range(3)]
    texts = [it.text() for it in items]
    panel.list.setCurrentRow(1)
    win.library.confirm_face(panel.faces[1].id, ann)
    assert [panel.list.item(i) for i in range(3)] == items            # the same rows
    assert items[1].text().startswith("2. Ann") and [items[0].text(), items[2].text()] == [texts[0], texts[2]]
    assert panel.person.currentData() == ann and panel.list.currentRow() == 1
    assert not items[1].icon().isNull()
    bob = win.library.add_person("Bob")                                 # people changed: the menu follows
    assert [panel.person.itemData(i) for i in range(panel.person.count())] == [None, ann, bob]
    win.library.confirm_face(panel.faces[2].id, bob)
    assert items[2].text().startswith("3. Bob") and panel.list.currentRow() == 1 and panel.person.currentData() == ann


def test_suggestions_follow_a_steady_stream_of_namings(qtbot, lib_for_model, monkeypatch):
    """Naming faster than the debounce delay makes few recomputes (one per burst), yet the
    suggestions never wait longer than SUGGEST_MAX_WAIT_MS while the user keeps naming."""
    import time

    from f2s_desktop.ui.library_model import LibraryModel
    from f2s_desktop.ui.tasks import Background
    lib, ids, person = lib_for_model
    bg = Background(1)
    model = LibraryModel(lib, bg)
    monkeypatch.setattr(LibraryModel, "SUGGEST_DELAY_MS", 200)
    monkeypatch.setattr(LibraryModel, "SUGGEST_MAX_WAIT_MS", 600)
    ran = []
    model.libraryChanged.connect(lambda what, _ids: what == "suggestions" and ran.append(time.monotonic()))
    t0 = time.monotonic()
    for fid in ids[:12]:               # one naming every 100 ms: always inside the 200 ms delay
        model.confirm_face(fid, person)
        qtbot.wait(100)
    qtbot.waitUntil(lambda: not model.suggestions_pending, timeout=5000)
    assert 1 < len(ran) <= 4, ran      # not one per naming, not only one at the end
    assert ran[0] - t0 < 0.6 + 0.5     # the first within the longest wait (and some slack)
    bg.wait()
    # Take the model down, then its pool, each followed by a pass of the event loop. Left to the
    # function's return, both went in one go just before pytest-qt processed events, and that
    # crashed the GUI thread in about one run in four on a loaded machine (a segfault inside
    # processEvents; not seen in 20 runs with this ordered teardown). The app keeps its model and
    # pool for the window's lifetime and waits for the pool before closing.
    import gc
    model = None  # (the waitUntil lambda above shares this variable)
    gc.collect()
    qtbot.wait(50)
    bg = None
    gc.collect()
    qtbot.wait(50)


@pytest.fixture
def lib_for_model(tmp_path):
    from f2s_desktop.library import Library

    from .fakes import face_dict, make_photo
    lib = Library()
    pid = lib.photos.import_files([make_photo(tmp_path / "g.png", 3)]).added[0]
    lib.faces.store(pid, [face_dict(k % 3, box=(10 + 5 * k, 10, 40 + 5 * k, 40), seed=k) for k in range(14)])
    yield lib, [f.id for f in lib.faces.for_photo(pid)], lib.people.add("Ann")
    lib.close()
