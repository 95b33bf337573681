"""The ``signing-manager`` command line: the user guide's flags, plus commands of our own.

    signing-manager -s -i URL -a API_KEY [-u] [-d]     save settings (the key goes to the keyring)
    signing-manager -p                                 print the settings (never the key)
    signing-manager -r [--json]                        refresh and list the identities
    signing-manager identity cn|sha1|codesign|productsign|show IDENTITY
    signing-manager sign --identity IDENTITY [--digest-only] FILE
    signing-manager codesign -s IDENTITY [-f] [-i ID] [--entitlements FILE] [--options runtime]
                             [--timestamp[=URL]] [--deep] PATH...
    signing-manager codesign -v PATH... | -d -vvv PATH...
    signing-manager productsign --sign IDENTITY [--force] SOURCE.pkg DESTINATION.pkg
    signing-manager pkgutil --check-signature PKG
    signing-manager log [--path]
    signing-manager                                    the window (with a display; else this help)

IDENTITY is a SHA-1 fingerprint or a common name. Errors are one sentence and exit status 1;
``-d`` adds debug lines to the log (and shows tracebacks).

``sign``, ``productsign`` and ``pkgutil`` read their input a chunk at a time, so their memory
stays flat whatever its size, and show a progress bar on a terminal. What they write goes to
a temporary file beside the output, made before any signature is asked for (an output that
cannot be written is refused first), and renamed over the output at the end.

What only some commands need is imported by them (the service's client and httpx, codesign,
rich's tables, the version's lookup): a command pays at start for its own modules only, which
is most of ``pkgutil``'s time on a small package.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import urlsplit

from cryptography import x509

from signing_manager import audit_verify
from signing_manager.algorithms import Algorithm
from signing_manager.clipboard import copy_to_clipboard
from signing_manager.cms import detached_signature
from signing_manager.codesign import files
from signing_manager.codesign import options as codesign_options
from signing_manager.config import (
    API_KEY_ENV,
    Secrets,
    Settings,
    config_dir,
    key_label,
    service_url,
)
from signing_manager.errors import (
    AmbiguousIdentity,
    ConfigurationError,
    IdentityNotFound,
    SigningManagerError,
    one_line,
)
from signing_manager.gui import launch
from signing_manager.key_usage import usage_warning
from signing_manager.logs import log_path, set_up_logging
from signing_manager.menu import copied_line, pem, summary_lines
from signing_manager.pkg.signing import sign_archive
from signing_manager.pkg.verify import check_archive, judge_trust
from signing_manager.pkg.verify import describe as describe_package
from signing_manager.pkg.xar import XarArchive
from signing_manager.progress import progress_bar
from signing_manager.remote_key import RemoteSigner
from signing_manager.timestamp import timestamp_url
from signing_manager.trust import load_anchors

if TYPE_CHECKING:
    from signing_manager.service import RemoteIdentity, ServiceClient

log = logging.getLogger("signing_manager.cli")


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the exit status the README promises for a usage error: 1, not 2; but 2
    for codesign, as Apple's (its man page: 2 for invalid arguments)."""

    usage_status = 1

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(self.usage_status, f"{self.prog}: error: {message}\n")


