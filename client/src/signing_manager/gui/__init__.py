"""The Signing Manager window (PySide6, the ``gui`` extra): the user guide's desktop app.

Built on the CLI's library, never beside it: settings and the keyring (``config``), the service
client and its pinning (``service``), the menu's lines (``menu``), the log (``logs``) and the
signing engines (``codesign``, ``pkg``). Only ``launch`` may be imported without PySide6.

- ``launch``: the ``signing-manager-gui`` entry point, and whether a window can open here.
- ``app``: the Qt application around the window, with logging as the settings say.
- ``window``: the certificates window: table, detail pane, status bar, operations, drops.
- ``identities``: the table's model (sortable, filterable, expiry marked).
- ``preferences``: the Preferences dialog (URL, API key in the keyring, trust, debug).
- ``dialogs``: the questions and messages the window shows (replaceable in tests).
- ``backend``: the network and signing work the window asks for (replaceable in tests).
- ``tasks``: running that work on a thread, its answers back on the window's.
- ``log_window``: Show Log, following SigningManager.log.
- ``signing_panel`` and ``dropped``: signing dropped files, each with its progress.
"""
