"""Preferences (⌘, / Ctrl+,): the guide's "App Preferences", saved as ``-s`` saves them.

Service URL, API key, "Trust self-signed certificates" and debug logging. The key goes to the
OS keyring (never to a file) and is shown only as "Set"; leaving the field empty keeps the key
already set. Saving goes through the CLI's ``save_settings``, so it re-trusts as ``-s`` does:
the next refresh shows the certificate the service presents and asks before pinning it.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
)

from signing_manager.cli import save_settings
from signing_manager.config import Secrets, Settings
from signing_manager.errors import ConfigurationError, SigningManagerError, one_line


class PreferencesDialog(QDialog):
    def __init__(self, settings: Settings, secrets: Secrets, parent=None):
        super().__init__(parent)
        self.setObjectName("preferences")
        self.setWindowTitle("Preferences")
        self.settings = settings
        self.secrets = secrets
        self.url = QLineEdit(settings.api_host)
        self.url.setPlaceholderText("https://signing.example.com:8443")
        self.api_key = QLineEdit()
        self.api_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_set = bool(secrets.api_key())
        self.api_key.setPlaceholderText("Set" if self.key_set else "smk_…")
        self.key_state = QLabel(self.key_state_text())
        self.trust = QCheckBox("Trust self-signed certificates")
        self.trust.setChecked(settings.trust_self_signed)
        self.debug = QCheckBox("Debug logging")
        self.debug.setChecked(settings.debug)
        self.problem = QLabel()
        self.problem.setObjectName("problem")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #b00020")
        self.problem.hide()

        form = QFormLayout()
        form.addRow("Signing Service URL:", self.url)
        form.addRow("API key:", self.api_key)
        form.addRow("", self.key_state)
        form.addRow("", self.trust)
        form.addRow("", self.debug)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(buttons)
        self.setMinimumWidth(480)

    def key_state_text(self) -> str:
        if not self.key_set:
            return "Not set"
        source = self.secrets.api_key_source()
        return "Set" if source == "the keyring" else f"Set (from {source})"

    def save(self) -> None:
        """Save and close; or say, under the fields, in the CLI's sentence, what is wrong."""
        new_key = self.api_key.text().strip()
        try:
            if not (new_key or self.key_set):
                raise ConfigurationError(
                    "Enter the API key that the Signing Service's API Keys page gave you."
                )
            save_settings(
                self.settings,
                self.url.text(),
                trust_self_signed=self.trust.isChecked(),
                debug=self.debug.isChecked(),
            )
            if new_key:
                self.secrets.set_api_key(new_key)
        except SigningManagerError as error:
            self.problem.setText(one_line(error))
            self.problem.show()
            return
        self.accept()