class ShowVersion(argparse.Action):
    """``--version``: the version is looked up only when asked for (see ``__init__``)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(
            option_strings, argparse.SUPPRESS, nargs=0, default=argparse.SUPPRESS, **kwargs
        )

    def __call__(self, parser, namespace, values, option_string=None):
        from signing_manager import __version__

        print(f"signing-manager {__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="signing-manager",
        description="Sign macOS code and installer packages with identities kept in a "
        "Signing Service.",
        epilog="Commands: identity, sign, codesign, productsign, pkgutil, log "
        "(signing-manager COMMAND -h for more).",
    )
    parser.add_argument(
        "-s", action="store_true", help="Save settings. Requires -i and -a. Optionally use -d."
    )
    parser.add_argument("-i", metavar="URL", help="Specify host for API signing operations.")
    parser.add_argument(
        "-a", metavar="API_KEY", help="Specify api key for accessing signing manager service."
    )
    parser.add_argument(
        "-u",
        action="store_true",
        help="Trust self-signed certificates (pin the service's certificate on first use).",
    )
    parser.add_argument("-d", action="store_true", help="Debug logging.")
    parser.add_argument(
        "-r", action="store_true", help="Refresh and display available certificates."
    )
    parser.add_argument("-p", action="store_true", help="Print configuration.")
    parser.add_argument("--json", action="store_true", help="With -r: print JSON for scripts.")
    parser.add_argument("--version", action=ShowVersion, help="Show the version and exit.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    identity = commands.add_parser(
        "identity",
        help="What the guide's menu copies: the common "
        "name, SHA-1, codesign or productsign command, certificate.",
    )
    identity.add_argument("what", choices=["cn", "sha1", "codesign", "productsign", "show"])
    identity.add_argument("identity", metavar="IDENTITY", help="SHA-1 or common name.")
    identity.add_argument(
        "--copy", action="store_true", help="Also put it on the clipboard (not with show)."
    )

    sign = commands.add_parser("sign", help="Sign any file: a detached CMS signature FILE.p7s.")
    sign.add_argument("--identity", required=True, help="SHA-1 or common name.")
    sign.add_argument(
        "--digest-only",
        action="store_true",
        help="Write the raw signature of the file's digest (FILE.sig) instead.",
    )
    sign.add_argument(
        "--algorithm",
        choices=[a.value for a in Algorithm],
        help="Default: rsa-pkcs1v15-sha256 or ecdsa-sha256, by key type.",
    )
    sign.add_argument("-o", "--output", help="Where to write the signature.")
    sign.add_argument("file")

    productsign = commands.add_parser(
        "productsign", help="Sign a flat installer package (.pkg), as Apple's productsign."
    )
    productsign.add_argument(
        "--sign", required=True, metavar="IDENTITY", help="SHA-1 or common name."
    )
    add_timestamp_option(productsign)
    productsign.add_argument(
        "--force", action="store_true", help="Replace the signature of an already signed package."
    )
    productsign.add_argument(
        "--cert", metavar="NAME", help="Accepted and ignored: the service sends the chain."
    )
    productsign.add_argument(
        "--keychain", metavar="PATH", help="Accepted and ignored: keys stay in the service."
    )
    productsign.add_argument("source", metavar="SOURCE.pkg")
    productsign.add_argument("destination", metavar="DESTINATION.pkg")

    codesign_options.add_parser(commands, add_timestamp_option)

    pkgutil = commands.add_parser(
        "pkgutil", help="Check a package's signature, as pkgutil --check-signature."
    )
    pkgutil.add_argument("--check-signature", required=True, metavar="PKG", dest="package")
    pkgutil.add_argument(
        "--anchor",
        action="append",
        metavar="FILE",
        help="Also trust this root certificate (PEM or DER); repeatable.",
    )

    audit_verify_command = commands.add_parser(
        "audit-verify",
        help="Check a JSON audit export of the Signing Service offline (no service needed).",
    )
    audit_verify_command.add_argument(
        "--public-key",
        metavar="BASE64",
        help="The checkpoint key shown on the service's Audit page (default: the file's own).",
    )
    audit_verify_command.add_argument("file", metavar="FILE.json")

    log_command = commands.add_parser("log", help="Show the end of the log (SigningManager.log).")
    log_command.add_argument("--path", action="store_true", help="Print only the log's path.")
    parser.set_defaults(subcommands=commands.choices)
    return parser


# Options whose value, as in Apple's tools (getopt_long's optional arguments), comes only as
# --option=VALUE: given bare they take none, and never swallow the next word (a path).
OPTIONAL_VALUE_OPTIONS = ("--timestamp", "--verbose", "--strict", "--preserve-metadata")


def with_optional_values(argv: list[str]) -> list[str]:
    """``argv`` with each bare optional-value option written ``--option=`` (no value)."""
    if "--" in argv:
        cut = argv.index("--")
        return with_optional_values(argv[:cut]) + argv[cut:]
    return [token + "=" if token in OPTIONAL_VALUE_OPTIONS else token for token in argv]


def parse(parser: argparse.ArgumentParser, argv: list[str] | None):
    """The arguments; an option a command does not have is refused by name, under that
    command's usage (as Apple's tools do), not the top-level one."""
    arguments, unknown = parser.parse_known_args(
        with_optional_values(sys.argv[1:] if argv is None else list(argv))
    )
    if unknown:
        command = arguments.subcommands.get(arguments.command or "", parser)
        what = arguments.command or "signing-manager"
        if not unknown[0].startswith("-"):
            command.error(f"{what} does not take “{unknown[0]}” (-h shows what it takes).")
        name = unknown[0].split("=", 1)[0]
        command.error(f"{name} is not an option of {what} here (-h lists those it has).")
    return arguments


def add_timestamp_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timestamp",
        default=None,
        metavar="URL",
        help="--timestamp: an RFC 3161 timestamp from Apple's TSA; --timestamp=URL: from that "
        "TSA; --timestamp=none or no option: none.",
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv and launch.display_available() and launch.qt_installed():
        return launch.main([])  # the app, as the guide's is opened
    parser = build_parser()
    arguments = parse(parser, argv)
    debug = arguments.d and not arguments.s  # with -s, -d is a setting to save, not this run's
    set_up_logging(debug, to_stderr=debug)  # before anything can fail: failures logged once
    traceback_wanted = debug
    started = time.monotonic()
    invocation = described_invocation(argv, arguments.a)
    try:
        settings = Settings.load()
        if settings.debug:
            set_up_logging(True, to_stderr=debug)
            traceback_wanted = True
        log.info("Started: %s", invocation)
        status = run(parser, arguments, settings)
    except SigningManagerError as error:
        log.error("Failed after %.2f s: %s: %s", time.monotonic() - started, invocation, error)
        print(f"signing-manager: {one_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        log.warning("Interrupted after %.2f s: %s", time.monotonic() - started, invocation)
        return 130
    except Exception as error:
        log.exception("Unexpected error after %.2f s: %s", time.monotonic() - started, invocation)
        if traceback_wanted:
            raise
        print(
            f"signing-manager: unexpected error: {one_line(error)} (run with -d for details)",
            file=sys.stderr,
        )
        return 2
    took = time.monotonic() - started
    log.info("Finished in %.2f s with status %d: %s", took, status, invocation)
    return status


def described_invocation(argv: list[str], api_key: str | None) -> str:
    """The command line for the log, without the API key that ``-a`` carries."""
    line = " ".join(["signing-manager", *argv])
    return one_line(line.replace(api_key, "(API key)") if api_key else line)


def run(parser: argparse.ArgumentParser, arguments, settings: Settings) -> int:
    if arguments.s:
        return save(arguments, settings)
    if arguments.i or arguments.a or arguments.u:
        raise ConfigurationError(
            "-i, -a and -u are saved with -s: signing-manager -s -i URL -a KEY"
        )
    if arguments.json and not arguments.r:
        raise ConfigurationError("--json goes with -r: signing-manager -r --json")
    if arguments.p or arguments.r:
        status = print_settings(settings) if arguments.p else 0
        return refresh(settings, as_json=arguments.json) if arguments.r else status
    if arguments.command == "identity":
        return identity_command(settings, arguments)
    if arguments.command == "sign":
        return sign_command(settings, arguments)
    if arguments.command == "productsign":
        return productsign_command(settings, arguments)
    if arguments.command == "codesign":
        from signing_manager.codesign import command as codesign

        return codesign.run(arguments, lambda wanted: remote_signer(settings, wanted))
    if arguments.command == "pkgutil":
        return pkgutil_command(Path(arguments.package), load_anchors(arguments.anchor))
    if arguments.command == "log":
        return log_command(arguments.path)
    if arguments.command == "audit-verify":
        return audit_verify.run(Path(arguments.file), arguments.public_key)
    if arguments.d:
        raise ConfigurationError(
            "-d alone does nothing: save it with -s (signing-manager -s -i URL -a API_KEY -d), "
            "or add it to a command for that run"
        )
    parser.print_help()
    if launch.display_available() and not launch.qt_installed():
        print(launch.MISSING_QT, file=sys.stderr)
    return 0


def save(arguments, settings: Settings) -> int:
    if not (arguments.i and arguments.a):
        raise ConfigurationError("-s needs both -i URL and -a API_KEY.")
    save_settings(settings, arguments.i, trust_self_signed=arguments.u, debug=arguments.d)
    return save_api_key(Secrets(), arguments.a)


def save_settings(settings: Settings, url: str, *, trust_self_signed: bool, debug: bool) -> None:
    """Save the service URL and flags (``-s``, and the window's Preferences). Saving again
    re-trusts: the pin is dropped, so the next use pins the certificate then presented."""
    url = service_url(url)
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigurationError(f"The service URL must look like https://host:port, not {url}.")
    settings.api_host = url
    settings.trust_self_signed = trust_self_signed
    settings.debug = debug
    settings.pinned_sha256 = ""
    settings.save()
    from signing_manager.service import PIN_FILE

    (config_dir() / PIN_FILE).unlink(missing_ok=True)


def save_api_key(secrets: Secrets, api_key: str) -> int:
    """Keep the key in the keyring; without one, the variable must already hold it. A client
    token stays with the key it was registered with, so another key registers anew."""
    in_variable = os.environ.get(API_KEY_ENV)
    if secrets.keyring_available:
        secrets.set_api_key(api_key)
        print("Settings saved; the API key is in the keyring.")
        if in_variable and in_variable != api_key:
            print(
                f"signing-manager: warning: {API_KEY_ENV} is set here, to another key "
                f"({key_label(in_variable)}), and wins over the keyring: unset it to use the "
                "key just saved.",
                file=sys.stderr,
            )
        return 0
    if in_variable == api_key:
        print(f"Settings saved. No keyring here: the API key comes from {API_KEY_ENV}.")
        return 0
    held = f", which holds another key ({key_label(in_variable)})" if in_variable else ""
    raise ConfigurationError(
        "Settings saved, but this machine has no keyring to keep the API key: set the "
        f"environment variable {API_KEY_ENV}{held} to it (and SIGNING_MANAGER_URL if you like)."
    )


def print_settings(settings: Settings) -> int:
    """The guide's four lines, then where the key comes from (never the key's secret)."""
    secrets = Secrets()
    api_key = secrets.api_key()
    print(f"api_host: {settings.api_host}")
    print(f"trust self signed: {str(settings.trust_self_signed).lower()}")
    print(f"debug: {str(settings.debug).lower()}")
    print(f"API key: {'Set' if api_key else 'Not set'}")
    if api_key:
        print(f"API key from: {secrets.api_key_source()} ({key_label(api_key)})")
    return 0


def connect(settings: Settings) -> ServiceClient:
    from signing_manager.service import ServiceClient

    return ServiceClient(settings, Secrets())


def refresh(settings: Settings, as_json: bool) -> int:
    service = connect(settings)
    try:
        identities = service.identities()
    finally:
        service.close()
    if as_json:
        print(json.dumps([identity_json(identity) for identity in identities], indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Identities available from {settings.api_host}")
    for column in ("Common name", "SHA-1", "Key", "Expires"):
        table.add_column(column, no_wrap=column != "Common name")
    for identity in identities:
        table.add_row(
            identity.common_name,
            identity.sha1.upper(),
            f"{identity.key_type} {identity.key_size}",
            f"{identity.not_after:%Y-%m-%d}",
        )
    console = Console()
    if not (console.is_terminal or os.environ.get("COLUMNS")):
        console = Console(width=1000)  # into a pipe or file: a row per identity, never wrapped
    console.print(table)
    if not identities:
        print("No identity is available to this API key.")
    return 0


def identity_json(identity: RemoteIdentity) -> dict:
    return {
        "common_name": identity.common_name,
        "sha1": identity.sha1.upper(),
        "sha256": identity.sha256.upper(),
        "key_type": identity.key_type,
        "key_size": identity.key_size,
        "not_after": identity.not_after.isoformat(),
        "key_location": identity.key_location,
    }


def find_identity(identities: list[RemoteIdentity], wanted: str) -> RemoteIdentity:
    """The identity named by a SHA-1 (or SHA-256) fingerprint, by its exact common name, or,
    as Apple's codesign takes it, by a part of its common name that only it has."""
    fingerprint = wanted.strip().lower().replace(":", "").replace(" ", "")
    for identity in identities:
        if fingerprint in (identity.sha1, identity.sha256):
            return identity
    named = [identity for identity in identities if identity.common_name == wanted]
    if not named:
        named = [identity for identity in identities if wanted in identity.common_name]
    if len(named) == 1:
        return named[0]
    if named:
        raise AmbiguousIdentity(
            f"{len(named)} identities match “{wanted}”; give one's SHA-1 or whole name: "
            f"{candidates(named)}."
        )
    close = [i for i in identities if wanted.casefold() in i.common_name.casefold()]
    hint = f"; close: {candidates(close)}" if close else "; `signing-manager -r` lists them"
    raise IdentityNotFound(f"No identity available to this API key matches “{wanted}”{hint}.")


