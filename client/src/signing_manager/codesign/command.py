"""``signing-manager codesign``: Apple's codesign options, with Apple's meaning.

    codesign -s IDENTITY [-f] [-i ID] [--entitlements FILE] [-o runtime,...]
             [--timestamp[=URL] | --timestamp=none] [--deep] [--preserve-metadata[=LIST]] PATH...
    codesign -v [-v...] | --verify [--deep] [--strict] [--verbose=N] [-a ARCH] PATH...
    codesign -d [-v...] [-a ARCH | --all-architectures] [-r-] [--entitlements -] PATH...

IDENTITY is a SHA-1, a common name, or ``-`` for an ad-hoc signature (no service needed).
Options that take an optional value take it only as ``--option=VALUE``, as Apple's do.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from signing_manager.cms import common_name
from signing_manager.codesign.blobs import BlobMagic, Slot, blob_payload
from signing_manager.codesign.bundle import (
    bundle_of_executable,
    check_bundle,
    default_identifier,
    open_bundle,
)
from signing_manager.codesign.bundle import sign_bundle as sign_bundle_tree
from signing_manager.codesign.code_directory import CodeDirectoryFlag
from signing_manager.codesign.describe import (
    DisplayOptions,
    Shown,
    chosen_slices,
    describe,
    requirements_text,
)
from signing_manager.codesign.files import FileError, Replacement, map_file
from signing_manager.codesign.preserve import preserve_list
from signing_manager.codesign.signing import SigningOptions, lay_out, sign_requests
from signing_manager.codesign.verify import check_macho
from signing_manager.errors import ConfigurationError, SigningManagerError, one_line
from signing_manager.key_usage import signs_code
from signing_manager.timestamp import timestamp_url

OpenSigner = Callable[[str], AbstractContextManager]
# codesign's --options names for CodeDirectory flags.
OPTION_FLAGS = {
    "runtime": CodeDirectoryFlag.RUNTIME,
    "library": CodeDirectoryFlag.LIBRARY_VALIDATION,
    "kill": CodeDirectoryFlag.FORCE_KILL,
    "hard": CodeDirectoryFlag.FORCE_HARD,
    "host": CodeDirectoryFlag.HOST,
    "expires": CodeDirectoryFlag.FORCE_EXPIRATION,
    "restrict": CodeDirectoryFlag.RESTRICT,
}


def add_parser(commands, add_timestamp_option) -> None:
    parser = commands.add_parser(
        "codesign",
        help="Sign, check or describe Mach-O files and app bundles, as Apple's codesign.",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("-s", "--sign", metavar="IDENTITY", help="SHA-1, common name, or -.")
    action.add_argument("-d", "--display", action="store_true", help="Describe the signature.")
    parser.add_argument(
        "-v",
        action="count",
        default=0,
        dest="v_count",
        help="Alone: check the signature (--verify). Each -v: more output.",
    )
    parser.add_argument("--verify", action="store_true", help="Check the signature.")
    parser.add_argument(
        "--verbose", metavar="N", dest="verbose_level", help="--verbose=N: the output's detail."
    )
    parser.add_argument("-f", "--force", action="store_true", help="Replace existing signatures.")
    parser.add_argument("-i", "--identifier", help="The identifier (default: bundle ID or name).")
    parser.add_argument(
        "--entitlements",
        metavar="FILE",
        help="Signing: an XML property list. With -d: - (or :-) prints them, as XML.",
    )
    parser.add_argument(
        "-o",
        "--options",
        action="append",
        default=[],
        help="Comma-separated flags: runtime, library, kill, hard, host, expires, restrict.",
    )
    add_timestamp_option(parser)
    parser.add_argument(
        "--deep", action="store_true", help="Also re-sign nested code that is already signed."
    )
    parser.add_argument("--strict", metavar="OPTIONS", help="Check strictly (always done).")
    parser.add_argument("-a", "--architecture", help="With -d or -v: the slice to use.")
    parser.add_argument(
        "--all-architectures", action="store_true", help="With -d: every slice, not one."
    )
    parser.add_argument(
        "-r", "--requirements", metavar="-", help="With -d: -r- prints the internal requirements."
    )
    parser.add_argument(
        "--preserve-metadata",
        metavar="LIST",
        help="Re-signing: keep identifier, entitlements, requirements, flags, runtime.",
    )
    parser.add_argument(
        "--keychain", metavar="PATH", help="Accepted and ignored: keys stay in the service."
    )
    parser.add_argument("--xml", action="store_true", help="Accepted: entitlements print as XML.")
    parser.add_argument("paths", nargs="+", metavar="PATH", type=Path)


@dataclass(frozen=True)
class Request:
    """What a codesign command line asks for, once Apple's option rules are applied."""

    operation: str  # "sign", "verify" or "display"
    verbosity: int


def request_of(arguments) -> Request:
    """Apple's rules: ``-v`` with no other operation means --verify and each further ``-v``
    (or ``--verbose[=N]``) raises the verbosity, so ``-dvvv``, ``-vv`` and ``--verify
    --verbose=2`` mean what they mean there."""
    verbosity = arguments.v_count + verbose_level(arguments.verbose_level)
    if arguments.sign is not None:
        operation = "sign"
    elif arguments.display:
        operation = "display"
    elif arguments.verify:
        operation = "verify"
    elif arguments.v_count:
        operation, verbosity = "verify", verbosity - 1  # the first -v was the operation
    else:
        raise ConfigurationError("codesign needs -s IDENTITY, -v or -d.")
    check_fit(arguments, operation)
    return Request(operation, verbosity)


