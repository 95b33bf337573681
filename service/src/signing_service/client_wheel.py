"""The Signing Manager wheel the service offers for download, packed from the installed client.

A wheel is a zip archive specified by PEP 427, now the "Binary distribution format" of the
Python Packaging User Guide (packaging.python.org/specifications/binary-distribution-format).
This module writes ``{name}-{version}-py3-none-any.whl`` for a pure-Python distribution,
holding, in this order:

- the package's files, ``signing_manager/...``, read from the folder the installed package is
  imported from (``site-packages`` for a regular install, the checkout's ``client/src`` for an
  editable one), without ``__pycache__`` folders and ``.pyc`` files;
- ``{name}-{version}.dist-info/``: ``METADATA`` and ``entry_points.txt`` as the installed
  distribution's metadata has them; ``WHEEL`` (``Wheel-Version: 1.0``, ``Root-Is-Purelib:
  true``, ``Tag: py3-none-any``); and, last, ``RECORD``: a CSV row ``path,sha256=DIGEST,SIZE``
  per file, the digest in URL-safe base64 without ``=`` padding, and ``…/RECORD,,`` for itself.

Entries are sorted within each part and carry one fixed time and mode, so the same package
always gives the same bytes. The archive is written to a temporary file beside its final name
and renamed, so a reader finds no wheel or a whole one. Nothing here needs Django.
"""

from __future__ import annotations

import base64
import csv
import functools
import hashlib
import importlib
import io
import os
import re
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

CLIENT_DISTRIBUTION = "signing-manager"
CLIENT_PACKAGE = "signing_manager"
WHEEL_TAG = "py3-none-any"
WHEEL_FILE = (
    f"Wheel-Version: 1.0\nGenerator: signing-service\nRoot-Is-Purelib: true\nTag: {WHEEL_TAG}\n"
)
COPIED_METADATA = ("METADATA", "entry_points.txt")
ENTRY_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip entry can hold
ENTRY_MODE = 0o644
WHEEL_MODE = 0o644  # the wheel is public: anyone may download it


@functools.cache  # a running process keeps the client it was started with
def client_wheel_name() -> str:
    """The file name of the installed Signing Manager's wheel."""
    return wheel_name(CLIENT_DISTRIBUTION, metadata.version(CLIENT_DISTRIBUTION))


def provide_client_wheel(directory: Path) -> Path:
    """The installed Signing Manager's wheel in ``directory``: the one already there, or else
    one packed from the installed package. Raises ``OSError`` when it cannot be written."""
    package = importlib.import_module(CLIENT_PACKAGE)
    return provide_wheel(
        metadata.distribution(CLIENT_DISTRIBUTION), Path(package.__file__).parent, directory
    )


def provide_wheel(distribution: metadata.Distribution, package_dir: Path, directory: Path) -> Path:
    """The wheel of ``distribution``, whose importable package is ``package_dir``, in
    ``directory``; packed there first unless a file of that name is there already."""
    path = directory / wheel_name(distribution.metadata["Name"], distribution.version)
    if not path.is_file():
        directory.mkdir(parents=True, exist_ok=True)
        write_wheel(path, wheel_entries(distribution, package_dir))
    return path


def wheel_name(distribution_name: str, version: str) -> str:
    return f"{name_and_version(distribution_name, version)}-{WHEEL_TAG}.whl"


def name_and_version(distribution_name: str, version: str) -> str:
    """``name-version`` as wheel and dist-info names spell them: a run of ``-_.`` in the name
    is one ``_``, and a ``-`` in the version is ``_``."""
    name = re.sub(r"[-_.]+", "_", distribution_name).lower()
    return f"{name}-{version.replace('-', '_')}"


def wheel_entries(
    distribution: metadata.Distribution, package_dir: Path
) -> list[tuple[str, bytes]]:
    """Every entry of the wheel, name and content, in the order they are written."""
    package = sorted(
        (f"{package_dir.name}/{path.relative_to(package_dir).as_posix()}", path.read_bytes())
        for path in package_files(package_dir)
    )
    dist_info = f"{name_and_version(distribution.metadata['Name'], distribution.version)}.dist-info"
    copied = [
        (f"{dist_info}/{name}", text.encode())
        for name in COPIED_METADATA
        if (text := distribution.read_text(name)) is not None
    ]
    # The spec asks for .dist-info at the end of the archive, and RECORD last of all.
    described = package + sorted([*copied, (f"{dist_info}/WHEEL", WHEEL_FILE.encode())])
    return [*described, (f"{dist_info}/RECORD", record(described, f"{dist_info}/RECORD"))]


def package_files(package_dir: Path) -> list[Path]:
    """The package's files: everything under its folder but compiled bytecode."""
    return [
        path
        for path in package_dir.rglob("*")
        if path.is_file()
        and path.suffix != ".pyc"
        and "__pycache__" not in path.relative_to(package_dir).parts
    ]


def record(entries: list[tuple[str, bytes]], record_name: str) -> bytes:
    """RECORD: each entry's hash and size, and a line without either for RECORD itself."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    for name, content in entries:
        writer.writerow([name, f"sha256={record_digest(content)}", len(content)])
    writer.writerow([record_name, "", ""])
    return text.getvalue().encode()


def record_digest(content: bytes) -> str:
    digest = hashlib.sha256(content).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def write_wheel(path: Path, entries: list[tuple[str, bytes]]) -> None:
    """Write the archive to a temporary file in ``path``'s folder, then rename it to ``path``;
    on any failure the temporary file is removed and ``path`` is left as it was."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for name, content in entries:
                    entry = zipfile.ZipInfo(name, date_time=ENTRY_TIME)
                    entry.external_attr = ENTRY_MODE << 16
                    archive.writestr(entry, content, compress_type=zipfile.ZIP_DEFLATED)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, WHEEL_MODE)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