def candidates(identities: list[RemoteIdentity], shown: int = 5) -> str:
    """Identities as a person picks among them: “name” (SHA-1), a few at most."""
    listed = [f"“{i.common_name}” ({i.sha1.upper()})" for i in identities[:shown]]
    more = len(identities) - shown
    return ", ".join(listed) + (f" and {more} more" if more > 0 else "")


@contextmanager
def remote_signer(settings: Settings, wanted: str):
    """The signer for an identity of the service, or None for ``-`` (ad-hoc, no service)."""
    if wanted == "-":
        yield None
        return
    service = connect(settings)
    try:
        yield RemoteSigner(service, find_identity(service.identities(), wanted))
    finally:
        service.close()


def identity_command(settings: Settings, arguments) -> int:
    if arguments.copy and arguments.what == "show":
        raise ConfigurationError("--copy goes with cn, sha1, codesign or productsign, not show.")
    service = connect(settings)
    try:
        identity = find_identity(service.identities(), arguments.identity)
    finally:
        service.close()
    if arguments.what == "show":
        print("\n".join(summary_lines(identity)))
        print(pem(identity.certificate), end="")
        return 0
    line = copied_line(identity, arguments.what)
    print(line)
    if arguments.copy:
        copy_to_clipboard(line)
        print("Copied to the clipboard.", file=sys.stderr)
    return 0


