"""Apple's CA certificates shipped with the client are exactly the published ones."""

from __future__ import annotations

import hashlib
import shutil
from importlib import resources

import pytest
from cryptography.x509.oid import NameOID

from signing_manager import apple_pki
from signing_manager.apple_pki import ApplePkiError, apple_certificates, apple_roots

# SHA-256 of each certificate as Apple's Certificate Authority page publishes it, copied here
# independently of the module's pins so that a changed pin cannot pass unnoticed.
PUBLISHED = {
    "Apple Root CA": "B0B1730ECBC7FF4505142C49F1295E6EDA6BCAED7E2C68C5BE91B5A11001F024",
    "Apple Root CA - G2": "C2B9B042DD57830E7D117DAC55AC8AE19407D38E41D88F3215BC3A890444A050",
    "Apple Root CA - G3": "63343ABFB89A6A03EBB57E9B3F5FA7BE7C4F5C756F3017B3A8C488C3653E9179",
    "WWDR G2": "9ED4B3B88C6A339CF1387895BDA9CA6EA31A6B5CE9EDF7511845923B0C8AC94C",
    "WWDR G3": "DCF21878C77F4198E4B4614F03D696D89C66C66008D4244E1B99161AAC91601F",
    "WWDR G4": "EA4757885538DD8CB59FF4556F676087D83C85E70902C122E42C0808B5BCE14C",
    "WWDR G5": "53FD008278E5A595FE1E908AE9C5E5675F26243264A5A6438C023E3CE2870760",
    "WWDR G6": "BDD4ED6E74691F0C2BFD01BE0296197AF1379E0418E2D300EFA9C3BEF642CA30",
    "Developer ID": "7AFC9D01A62F03A2DE9637936D4AFE68090D2DE18D03F29C88CFB0B1BA63587F",
    "Developer ID G2": "F16CD3C54C7F83CEA4BF1A3E6A0819C8AAA8E4A1528FD144715F350643D2DF3A",
}
FOLDER = resources.files("signing_manager") / "apple_ca"


def test_every_shipped_file_is_a_published_certificate_and_nothing_else_ships():
    files = sorted(entry.name for entry in FOLDER.iterdir())
    digests = {hashlib.sha256((FOLDER / name).read_bytes()).hexdigest().upper() for name in files}

    assert files == sorted(apple_pki.APPLE_CERTIFICATES)
    assert digests == set(PUBLISHED.values())
    assert len(apple_certificates()) == len(PUBLISHED)


def test_the_roots_are_apples_three_self_signed_roots():
    names = sorted(
        root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value for root in apple_roots()
    )

    assert names == [
        "Apple Root CA",
        "Apple Root CA - G2",
        "Apple Root CA - G3",
    ]


@pytest.fixture
def shipped_copy(tmp_path, monkeypatch):
    """The shipped folder copied where a test may damage it; the cache is cleared around."""
    package = tmp_path / "signing_manager"
    shutil.copytree(str(FOLDER), package / "apple_ca")
    monkeypatch.setattr(apple_pki.resources, "files", lambda _: package)
    apple_certificates.cache_clear()
    yield package / "apple_ca"
    apple_certificates.cache_clear()


def test_a_file_that_is_not_the_pinned_one_is_refused(shipped_copy):
    # Another genuine Apple certificate in the place of the root: still not the pinned file.
    shutil.copy(shipped_copy / "DeveloperIDCA.cer", shipped_copy / "AppleIncRootCertificate.cer")

    with pytest.raises(ApplePkiError, match=r"AppleIncRootCertificate\.cer is not the published"):
        apple_certificates()


def test_a_missing_file_is_refused(shipped_copy):
    (shipped_copy / "DeveloperIDG2CA.cer").unlink()

    with pytest.raises(ApplePkiError, match=r"DeveloperIDG2CA\.cer is missing"):
        apple_certificates()
