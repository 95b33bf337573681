"""The productsign engine on packages bsdtar built, with a local signer; checked by bsdtar,
openssl and our verifier."""

import datetime
import zipfile
from io import BytesIO
from pathlib import Path

import pytest
from cryptography import x509

from signing_manager.apple_pki import apple_roots
from signing_manager.codesign import files
from signing_manager.errors import SigningManagerError
from signing_manager.local_key import LocalSigner
from signing_manager.pkg.signing import AlreadySigned, sign_archive, sign_package
from signing_manager.pkg.verify import SignatureCheck, check_package, describe, judge_trust
from signing_manager.pkg.xar import XarArchive, XarError
from signing_service.test import make_identity


@pytest.fixture(scope="module")
def identity():
    return make_identity("Developer ID Installer: Packages (ABCDE12345)", installer=True)


@pytest.fixture(scope="module")
def signer(identity):
    return LocalSigner(identity.certificate, identity.private_key, [identity.ca_certificate])


def flip(data: bytes, position: int) -> bytes:
    changed = bytearray(data)
    changed[position] ^= 0xFF
    return bytes(changed)


@pytest.mark.parametrize("layout", ["files", "uncompressed", "product", "md5-bzip2"])
def test_signed_packages_keep_their_content_and_verify_independently(
    packages, signer, identity, layout
):
    original = packages.build(layout)
    before = bytes(original)
    signed = sign_package(original, signer)
    assert original == before  # the input is never changed
    packages.assert_same_content(original, signed)
    packages.assert_openssl_verifies(signed, identity.certificate, identity.ca_certificate)
    result = check_package(signed)
    assert result.valid, result.problems
    assert result.certificates == [identity.certificate, identity.ca_certificate]
    assert result.signing_time is not None


def test_a_package_without_toc_checksum_is_signed_too(packages, signer):
    signed = sign_package(packages.build("no-toc-checksum"), signer)
    assert check_package(signed).valid


def test_the_report_reads_like_pkgutil(packages, signer, identity):
    report = describe("signed.pkg", check_package(sign_package(packages.build("files"), signer)))
    assert report.startswith('Package "signed.pkg":\n   Status: signed')
    assert "   Certificate Chain:\n    1. Developer ID Installer: Packages (ABCDE12345)" in report
    assert "    2. Signing Manager Test CA" in report
    sha256 = identity.certificate.fingerprint(
        __import__("cryptography").hazmat.primitives.hashes.SHA256()
    )
    assert " ".join(f"{byte:02X}" for byte in sha256[:16]) in report
    assert "SHA1 Fingerprint:" in report


def test_the_status_says_whether_the_chain_is_trusted(packages, signer, identity):
    result = check_package(sign_package(packages.build("files"), signer))

    judge_trust(result, apple_roots())
    untrusted = describe("signed.pkg", result)
    judge_trust(result, (*apple_roots(), identity.ca_certificate))
    trusted = describe("signed.pkg", result)

    assert untrusted.startswith(
        'Package "signed.pkg":\n   Status: signed by untrusted certificate\n'
        "   Trust: the certificate chain ends at “Signing Manager Test CA”, which is not a "
        "trusted anchor"
    )
    assert trusted.startswith(
        'Package "signed.pkg":\n   Status: signed by a certificate trusted through an anchor '
        "given with --anchor\n   Signing time:"
    )


def test_a_developer_id_installer_chain_reads_as_apples_distribution_status():
    leaf = x509.load_der_x509_certificate(
        (
            Path(__file__).parent / "data/apple-leaves/apple-signed-developer-id-installer.cer"
        ).read_bytes()
    )
    # Timestamped while the (since expired) certificate was valid: trusted at that time.
    result = SignatureCheck(signed=True, certificates=[leaf])
    result.timestamp = leaf.not_valid_before_utc + datetime.timedelta(days=1)

    judge_trust(result, apple_roots())

    assert describe("apple.pkg", result).startswith(
        'Package "apple.pkg":\n   Status: signed by a developer certificate issued by Apple for '
        "distribution\n"
    )


def test_an_unsigned_package_has_no_signature(packages):
    result = check_package(packages.build("files"))
    assert not result.signed
    assert not result.valid
    assert "Status: no signature" in describe("unsigned.pkg", result)


