"""The client wheel packed from the installed Signing Manager (PEP 427), checked by readers
other than our own: Python's zipfile, the ``wheel`` tool (Debian's python3-wheel, which checks
every file against RECORD) and pip."""

import base64
import csv
import email
import hashlib
import io
import os
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

import signing_manager
from signing_service import client_wheel
from signing_service.client_wheel import provide_client_wheel, provide_wheel

INSTALLED = metadata.distribution("signing-manager")
DIST_INFO = f"signing_manager-{INSTALLED.version}.dist-info"
SOURCE = Path(signing_manager.__file__).parent
# Debian's interpreter, whose python3-wheel package is the independent RECORD checker.
SYSTEM_PYTHON = "/usr/bin/python3"


def archive_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def archive_member(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read(name)


def source_files(folder: Path) -> set[str]:
    """What a wheel of the package in ``folder`` holds: its files but bytecode."""
    return {
        f"{folder.name}/{(Path(root) / name).relative_to(folder).as_posix()}"
        for root, dirs, names in os.walk(folder)
        if "__pycache__" not in Path(root).parts
        for name in names
        if not name.endswith(".pyc")
    }


def make_toy_install(site: Path) -> tuple[metadata.Distribution, Path]:
    """A regular install of a tiny distribution ``toy-1.2`` in ``site``, with bytecode about."""
    package = site / "toy"
    (package / "data").mkdir(parents=True)
    (package / "__pycache__").mkdir()
    (package / "__init__.py").write_text("VALUE = 1\n")
    (package / "data" / "table.txt").write_text("a table\n")
    (package / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"\x00bytecode")
    (package / "stray.pyc").write_bytes(b"\x00bytecode")
    dist_info = site / "toy-1.2.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: Toy.Package\nVersion: 1.2\n")
    (dist_info / "entry_points.txt").write_text("[console_scripts]\ntoy = toy:main\n")
    (dist_info / "RECORD").write_text("toy/__init__.py,,\n")
    return metadata.PathDistribution(dist_info), package


def run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_it_is_named_after_the_installed_version(tmp_path):
    wheel = provide_client_wheel(tmp_path)
    assert wheel.name == f"signing_manager-{INSTALLED.version}-py3-none-any.whl"
    assert wheel.name == client_wheel.client_wheel_name()
    assert wheel.parent == tmp_path


def test_it_holds_the_package_then_the_dist_info_with_record_last(tmp_path):
    names = archive_names(provide_client_wheel(tmp_path))
    package = [name for name in names if name.startswith("signing_manager/")]
    assert set(package) == source_files(SOURCE)
    assert {"signing_manager/cli.py", "signing_manager/apple_ca/AppleRootCA-G3.cer"} <= set(names)
    assert package == sorted(package)
    assert names[len(package) :] == [
        f"{DIST_INFO}/METADATA",
        f"{DIST_INFO}/WHEEL",
        f"{DIST_INFO}/entry_points.txt",
        f"{DIST_INFO}/RECORD",
    ]


def test_record_holds_every_other_entrys_sha256_and_size(tmp_path):
    wheel = provide_client_wheel(tmp_path)
    rows = list(csv.reader(io.StringIO(archive_member(wheel, f"{DIST_INFO}/RECORD").decode())))
    assert [row[0] for row in rows] == archive_names(wheel)
    assert rows[-1] == [f"{DIST_INFO}/RECORD", "", ""]
    for name, digest, size in rows[:-1]:
        content = archive_member(wheel, name)
        expected = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=")
        assert digest == "sha256=" + expected.decode(), name
        assert "=" not in digest.removeprefix("sha256=")
        assert int(size) == len(content), name


def test_its_metadata_is_the_installed_distributions(tmp_path):
    wheel = provide_client_wheel(tmp_path)
    assert archive_member(wheel, f"{DIST_INFO}/METADATA").decode() == INSTALLED.read_text(
        "METADATA"
    )
    entry_points = archive_member(wheel, f"{DIST_INFO}/entry_points.txt").decode()
    assert entry_points == INSTALLED.read_text("entry_points.txt")
    assert "signing-manager = signing_manager.cli:main" in entry_points
    wheel_file = email.message_from_bytes(archive_member(wheel, f"{DIST_INFO}/WHEEL"))
    assert wheel_file["Wheel-Version"] == "1.0"
    assert wheel_file["Root-Is-Purelib"] == "true"
    assert wheel_file.get_all("Tag") == ["py3-none-any"]


