"""``signing-manager codesign``: sign, check and describe, once the command line is read
(``options.py``): one Mach-O file at a time, or a bundle's code in one batch.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from signing_manager.cms import common_name
from signing_manager.codesign.assessment import Judgement, assess
from signing_manager.codesign.blobs import BlobMagic, Slot, blob_payload
from signing_manager.codesign.bundle import (
    bundle_of_executable,
    check_bundle,
    default_identifier,
    open_bundle,
)
from signing_manager.codesign.bundle import sign_bundle as sign_bundle_tree
from signing_manager.codesign.describe import (
    DisplayOptions,
    Shown,
    chosen_slices,
    describe,
    requirements_text,
)
from signing_manager.codesign.files import FileError, Replacement, map_file
from signing_manager.codesign.options import (
    DisplayRequest,
    display_request,
    options_from,
    request_of,
    test_requirement,
)
from signing_manager.codesign.signing import SigningOptions, lay_out, sign_requests
from signing_manager.codesign.verify import check_macho
from signing_manager.errors import SigningManagerError, one_line
from signing_manager.key_usage import usage_warning
from signing_manager.trust import load_anchors

OpenSigner = Callable[[str], AbstractContextManager]
log = logging.getLogger(__name__)


def run(arguments, open_signer: OpenSigner) -> int:
    request = request_of(arguments)
    if arguments.keychain:
        print(
            "signing-manager: note: --keychain is not needed: identities stay in the Signing "
            "Service.",
            file=sys.stderr,
        )
    if request.operation == "display":
        return display_all(arguments.paths, display_request(arguments, request.verbosity))
    if request.operation == "verify":
        judgement = Judgement(load_anchors(arguments.anchor), test_requirement(arguments))
        return verify_all(arguments.paths, request.verbosity, arguments.architecture, judgement)
    options = options_from(arguments)
    failures = 0
    with open_signer(arguments.sign) as signer:
        log.info("codesign: signing %d path(s) %s", len(arguments.paths), signed_by(signer))
        name = one_line(common_name(signer.certificate)) if signer is not None else ""
        warning = signer and usage_warning(signer.certificate, name, installer=False)
        if warning:
            print(f"signing-manager: warning: {warning}", file=sys.stderr)
        for path in arguments.paths:
            try:
                sign_path(path, signer, options, arguments.deep)
            except SigningManagerError as error:
                report(path, error)
                failures += 1
    return 1 if failures else 0


def signed_by(signer) -> str:
    if signer is None:
        return "ad hoc"
    sha1 = signer.certificate.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - a name
    return f"with “{common_name(signer.certificate)}” ({sha1})"


def report(path: Path, message: object, stream=None) -> None:
    """``PATH: message`` on one line, whatever characters the path or message hold; in the
    log too."""
    line = f"{one_line(path)}: {one_line(message)}"
    log.info("codesign: %s", line)
    print(line, file=stream or sys.stderr)


def sign_path(path: Path, signer, options: SigningOptions, deep: bool) -> None:
    if path.is_dir():
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            transient=True,
            console=Console(stderr=True),
            disable=not sys.stderr.isatty(),
        ) as progress:
            task = progress.add_task(f"Signing {path.name}", total=None)

            def advance(current: Path) -> None:
                progress.update(task, advance=1, description=f"Signing {current.name}")

            count = sign_bundle_tree(path, signer, options, advance, deep=deep)
        report(path, f"signed bundle ({count} Mach-O files)", sys.stdout)
        return
    identifier = sign_file(path, signer, options)
    report(path, f"signed [{identifier}]", sys.stdout)


def sign_file(path: Path, signer, options: SigningOptions) -> str:
    """Sign one Mach-O or universal file in place (atomically); the identifier used.

    Every byte's place is known once the file is laid out, so the output is written by a
    second thread while this one hashes the pages; the signatures go in last."""
    path = path.resolve()  # through a symlink: sign its target, keep the link
    if not options.identifier:
        options = replace(options, identifier=default_identifier(path))
    pending = lay_out(map_file(path), signer, options)
    try:
        output = Replacement(path)
    except OSError as error:
        raise FileError(f"Cannot write {path}: {error.strerror}.") from None
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            writing = pool.submit(output.write, pending.chunks())
            pending.hash()
            writing.result()
        [signatures] = sign_requests([pending], signer)
        for position, tail in zip(pending.tail_positions(), pending.tails(signatures), strict=True):
            output.write_at(position, tail)
        output.commit()
    except OSError as error:
        output.discard()
        raise FileError(f"Cannot write {path}: {error.strerror}.") from None
    except BaseException:
        output.discard()
        raise
    return options.identifier


def verify_all(
    paths: list[Path], verbosity: int, architecture: str | None, judgement: Judgement
) -> int:
    failures = 0
    for path in paths:
        try:
            problems, notes = verify_path(path, judgement, architecture)
        except SigningManagerError as error:
            problems, notes = [str(error)], []
        for problem in problems:
            report(path, problem)
        if problems:
            failures += 1
        elif verbosity:
            report(path, "valid on disk")
            shown = notes if verbosity > 1 else [n for n in notes if "chain" not in n]
            for note in shown:
                report(path, note)
    return 1 if failures else 0


def verify_path(
    path: Path, judgement: Judgement, architecture: str | None = None
) -> tuple[list[str], list[str]]:
    """Every problem of the file's (or bundle's) signature, and what -vv reports of it; of one
    slice with ``architecture``."""
    path = bundle_of_executable(path) or path
    info = None
    if path.is_dir():
        check = check_bundle(path)
        checks, problems, info = check.slices, list(check.problems), check.bundle.info
    else:
        checks, problems = check_macho(map_file(path)), []
    if architecture:
        checks = chosen_slices(Shown(path, path, checks), DisplayOptions(architecture=architecture))
    many = len(checks) > 1 or path.is_dir()
    notes: list[str] = []
    for check in checks:
        found = list(check.problems)
        if check.signed and not found:
            assessment = assess(check, judgement, info)
            found, notes = assessment.problems, notes or assessment.notes
        problems += [f"{check.architecture}: {problem}" if many else problem for problem in found]
    return problems, notes


def display_all(paths: list[Path], request: DisplayRequest) -> int:
    failures = 0
    for path in paths:
        try:
            shown = shown_of(path)
            print(describe(shown, request.options), end="", file=sys.stderr)
            for check in chosen_slices(shown, request.options):
                print(extras_text(check, request), end="")
        except SigningManagerError as error:
            report(path, error)
            failures += 1
    return 1 if failures else 0


def extras_text(check, request: DisplayRequest) -> str:
    """What -r- and --entitlements - put on standard output."""
    text = requirements_text(check) if request.requirements else ""
    if request.entitlements and Slot.ENTITLEMENTS in check.blobs:
        text += blob_payload(check.blobs[Slot.ENTITLEMENTS], BlobMagic.ENTITLEMENTS).decode(
            "utf-8", "replace"
        )
    return text


def shown_of(path: Path) -> Shown:
    path = bundle_of_executable(path) or path
    if path.is_dir():
        bundle = open_bundle(path)
        check = check_bundle(path)
        executable = bundle.executable if bundle else None
        if executable is None:
            raise SigningManagerError("The bundle has no main executable.")
        kind = "app bundle" if path.suffix == ".app" else "bundle"
        return Shown(path, executable.resolve(), check.slices, kind, bundle.info, check.seal)
    return Shown(path, path.resolve(), check_macho(map_file(path)))
