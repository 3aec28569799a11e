"""Packaging files: the .desktop entry and AppStream metainfo validate, the icon renders, the
PyInstaller spec parses, and the .desktop MIME types are formats the importer accepts."""
from __future__ import annotations

import ast
import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINUX = REPO / "packaging" / "linux"
DESKTOP = LINUX / "io.github.face2scene.Face2Scene.desktop"
METAINFO = LINUX / "io.github.face2scene.Face2Scene.metainfo.xml"
ICON = REPO / "resources" / "icons" / "face2scene.svg"


def test_desktop_file_validates_and_opens_images():
    if shutil.which("desktop-file-validate") is None:
        pytest.skip("desktop-file-validate not installed (apt-get install desktop-file-utils)")
    r = subprocess.run(["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True)
    assert r.returncode == 0 and "error" not in r.stdout, r.stdout + r.stderr


def test_desktop_mime_types_match_importer():
    from face2scene.options import IMAGE_SUFFIXES
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str
    cp.read(DESKTOP)
    entry = cp["Desktop Entry"]
    assert entry["Exec"].startswith("f2s-desktop ") and "%F" in entry["Exec"]  # "Open with" passes files
    mimes = {m for m in entry["MimeType"].split(";") if m}
    suffix_of = {"image/jpeg": ".jpg", "image/png": ".png", "image/tiff": ".tif", "image/webp": ".webp",
                 "image/bmp": ".bmp", "image/gif": ".gif"}
    assert mimes <= set(suffix_of) and all(suffix_of[m] in IMAGE_SUFFIXES for m in mimes)


def test_metainfo_validates():
    if shutil.which("appstreamcli") is None:
        pytest.skip("appstreamcli not installed (apt-get install appstream)")
    r = subprocess.run(["appstreamcli", "validate", "--no-net", str(METAINFO)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_icon_renders(qapp):
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer
    r = QSvgRenderer(str(ICON))
    assert r.isValid()
    img = QImage(64, 64, QImage.Format.Format_ARGB32)
    img.fill(0)
    p = QPainter(img)
    r.render(p)
    p.end()
    assert img.pixelColor(32, 32).alpha() == 255 and img.pixelColor(0, 63).alpha() < 255
    from f2s_desktop.ui.theme import app_icon
    assert not app_icon().isNull()


def test_pyinstaller_spec_is_python_and_names_entry():
    spec = REPO / "packaging" / "pyinstaller" / "face2scene-desktop.spec"
    ast.parse(spec.read_text())
    launcher = (REPO / "packaging" / "pyinstaller" / "launch.py").read_text()
    assert "freeze_support()" in launcher and "f2s_desktop.app" in launcher


def test_icon_ships_inside_the_package():
    """The icon the app loads is inside f2s_desktop, pyproject's package-data pattern matches it,
    and it is the same file as the source in resources/icons/."""
    tomllib = pytest.importorskip("tomllib")
    import f2s_desktop
    from f2s_desktop.ui.theme import PACKAGE_ICON, icon_path
    pkg = Path(f2s_desktop.__file__).resolve().parent
    assert icon_path() == PACKAGE_ICON and PACKAGE_ICON.is_relative_to(pkg) and PACKAGE_ICON.is_file()
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["f2s_desktop"]
    assert any(PACKAGE_ICON in set(pkg.glob(p)) for p in patterns), patterns
    assert PACKAGE_ICON.read_bytes() == ICON.read_bytes()


@pytest.mark.slow
def test_wheel_contains_the_icon(tmp_path):
    """Build a wheel of the app's package (setuptools, no network) and look for the icon in it."""
    import sys
    import zipfile
    pytest.importorskip("setuptools")
    pytest.importorskip("wheel")
    src = tmp_path / "src"
    shutil.copytree(REPO / "f2s_desktop", src / "f2s_desktop", ignore=shutil.ignore_patterns("__pycache__"))
    (src / "face2scene").mkdir()
    (src / "face2scene" / "__init__.py").write_text("")  # the library is not what is checked here
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / f, src / f)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path / "whl"), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    (whl,) = (tmp_path / "whl").glob("*.whl")
    assert "f2s_desktop/resources/face2scene.svg" in zipfile.ZipFile(whl).namelist()
