"""Signing what is dropped on the window, with the CLI's engines (no Qt here).

A ``.pkg`` is signed as ``productsign`` does, into ``NAME-signed.pkg`` beside it; a folder
(an ``.app`` or other bundle) and any other file (Mach-O) as ``codesign -f -s`` does, in place.
The engines hash locally, check every signature the service returns against the identity's
certificate, and write to a temporary file renamed over the target only at the end, so a
failure or a cancel leaves the input as it was. Cancelling is checked between chunks, before
the signatures are asked for and when they arrive, before anything is written.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from signing_manager.algorithms import Algorithm
from signing_manager.cli import writing
from signing_manager.cms import common_name
from signing_manager.codesign import files
from signing_manager.codesign.bundle import sign_bundle
from signing_manager.codesign.command import sign_file
from signing_manager.codesign.signing import SigningOptions
from signing_manager.errors import SigningManagerError, one_line
from signing_manager.key_usage import usage_warning
from signing_manager.pkg.signing import sign_archive
from signing_manager.pkg.xar import XarArchive

# done, total: total 0 while the amount of work is not known (a bundle's files, one Mach-O).
Progress = Callable[[int, int], object]


class Cancelled(SigningManagerError):
    pass


@dataclass(frozen=True)
class Outcome:
    path: Path
    signed: bool
    message: str  # what was written, or why nothing was


class CancellableSigner:
    """A signer that refuses to ask for signatures once the user has cancelled."""

    def __init__(self, signer, cancelled: threading.Event):
        self.signer = signer
        self.cancelled = cancelled

    @property
    def certificate(self):
        return self.signer.certificate

    @property
    def chain(self):
        return self.signer.chain

    def default_algorithm(self) -> Algorithm:
        return self.signer.default_algorithm()

    def check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled("Cancelled; nothing was written.")

    def sign_digest(self, digest: bytes, algorithm: Algorithm) -> bytes:
        return self.sign_digests([(digest, algorithm)])[0]

    def sign_digests(self, requests: list[tuple[bytes, Algorithm]]) -> list[bytes]:
        """The signatures, unless a cancel came before they were asked for or while the
        service made them (then they are dropped, and nothing is written)."""
        self.check_cancelled()
        signatures = self.signer.sign_digests(requests)
        self.check_cancelled()
        return signatures


def package_output(path: Path) -> Path:
    """Where a dropped package's signed copy goes: beside it, ``NAME-signed.pkg``."""
    return path.with_name(f"{path.stem}-signed{path.suffix}")


def sign_dropped(
    path: Path, signer, cancelled: threading.Event, progress: Progress = lambda done, total: None
) -> Outcome:
    """Sign one dropped path; what became of it, in a sentence (never raises a
    ``SigningManagerError``: that is the outcome)."""
    guarded = CancellableSigner(signer, cancelled)
    package = path.suffix == ".pkg" and not path.is_dir()
    try:
        guarded.check_cancelled()
        if path.is_dir():
            message = sign_bundle_at(path, guarded, progress)
        elif package:
            message = sign_package_at(path, guarded, progress)
        else:
            sign_file(path, guarded, SigningOptions(identifier="", force=True))
            message = f"Signed {path.name}."
    except SigningManagerError as error:
        return Outcome(path, False, one_line(error))
    warning = usage_warning(signer.certificate, common_name(signer.certificate), package)
    return Outcome(path, True, f"{message} Warning: {warning}" if warning else message)


def sign_bundle_at(path: Path, signer: CancellableSigner, progress: Progress) -> str:
    count = 0

    def advance(current: Path) -> None:
        nonlocal count
        signer.check_cancelled()
        count += 1
        progress(count, 0)

    signed = sign_bundle(path, signer, SigningOptions(identifier="", force=True), advance)
    return f"Signed {path.name} ({signed} Mach-O files)."


def sign_package_at(path: Path, signer: CancellableSigner, progress: Progress) -> str:
    destination = package_output(path)
    with files.open_regular(path) as package:
        archive = XarArchive.load(package)
        total, done = len(archive.heap), 0

        def advance(size: int) -> None:
            nonlocal done
            signer.check_cancelled()
            done += size
            progress(done, total)

        with writing(destination) as signed:
            sign_archive(archive, signer, signed, advance=advance)
    return f"Signed {path.name} into {destination.name}."
