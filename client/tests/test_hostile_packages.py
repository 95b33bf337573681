"""Packages made to attack the checker (issue: hostile files): a table of contents that
inflates without bound, or that names an encoding XML parsers cannot read. Each is laid out by
the test as a XAR header and a zlib-compressed TOC; ``pkgutil --check-signature`` must refuse
it in one sentence, without a traceback, and without inflating more than the header records."""

from __future__ import annotations

import base64
import hashlib
import struct
import tracemalloc
import zlib
from dataclasses import replace

import pytest
from asn1crypto.cms import ContentInfo
from cryptography.hazmat.primitives.serialization import Encoding

from signing_manager.local_key import LocalSigner
from signing_manager.pkg import verify
from signing_manager.pkg.signing import sign_package
from signing_manager.pkg.xar import MAX_TOC_DEPTH, XarArchive, XarError, toc_bytes
from signing_service.test import make_identity

HEADER = struct.Struct(">4sHHQQI")  # magic, header size, version, TOC lengths, checksum kind
TOC = b'<?xml version="1.0" encoding="UTF-8"?><xar><toc></toc></xar>'


def xar(compressed_toc: bytes, recorded_length: int) -> bytes:
    """A XAR file: the header (with a TOC length of our choosing), the TOC, no heap."""
    header = HEADER.pack(b"xar!", HEADER.size, 1, len(compressed_toc), recorded_length, 0)
    return header + compressed_toc


def zlib_bomb(toc: bytes, padding_mib: int) -> bytes:
    """The TOC followed by ``padding_mib`` MiB of spaces, compressed (about 1 KiB a MiB)."""
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(toc)]
    chunk = b" " * (1 << 20)
    parts += [compressor.compress(chunk) for _ in range(padding_mib)]
    return b"".join(parts) + compressor.flush()


def test_a_toc_that_inflates_past_its_recorded_length_is_refused_without_inflating_it():
    bomb = xar(zlib_bomb(TOC, padding_mib=512), recorded_length=len(TOC))
    assert len(bomb) < 1 << 20  # under a megabyte on disk, half a gigabyte inflated

    tracemalloc.start()
    try:
        with pytest.raises(XarError, match="does not have its recorded length"):
            XarArchive.parse(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"{peak / (1 << 20):.0f} MiB allocated"


def test_a_toc_shorter_than_recorded_is_refused():
    compressed = zlib.compress(TOC)
    with pytest.raises(XarError, match="does not have its recorded length"):
        XarArchive.parse(xar(compressed, recorded_length=len(TOC) + 1))


def test_a_zlib_bomb_is_refused_by_pkgutil_in_one_line(new_cli, tmp_path):
    package = tmp_path / "bomb.pkg"
    package.write_bytes(xar(zlib_bomb(TOC, padding_mib=64), recorded_length=len(TOC)))

    result = new_cli().run("pkgutil", "--check-signature", str(package), api_key=None)

    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.strip().splitlines() == [
        "signing-manager: The XAR table of contents does not have its recorded length."
    ]


@pytest.mark.parametrize(
    ("encoding", "reason"),
    [("bogus", "unknown encoding: bogus"), ("UTF-32", "multi-byte encodings are not supported")],
)
def test_a_toc_in_an_encoding_xml_cannot_read_is_refused_in_one_line(
    new_cli, tmp_path, encoding, reason
):
    toc = TOC.replace(b"UTF-8", encoding.encode())
    package = tmp_path / "encoding.pkg"
    package.write_bytes(xar(zlib.compress(toc), recorded_length=len(toc)))

    result = new_cli().run("pkgutil", "--check-signature", str(package), api_key=None)

    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "The XAR table of contents is not valid XML" in lines[0]
    assert reason in lines[0]


def test_a_header_of_another_version_is_refused():
    # Found by fuzzing: the version field is covered by no signature, and a signed package
    # with it changed still checked as signed. xar and libarchive know version 1 only.
    data = bytearray(xar(zlib.compress(TOC), recorded_length=len(TOC)))
    data[6:8] = (2).to_bytes(2, "big")

    with pytest.raises(XarError, match="The XAR header has version 2; only version 1 exists"):
        XarArchive.parse(bytes(data))


def test_a_toc_with_a_doctype_is_refused_before_its_entities_expand():
    entities = '<!ENTITY a "aaaaaaaaaa">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8)
    )
    toc = f'<?xml version="1.0"?><!DOCTYPE xar [{entities}]><xar><toc>&i;</toc></xar>'.encode()

    with pytest.raises(XarError, match="declares a DOCTYPE, which xar never writes"):
        XarArchive.parse(xar(zlib.compress(toc), recorded_length=len(toc)))


