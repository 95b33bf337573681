"""``signing-manager codesign``'s command line: Apple's codesign options, with Apple's meaning.

    codesign -s IDENTITY [-f] [-i ID] [--entitlements FILE] [-o runtime,...] [-r=REQUIREMENTS]
             [--timestamp[=URL] | --timestamp=none] [--deep] [--preserve-metadata[=LIST]] PATH...
    codesign -v [-v...] | --verify [--deep] [--strict] [--verbose=N] [-a ARCH]
             [-R REQUIREMENT] [--anchor ROOT]... PATH...
    codesign -d [-v...] [-a ARCH | --all-architectures] [-r-] [--entitlements -] PATH...

IDENTITY is a SHA-1, a common name, or ``-`` for an ad-hoc signature (no service needed).
Options that take an optional value take it only as ``--option=VALUE``, as Apple's do.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from signing_manager.codesign.code_directory import CodeDirectoryFlag
from signing_manager.codesign.describe import DisplayOptions
from signing_manager.codesign.preserve import preserve_list
from signing_manager.codesign.requirement_language import (
    parse_requirement,
    parse_requirement_set,
)
from signing_manager.codesign.requirements import (
    Expression,
    parse_requirement_blob,
    requirements_set,
)
from signing_manager.codesign.signing import SigningOptions
from signing_manager.errors import ConfigurationError
from signing_manager.timestamp import timestamp_url

REQUIREMENT_MAGIC = bytes.fromhex("fade0c00")
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
    parser.usage_status = 2  # Apple's codesign: "2 if it was invoked with invalid arguments"
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
    parser.add_argument(
        "-R",
        "--test-requirement",
        metavar="REQUIREMENT",
        help="With -v: also check this requirement (=TEXT, or a file).",
    )
    parser.add_argument(
        "--anchor",
        action="append",
        metavar="FILE",
        help="With -v: also trust this root certificate (PEM or DER); repeatable.",
    )
    parser.add_argument("-a", "--architecture", help="With -d or -v: the slice to use.")
    parser.add_argument(
        "--all-architectures", action="store_true", help="With -d: every slice, not one."
    )
    parser.add_argument(
        "-r",
        "--requirements",
        metavar="REQUIREMENTS",
        help="Signing: ='designated => …' or a file. With -d: -r- prints them.",
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
        if arguments.requirements == "-":
            raise ConfigurationError(
                "-r- prints the requirements of signed code (with -d); when signing, give "
                "-r='designated => …' or a file."
            )
    elif arguments.requirements not in (None, "-"):
        raise ConfigurationError("With -d, -r takes - (-r-): print the internal requirements.")
    if operation != "verify" and (arguments.test_requirement or arguments.anchor):
        raise ConfigurationError("-R/--test-requirement and --anchor apply to checking (-v).")
    if arguments.architecture and arguments.all_architectures:
        raise ConfigurationError("Give -a ARCH or --all-architectures, not both.")


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
        requirements=signing_requirements(arguments),
        preserve=preserve_list(arguments.preserve_metadata),
        explicit=explicit_items(arguments),
    )


def explicit_items(arguments) -> frozenset[str]:
    """The metadata the command line sets, which --preserve-metadata must not override."""
    given = {
        "identifier": bool(arguments.identifier),
        "entitlements": arguments.entitlements is not None,
        "flags": bool(arguments.options),
        "requirements": arguments.requirements is not None,
    }
    return frozenset(name for name, present in given.items() if present)


def requirement_source(given: str) -> str | bytes:
    """What ``-R`` or ``-r`` names, as Apple's tool reads it: ``=TEXT``, a file (text or a
    compiled blob), or the text itself."""
    if given.startswith("="):
        return given[1:]
    path = Path(given)
    if not path.is_file():
        return given
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigurationError(f"Cannot read {path}: {error.strerror}.") from None
    return data if data.startswith(REQUIREMENT_MAGIC) else data.decode("utf-8", "replace")


def test_requirement(arguments) -> Expression | None:
    """The requirement ``-R`` gives, if any."""
    if arguments.test_requirement is None:
        return None
    source = requirement_source(arguments.test_requirement)
    if isinstance(source, bytes):
        return parse_requirement_blob(source)
    return parse_requirement(source)


def signing_requirements(arguments) -> bytes | None:
    """The requirements set ``-r`` gives for signing, encoded; None without the option."""
    if arguments.requirements is None:
        return None
    source = requirement_source(arguments.requirements)
    if isinstance(source, bytes):
        raise ConfigurationError("-r takes requirement text (designated => …), not a blob.")
    return requirements_set(parse_requirement_set(source))


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
