"""The browser harness itself (conftest.py) does what the other browser tests rely on.

- Chromium trusts the service's self-signed certificate only through its pinned key: the
  ``--ignore-certificate-errors-spki-list`` flag pins one key, it does not let any certificate in.
- The page watcher notices Content-Security-Policy violations, so "no violations" means something.
"""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from playwright.sync_api import Error as PlaywrightError

pytestmark = pytest.mark.browser


def test_only_the_pinned_key_is_trusted(running_service, browser, chromium_launcher, spki_pin_of):
    version_url = running_service.url + "/api/v1/version"

    # Pinned to the service's own key: the page loads over the service's certificate.
    page = browser.new_page()
    response = page.goto(version_url)
    assert response is not None
    assert response.ok
    certificate = x509.load_pem_x509_certificate(running_service.cert_path.read_bytes())
    common_name = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert response.security_details()["subjectName"] == common_name

    # Pinned to some other key: the same self-signed certificate is refused.
    other_pin = spki_pin_of(ec.generate_private_key(ec.SECP256R1()).public_key())
    stranger = chromium_launcher(other_pin).new_page()
    with pytest.raises(PlaywrightError, match="ERR_CERT_AUTHORITY_INVALID"):
        stranger.goto(version_url)


def test_the_watcher_reports_csp_violations(running_service, watched_page):
    page = watched_page.page
    page.goto(running_service.url)
    watched_page.expect_path("/accounts/login/")
    assert watched_page.csp_violations == []

    # An image from elsewhere breaks "img-src 'self' data:" (192.0.2.1 is a documentation address).
    with page.expect_console_message(lambda message: "Content Security Policy" in message.text):
        page.evaluate(
            """() => {
              const image = document.createElement("img");
              image.src = "https://192.0.2.1/pixel.png";
              document.body.append(image);
            }"""
        )
    assert any("img-src" in violation for violation in watched_page.csp_violations)
    with pytest.raises(AssertionError, match="Content-Security-Policy violations"):
        watched_page.assert_clean()