def sign_command(settings: Settings, arguments) -> int:
    path = Path(arguments.file)
    suffix = ".sig" if arguments.digest_only else ".p7s"
    output = Path(arguments.output or f"{path}{suffix}")
    with files.open_regular(path) as content:
        service = connect(settings)
        try:
            signer = RemoteSigner(service, find_identity(service.identities(), arguments.identity))
            algorithm = Algorithm(arguments.algorithm) if arguments.algorithm else None
            algorithm = algorithm or signer.default_algorithm()
            with writing(output) as signature:
                digest = file_digest(content, algorithm.hash_algorithm.name, f"Hashing {path.name}")
                if arguments.digest_only:
                    signature.write(signer.sign_digest(digest, algorithm))
                else:
                    signature.write(detached_signature(signer, digest, algorithm))
        finally:
            service.close()
    log.info("Signed %s with %s (%s) into %s", path, signer.identity.sha1, algorithm, output)
    print(f"Signed {path} with “{signer.identity.common_name}”: {output}")
    return 0


def file_digest(content: BinaryIO, hash_name: str, description: str) -> bytes:
    """The digest of an open file, read a chunk at a time."""
    size = os.fstat(content.fileno()).st_size
    running = hashlib.new(hash_name)
    with progress_bar(description, size) as advance:
        for chunk in files.read_chunks(content, 0, size):
            running.update(chunk)
            advance(len(chunk))
    return running.digest()


