"""Fixtures for the codesign tests.

- ``machos``: Mach-O files built at test time with Debian's clang and lld (``Toolchain``), and
  real ones from published macOS wheels (``real_world.py``, pinned by hash, fetched with pip).
- Signers with the private key at hand: ``apple_signer`` (a fake Developer ID chain: an
  "Apple Root CA", a Developer ID intermediate marked 1.2.840.113635.100.6.2.6, a leaf marked
  6.1.13 with the team ID as OU, all "Apple Inc."), ``ca_signer`` (the test CA's RSA identity)
  and ``ec_signer`` (P-256).
- ``independent``: checks that do not use our code for the verdict: ``openssl cms -verify`` of
  each slice's CMS over its CodeDirectory, and ``llvm-objdump`` reading the load commands.
"""

from __future__ import annotations

import datetime
import functools
import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import platformdirs
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signing_manager.codesign.blobs import BlobMagic, Slot, SuperBlob
from signing_manager.codesign.verify import slices_of
from signing_manager.local_key import LocalSigner
from signing_service.test import cached_key, fake_ca, make_certificate

sys.path.insert(0, str(Path(__file__).parent))
from real_world import REAL_MACHOS, fetch

TEAM_ID = "ABCDE12345"
TOOL_TIMEOUT = 120
MAIN_SOURCE = "int main(void) { return 0; }\n"
LIBRARY_SOURCE = "int helper(int x) { return x * 2; }\n"


def find_tool(*names: str) -> str | None:
    """A tool by name, or its Debian versioned name (``llvm-lipo-14``)."""
    for name in names:
        found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/bin/{name}-[0-9]*"))), None)
        if found:
            return found
    return None


class Toolchain:
    """clang with lld for Apple targets, llvm-lipo and llvm-objdump."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.clang = find_tool("clang")
        self.lipo = find_tool("llvm-lipo")
        self.objdump = find_tool("llvm-objdump")
        missing = [n for n in ("clang", "lipo", "objdump") if getattr(self, n) is None]
        if missing or not find_tool("ld64.lld", "lld"):
            pytest.fail(f"clang, lld and llvm are needed (scripts/system-packages): {missing}")

    def run(self, *command: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=TOOL_TIMEOUT
        )
        assert result.returncode == 0, f"{command}: {result.stderr}"
        return result

    def build(self, name: str, target: str, kind: str = "exe", *extra: str) -> Path:
        """``kind``: exe, dylib or bundle; ``target`` e.g. arm64-apple-macos11."""
        source = self.folder / f"{name}.c"
        source.write_text(MAIN_SOURCE if kind == "exe" else LIBRARY_SOURCE)
        output = self.folder / name
        flags = {"exe": ["-Wl,-e,_main"], "dylib": ["-dynamiclib"], "bundle": ["-bundle"]}[kind]
        self.run(self.clang, "-target", target, "-fuse-ld=lld", "-nostdlib", *flags, *extra,
                 str(source), "-o", str(output))  # fmt: skip
        return output

    def universal(self, name: str, *inputs: Path) -> Path:
        output = self.folder / name
        self.run(self.lipo, "-create", *map(str, inputs), "-output", str(output))
        return output

    def load_commands(self, path: Path) -> str:
        """What llvm-objdump prints of the load commands, every architecture."""
        return self.run(
            self.objdump, "--macho", "--private-headers", "--arch=all", str(path)
        ).stdout


class MachOs:
    """Named Mach-O files, built or fetched once per session; ``copy`` gives a test its own."""

    BUILT = {
        "arm64-exe": ("arm64-apple-macos11", "exe"),
        "x86_64-exe": ("x86_64-apple-macos11", "exe"),
        "x86_64-exe-10.9": ("x86_64-apple-macos10.9", "exe"),
        "arm64-dylib": ("arm64-apple-macos11", "dylib"),
        "x86_64-dylib": ("x86_64-apple-macos10.12", "dylib"),
        "arm64-bundle": ("arm64-apple-macos11", "bundle"),
        "x86_64-bundle": ("x86_64-apple-macos11", "bundle"),
    }

    def __init__(self, toolchain: Toolchain, folder: Path):
        self.toolchain = toolchain
        self.folder = folder
        self.counter = 0

    @functools.cache  # noqa: B019 - one instance per session
    def path(self, name: str) -> Path:
        """The session's copy of ``name`` (do not modify; ``copy`` for that)."""
        if name in self.BUILT:
            return self.toolchain.build(name, *self.BUILT[name])
        if name == "universal-exe":
            return self.toolchain.universal(name, self.path("x86_64-exe"), self.path("arm64-exe"))
        if name == "universal-dylib":
            inputs = self.path("x86_64-dylib"), self.path("arm64-dylib")
            return self.toolchain.universal(name, *inputs)
        if name.startswith("large-"):  # large-<MiB>: a big __DATA section of random bytes
            blob = self.folder / f"{name}.bin"
            blob.write_bytes(os.urandom(int(name.split("-")[1]) << 20))
            return self.toolchain.build(
                name, "arm64-apple-macos11", "exe", f"-Wl,-sectcreate,__DATA,__blob,{blob}"
            )
        if name == "info-plist-exe":
            plist = self.folder / "embedded-Info.plist"
            plist.write_bytes(INFO_PLIST)
            return self.toolchain.build(
                name, "arm64-apple-macos11", "exe", f"-Wl,-sectcreate,__TEXT,__info_plist,{plist}"
            )
        real = {r.name: r for r in REAL_MACHOS}.get(name)
        if real is None:
            raise KeyError(name)
        return fetch(real, Path(platformdirs.user_cache_dir("signing-manager-tests")) / "wheels")

    def copy(self, name: str, folder: Path, as_name: str | None = None) -> Path:
        target = folder / (as_name or name)
        shutil.copyfile(self.path(name), target)
        target.chmod(0o755)
        return target

    def bytes(self, name: str) -> bytes:
        return self.path(name).read_bytes()