def test_bytecode_is_left_out(tmp_path):
    distribution, package = make_toy_install(tmp_path / "site")
    wheel = provide_wheel(distribution, package, tmp_path / "wheels")
    assert wheel.name == "toy_package-1.2-py3-none-any.whl"
    assert archive_names(wheel) == [
        "toy/__init__.py",
        "toy/data/table.txt",
        "toy_package-1.2.dist-info/METADATA",
        "toy_package-1.2.dist-info/WHEEL",
        "toy_package-1.2.dist-info/entry_points.txt",
        "toy_package-1.2.dist-info/RECORD",
    ]


def test_the_same_package_always_gives_the_same_bytes(tmp_path):
    distribution, package = make_toy_install(tmp_path / "site")
    first = provide_wheel(distribution, package, tmp_path / "first")
    for path in package.rglob("*"):
        os.utime(path, (1_000_000_000, 1_000_000_000))
        path.chmod(0o700)
    second = provide_wheel(distribution, package, tmp_path / "second")
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        entries = archive.infolist()
    assert {entry.date_time for entry in entries} == {(1980, 1, 1, 0, 0, 0)}
    assert {entry.external_attr >> 16 for entry in entries} == {0o644}


def test_a_wheel_already_there_is_kept_as_it_is(tmp_path):
    # As in the container image, whose wheel pip built into a folder the service may not write.
    present = tmp_path / client_wheel.client_wheel_name()
    present.write_bytes(b"the wheel the image was built with")
    assert provide_client_wheel(tmp_path) == present
    assert present.read_bytes() == b"the wheel the image was built with"
    assert os.listdir(tmp_path) == [present.name]


def test_another_versions_wheel_does_not_count(tmp_path):
    old = tmp_path / "signing_manager-0.0.1-py3-none-any.whl"
    old.write_bytes(b"an earlier version's wheel")
    wheel = provide_client_wheel(tmp_path)
    assert wheel != old
    assert zipfile.is_zipfile(wheel)
    assert old.read_bytes() == b"an earlier version's wheel"


def test_the_folder_is_made_when_missing(tmp_path):
    wheel = provide_client_wheel(tmp_path / "data" / "client")
    assert wheel.parent == tmp_path / "data" / "client"
    assert zipfile.is_zipfile(wheel)


def test_a_failed_write_leaves_no_file_behind(tmp_path, monkeypatch):
    def full_disk(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(client_wheel.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        provide_client_wheel(tmp_path)
    assert os.listdir(tmp_path) == []


def test_a_folder_that_cannot_be_written_is_an_oserror(tmp_path):
    # The tests run as root, which may write anywhere; a file where a folder should be stops it.
    (tmp_path / "data").write_text("not a folder")
    with pytest.raises(NotADirectoryError):
        provide_client_wheel(tmp_path / "data" / "client")


def test_zipfile_and_the_wheel_tool_find_it_sound(tmp_path):
    wheel = provide_client_wheel(tmp_path)
    tested = run([sys.executable, "-m", "zipfile", "-t", str(wheel)])
    assert (tested.returncode, tested.stdout) == (0, "Done testing\n"), tested.stderr
    unpacked = run(
        [SYSTEM_PYTHON, "-m", "wheel", "unpack", "-d", str(tmp_path / "out"), str(wheel)]
    )
    assert unpacked.returncode == 0, unpacked.stdout + unpacked.stderr
    assert "OK" in unpacked.stdout
    assert (tmp_path / "out" / f"signing_manager-{INSTALLED.version}" / "signing_manager").is_dir()


def test_the_wheel_tool_would_notice_a_changed_file(tmp_path):
    # The check above means something: the same tool refuses a file that RECORD does not match.
    wheel = provide_client_wheel(tmp_path / "good")
    changed = tmp_path / wheel.name
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(changed, "w") as target:
        for entry in source.infolist():
            content = source.read(entry)
            target.writestr(entry, content + b"#" if entry.filename.endswith("cli.py") else content)
    unpacked = run(
        [SYSTEM_PYTHON, "-m", "wheel", "unpack", "-d", str(tmp_path / "out"), str(changed)]
    )
    assert unpacked.returncode != 0
    assert "Hash mismatch for file 'signing_manager/cli.py'" in unpacked.stdout + unpacked.stderr


def test_pip_installs_it_and_that_regular_install_packs_the_same_wheel(tmp_path):
    wheel = provide_client_wheel(tmp_path / "from-editable")
    target = tmp_path / "site"
    installed = run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
         "--disable-pip-version-check", "--target", str(target), str(wheel)]
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (target / "signing_manager" / "cli.py").is_file()
    regular = metadata.PathDistribution(target / DIST_INFO)
    assert regular.read_text("INSTALLER").strip() == "pip"
    again = provide_wheel(regular, target / "signing_manager", tmp_path / "from-regular")
    assert again.name == wheel.name
    assert again.read_bytes() == wheel.read_bytes()
