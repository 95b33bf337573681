"""Large inputs through the real CLI: ``productsign``, ``pkgutil --check-signature`` and
``sign`` read them a chunk at a time, so that their memory stays flat whatever the input's
size, and show their progress on a terminal only.

Each command runs as a fresh process on a small input (1 MiB) and on a large one (320 MiB),
signing with the real service; the most memory each run held resident (``Cli.peak_memory``)
must differ by less than 64 MiB between the two. Before streaming, productsign of 300 MB took
1.2 GB. What is measured is memory, never time.

The inputs (a file, and a package of it that bsdtar stored uncompressed) are made once for the
module and deleted after it; each test deletes what it writes.
"""

from __future__ import annotations

import hashlib
import os
import pty
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

MiB = 1 << 20
SIZES = {"small": 1 * MiB, "large": 320 * MiB}
FLAT = 64 * MiB  # what a large input may add to a command's peak memory
SIGNING_MANAGER = str(Path(sys.executable).with_name("signing-manager"))


@dataclass(frozen=True)
class Input:
    """A file of ``size`` bytes, its SHA-256, and a package holding it."""

    file: Path
    sha256: str
    package: Path


def write_file(path: Path, size: int) -> str:
    """``size`` bytes made cheaply (a random MiB, turned by a byte each time); their SHA-256."""
    block = random.Random(size).randbytes(MiB)
    digest = hashlib.sha256()
    with path.open("wb") as output:
        for turn in range(size // MiB):
            chunk = block[turn:] + block[:turn]
            output.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


@pytest.fixture(scope="module")
def inputs(packages, tmp_path_factory) -> Iterator[dict[str, Input]]:
    folder = tmp_path_factory.mktemp("large-inputs")
    made = {}
    for name, size in SIZES.items():
        tree = folder / f"{name}-tree"
        tree.mkdir()
        (tree / "README.txt").write_text(f"A {name} package.\n")
        sha256 = write_file(tree / "payload.bin", size)
        package = packages.build_file(
            tree, folder / f"{name}.pkg", "--options", "xar:compression=none"
        )
        made[name] = Input(tree / "payload.bin", sha256, package)
    yield made
    shutil.rmtree(folder)


@pytest.fixture
def outputs(tmp_path) -> Iterator[Path]:
    """A folder for what a test writes, deleted after it (pytest keeps its tmp_path)."""
    folder = tmp_path / "outputs"
    folder.mkdir()
    yield folder
    shutil.rmtree(folder)


@pytest.fixture
def cli(configured_cli):
    machine = configured_cli("large files")
    machine.ok("-r")  # pins the service's certificate, which the first use says on stderr
    return machine


def measured(cli, *args: str) -> int:
    """The peak memory of a run that must succeed quietly (standard error is no terminal)."""
    result, peak = cli.peak_memory(*args)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    assert result.stderr == "", (args, result.stderr)
    return peak


def mib(size: int) -> str:
    return f"{size / MiB:.0f} MiB"


def bsdtar_extracts(package: Path, name: str) -> str:
    """The SHA-256 of a file as bsdtar extracts it from the package, streamed."""
    digest = hashlib.sha256()
    with subprocess.Popen(["bsdtar", "-xOf", str(package), name], stdout=subprocess.PIPE) as tar:
        while chunk := tar.stdout.read(MiB):
            digest.update(chunk)
    assert tar.returncode == 0
    return digest.hexdigest()


def test_productsign_and_pkgutil_keep_their_memory_flat(cli, installer, inputs, outputs, packages):
    peaks: dict[str, dict[str, int]] = {"productsign": {}, "pkgutil": {}}
    for name, made in inputs.items():
        signed = outputs / f"{name}-signed.pkg"
        peaks["productsign"][name] = measured(
            cli, "productsign", "--sign", installer.sha1, str(made.package), str(signed)
        )
        peaks["pkgutil"][name] = measured(cli, "pkgutil", "--check-signature", str(signed))

    large = outputs / "large-signed.pkg"
    assert bsdtar_extracts(large, "payload.bin") == inputs["large"].sha256
    with large.open("rb") as package:  # the signatures lie in the heap's first kilobytes
        head = package.read(MiB)
    packages.assert_openssl_verifies(head, installer.certificate, installer.ca_certificate)
    for command, peak in peaks.items():
        growth = peak["large"] - peak["small"]
        print(f"{command}: {mib(peak['small'])} for 1 MiB, {mib(peak['large'])} for 320 MiB")
        assert growth < FLAT, f"{command} took {mib(growth)} more for a 320 MiB package"


def test_sign_keeps_its_memory_flat(cli, installer, inputs, outputs, packages):
    peaks = {}
    for name, made in inputs.items():
        signature = outputs / f"{name}.p7s"
        peaks[name] = measured(
            cli, "sign", "--identity", installer.sha1, "-o", str(signature), str(made.file)
        )

    ca_file = outputs / "ca.pem"
    ca_file.write_bytes(installer.pem(installer.ca_certificate))
    check = packages.openssl_cms_verify(outputs / "large.p7s", inputs["large"].file, ca_file)
    assert check.returncode == 0, check.stderr
    growth = peaks["large"] - peaks["small"]
    print(f"sign: {mib(peaks['small'])} for 1 MiB, {mib(peaks['large'])} for 320 MiB")
    assert growth < FLAT, f"sign took {mib(growth)} more for a 320 MiB file"


def on_a_terminal(cli, *args: str) -> str:
    """What the command writes to its standard error when that is a terminal."""
    controller, terminal = pty.openpty()
    environment = {**cli.environment(None), "TERM": "xterm-256color", "COLUMNS": "120"}
    with subprocess.Popen(
        [SIGNING_MANAGER, *args],
        env=environment,
        cwd=cli.home,
        stdout=subprocess.DEVNULL,
        stderr=terminal,
    ) as process:
        os.close(terminal)
        shown = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the command ended, and with it the terminal's other side
                break
            if not chunk:
                break
            shown.append(chunk)
    os.close(controller)
    assert process.returncode in (0, 1), b"".join(shown)
    return b"".join(shown).decode(errors="replace")


def test_progress_shows_on_a_terminal_for_a_large_input_only(inputs, new_cli):
    cli = new_cli()

    large = on_a_terminal(cli, "pkgutil", "--check-signature", str(inputs["large"].package))
    small = on_a_terminal(cli, "pkgutil", "--check-signature", str(inputs["small"].package))

    assert "Checking large.pkg" in large
    assert "/335.5 MB" in large  # bytes done of the heap's total
    assert small == ""
