"""The Settings and Export dialogs."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QVBoxLayout)

from face2scene.options import DEVICES

from ..engine import EngineSettings, restorer_choices
from ..export import FORMATS, TEMPLATE_FIELDS, ExportError, ExportOptions, check_template
from ..settings import cuda_present, restorer_hint, unavailable_choices


def disable_choices(combo: QComboBox, reasons: Dict[str, str]) -> None:
    """Grey out the choices that cannot run here, with the reason ("needs …") as their tooltip."""
    model = combo.model()
    for i in range(combo.count()):
        why = reasons.get(combo.itemText(i))
        if why:
            combo.setItemData(i, f"Unavailable: {why}", Qt.ItemDataRole.ToolTipRole)
            item = model.item(i)
            if item is not None:
                item.setEnabled(False)


def _buttons(dlg: QDialog) -> QDialogButtonBox:
    bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
    bb.accepted.connect(dlg.accept)
    bb.rejected.connect(dlg.reject)
    return bb


class SettingsDialog(QDialog):
    def __init__(self, settings: EngineSettings, parent=None, models_dir: Optional[Path] = None,
                 megapixels: Optional[float] = None) -> None:
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.unavailable = unavailable_choices(models_dir or settings.models_dir or ".")
        self.setWindowTitle("Settings")
        lay = QVBoxLayout(self)
        form = QFormLayout()
        self.device = QComboBox()
        self.device.addItems(list(DEVICES))
        disable_choices(self.device, self.unavailable["device"])
        self.device.setCurrentText(settings.device)
        self.device.setToolTip("auto uses the GPU (CUDA) when there is one, else the CPU")
        self.restorer = QComboBox()
        choices = restorer_choices()
        if settings.restorer not in choices:
            choices.append(settings.restorer)
        self.restorer.addItems(choices)
        disable_choices(self.restorer, self.unavailable["restorer"])
        self.restorer.setCurrentText(settings.restorer)
        self.restorer.setToolTip("auto: the compact learned restorer, or the classical one where it cannot run "
                                 "(a version made with a fallback says so)")
        self.hint = QLabel("")  # a slow restorer's expected time (the GAN on the CPU)
        self.hint.setObjectName("restorerHint")
        self.hint.setWordWrap(True)
        self._megapixels = megapixels
        for i in range(self.restorer.count()):
            name = self.restorer.itemText(i)
            if restorer_hint(name) and name not in self.unavailable["restorer"]:
                self.restorer.setItemData(i, restorer_hint(name, megapixels), Qt.ItemDataRole.ToolTipRole)
        self.note = QLabel("")
        self.note.setObjectName("settingsNote")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #c33")
        self.device.currentIndexChanged.connect(self._check_current)
        self.restorer.currentIndexChanged.connect(self._check_current)
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
        form.addRow("", self.hint)
        form.addRow("Strength:", self.strength)
        form.addRow("Tile size (px):", self.tile)
        form.addRow("Upscale:", self.upscale)
        form.addRow("", self.paste)
        lay.addLayout(form)
        lay.addWidget(self.note)
        self._check_current()
        lay.addWidget(QLabel("<small>Changes apply to photos queued from now on.</small>"))
        lay.addWidget(_buttons(self))
        self._base = settings

    def _check_current(self, _i: int = 0) -> None:
        """A saved choice that is unavailable now is kept selected but explained."""
        why = [f"{c.currentText()}: {r[c.currentText()]}"
               for c, r in ((self.device, self.unavailable["device"]), (self.restorer, self.unavailable["restorer"]))
               if c.currentText() in r]
        self.note.setText("; ".join(why) + ("; photos would fall back to another choice" if why else ""))
        self.note.setVisible(bool(why))
        gpu = self.device.currentText() != "cpu" and "cuda" not in self.unavailable["device"] and cuda_present()
        hint = restorer_hint(self.restorer.currentText(), self._megapixels, gpu)
        self.hint.setText(hint or "")
        self.hint.setVisible(bool(hint))

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