@pytest.mark.parametrize(("depth", "refused"), [(MAX_TOC_DEPTH, False), (MAX_TOC_DEPTH + 1, True)])
def test_a_toc_nested_deeper_than_the_limit_is_refused(depth, refused):
    # Found by fuzzing: 1,000 levels parse, then copying and writing the TOC when signing
    # recursed past Python's limit (RecursionError).
    inner = depth - 2  # <xar> and <toc> are two levels
    toc = ("<xar><toc>" + "<x>" * inner + "</x>" * inner + "</toc></xar>").encode()
    data = xar(zlib.compress(toc), recorded_length=len(toc))

    if refused:
        with pytest.raises(XarError, match=f"nests deeper than {MAX_TOC_DEPTH} levels"):
            XarArchive.parse(data)
    else:
        XarArchive.parse(data)


# --- File data: bounded work over the heap ----------------------------------------------------


def package(payload: bytes, spans: list[tuple[int, int]], checksums: list[str]) -> bytes:
    """A XAR with a SHA-1 TOC checksum and one file entry per span (offsets into
    ``payload``), each with the archived-checksum given."""
    files = "".join(
        f"<file id='{number}'><name>f{number}</name><type>file</type><data>"
        f"<offset>{20 + offset}</offset><length>{size}</length><size>{size}</size>"
        f"<encoding style='application/octet-stream'/>"
        f"<archived-checksum style='sha1'>{checksum}</archived-checksum>"
        f"<extracted-checksum style='sha1'>{checksum}</extracted-checksum></data></file>"
        for number, ((offset, size), checksum) in enumerate(zip(spans, checksums, strict=True))
    )
    toc = (
        '<?xml version="1.0" encoding="UTF-8"?><xar><toc>'
        "<checksum style='sha1'><offset>0</offset><size>20</size></checksum>"
        f"{files}</toc></xar>"
    ).encode()
    compressed = zlib.compress(toc)
    header = HEADER.pack(b"xar!", HEADER.size, 1, len(compressed), len(toc), 1)
    return header + compressed + hashlib.sha1(compressed).digest() + payload


class CountingHash:
    """A hashlib object that notes how many bytes each update gave it."""

    def __init__(self, running, counts: list[int]):
        self.running = running
        self.counts = counts

    def update(self, data) -> None:
        self.counts.append(len(data))
        self.running.update(data)

    def digest(self) -> bytes:
        return self.running.digest()

    def hexdigest(self) -> str:
        return self.running.hexdigest()


@pytest.fixture
def hashed_bytes(monkeypatch) -> list[int]:
    """The number of bytes the package checker hashes, chunk by chunk."""
    counts: list[int] = []
    real_new = hashlib.new

    def counting_new(name, data=b"", **options):
        counts.append(len(data))
        return CountingHash(real_new(name, data, **options), counts)

    monkeypatch.setattr(hashlib, "new", counting_new)  # the module the checker hashes with
    return counts


def test_many_entries_over_one_range_are_hashed_once(hashed_bytes):
    payload = bytes(range(256)) * 4096  # 1 MiB
    checksum = hashlib.sha1(payload).hexdigest()
    data = package(payload, [(0, len(payload))] * 2000, [checksum] * 2000)

    result = verify.check_package(data)

    assert result.problems == []
    assert len(payload) <= sum(hashed_bytes) <= len(data)  # once, not 2,000 MiB


def test_entries_sharing_a_range_must_agree_on_its_checksum():
    payload = b"shared data\n"
    checksums = [hashlib.sha1(payload).hexdigest(), hashlib.sha1(b"other").hexdigest()]

    result = verify.check_package(package(payload, [(0, len(payload))] * 2, checksums))

    assert result.problems == ["A file's data does not match its checksum: it was altered."]


def test_ranges_that_overlap_are_refused():
    payload = b"0123456789" * 10
    spans = [(0, 60), (50, 50)]
    checksums = [hashlib.sha1(payload[o : o + s]).hexdigest() for o, s in spans]

    result = verify.check_package(package(payload, spans, checksums))

    assert result.problems == ["Two files' data overlap in the package's heap: it is malformed."]


# --- Signatures whose parts are not what they claim --------------------------------------------


@pytest.fixture(scope="module")
def signed() -> bytes:
    """A package bsdtar could have made, signed by an RSA identity."""
    identity = make_identity("Developer ID Installer: Hostile (ABCDE12345)", installer=True)
    signer = LocalSigner(identity.certificate, identity.private_key, [identity.ca_certificate])
    payload = b"payload\n"
    unsigned = package(payload, [(0, len(payload))], [hashlib.sha1(payload).hexdigest()])
    return sign_package(unsigned, signer)


