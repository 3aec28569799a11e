"""Light and dark follow the system: Fusion style with a palette chosen from the platform's colour
scheme, switched live when the system changes it."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QApplication


#: the app icon shipped inside the package (package-data); its source is resources/icons/ at the
#: top of the repository, which the PyInstaller spec bundles next to the package
PACKAGE_ICON = Path(__file__).resolve().parent.parent / "resources" / "face2scene.svg"


def icon_path() -> Optional[Path]:
    for p in (PACKAGE_ICON, PACKAGE_ICON.parents[2] / "resources" / "icons" / "face2scene.svg"):
        if p.is_file():
            return p
    return None


def app_icon() -> QIcon:
    p = icon_path()
    return QIcon(str(p)) if p is not None else QIcon()


def dark_palette() -> QPalette:
    p = QPalette()
    base, alt, text = QColor(32, 33, 36), QColor(44, 46, 50), QColor(230, 230, 230)
    for role, c in ((QPalette.ColorRole.Window, QColor(40, 42, 46)), (QPalette.ColorRole.WindowText, text),
                    (QPalette.ColorRole.Base, base), (QPalette.ColorRole.AlternateBase, alt),
                    (QPalette.ColorRole.ToolTipBase, alt), (QPalette.ColorRole.ToolTipText, text),
                    (QPalette.ColorRole.Text, text), (QPalette.ColorRole.Button, QColor(52, 54, 58)),
                    (QPalette.ColorRole.ButtonText, text), (QPalette.ColorRole.BrightText, QColor(255, 90, 90)),
                    (QPalette.ColorRole.Highlight, QColor(60, 120, 210)),
                    (QPalette.ColorRole.HighlightedText, QColor(255, 255, 255)),
                    (QPalette.ColorRole.Link, QColor(110, 160, 240)),
                    (QPalette.ColorRole.PlaceholderText, QColor(150, 150, 150))):
        p.setColor(role, c)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 120, 120))
    return p


def is_dark() -> bool:
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


def apply_theme(app: QApplication, scheme: Optional[str] = None) -> str:
    """Apply "light"/"dark" (default: the system's); returns the scheme applied."""
    app.setStyle("Fusion")
    if scheme is None:
        scheme = "dark" if is_dark() else "light"
    app.setPalette(dark_palette() if scheme == "dark" else app.style().standardPalette())
    return scheme


def follow_system(app: QApplication) -> None:
    apply_theme(app)
    QGuiApplication.styleHints().colorSchemeChanged.connect(lambda _s: apply_theme(app))
