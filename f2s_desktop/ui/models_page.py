"""The Models page: each backend's status (available / missing files and where to put them /
checksum mismatch / missing package) and importing a model folder, checked in the background."""
from __future__ import annotations

from pathlib import Path
from typing import List

from PySide6.QtCore import Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QHeaderView, QLabel, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from ..models import PackStatus, import_model_folder, model_status
from .tasks import Background


STATE_COLOURS = {"available": QColor(40, 160, 80), "missing": QColor(200, 120, 20),
                 "checksum-mismatch": QColor(210, 50, 50), "missing-package": QColor(200, 120, 20)}


class ModelsPage(QWidget):
    """Each backend's status: available / missing files and where to put them / checksum mismatch."""
    message = Signal(str)
    modelsChanged = Signal()

    def __init__(self, models_dir: Path, background: Background, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("modelsPage")
        self.models_dir = Path(models_dir)
        self.bg = background
        self.statuses: List[PackStatus] = []
        lay = QVBoxLayout(self)
        intro = QLabel("<b>Models</b> — everything works on the embedded defaults; optional model "
                       f"folders live in <code>{self.models_dir}</code>. Nothing is ever downloaded.")
        intro.setWordWrap(True)
        lay.addWidget(intro)
        self.table = QTableWidget(0, 3)
        self.table.setObjectName("modelsTable")
        self.table.setHorizontalHeaderLabels(["Model", "Status", "Details"])
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.setColumnWidth(0, 300)
        self.table.setWordWrap(True)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        lay.addWidget(self.table)
        row = QHBoxLayout()
        self.btn_refresh = QPushButton("Check again")
        self.btn_import = QPushButton("Import model folder…")
        self.btn_refresh.clicked.connect(self.refresh)
        self.btn_import.clicked.connect(self._import_dialog)
        row.addWidget(self.btn_refresh)
        row.addWidget(self.btn_import)
        row.addStretch(1)
        lay.addLayout(row)
        self.busy = False

    def refresh(self) -> None:
        """Check in the background (checksums of large files take time)."""
        self.busy = True
        self.btn_refresh.setEnabled(False)
        self.bg.run(lambda: model_status(self.models_dir), self._show, self._failed)

    def _failed(self, msg: str) -> None:
        self.busy = False
        self.btn_refresh.setEnabled(True)
        self.message.emit(msg)

    def _show(self, statuses: List[PackStatus]) -> None:
        self.busy = False
        self.btn_refresh.setEnabled(True)
        self.statuses = statuses
        self.table.setRowCount(len(statuses))
        for i, s in enumerate(statuses):
            note = f"\n{s.spec.licence_note}" if s.spec.licence_note else ""
            vals = [f"{s.spec.title}\nused for: {s.spec.stage}{note}", s.state, s.detail]
            for j, v in enumerate(vals):
                it = QTableWidgetItem(v)
                it.setToolTip(v)
                if j == 1:
                    it.setForeground(STATE_COLOURS.get(s.state, QColor(128, 128, 128)))
                self.table.setItem(i, j, it)
        self.table.resizeRowsToContents()
        self.modelsChanged.emit()

    def _import_dialog(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Import a model folder")
        if d:
            self.import_folder(Path(d))

    def import_folder(self, folder: Path) -> None:
        self.busy = True

        def done(st: PackStatus):
            self.message.emit(f"Imported {st.spec.title}: {st.state}")
            self.refresh()

        self.bg.run(lambda: import_model_folder(folder, self.models_dir), done,
                    lambda m: self._failed(f"Could not import the model folder: {m}"))