def with_edited_toc(data: bytes, edit) -> bytes:
    """``data`` with ``edit`` applied to its TOC and the TOC checksum made to match again, as
    anyone can (the signatures over the old checksum then no longer verify)."""
    archive = XarArchive.parse(data)
    edit(archive.toc_element)
    xml = toc_bytes(archive.toc)
    compressed = zlib.compress(xml)
    offset, size = archive.heap_span(archive.toc_element.find("checksum"))
    heap = bytearray(data[len(data) - len(archive.heap) :])
    heap[offset : offset + size] = hashlib.sha1(compressed).digest()
    header = replace(archive.header, toc_compressed=len(compressed), toc_uncompressed=len(xml))
    return header.serialize() + compressed + bytes(heap)


def test_an_ec_certificate_in_the_rsa_signature_is_a_problem_not_a_traceback(signed):
    ec_certificate = make_identity(key_kind="ec256").certificate.public_bytes(Encoding.DER)

    def put_ec_certificate(toc) -> None:
        node = next(n for n in toc.find("signature").iter() if n.tag.endswith("X509Certificate"))
        node.text = base64.b64encode(ec_certificate).decode()

    result = verify.check_package(with_edited_toc(signed, put_ec_certificate))

    assert "The RSA signature's certificate holds no RSA key." in result.problems


def cms_leaf(signed: bytes) -> tuple[int, bytes]:
    """Where in ``signed`` the signer's certificate inside the CMS starts, and its DER."""
    archive = XarArchive.parse(signed)
    offset, size = archive.heap_span(archive.toc_element.find("x-signature"))
    start = len(signed) - len(archive.heap) + offset
    blob = signed[start : start + size]
    certificates = ContentInfo.load(blob, strict=False)["content"]["certificates"]
    leaf = next(c.chosen.dump() for c in certificates if b"Hostile" in c.chosen.dump())
    return start + blob.index(leaf), leaf


def test_a_damaged_certificate_in_the_cms_is_a_problem_not_a_traceback(signed):
    start, _ = cms_leaf(signed)
    # The serial number's INTEGER tag, after the certificate's, the TBS's and the version's
    # headers: another tag there makes the certificate unreadable when it is looked at.
    position = start + 4 + 4 + 5
    assert signed[position] == 0x02
    damaged = signed[:position] + b"\x04" + signed[position + 1 :]

    result = verify.check_package(damaged)

    assert "The CMS signature carries a damaged certificate." in result.problems


RSA_ENCRYPTION = bytes.fromhex("06092a864886f70d010101")  # the OID in an RSA key's SPKI


def unknown_key_algorithm(certificate_der: bytes) -> bytes:
    """The certificate with its key's algorithm OID changed: it still loads, but its key is
    of a kind no one knows (found by fuzzing: ``public_key()`` raised)."""
    assert certificate_der.count(RSA_ENCRYPTION) == 1
    return certificate_der.replace(RSA_ENCRYPTION, RSA_ENCRYPTION[:-1] + b"\x41")


def test_a_certificate_with_an_unknown_key_in_the_rsa_signature_is_a_problem(signed):
    def damage_certificate(toc) -> None:
        node = next(n for n in toc.find("signature").iter() if n.tag.endswith("X509Certificate"))
        node.text = base64.b64encode(unknown_key_algorithm(base64.b64decode(node.text))).decode()

    result = verify.check_package(with_edited_toc(signed, damage_certificate))

    assert "The RSA signature's certificate holds no RSA key." in result.problems


def test_a_certificate_with_an_unknown_key_in_the_cms_is_a_problem(signed):
    start, leaf = cms_leaf(signed)
    damaged = signed[:start] + unknown_key_algorithm(leaf) + signed[start + len(leaf) :]

    result = verify.check_package(damaged)

    assert "The CMS signature does not verify with its certificate." in result.problems


SHA256_OID = bytes.fromhex("0609608648016503040201")  # id-sha256, as DER


def test_a_digest_algorithm_no_one_knows_is_a_problem_not_a_traceback(signed):
    # Found by fuzzing (seed 40, package #1794): one flipped byte made id-sha256 an OID that
    # hashlib does not know, and pkgutil ended in "unexpected error".
    archive = XarArchive.parse(signed)
    offset, size = archive.heap_span(archive.toc_element.find("x-signature"))
    start = len(signed) - len(archive.heap) + offset
    # The SignerInfo's digest algorithm: the last id-sha256 (the first is in digestAlgorithms).
    position = start + signed[start : start + size].rindex(SHA256_OID) + 7  # the 3 of 3.4.2.1
    damaged = signed[:position] + b"\x0b" + signed[position + 1 :]

    result = verify.check_package(damaged)

    assert result.problems == [
        "The CMS signature uses a digest algorithm we do not check (2.16.840.1.101.11.4.2.1)."
    ]
