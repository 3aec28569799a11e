"""Where messages reach the user: a dismissable bar at the top of the window with the latest
message (word-wrapped, never widening the window) and the list of every message of this session
(the "All messages" button). The status bar's transient text is no substitute: it vanishes
after a few seconds and hides behind the queue bar."""
from __future__ import annotations

import time
from typing import List, Tuple

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QListWidget, QSizePolicy, QToolButton, QVBoxLayout)

LEVELS = ("info", "warning", "error")
_COLOURS = {"info": "rgba(70,130,200,40)", "warning": "rgba(220,160,30,60)", "error": "rgba(210,60,60,60)"}
_ICONS = {"info": "\u2139", "warning": "\u26a0", "error": "\u2716"}


class MessageBar(QFrame):
    """The latest message, a dismiss button and the session's message list."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("messageBar")
        self.history: List[Tuple[float, str, str]] = []   # (time, level, text)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 4, 6, 4)
        row = QHBoxLayout()
        self.icon = QLabel()
        self.label = QLabel("")
        self.label.setObjectName("messageText")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # a long path wraps; it never makes the window wider
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.btn_all = QToolButton()
        self.btn_all.setObjectName("messageAll")
        self.btn_all.setCheckable(True)
        self.btn_all.setToolTip("Every message of this session")
        self.btn_all.toggled.connect(self._show_all)
        self.btn_close = QToolButton()
        self.btn_close.setObjectName("messageDismiss")
        self.btn_close.setText("\u2715")
        self.btn_close.setToolTip("Dismiss")
        self.btn_close.clicked.connect(self.dismiss)
        row.addWidget(self.icon)
        row.addWidget(self.label, 1)
        row.addWidget(self.btn_all)
        row.addWidget(self.btn_close)
        outer.addLayout(row)
        self.list = QListWidget()
        self.list.setObjectName("messageList")
        self.list.setWordWrap(True)
        self.list.setMaximumHeight(160)
        self.list.setVisible(False)
        outer.addWidget(self.list)
        self.setVisible(False)

    @property
    def text(self) -> str:
        return self.label.text()

    def show_message(self, text: str, level: str = "info") -> None:
        level = level if level in LEVELS else "info"
        self.history.append((time.time(), level, text))
        self.label.setText(text)
        self.label.setToolTip(text)
        self.icon.setText(_ICONS[level])
        self.setStyleSheet(f"#messageBar {{ background: {_COLOURS[level]}; border-radius: 4px; }}")
        stamp = time.strftime("%H:%M:%S")
        self.list.insertItem(0, f"{stamp}  {_ICONS[level]} {text}")
        self.btn_all.setText(f"All messages ({len(self.history)})")
        self.setVisible(True)

    def dismiss(self) -> None:
        self.btn_all.setChecked(False)
        self.setVisible(False)

    def _show_all(self, on: bool) -> None:
        self.list.setVisible(on)

    def messages(self) -> List[str]:
        return [t for _, _, t in self.history]

