"""Signing what is dropped on the window: a Mach-O, an .app bundle and a .pkg with the selected
identity, a progress bar and a result line each, Cancel, and inputs left as they were when a
signature does not check out or the user cancels (offscreen, keys at hand)."""

from __future__ import annotations

import plistlib
import threading

import pytest

pytest.importorskip("PySide6", reason="the window's tests need PySide6 (the gui extra)")

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from PySide6.QtCore import Qt

from signing_manager.codesign.assessment import Judgement
from signing_manager.codesign.command import verify_path
from signing_manager.gui.dropped import sign_dropped
from signing_manager.local_key import LocalSigner
from signing_manager.pkg.verify import check_package
from signing_manager.remote_key import RemoteSigner
from signing_manager.trust import load_anchors
from signing_service.test import cached_key, fake_ca, make_certificate

WAIT_MS = 60_000


@pytest.fixture
def folder(tmp_path):
    made = tmp_path / "dropped"
    made.mkdir()
    return made


def code_problems(path) -> list[str]:
    """What ``codesign -v`` finds wrong, trusting the test CA as a company's root."""
    problems, _ = verify_path(path, Judgement((*load_anchors(None), fake_ca()[0]), None))
    return problems


def app_bundle(folder, machos):
    bundle = folder / "Tool.app"
    (bundle / "Contents" / "MacOS").mkdir(parents=True)
    machos.copy("arm64-exe", bundle / "Contents" / "MacOS", "Tool")
    info = {"CFBundleExecutable": "Tool", "CFBundleIdentifier": "com.example.tool"}
    (bundle / "Contents" / "Info.plist").write_bytes(plistlib.dumps(info))
    return bundle


def wait_until_done(window, qtbot) -> None:
    qtbot.waitUntil(lambda: window.signing is None, timeout=WAIT_MS)


def test_dropped_code_bundles_and_packages_are_signed_with_the_selected_identity(
    refreshed, qtbot, ui, made_identities, machos, packages, folder
):
    identity = made_identities["valid"][0]
    ui.select(refreshed, identity)
    tool = machos.copy("arm64-exe", folder, "tool")
    bundle = app_bundle(folder, machos)
    package = folder / "Installer.pkg"
    package.write_bytes(packages.build("product"))
    original_package = package.read_bytes()

    ui.drop(refreshed, [tool, bundle, package])
    wait_until_done(refreshed, qtbot)

    panel = refreshed.signing_panel
    assert panel.isVisible()
    assert panel.heading.text() == f"Signing with “{identity.common_name}”"
    assert panel.results() == [
        "Signed tool.",
        "Signed Tool.app (1 Mach-O files).",
        "Signed Installer.pkg into Installer-signed.pkg.",
    ]
    assert all(bar.value() == bar.maximum() == 1 for bar in panel.bars)
    assert not panel.cancel.isEnabled()
    assert code_problems(tool) == []
    assert code_problems(bundle) == []
    signed = check_package((folder / "Installer-signed.pkg").read_bytes())
    assert signed.valid, signed.problems
    assert signed.certificates[0] == identity.certificate
    assert package.read_bytes() == original_package  # the package's output is beside it


def test_a_package_shows_its_progress_in_bytes(
    refreshed, qtbot, ui, made_identities, packages, folder
):
    ui.select(refreshed, made_identities["valid"][0])
    package = folder / "files.pkg"
    package.write_bytes(packages.build("uncompressed"))
    seen: list[tuple[int, int]] = []
    original = refreshed.signing_panel.progress
    refreshed.signing_panel.progress = lambda i, done, total: (
        seen.append((done, total)),
        original(i, done, total),
    )
    refreshed.sign_paths([package])
    wait_until_done(refreshed, qtbot)
    assert seen, "no progress reported"
    assert all(total == seen[0][1] > 0 for _, total in seen)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert 0 < seen[-1][0] <= seen[-1][1]  # the data; the total also counts the checksum
    assert refreshed.signing_panel.bars[0].value() == refreshed.signing_panel.bars[0].maximum()