def verbose_level(value: str | None) -> int:
    if value is None:
        return 0
    if value == "":
        return 1
    if not value.isdigit():
        raise ConfigurationError(f"--verbose takes a number (--verbose=2), not “{value}”.")
    return int(value)


def check_fit(arguments, operation: str) -> None:
    """Refuse, by name, what this operation does not do, rather than ignore it."""
    if operation == "sign":
        if arguments.architecture or arguments.all_architectures:
            raise ConfigurationError(
                "-a/--architecture and --all-architectures choose what -d and -v look at; "
                "signing always signs every architecture."
            )
        if arguments.requirements is not None:
            raise ConfigurationError(
                "-r/--requirements is not supported when signing: the designated requirement "
                "is made as Apple's codesign makes it (use --preserve-metadata=requirements to "
                "keep an existing one)."
            )
    elif arguments.requirements not in (None, "-"):
        raise ConfigurationError("With -d, -r takes - (-r-): print the internal requirements.")
    if arguments.architecture and arguments.all_architectures:
        raise ConfigurationError("Give -a ARCH or --all-architectures, not both.")


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
        return verify_all(arguments.paths, request.verbosity, arguments.architecture)
    options = options_from(arguments)
    failures = 0
    with open_signer(arguments.sign) as signer:
        if signer is not None and not signs_code(signer.certificate):
            print(
                f"signing-manager: warning: “{one_line(common_name(signer.certificate))}” lacks "
                "the code-signing usage; macOS may refuse code signed with it.",
                file=sys.stderr,
            )
        for path in arguments.paths:
            try:
                sign_path(path, signer, options, arguments.deep)
            except SigningManagerError as error:
                report(path, error)
                failures += 1
    return 1 if failures else 0


def report(path: Path, message: object, stream=None) -> None:
    """``PATH: message`` on one line, whatever characters the path or message hold."""
    print(f"{one_line(path)}: {one_line(message)}", file=stream or sys.stderr)


def options_from(arguments) -> SigningOptions:
    names = {name.strip() for item in arguments.options for name in item.split(",") if name.strip()}
    unknown = names - set(OPTION_FLAGS)
    if unknown:
        raise ConfigurationError(
            f"Unsupported --options {','.join(sorted(unknown))}; "
            f"these are: {', '.join(OPTION_FLAGS)}."
        )
    flags = 0
    for name in names:
        flags |= OPTION_FLAGS[name]
    entitlements = None
    if arguments.entitlements:
        try:
            entitlements = Path(arguments.entitlements).read_bytes()
        except OSError as error:
            raise ConfigurationError(
                f"Cannot read {arguments.entitlements}: {error.strerror}."
            ) from None
    return SigningOptions(
        identifier=arguments.identifier or "",
        entitlements=entitlements,
        runtime="runtime" in names,
        flags=flags & ~CodeDirectoryFlag.RUNTIME,
        force=arguments.force,
        timestamp_url=timestamp_url(arguments.timestamp),
        preserve=preserve_list(arguments.preserve_metadata),
        explicit=explicit_items(arguments),
    )


def explicit_items(arguments) -> frozenset[str]:
    """The metadata the command line sets, which --preserve-metadata must not override."""
    given = {
        "identifier": bool(arguments.identifier),
        "entitlements": arguments.entitlements is not None,
        "flags": bool(arguments.options),
    }
    return frozenset(name for name, present in given.items() if present)


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


def verify_all(paths: list[Path], verbosity: int, architecture: str | None) -> int:
    failures = 0
    for path in paths:
        try:
            problems = verify_path(path, architecture)
        except SigningManagerError as error:
            problems = [str(error)]
        for problem in problems:
            report(path, problem)
        if problems:
            failures += 1
        elif verbosity:
            report(path, "valid on disk")
    return 1 if failures else 0


def verify_path(path: Path, architecture: str | None = None) -> list[str]:
    """Every problem of the file's (or bundle's) signature; of one slice with ``architecture``."""
    path = bundle_of_executable(path) or path
    if path.is_dir():
        check = check_bundle(path)
        checks, problems = check.slices, list(check.problems)
    else:
        checks, problems = check_macho(map_file(path)), []
    if architecture:
        checks = chosen_slices(Shown(path, path, checks), DisplayOptions(architecture=architecture))
    many = len(checks) > 1 or path.is_dir()
    return problems + [
        f"{check.architecture}: {problem}" if many else problem
        for check in checks
        for problem in check.problems
    ]


@dataclass(frozen=True)
class DisplayRequest:
    """``codesign -d``: what to describe on standard error, what to print on standard output."""

    options: DisplayOptions
    entitlements: bool  # --entitlements - (or :-)
    requirements: bool  # -r-


def display_request(arguments, verbosity: int) -> DisplayRequest:
    if arguments.entitlements not in (None, "-", ":-"):
        raise ConfigurationError(
            "With -d, --entitlements takes - (or :-): print the entitlements on standard output."
        )
    return DisplayRequest(
        DisplayOptions(verbosity, arguments.architecture, arguments.all_architectures),
        entitlements=arguments.entitlements is not None,
        requirements=arguments.requirements == "-",
    )


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