def productsign_command(settings: Settings, arguments) -> int:
    source, destination = Path(arguments.source), Path(arguments.destination)
    tsa = timestamp_url(arguments.timestamp)
    for option, why in (("cert", "the service sends the identity's whole chain"),
                        ("keychain", "identities stay in the Signing Service")):  # fmt: skip
        if getattr(arguments, option):
            print(f"signing-manager: note: --{option} is not needed: {why}.", file=sys.stderr)
    if source.resolve() == destination.resolve():
        raise ConfigurationError("DESTINATION must differ from SOURCE: the source stays as it is.")
    with files.open_regular(source) as package:
        archive = XarArchive.load(package)  # not a package: refused before any service call
        service = connect(settings)
        try:
            signer = RemoteSigner(service, find_identity(service.identities(), arguments.sign))
            warning = usage_warning(signer.certificate, signer.identity.common_name, True)
            if warning:
                print(f"signing-manager: warning: {warning}", file=sys.stderr)
            with (
                writing(destination) as signed,
                progress_bar(f"Signing {source.name}", len(archive.heap)) as advance,
            ):
                sign_archive(
                    archive,
                    signer,
                    signed,
                    force=arguments.force,
                    timestamp_url=tsa,
                    advance=advance,
                )
        finally:
            service.close()
    log.info("Signed package %s with %s into %s", source, signer.identity.sha1, destination)
    print(f"productsign: signed {destination} with “{signer.identity.common_name}”")
    return 0