INFO_PLIST = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict>
<key>CFBundleIdentifier</key><string>com.example.tool</string>
</dict></plist>
"""


@pytest.fixture(scope="session")
def toolchain(tmp_path_factory) -> Toolchain:
    return Toolchain(tmp_path_factory.mktemp("toolchain"))


@pytest.fixture(scope="session")
def machos(toolchain, tmp_path_factory) -> MachOs:
    return MachOs(toolchain, tmp_path_factory.mktemp("machos"))


# --- Signers --------------------------------------------------------------------------------


def certificate(subject, issuer, key, issuer_key, extensions=(), days=3650) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


def apple_name(common_name: str, unit: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if unit:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Apple Inc."))
    return x509.Name(attributes)


def marker(oid: str) -> tuple[x509.UnrecognizedExtension, bool]:
    """Apple's marker extensions: an ASN.1 NULL, marked critical as Apple does."""
    return x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), b"\x05\x00"), True


@functools.cache
def fake_apple_chain():
    """(leaf, leaf key, intermediate, root): a Developer ID chain with Apple's markers."""
    root_key, intermediate_key = cached_key("rsa2048", 97), cached_key("rsa2048", 98)
    leaf_key = cached_key("rsa2048", 1)
    root_name = apple_name("Apple Root CA", "Apple Certification Authority")
    ca = (x509.BasicConstraints(ca=True, path_length=None), True)
    root = certificate(root_name, root_name, root_key, root_key, [ca])
    intermediate_name = apple_name("Developer ID Certification Authority", "G2")
    intermediate = certificate(intermediate_name, root_name, intermediate_key, root_key,
                               [ca, marker("1.2.840.113635.100.6.2.6")])  # fmt: skip
    leaf_subject = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, TEAM_ID),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Developer ID Application: Test ({TEAM_ID})"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, TEAM_ID),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Signing Manager Tests"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )
    leaf = certificate(leaf_subject, intermediate_name, leaf_key, intermediate_key, [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), True),
        marker("1.2.840.113635.100.6.1.13"),
    ])  # fmt: skip
    return leaf, leaf_key, intermediate, root


@pytest.fixture(scope="session")
def apple_signer() -> LocalSigner:
    leaf, key, intermediate, root = fake_apple_chain()
    return LocalSigner(leaf, key, (intermediate, root))


@pytest.fixture(scope="session")
def apple_root() -> x509.Certificate:
    return fake_apple_chain()[3]


@pytest.fixture(scope="session")
def ca_signer() -> LocalSigner:
    key = cached_key("rsa2048", 2)
    ca_certificate, _ = fake_ca()
    return LocalSigner(make_certificate(key, "Codesign Test (RSA)"), key, (ca_certificate,))


@pytest.fixture(scope="session")
def ec_signer() -> LocalSigner:
    key = ec.generate_private_key(ec.SECP256R1())
    ca_certificate, _ = fake_ca()
    return LocalSigner(make_certificate(key, "Codesign Test (EC)"), key, (ca_certificate,))


@pytest.fixture(scope="session")
def test_ca() -> x509.Certificate:
    return fake_ca()[0]


# --- Independent checks ---------------------------------------------------------------------


class Independent:
    """Verdicts from tools we did not write."""

    def __init__(self, toolchain: Toolchain, folder: Path):
        self.toolchain = toolchain
        self.folder = folder
        self.counter = 0

    def openssl_verifies(self, data: bytes, anchor: x509.Certificate) -> int:
        """``openssl cms -verify`` of every slice's CMS over its slot-0 CodeDirectory, with
        ``anchor`` as the only trusted root; the number of slices checked."""
        checked = 0
        for macho in slices_of(data):
            entries = SuperBlob.parse(macho.signature_data, BlobMagic.EMBEDDED_SIGNATURE).entries
            self.counter += 1
            base = self.folder / f"slice-{self.counter}"
            content, signature, ca = (base.with_suffix(s) for s in (".cd", ".der", ".pem"))
            content.write_bytes(entries[Slot.CODE_DIRECTORY])
            signature.write_bytes(entries[Slot.SIGNATURE][8:])
            ca.write_bytes(anchor.public_bytes(serialization.Encoding.PEM))
            command = [
                *("openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", signature),
                *("-content", content, "-CAfile", ca, "-purpose", "any", "-ignore_critical"),
                *("-out", os.devnull),
            ]
            result = subprocess.run(
                command, capture_output=True, text=True, check=False, timeout=TOOL_TIMEOUT
            )
            assert result.returncode == 0, f"openssl cms -verify: {result.stderr}"
            assert "Verification successful" in result.stderr
            checked += 1
        return checked

    def objdump_signature(self, path: Path) -> list[tuple[int, int]]:
        """(dataoff, datasize) of every LC_CODE_SIGNATURE llvm-objdump finds."""
        lines = self.toolchain.load_commands(path).splitlines()
        found = []
        for number, line in enumerate(lines):
            if line.split() == ["cmd", "LC_CODE_SIGNATURE"]:
                offset = int(lines[number + 2].split()[1])
                size = int(lines[number + 3].split()[1])
                found.append((offset, size))
        return found


@pytest.fixture(scope="session")
def independent(toolchain, tmp_path_factory) -> Independent:
    return Independent(toolchain, tmp_path_factory.mktemp("independent"))
