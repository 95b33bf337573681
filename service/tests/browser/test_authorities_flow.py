"""Certificate authorities in a real browser: a Keychain-style identity (the leaf alone) warns
that its chain does not reach a root until an admin uploads its issuers on the Certificate
Authorities page; a bad file is refused there with the reason.

The service and Chromium come from conftest.py; every page is watched for Content-Security-
Policy violations, console errors and static files that do not load.
"""

from __future__ import annotations

import re

import pytest
from cryptography.hazmat.primitives import serialization
from playwright.sync_api import expect

from signing_service.test import (
    P12_PASSWORD,
    cached_key,
    fake_ca,
    make_certificate,
    make_intermediate_ca,
    openssl_p12,
)

ALICE_FIRST_PASSWORD = "Amber-falcon-ledger-3318"
ALICE_PASSWORD = "Granite-orchid-beacon-7462"
COMMON_NAME = "Developer ID Application: Keychain Export (ABCDE12345)"

pytestmark = pytest.mark.browser


def import_leaf_only(service, tmp_path) -> None:
    key = cached_key("rsa2048", 11)
    leaf = make_certificate(key, COMMON_NAME, issuer=make_intermediate_ca())
    (tmp_path / "leaf.p12").write_bytes(openssl_p12(leaf, key, P12_PASSWORD))
    (tmp_path / "password").write_text(P12_PASSWORD + "\n")
    imported = service.manage(
        "identity",
        "import",
        str(tmp_path / "leaf.p12"),
        "--password-file",
        str(tmp_path / "password"),
    )
    assert imported.returncode == 0, imported.stderr


def test_admin_uploads_the_missing_issuers_and_the_warning_goes(
    running_service, watched_page, create_user, tmp_path
):
    import_leaf_only(running_service, tmp_path)
    bundle = tmp_path / "issuers.pem"
    bundle.write_bytes(
        make_intermediate_ca()[0].public_bytes(serialization.Encoding.PEM)
        + fake_ca()[0].public_bytes(serialization.Encoding.PEM)
    )
    (tmp_path / "not-a-cert.pem").write_text("hello\n")
    create_user("alice", ALICE_FIRST_PASSWORD, admin=True)
    watched_page.first_sign_in("alice", ALICE_FIRST_PASSWORD, ALICE_PASSWORD)
    page = watched_page.page

    page.goto(running_service.url + "/identities/")
    expect(page.get_by_text("(incomplete chain)")).to_be_visible()
    page.get_by_role("link", name=COMMON_NAME).click()
    expect(page.locator("#chain-warning")).to_contain_text("does not reach a root certificate")
    watched_page.assert_clean()

    page.get_by_role("link", name="Upload the missing certificate authority").click()
    watched_page.expect_path("/certificate-authorities/")
    expect(page.get_by_text("Developer ID Certification Authority").first).to_be_visible()
    page.get_by_role("link", name="Upload CA Certificate").click()
    page.get_by_label("CA certificate file").set_input_files(str(tmp_path / "not-a-cert.pem"))
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_text("This is not an X.509 certificate (PEM or DER)")).to_be_visible()

    page.get_by_label("CA certificate file").set_input_files(str(bundle))
    page.get_by_role("button", name="Upload").click()
    watched_page.expect_path("/certificate-authorities/")
    expect(page.get_by_text("identities' chains were completed again")).to_be_visible()
    expect(page.locator("table.list tbody tr")).to_have_count(2 + 10)  # and Apple's ten

    page.goto(running_service.url + "/identities/")
    expect(page.get_by_text("(incomplete chain)")).to_have_count(0)
    page.get_by_role("link", name=COMMON_NAME).click()
    expect(page.locator("#chain-warning")).to_have_count(0)
    chain = page.locator("ol.chain li")
    expect(chain).to_have_count(3)
    expect(chain.nth(1)).to_contain_text("Signing Manager Test Intermediate CA")
    expect(chain.nth(2)).to_contain_text(re.compile("Signing Manager Test CA"))
    watched_page.assert_clean()