def pkgutil_command(path: Path, anchors: tuple[x509.Certificate, ...]) -> int:
    with files.open_regular(path) as package:
        archive = XarArchive.load(package)
        with progress_bar(f"Checking {path.name}", len(archive.heap)) as advance:
            result = check_archive(archive, advance)
    judge_trust(result, anchors)
    print(describe_package(path.name, result), end="")
    return 0 if result.valid else 1


@contextmanager
def writing(path: Path) -> Iterator[BinaryIO]:
    """A file to write ``path``'s new content into: a temporary file beside it, renamed over
    it when the block ends, removed if the block fails. Opened before any signature is asked
    for, so that an output that cannot be written is refused, in one sentence, before the
    service signs (and audits) anything."""
    if path.is_dir():
        raise ConfigurationError(f"Cannot write {path}: it is a folder.")
    try:
        with files.replacing(path) as output:
            yield output.handle
    except OSError as error:
        raise ConfigurationError(f"Cannot write {path}: {why_unwritable(path, error)}.") from None


def why_unwritable(path: Path, error: OSError) -> str:
    """Why ``path`` cannot be written, in words, from the error writing it gave."""
    folder = path.parent
    reasons = {
        errno.ENOENT: f"the folder {folder} does not exist",
        errno.ENOTDIR: f"{folder} is not a folder",
        errno.EACCES: f"there is no permission to write in the folder {folder}",
        errno.EPERM: f"there is no permission to write in the folder {folder}",
        errno.EROFS: f"the folder {folder} is on a read-only file system",
    }
    return reasons.get(error.errno, error.strerror or str(error))


def log_command(path_only: bool) -> int:
    path = log_path()
    print(path)
    if not path_only and path.exists():
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()[-40:]
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
