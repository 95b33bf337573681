"""``signing-manager codesign``: Apple's codesign options, for files and bundles.

    codesign -s IDENTITY [-f] [-i ID] [--entitlements FILE] [--options runtime]
             [--timestamp[=URL] | --timestamp=none] [--deep] PATH...
    codesign -v [-v] PATH...          check; exit 1 on any problem
    codesign -d -vvv PATH...          describe (on standard error, as Apple's tool)

IDENTITY is a SHA-1, a common name, or ``-`` for an ad-hoc signature (no service needed).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from signing_manager.cms import common_name
from signing_manager.codesign.bundle import (
    bundle_of_executable,
    check_bundle,
    default_identifier,
    open_bundle,
)
from signing_manager.codesign.bundle import sign_bundle as sign_bundle_tree
from signing_manager.codesign.code_directory import CodeDirectoryFlag
from signing_manager.codesign.describe import describe
from signing_manager.codesign.files import FileError, Replacement, map_file
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
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("-s", "--sign", metavar="IDENTITY", help="SHA-1, common name, or -.")
    action.add_argument(
        "-d", "--display", action="store_true", help="Describe the signature (with -vvv)."
    )
    parser.add_argument(
        "-v", "--verify", action="count", default=0, help="Check the signature; twice: say so."
    )
    parser.add_argument("-f", "--force", action="store_true", help="Replace existing signatures.")
    parser.add_argument("-i", "--identifier", help="The identifier (default: bundle ID or name).")
    parser.add_argument("--entitlements", metavar="FILE", help="An XML property list.")
    parser.add_argument(
        "-o",
        "--options",
        default="",
        help="Comma-separated flags: runtime, library, kill, hard, host, expires, restrict.",
    )
    parser.add_argument(
        "--deep", action="store_true", help="Also re-sign nested code that is already signed."
    )
    add_timestamp_option(parser)
    parser.add_argument("paths", nargs="+", metavar="PATH", type=Path)


def run(arguments, open_signer: OpenSigner) -> int:
    if arguments.display:
        return display_all(arguments.paths)
    if arguments.sign is None:
        if not arguments.verify:
            raise ConfigurationError("codesign needs -s IDENTITY, -v or -d.")
        return verify_all(arguments.paths, arguments.verify)
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
    names = {name.strip() for name in arguments.options.split(",") if name.strip()}
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
    )


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


def verify_all(paths: list[Path], verbosity: int) -> int:
    failures = 0
    for path in paths:
        try:
            problems = verify_path(path)
        except SigningManagerError as error:
            problems = [str(error)]
        for problem in problems:
            report(path, problem)
        if problems:
            failures += 1
        elif verbosity > 1:
            report(path, "valid on disk")
    return 1 if failures else 0


def verify_path(path: Path) -> list[str]:
    path = bundle_of_executable(path) or path
    if path.is_dir():
        check = check_bundle(path)
        return check.problems + [
            f"{s.architecture}: {problem}" for s in check.slices for problem in s.problems
        ]
    checks = check_macho(map_file(path))
    many = len(checks) > 1
    return [
        f"{check.architecture}: {problem}" if many else problem
        for check in checks
        for problem in check.problems
    ]


def display_all(paths: list[Path]) -> int:
    failures = 0
    for path in paths:
        try:
            print(display(path), end="", file=sys.stderr)
        except SigningManagerError as error:
            report(path, error)
            failures += 1
    return 1 if failures else 0


def display(path: Path) -> str:
    path = bundle_of_executable(path) or path
    if path.is_dir():
        bundle = open_bundle(path)
        check = check_bundle(path)
        executable = bundle.executable if bundle else None
        if executable is None:
            raise SigningManagerError("The bundle has no main executable.")
        kind = "app bundle" if path.suffix == ".app" else "bundle"
        return describe(path, executable.resolve(), check.slices, bundle_kind=kind,
                        info=bundle.info, seal=check.seal)  # fmt: skip
    return describe(path, path.resolve(), check_macho(map_file(path)))