def tampered_variants(packages, signed: bytes, other: bytes) -> dict[str, bytes]:
    archive = XarArchive.parse(signed)
    heap_start = len(signed) - len(archive.heap)
    toc = archive.toc_element

    def swapped(tag: str) -> bytes:
        element = toc.find(tag)
        start = heap_start + int(element.findtext("offset"))
        size = int(element.findtext("size"))
        foreign = XarArchive.parse(other)
        replacement = foreign.heap_range(foreign.toc_element.find(tag))
        assert len(replacement) == size
        return signed[:start] + replacement + signed[start + size :]

    checksum_start = heap_start + int(toc.find("checksum").findtext("offset"))
    return {
        "a file's data": packages.flip_file_byte(signed),
        "the RSA signature": swapped("signature"),
        "the CMS signature": swapped("x-signature"),
        "the TOC checksum": flip(signed, checksum_start),
    }


def test_every_tampered_variant_is_rejected(packages, signer):
    signed = sign_package(packages.build("files"), signer)
    other = sign_package(packages.build("product"), signer)
    for name, variant in tampered_variants(packages, signed, other).items():
        result = check_package(variant)
        assert not result.valid, name
        assert result.problems, name


def assert_rejected(data: bytes) -> None:
    """Either a clear XarError, or a check that says the package is not validly signed."""
    try:
        result = check_package(data)
    except XarError:
        return
    assert not result.valid


def test_a_flipped_toc_byte_is_rejected(packages, signer):
    signed = sign_package(packages.build("files"), signer)
    header_size = int.from_bytes(signed[4:6], "big")
    for position in (header_size + 2, header_size + 40, header_size + 200):
        assert_rejected(flip(signed, position))


def test_a_signed_package_is_refused_unless_forced(packages, signer):
    signed = sign_package(packages.build("files"), signer)
    with pytest.raises(AlreadySigned, match="--force"):
        sign_package(signed, signer)
    again = sign_package(signed, signer, force=True)
    toc = XarArchive.parse(again).toc_element
    assert len(toc.findall("signature")) == 1
    assert len(toc.findall("x-signature")) == 1
    assert check_package(again).valid
    packages.assert_same_content(packages.build("files"), again)


def test_ec_identities_are_refused(packages):
    made = make_identity(key_kind="ec256", installer=True)
    with pytest.raises(SigningManagerError, match="RSA identities only"):
        sign_package(packages.build("files"), LocalSigner(made.certificate, made.private_key))


def zip_bytes() -> bytes:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "not a package")
    return buffer.getvalue()


def test_malformed_input_gets_a_clear_error(packages, signer):
    package = packages.build("files")
    header_size = int.from_bytes(package[4:6], "big")
    huge_toc = package[:8] + (2**40).to_bytes(8, "big") + package[16:]
    cases = {
        "empty": b"",
        "random": bytes(range(256)) * 4,
        "zip": zip_bytes(),
        "cut in the header": package[:10],
        "cut in the TOC": package[: header_size + 10],
        "huge TOC": huge_toc,
    }
    for data in cases.values():
        with pytest.raises(XarError):
            sign_package(data, signer)
        with pytest.raises(XarError):
            check_package(data)


def test_a_package_whose_file_was_damaged_is_not_signed(packages, signer):
    # Signed, it would not verify: productsign must not hand out such a package.
    damaged = packages.flip_file_byte(packages.build("files"))
    with pytest.raises(XarError, match="A file's data does not match its checksum"):
        sign_package(damaged, signer)


def test_a_damaged_package_signed_file_to_file_leaves_its_input_and_no_output(
    packages, signer, tmp_path
):
    # File to file, the data is copied on a second thread while it is checked: the check's
    # error must stop the copy, and the half-written output must go.
    damaged = packages.flip_file_byte(packages.build("uncompressed"))
    source = tmp_path / "damaged.pkg"
    source.write_bytes(damaged)
    with (
        pytest.raises(XarError, match="A file's data does not match its checksum"),
        files.open_regular(source) as package,
        files.replacing(tmp_path / "signed.pkg") as output,
    ):
        sign_archive(XarArchive.load(package), signer, output.handle)
    assert source.read_bytes() == damaged
    assert [path.name for path in tmp_path.iterdir()] == ["damaged.pkg"]


def test_a_timestamped_signature_verifies_and_names_its_time(packages, signer, identity, tsa):
    asked = tsa.requests
    signed = sign_package(packages.build("files"), signer, timestamp_url=tsa.url)
    assert tsa.requests == asked + 1
    result = check_package(signed)
    assert result.valid, result.problems
    assert result.timestamp is not None
    assert "Signed with a timestamp on:" in describe("signed.pkg", result)
    packages.assert_openssl_verifies(signed, identity.certificate, identity.ca_certificate)


def test_an_unreachable_timestamp_server_stops_the_signing(packages, signer):
    from signing_manager.timestamp import TimestampError

    with pytest.raises(TimestampError, match="Cannot reach the timestamp server"):
        sign_package(packages.build("files"), signer, timestamp_url="http://127.0.0.1:9/tsa")
