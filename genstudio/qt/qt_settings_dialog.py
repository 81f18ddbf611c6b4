"""The settings dialog: the Qt Designer form ui/settings_dialog.ui, loaded with QUiLoader, and its logic."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QFile, QIODevice, QObject, QSettings, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from genstudio.qt import qt_settings as st
from genstudio.qt.qt_theme import THEME_TITLES
from genstudio.runtime import paths
from genstudio.runtime import providers as prov
from genstudio.runtime.sessions import SessionPool

PROVIDER_TITLES = {"auto": "Auto (best available)", "cuda": "CUDA (NVIDIA)", "directml": "DirectML (Windows GPUs)",
                   "coreml": "Core ML (Apple)", "cpu": "CPU"}
FORM_FILE = "settings_dialog.ui"


def load_form(parent: QWidget | None = None) -> QDialog:
    """Load ui/settings_dialog.ui; a missing or broken form raises RuntimeError with the loader's reason."""
    from PySide6.QtUiTools import QUiLoader  # only when the dialog opens: it is not needed at startup

    path = paths.ui_dir() / FORM_FILE
    f = QFile(str(path))
    if not f.open(QIODevice.OpenModeFlag.ReadOnly):
        raise RuntimeError(f"cannot open {path}: {f.errorString()}")
    try:
        loader = QUiLoader()
        dialog = loader.load(f, parent)
    finally:
        f.close()
    if dialog is None:
        raise RuntimeError(f"cannot load {path}: {loader.errorString()}")
    return dialog


class QtSettingsDialog(QObject):
    """Reads the settings into the form; OK writes them back and applies the runtime ones to the pool."""

    applied = Signal()  # after OK: settings written and the pool reconfigured

    def __init__(self, settings: QSettings, pool: SessionPool, parent: QWidget | None = None,
                 probe_results: Sequence[prov.ProbeResult] | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._pool = pool
        self.dialog = load_form(parent)
        d = self.dialog
        self.provider: QComboBox = d.findChild(QComboBox, "providerCombo")
        self.provider_hint: QLabel = d.findChild(QLabel, "providerHint")
        self.threads: QSpinBox = d.findChild(QSpinBox, "threadsSpin")
        self.output: QLineEdit = d.findChild(QLineEdit, "outputEdit")
        self.browse: QPushButton = d.findChild(QPushButton, "outputBrowse")
        self.theme: QComboBox = d.findChild(QComboBox, "themeCombo")
        self.buttons: QDialogButtonBox = d.findChild(QDialogButtonBox, "buttonBox")
        missing = [n for n, w in (("providerCombo", self.provider), ("threadsSpin", self.threads),
                                  ("outputEdit", self.output), ("themeCombo", self.theme),
                                  ("buttonBox", self.buttons)) if w is None]
        if missing:
            raise RuntimeError(f"{FORM_FILE} lacks {', '.join(missing)}")
        self.provider_hint.setProperty("role", "muted")
        for key in st.PROVIDER_CHOICES:
            self.provider.addItem(PROVIDER_TITLES.get(key, key), key)
        for key in st.THEME_CHOICES:
            self.theme.addItem(THEME_TITLES[key], key)
        self.set_probe_results(probe_results)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(d.reject)
        restore = self.buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults)
        if restore is not None:
            restore.clicked.connect(self.restore_defaults)
        self.browse.clicked.connect(self._browse)
        self.provider.currentIndexChanged.connect(self._update_hint)
        self.load()

    # -- values ------------------------------------------------------------------------------------
    def load(self) -> None:
        s = self._settings
        self.set_values(st.read_runtime(s), st.read_output(s), st.read_appearance(s))

    def set_values(self, runtime: st.RuntimeSettings, output: st.OutputSettings,
                   appearance: st.AppearanceSettings) -> None:
        self.provider.setCurrentIndex(max(0, self.provider.findData(runtime.provider)))
        self.threads.setValue(runtime.threads)
        self.output.setText(str(output.folder))
        self.theme.setCurrentIndex(max(0, self.theme.findData(appearance.theme)))
        self._update_hint()

    def values(self) -> tuple[st.RuntimeSettings, st.OutputSettings, st.AppearanceSettings]:
        folder = self.output.text().strip()
        return (st.RuntimeSettings(self.provider.currentData() or "auto", self.threads.value()),
                st.OutputSettings(Path(folder).expanduser() if folder else paths.default_output_dir()),
                st.AppearanceSettings(self.theme.currentData() or "light"))

    def restore_defaults(self) -> None:
        self.set_values(st.RuntimeSettings(), st.OutputSettings(paths.default_output_dir()), st.AppearanceSettings())

    def accept(self) -> None:
        runtime, output, appearance = self.values()
        s = self._settings
        st.write_runtime(s, runtime)
        st.write_output(s, output)
        st.write_appearance(s, appearance)
        s.sync()
        self._pool.set_config(runtime.session_config(self._pool.config))
        self.dialog.accept()
        self.applied.emit()

    # -- helpers -----------------------------------------------------------------------------------
    def set_probe_results(self, results: Sequence[prov.ProbeResult] | None) -> None:
        self._probes = {r.provider: r for r in results or ()}
        for i in range(self.provider.count()):
            key = self.provider.itemData(i)
            full = prov.CHOICES.get(key)
            r = self._probes.get(full) if full else None
            title = PROVIDER_TITLES.get(key, key)
            self.provider.setItemText(i, title if r is None or r.usable else f"{title}: not usable here")
        self._update_hint()

    def _update_hint(self) -> None:
        if self.provider_hint is None:
            return
        key = self.provider.currentData()
        if not self._probes:
            self.provider_hint.setText("Providers are checked with a probe session in the background.")
            return
        if key == "auto":
            usable = [prov.short_name(p) for p, r in self._probes.items() if r.usable]
            self.provider_hint.setText(f"Usable here: {', '.join(usable) or 'none'}. Auto takes the first.")
            return
        r = self._probes.get(prov.CHOICES.get(key, ""))
        if r is None:
            self.provider_hint.setText("")
        elif r.usable:
            self.provider_hint.setText(f"Usable: {r.detail} in {r.seconds * 1000:.0f} ms.")
        else:
            self.provider_hint.setText(f"Not usable here ({r.detail}); sessions would fall back to the CPU.")

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.dialog, "Save outputs to", self.output.text())
        if folder:
            self.output.setText(folder)

    def open(self) -> None:
        self.dialog.open()

    def exec(self) -> int:
        return self.dialog.exec()