def test_cancel_stops_the_batch_and_writes_nothing(
    refreshed, qtbot, ui, made_identities, backend, machos, folder
):
    ui.select(refreshed, made_identities["valid"][0])
    first, second = (machos.copy("x86_64-exe", folder, name) for name in ("one", "two"))
    before = first.read_bytes(), second.read_bytes()
    backend.gate = threading.Event()
    refreshed.sign_paths([first, second])
    assert backend.asked.wait(WAIT_MS / 1000)  # the first signature is being made
    assert refreshed.signing_panel.cancel.isEnabled()
    qtbot.mouseClick(refreshed.signing_panel.cancel, Qt.MouseButton.LeftButton)
    backend.gate.set()
    wait_until_done(refreshed, qtbot)
    assert refreshed.signing_panel.results() == ["Cancelled; nothing was written."] * 2
    assert (first.read_bytes(), second.read_bytes()) == before
    assert sorted(p.name for p in folder.iterdir()) == ["one", "two"]  # no temporary files


class LyingService:
    """A service that signs with another key: its signatures do not verify."""

    def __init__(self, other_signer):
        self.other = other_signer

    def sign_batch(self, requests):
        return [self.other.sign_digest(digest, algorithm) for _, algorithm, digest in requests]


def test_a_signature_that_does_not_check_out_leaves_the_input_untouched(
    refreshed, qtbot, ui, made_identities, backend, machos, packages, folder
):
    identity, _ = made_identities["valid"]
    _, other = made_identities["soon"]
    backend.signer_for = lambda made, signer: RemoteSigner(LyingService(other), made)
    ui.select(refreshed, identity)
    tool = machos.copy("arm64-exe", folder, "tool")
    package = folder / "Installer.pkg"
    package.write_bytes(packages.build("files"))
    before = tool.read_bytes()

    refreshed.sign_paths([tool, package])
    wait_until_done(refreshed, qtbot)

    refusal = (
        f"The service returned a signature that does not verify with the certificate of "
        f"“{identity.common_name}”; nothing was written."
    )
    assert refreshed.signing_panel.results() == [refusal, refusal]
    assert tool.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["Installer.pkg", "tool"]


def test_what_cannot_be_signed_says_why_and_is_left_alone(
    refreshed, qtbot, ui, made_identities, folder
):
    ui.select(refreshed, made_identities["valid"][0])
    text = folder / "notes.txt"
    text.write_text("not code\n")
    refreshed.sign_paths([text, folder / "missing"])
    wait_until_done(refreshed, qtbot)
    assert refreshed.signing_panel.results() == [
        "The file is too short to be Mach-O.",  # codesign's own sentence
        f"Cannot read {folder / 'missing'}: No such file or directory.",
    ]
    assert text.read_text() == "not code\n"


def test_a_drop_without_a_selected_identity_asks_for_one(refreshed, qtbot, ui, folder):
    refreshed.table.clearSelection()
    refreshed.dialogs.shown.clear()
    target = folder / "tool"
    target.write_bytes(b"\0")
    ui.drop(refreshed, [target])
    assert refreshed.dialogs.shown == [
        (
            "warning",
            "Select a certificate first",
            "Select the certificate to sign with in the table, then drop the files again.",
        )
    ]
    assert refreshed.signing is None


@pytest.mark.parametrize(
    ("usages", "kind", "warning"),
    [
        (
            [ExtendedKeyUsageOID.CODE_SIGNING],
            "package",
            "lacks the installer-signing usage (1.2.840.113635.100.4.13); Installer may refuse "
            "the package.",
        ),
        (
            [x509.ObjectIdentifier("1.2.840.113635.100.4.13")],
            "code",
            "lacks the code-signing usage; macOS may refuse code signed with it.",
        ),
    ],
)
def test_an_identity_without_the_usage_signs_with_the_clis_warning(
    machos, packages, folder, usages, kind, warning
):
    key = cached_key("rsa2048", 3)
    certificate = make_certificate(key, "Wrong Usage", usages=usages)
    signer = LocalSigner(certificate, key, (fake_ca()[0],))
    if kind == "package":
        path = folder / "Installer.pkg"
        path.write_bytes(packages.build("files"))
        done = "Signed Installer.pkg into Installer-signed.pkg."
    else:
        path = machos.copy("arm64-exe", folder, "tool")
        done = "Signed tool."
    outcome = sign_dropped(path, signer, threading.Event())
    assert outcome.signed
    assert outcome.message == f"{done} Warning: “Wrong Usage” {warning}"
