"""Settings dialog, export dialog and the Models page."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

from PySide6.QtCore import Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton,
                               QSpinBox, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from ..engine import DEVICES, EngineSettings, restorer_choices
from ..export import FORMATS, TEMPLATE_FIELDS, ExportError, ExportOptions, check_template
from ..models import PackStatus, import_model_folder, model_status
from .tasks import Background


def _buttons(dlg: QDialog) -> QDialogButtonBox:
    bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
    bb.accepted.connect(dlg.accept)
    bb.rejected.connect(dlg.reject)
    return bb


class SettingsDialog(QDialog):
    def __init__(self, settings: EngineSettings, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Settings")
        lay = QVBoxLayout(self)
        form = QFormLayout()
        self.device = QComboBox()
        self.device.addItems(list(DEVICES))
        self.device.setCurrentText(settings.device)
        self.device.setToolTip("auto uses the GPU (CUDA) when there is one, else the CPU")
        self.restorer = QComboBox()
        choices = restorer_choices()
        if settings.restorer not in choices:
            choices.append(settings.restorer)
        self.restorer.addItems(choices)
        self.restorer.setCurrentText(settings.restorer)
        self.strength = QDoubleSpinBox()
        self.strength.setRange(0.0, 1.0)
        self.strength.setSingleStep(0.05)
        self.strength.setValue(settings.strength)
        self.strength.setToolTip("0 keeps the original, 1 applies the full restoration")
        self.tile = QSpinBox()
        self.tile.setRange(128, 4096)
        self.tile.setSingleStep(64)
        self.tile.setValue(settings.tile_size)
        self.tile.setToolTip("Large photos are restored in tiles of this size (smaller uses less memory)")
        self.upscale = QSpinBox()
        self.upscale.setRange(1, 4)
        self.upscale.setValue(settings.upscale)
        self.paste = QCheckBox("Paste restored faces back into the photo")
        self.paste.setChecked(settings.paste_faces)
        form.addRow("Device:", self.device)
        form.addRow("Restorer:", self.restorer)
        form.addRow("Strength:", self.strength)
        form.addRow("Tile size (px):", self.tile)
        form.addRow("Upscale:", self.upscale)
        form.addRow("", self.paste)
        lay.addLayout(form)
        lay.addWidget(QLabel("<small>Changes apply to photos queued from now on.</small>"))
        lay.addWidget(_buttons(self))
        self._base = settings

    def result_settings(self) -> EngineSettings:
        d = self._base.to_json()
        d.update(device=self.device.currentText(), restorer=self.restorer.currentText(),
                 strength=float(self.strength.value()), tile_size=int(self.tile.value()),
                 upscale=int(self.upscale.value()), paste_faces=self.paste.isChecked())
        return EngineSettings.from_json(d)


class ExportDialog(QDialog):
    def __init__(self, defaults: Dict[str, Any], n_photos: int, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("exportDialog")
        self.setWindowTitle(f"Export {n_photos} photo(s)")
        lay = QVBoxLayout(self)
        form = QFormLayout()
        row = QHBoxLayout()
        self.folder = QLineEdit(defaults.get("folder") or str(Path.home() / "Face2Scene export"))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        form.addRow("Folder:", row)
        self.format = QComboBox()
        self.format.addItems(list(FORMATS))
        self.format.setCurrentText(defaults.get("format", "JPEG"))
        self.quality = QSpinBox()
        self.quality.setRange(1, 100)
        self.quality.setValue(int(defaults.get("quality", 92)))
        self.template = QLineEdit(defaults.get("template", "{name}_restored_{version}"))
        self.template.setToolTip("Fields: " + ", ".join("{" + f + "}" for f in sorted(TEMPLATE_FIELDS)))
        self.mirror = QCheckBox("Mirror the folder structure of the import")
        self.mirror.setChecked(bool(defaults.get("mirror")))
        self.sbs = QCheckBox("Also write a before/after side-by-side image")
        self.sbs.setChecked(bool(defaults.get("side_by_side")))
        self.meta = QCheckBox("Carry over EXIF (orientation normalised), ICC profile and dates")
        self.meta.setChecked(True)
        form.addRow("Format:", self.format)
        form.addRow("Quality:", self.quality)
        form.addRow("Name template:", self.template)
        form.addRow("", self.mirror)
        form.addRow("", self.sbs)
        form.addRow("", self.meta)
        lay.addLayout(form)
        self.error = QLabel("")
        self.error.setStyleSheet("color: #c33")
        lay.addWidget(self.error)
        self.buttons = _buttons(self)
        lay.addWidget(self.buttons)
        self.format.currentTextChanged.connect(self._validate)
        self.template.textChanged.connect(self._validate)
        self._validate()

    def _browse(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Export to", self.folder.text())
        if d:
            self.folder.setText(d)

    def _validate(self) -> None:
        self.quality.setEnabled(self.format.currentText() in ("JPEG", "WEBP"))
        try:
            check_template(self.template.text())
            msg = ""
        except ExportError as e:
            msg = str(e)
        self.error.setText(msg)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(not msg)

    def options(self) -> ExportOptions:
        return ExportOptions(Path(self.folder.text()).expanduser(), self.format.currentText(),
                             int(self.quality.value()), self.template.text(), self.mirror.isChecked(),
                             self.sbs.isChecked(), self.meta.isChecked())

    def as_defaults(self) -> Dict[str, Any]:
        o = self.options()
        return {"folder": str(o.folder), "format": o.format, "quality": o.quality, "template": o.template,
                "mirror": o.mirror, "side_by_side": o.side_by_side}


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

        self.bg.run(lambda: import_model_folder(folder, self.models_dir), done, self._failed)
