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
