#!/usr/bin/env python
"""Render screenshots of the desktop app's main views into docs/ on a real X display.

    python scripts/screenshots.py            # re-runs itself under xvfb-run when there is no $DISPLAY

Needs Xvfb and Qt's xcb libraries (Debian: ``apt-get install xvfb libxcb-icccm4 libxcb-keysyms1
libxcb-image0 libxcb-render-util0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-cursor0``).

The photos are redistributable ones shipped by scikit-image (NASA's public-domain astronaut
portrait, CC0 cat/coffee, public-domain rocket), aged with face2scene.degrade's "old_photo" preset;
the "group photo" is a collage of four differently aged copies of the same public-domain portrait
(no redistributable group photo ships with any installed package). The real pipeline detects the
faces and restores the photos (CPU, classical restorer) in a throwaway library.

Shots: the first run (empty library), the library, a group photo with its faces named (Library
view, the selected face highlighted), a running batch with its time left, a paused batch, compare
(split, side by side, dark), models, export, and an old print (the damage overlay and brush marks).

    python scripts/screenshots.py --only oldprint   # just the old-print shot (one photo restored)
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _reexec_under_xvfb() -> None:
    if os.environ.get("DISPLAY") or os.environ.get("F2S_SCREENSHOTS_CHILD"):
        return
    if not shutil.which("xvfb-run"):
        sys.exit("screenshots need an X display: install Xvfb (apt-get install xvfb) or set DISPLAY")
    os.environ["F2S_SCREENSHOTS_CHILD"] = "1"
    os.execvp("xvfb-run", ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24 -dpi 96",
                           sys.executable, str(Path(__file__).resolve()), *sys.argv[1:]])


def make_demo_photos(folder: Path) -> dict:
    """Aged copies of redistributable photos + clean references of the person in them."""
    import numpy as np
    from PIL import Image
    import skimage.data as sd
    from face2scene.degrade import degrade

    def save(arr, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(path)
        return path

    astro = sd.astronaut()
    photos = []
    for i, (name, img, preset) in enumerate((("1978/eileen.png", astro, "mild"),
                                            ("1978/eileen_porch.png", np.ascontiguousarray(astro[:, ::-1]), "s3diff"),
                                            ("1981/chelsea.png", sd.chelsea(), "old_photo"),
                                            ("1981/coffee.png", sd.coffee(), "old_photo"),
                                            ("1983/launch.png", sd.rocket(), "realesrgan"))):
        deg, _params = degrade(img, preset=preset, seed=10 + i)
        photos.append(save(deg, folder / "album" / name))
    # the reference album: the clean portrait and a slightly rotated, brighter copy
    # a "group photo": four copies of the portrait, each aged its own way, on a 2 x 2 sheet
    tiles = []
    head = np.ascontiguousarray(astro[0:320, 80:400])     # head and shoulders, the face ~110 px wide
    for k, preset in enumerate(("mild", "s3diff", "old_photo", "mild")):
        t = np.ascontiguousarray(head[:, ::-1]) if k % 2 else head
        tiles.append(degrade(t, preset=preset, seed=40 + k)[0])
    sheet = np.full((2 * 320 + 48, 2 * 320 + 48, 3), 236, np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, 2)
        y, x = 16 + r * (320 + 16), 16 + c * (320 + 16)
        sheet[y:y + t.shape[0], x:x + t.shape[1]] = t[:320, :320]
    photos.append(save(sheet, folder / "album" / "1979" / "crew_sheet.png"))
    ref1 = save(astro, folder / "refs" / "eileen_clean.png")
    rot = np.asarray(Image.fromarray(astro).rotate(6, resample=Image.Resampling.BICUBIC, fillcolor=(20, 20, 20)))
    ref2 = save(np.clip(rot.astype(np.int16) + 12, 0, 255).astype(np.uint8), folder / "refs" / "eileen_2.png")
    return {"album": folder / "album", "photos": photos, "refs": [ref1, ref2]}


def make_old_print(folder: Path):
    """The public-domain portrait aged as a monochrome print (face2scene.degrade's "old_print":
    grain, toning, fading, scratches, dust); (its path, the masks of the damage drawn)."""
    from PIL import Image
    import skimage.data as sd
    from face2scene.degrade import degrade_with_masks
    deg, _params, masks = degrade_with_masks(sd.astronaut(), preset="old_print", seed=7)
    path = folder / "album" / "1952" / "eileen_print.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(deg).save(path)
    return path, masks


def _largest_stroke(mask, n: int = 10):
    """Points along the largest component of ``mask`` (ordered along its main axis): where a
    user would drag the brush to cover it."""
    import cv2
    import numpy as np
    k, lab, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if k < 2:
        return []
    i = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    ys, xs = np.nonzero(lab == i)
    pts = np.stack([xs, ys], 1).astype(float)
    axis = np.linalg.svd(pts - pts.mean(0), full_matrices=False)[2][0]
    order = np.argsort((pts - pts.mean(0)) @ axis)
    return [tuple(pts[order[j]]) for j in np.linspace(0, len(order) - 1, n).astype(int)]


def shoot_old_print(win, lib, photo, out: Path) -> None:
    """Compare view (side by side) of an old print restored with "Old print" on: the mask it
    repaired (orange), and the brush's marks where a user would put them — red along the longest
    defect the detector missed, blue over its largest false find (both known here from the
    degradation's own masks)."""
    import cv2
    import numpy as np
    from PySide6.QtCore import QPointF
    photo, truth = photo
    done = []
    win.import_paths([str(photo)], on_done=done.append)
    assert wait_for(lambda: bool(done)), "import did not finish"
    pid = done[0].added[0] if done[0].added else done[0].duplicates[0][1]
    assert wait_for(lambda: not lib.photos.pending_faces()), "face detection did not finish"
    win.select_photo(pid)
    win.tabs.setCurrentIndex(1)
    page = win.compare_page
    assert wait_for(lambda: page.photo_id == pid and page.view.before is not None), "compare did not load"
    page.old_print.setChecked(True)
    page.restore_again.click()
    assert wait_for(lambda: lib.versions.latest(pid) is not None, timeout=600), "restoration did not finish"
    view = page.view
    assert wait_for(lambda: view.after is not None and view.damage is not None), "the version did not load"
    page.damage_toggle.setChecked(True)
    if view.mode != "side":
        page.cycle_mode()
    view.fit()
    damage = np.zeros_like(view.damage)
    for m in truth.values():
        damage |= m
    grow = lambda m, r: cv2.dilate(m.astype(np.uint8), np.ones((r, r), np.uint8)) > 0  # noqa: E731
    missed = damage & ~grow(view.damage, 5)
    false = view.damage & ~grow(damage, 7)
    print(f"old print: {view.damage.sum()} px repaired, {int(missed.sum())} px of drawn damage missed, "
          f"{int(false.sum())} px repaired that were not drawn damage")
    page.brush_size.setValue(7)
    for button, mask in ((page.brush_add, missed), (page.brush_erase, false)):
        button.setChecked(True)
        view._last_paint = None
        for x, y in _largest_stroke(mask):
            view._paint_to(QPointF(x, y))
        view.marksEdited.emit()
    page.brush_add.setChecked(True)
    if lib.faces.for_photo(pid):
        view.select_face(0)
    shoot(win, out / "screenshot-oldprint.png")


def wait_for(cond, timeout: float = 120.0, step_ms: int = 50) -> bool:
    from PySide6.QtTest import QTest
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if cond():
            return True
        QTest.qWait(step_ms)
    return False


def shoot(widget, path: Path) -> None:
    from PySide6.QtTest import QTest
    QTest.qWait(300)  # let pending paints land
    screen = widget.screen()
    g = widget.frameGeometry()
    pm = screen.grabWindow(0, g.x(), g.y(), g.width(), g.height())
    if pm.isNull() or pm.toImage().pixelColor(10, 10).alpha() == 0:
        pm = widget.grab()
    pm.save(str(path))
    print(f"wrote {path.relative_to(REPO)} ({pm.width()}x{pm.height()})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "docs"))
    ap.add_argument("--only", choices=("all", "oldprint"), default="all", help="which shots to make")
    args = ap.parse_args()
    _reexec_under_xvfb()
    os.environ.setdefault("F2S_TORCH_THREADS", "1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="f2s_shots_"))
    os.environ["FACE2SCENE_HOME"] = str(work / "home")
    demo = make_demo_photos(work) if args.only == "all" else None
    old_print = make_old_print(work)

    from PySide6.QtWidgets import QApplication
    from f2s_desktop.engine import EngineSettings
    from f2s_desktop.library import Library
    from f2s_desktop.paths import app_paths
    from f2s_desktop.settings import Settings
    from f2s_desktop.ui.dialogs import ExportDialog
    from f2s_desktop.ui.main_window import MainWindow
    from f2s_desktop.ui.theme import app_icon, apply_theme

    app = QApplication([sys.argv[0]])
    app.setApplicationName("Face2Scene")
    app.setWindowIcon(app_icon())
    apply_theme(app, "light")
    lib = Library(app_paths())
    settings = Settings(lib.paths)
    settings.engine = EngineSettings(device="cpu", restorer="classical")
    win = MainWindow(lib, settings)
    win.ask_before_quit = False
    win.resize(1440, 880)
    win.move(0, 0)
    win.show()
    try:
        wait_for(lambda: False, timeout=0.5)
        if args.only == "oldprint":
            shoot_old_print(win, lib, old_print, out)
            return 0
        shoot(win, out / "screenshot-first-run.png")   # the empty library says what to do first
        done = []
        win.import_paths([str(demo["album"])], on_done=done.append)
        assert wait_for(lambda: bool(done)), "import did not finish"
        person = win.people.add_person("Eileen Collins")
        win.people.add_person("Grandpa Joe")
        win.people.select_person(person)
        win.people.add_references(person, [str(p) for p in demo["refs"]])
        assert wait_for(lambda: not lib.people.references_pending() and not lib.photos.pending_faces()
                        and len(lib.people.references(person)) == 2), "face detection did not finish"
        ids = {Path(p.path).name: p.id for p in lib.photos.all()}
        # confirm the suggested face on the first portrait, then restore all but one photo
        for f in lib.faces.for_photo(ids["eileen.png"]):
            if f.suggested_person_id == person:
                win.library.confirm_face(f.id, person)
        win.enqueue([ids["eileen.png"], ids["eileen_porch.png"], ids["chelsea.png"], ids["launch.png"]])
        assert wait_for(lambda: win.lib.queue.pending() == 0, timeout=600), "restoration did not finish"
        win.people.refresh()
        win.people.select_person(person)
        win.select_photo(ids["eileen.png"])
        win.tabs.setCurrentIndex(0)
        wait_for(lambda: win.library_page.model.thumbnails_loading == 0 and win.people.album.count() == 2)
        shoot(win, out / "screenshot-library.png")

        # the group photo: its faces named by clicking them on the photo, the second one selected
        sheet = ids["crew_sheet.png"]
        win.select_photo(sheet)
        page, panel = win.library_page, win.face_panel
        wait_for(lambda: page.preview.before is not None and len(page.preview.faces) > 0 and panel.photo_id == sheet)
        for f in lib.faces.for_photo(sheet):
            win.library.confirm_face(f.id, person)
        wait_for(lambda: not win.library.suggestions_pending, timeout=20)
        panel.list.setCurrentRow(min(1, panel.list.count() - 1))
        wait_for(lambda: all(not panel.list.item(i).icon().isNull() for i in range(panel.list.count())), timeout=20)
        print(f"group photo: {panel.list.count()} faces found")
        shoot(win, out / "screenshot-group.png")

        # a running batch with its time left (this machine's timings were measured above), then paused
        qb = win.queue_bar
        win.select_photo(ids["eileen.png"])
        win.enqueue([ids["eileen.png"], ids["eileen_porch.png"], ids["chelsea.png"], ids["launch.png"]])
        assert wait_for(lambda: " left" in qb.label.text() and "estimating" not in qb.label.text()
                        and qb.progress.value() > 150, timeout=300), qb.label.text()
        shoot(win, out / "screenshot-batch-running.png")
        qb.btn_pause.setChecked(True)
        wait_for(lambda: qb.label.text().startswith("Paused"), timeout=30)
        shoot(win, out / "screenshot-batch-paused.png")
        qb.cancel_all()
        qb.btn_pause.setChecked(False)
        assert wait_for(lambda: win.lib.queue.pending() == 0 and win.worker.current_photo is None, timeout=120)
        win.select_photo(ids["eileen.png"])

        win.tabs.setCurrentIndex(1)
        assert wait_for(lambda: win.compare_page.view.after is not None), "compare images did not load"
        win.compare_page.view.split = 0.5
        win.compare_page.view.set_mode("split")
        win.compare_page.view.fit()
        if win.face_panel.faces:
            win.face_panel.list.setCurrentRow(0)
        shoot(win, out / "screenshot-compare.png")

        win.compare_page.cycle_mode()  # side by side, zoomed on the face
        f = lib.faces.for_photo(ids["eileen.png"])
        if f:
            from PySide6.QtCore import QPointF
            b = f[0].box
            win.compare_page.view.zoom = 1.6
            win.compare_page.view._fit = False
            win.compare_page.view.center = QPointF((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
            win.compare_page.view.update()
        shoot(win, out / "screenshot-side-by-side.png")

        win.tabs.setCurrentIndex(2)
        win.models_page.refresh()
        wait_for(lambda: not win.models_page.busy)
        shoot(win, out / "screenshot-models.png")

        dlg = ExportDialog(settings["export"] | {"folder": "~/Pictures/Restored"}, 4, win)
        dlg.show()
        shoot(dlg, out / "screenshot-export.png")
        dlg.close()
        dlg.deleteLater()

        apply_theme(app, "dark")
        win.tabs.setCurrentIndex(1)
        win.compare_page.cycle_mode()
        win.compare_page.view.fit()
        shoot(win, out / "screenshot-compare-dark.png")
        apply_theme(app, "light")
        shoot_old_print(win, lib, old_print, out)
    finally:
        win.shutdown()
        win.close()
        lib.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
