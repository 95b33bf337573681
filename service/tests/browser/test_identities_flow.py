"""Signing certificates in a real browser: import, authorize, test sign, switch on and off.

An admin imports a real .p12 (made by the openssl command line), creates two API keys, lets only
one of them use the identity, test-signs with it and switches the identity and a key off and on.
A non-admin sees the identity and may switch it, but none of the admin's buttons.

Each test starts its own service and Chromium (see conftest.py); every page is watched for
Content-Security-Policy violations, console errors and static files that do not load.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes
from playwright.sync_api import Locator, expect

from signing_manager.algorithms import Algorithm, verify_digest
from signing_service.test import make_identity

ALICE_FIRST_PASSWORD = "Amber-falcon-ledger-3318"
ALICE_PASSWORD = "Granite-orchid-beacon-7462"
BOB_FIRST_PASSWORD = "Velvet-harbour-mosaic-2207"
BOB_PASSWORD = "Copper-meadow-signal-5930"
WRONG_P12_PASSWORD = "not the p12 password"
KEY_NAMES = ("build-mac", "release-runner")  # as the pages list them, by name
CHOSEN_KEY, OTHER_KEY = "release-runner", "build-mac"  # only the chosen key may use the identity
TEXT_TO_SIGN = "Signed in a real browser,\nover two lines."
ALGORITHM = Algorithm.RSA_PSS_SHA256
SCREENSHOT = "/tmp/browser-identity.png"
ADMIN_ONLY_LINKS = ("Sign", "Authorize", "Edit", "Delete")

pytestmark = pytest.mark.browser


@pytest.fixture
def identity(tmp_path):
    """A fresh RSA identity as a real .p12 file, and the path it is written to."""
    made = make_identity()
    path = tmp_path / "identity.p12"
    path.write_bytes(made.p12)
    return made, path


def manage_import(service, identity, tmp_path):
    """Import the identity with ``signing-service identity import``, quicker than the pages."""
    made, p12_path = identity
    password_file = tmp_path / "p12-password"
    password_file.write_text(made.password + "\n", encoding="utf-8")
    imported = service.manage(
        "identity", "import", str(p12_path), "--password-file", str(password_file)
    )
    assert imported.returncode == 0, imported.stdout + imported.stderr
    return made


def identity_pk(watched) -> int:
    """The primary key of the identity whose detail page is open (once it is)."""
    expect(watched.page).to_have_url(re.compile(re.escape(watched.base_url) + r"/identities/\d+/$"))
    match = re.search(r"/identities/(\d+)/$", watched.page.url)
    assert match, watched.page.url
    return int(match.group(1))


def row_of(watched, text: str) -> Locator:
    """The one table row holding ``text``."""
    row = watched.page.locator("table.list tbody tr").filter(has_text=text)
    expect(row).to_have_count(1)
    return row


def facts_row(watched, label: str) -> Locator:
    """The value cell of the detail page's fact labelled ``label``."""
    header = watched.page.locator("th", has_text=re.compile(f"^{re.escape(label)}$"))
    return watched.page.locator("table.facts tr").filter(has=header).locator("td")


def key_label(name: str) -> re.Pattern:
    """How a page names the API key ``name``: with the public start of its secret."""
    return re.compile(rf"^\s*{re.escape(name)} \(smk_[0-9a-f]{{10}}_…\)\s*$")


def key_checkbox(watched, name: str) -> Locator:
    """The authorization page's checkbox of the API key ``name``, by the label around it."""
    label = watched.page.locator("#id_authorized_keys label")
    return label.filter(has_text=key_label(name)).locator("input")


def expect_switch(scope: Locator, active: bool) -> Locator:
    """The state badge in ``scope`` shows the state, and its button says what a click does."""
    expect(scope.locator(".badge")).to_have_text("Active" if active else "Inactive")
    switch = scope.get_by_role("button", name="Deactivate" if active else "Activate", exact=True)
    expect(switch).to_have_count(1)
    expect(switch).to_be_enabled()
    return switch


def flip_switch(
    watched,
    scope: Callable[[], Locator],
    path: str,
    active_now: bool,
    message: str | re.Pattern,
    confirm: str = "",
) -> None:
    """Click the switch found by ``scope()`` on ``path``; it comes back to ``path`` flipped, and
    stays so after a reload. With ``confirm``, a page first says so and is confirmed."""
    expect_switch(scope(), active_now).click()
    if confirm:
        page = watched.page
        expect(page.get_by_role("heading", level=1)).to_contain_text("Deactivate the ")
        expect(page.locator("main")).to_contain_text(confirm)
        watched.assert_styled()
        watched.assert_clean()
        page.get_by_role("button", name="Deactivate", exact=True).click()
    watched.expect_path(path)
    expect(watched.page.get_by_role("status").filter(has_text=message)).to_be_visible()
    expect_switch(scope(), not active_now)
    watched.page.reload()
    watched.expect_path(path)
    expect_switch(scope(), not active_now)


def identity_state(service, made) -> str:
    """``active`` or ``inactive``, as ``signing-service identity list`` reads it from the db."""
    listed = service.manage("identity", "list")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    lines = [line for line in listed.stdout.splitlines() if line.startswith(made.sha1.upper())]
    assert len(lines) == 1, listed.stdout
    return lines[0].split("\t")[1]


def create_api_key(watched, name: str) -> str:
    """Create a key through the API Keys pages; its secret, shown once."""
    page = watched.page
    page.goto(watched.base_url + "/api-keys/")
    page.get_by_role("link", name="Create API key").click()
    watched.expect_path("/api-keys/new/")
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Create", exact=True).click()

    expect(page.get_by_role("heading", name=f"API key “{name}” created")).to_be_visible()
    secret_box = page.locator("input#api-key-secret")
    expect(secret_box).to_be_visible()
    expect(secret_box).to_have_attribute("readonly", "")
    secret = secret_box.input_value()
    assert re.fullmatch(r"smk_[0-9a-f]{10}_[A-Za-z0-9_-]{40,}", secret), secret
    copy = page.locator("button[data-copy=api-key-secret]")
    expect(copy).to_have_text("Copy")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    watched.assert_styled()
    watched.assert_clean()

    page.get_by_role("link", name="Done").click()
    watched.expect_path("/api-keys/")
    row = row_of(watched, name)
    # Only the key's id is listed, never its secret.
    token_id = secret.split("_")[1]
    expect(row.locator("code")).to_have_text(f"smk_{token_id}_…")
    assert secret not in page.content()
    page.reload()
    assert secret not in page.content()
    expect(page.locator("input#api-key-secret")).to_have_count(0)
    expect_switch(row_of(watched, name), active=True)
    return secret


def test_admin_imports_authorizes_signs_and_switches(
    running_service, watched_page, create_user, identity
):
    made, p12_path = identity
    page = watched_page.page
    create_user("alice", ALICE_FIRST_PASSWORD, admin=True)
    watched_page.first_sign_in("alice", ALICE_FIRST_PASSWORD, ALICE_PASSWORD)
    expect(page.locator("header .who")).to_have_text("alice (admin)")

    page.get_by_role("link", name="Signing Certificates").click()
    watched_page.expect_path("/identities/")
    expect(page.get_by_text("No signing certificates yet.")).to_be_visible()
    page.get_by_role("link", name="Import Signing Certificate").click()
    watched_page.expect_path("/identities/import/")
    expect(page.get_by_role("heading", name="Import Signing Certificate")).to_be_visible()
    watched_page.assert_styled()
    watched_page.assert_clean()

    # A wrong password: the form says so and nothing is imported.
    page.locator("input[name=p12_file]").set_input_files(p12_path)
    page.locator("input[name=password]").fill(WRONG_P12_PASSWORD)
    page.get_by_role("button", name="Import").click()
    watched_page.expect_path("/identities/import/")
    expect(page.get_by_role("alert")).to_contain_text("The password is wrong")
    expect(page.locator("input[name=password]")).to_have_value("")  # not sent back
    watched_page.assert_clean()
    page.goto(running_service.url + "/identities/")
    expect(page.get_by_text("No signing certificates yet.")).to_be_visible()
    assert running_service.manage("identity", "list").stdout == ""

    # The right password: on to the new identity's page.
    page.goto(running_service.url + "/identities/import/")
    page.locator("input[name=p12_file]").set_input_files(p12_path)
    page.locator("input[name=password]").fill(made.password)
    page.get_by_role("button", name="Import").click()
    pk = identity_pk(watched_page)
    detail_path = f"/identities/{pk}/"
    expect(page.get_by_role("heading", level=1)).to_have_text(made.common_name)
    expect(page.get_by_role("status")).to_have_text(f"Imported “{made.common_name}”.")
    expect(page.locator("#sha1")).to_have_text(made.sha1.upper())
    sha256 = made.certificate.fingerprint(hashes.SHA256()).hex()
    expect(facts_row(watched_page, "SHA-256 fingerprint")).to_have_text(sha256.upper())
    assert page.locator("#certificate-pem").inner_text().strip() == made.pem().decode().strip()
    for name in ("Back", *ADMIN_ONLY_LINKS):
        expect(page.get_by_role("link", name=name, exact=True)).to_be_visible()
    expect_switch(page.locator("table.facts"), active=True)
    expect(facts_row(watched_page, "Authorized API keys")).to_have_text("All API keys")
    watched_page.assert_styled()
    watched_page.assert_clean()

    # Two API keys; only the chosen one may use the identity.
    secrets = [create_api_key(watched_page, name) for name in KEY_NAMES]
    assert secrets[0] != secrets[1]
    page.goto(running_service.url + detail_path)
    page.get_by_role("link", name="Authorize", exact=True).click()
    watched_page.expect_path(f"/identities/{pk}/authorize/")
    expect(page.get_by_label("All API keys")).to_be_checked()
    page.get_by_label("Only the API keys chosen below").check()
    checkboxes = page.locator("input[type=checkbox][name=authorized_keys]")
    expect(checkboxes).to_have_count(2)
    # Found through each key's own label: the group's label wraps them all (see
    # test_authorize_checkboxes_are_labelled_by_their_key_only).
    chosen, other = key_checkbox(watched_page, CHOSEN_KEY), key_checkbox(watched_page, OTHER_KEY)
    chosen.check()
    expect(chosen).to_be_checked()
    expect(other).not_to_be_checked()
    watched_page.assert_styled()
    watched_page.assert_clean()
    page.get_by_role("button", name="Save").click()

    watched_page.expect_path(detail_path)
    expect(page.get_by_role("status")).to_have_text(f"Saved who may use “{made.common_name}”.")
    authorized = facts_row(watched_page, "Authorized API keys")
    expect(authorized).to_have_text(CHOSEN_KEY)
    expect(authorized).not_to_contain_text(OTHER_KEY)
    page.screenshot(path=SCREENSHOT, full_page=True)
    watched_page.assert_clean()

    # The authorization page remembers the choice.
    page.goto(running_service.url + f"/identities/{pk}/authorize/")
    expect(page.get_by_label("Only the API keys chosen below")).to_be_checked()
    expect(chosen).to_be_checked()
    expect(other).not_to_be_checked()

    # Test sign: the service verifies the signature, and so does this test.
    page.goto(running_service.url + detail_path)
    page.get_by_role("link", name="Sign", exact=True).click()
    watched_page.expect_path(f"/identities/{pk}/sign/")
    page.get_by_label("Text to sign").fill(TEXT_TO_SIGN)
    page.get_by_label("Algorithm").select_option(ALGORITHM.value)
    page.get_by_role("button", name="Sign", exact=True).click()
    watched_page.expect_path(f"/identities/{pk}/sign/")
    result = page.locator("#sign-result")
    expect(result).to_contain_text("Verified with the certificate's public key")
    expect(result).to_contain_text(ALGORITHM.value)
    # Chromium sends a textarea's line breaks as CRLF, as HTML says it must. (The service also
    # strips leading and trailing white space; this text has none.)
    sent = TEXT_TO_SIGN.replace("\n", "\r\n").encode()
    digest = hashlib.sha256(sent).digest()
    expect(result.locator("code.fingerprint")).to_have_text(digest.hex())
    signature = base64.b64decode(page.locator("#signature").inner_text())
    assert verify_digest(made.certificate.public_key(), ALGORITHM, digest, signature)
    watched_page.assert_styled()
    watched_page.assert_clean()

    # The identity switched off and on again on the list page.
    page.goto(running_service.url + "/identities/")
    identity_row = row_of(watched_page, made.common_name)
    expect(identity_row).to_contain_text(made.sha1.upper())
    expect(identity_row).to_contain_text("1 API key")
    flip_switch(
        watched_page,
        lambda: row_of(watched_page, made.common_name),
        "/identities/",
        active_now=True,
        message=f"Identity “{made.common_name}” is inactive.",
        confirm="It signed once in the last 24 hours",  # the test sign above
    )
    assert identity_state(running_service, made) == "inactive"
    page.goto(running_service.url + detail_path)
    expect_switch(page.locator("table.facts"), active=False)
    page.goto(running_service.url + "/identities/")
    flip_switch(
        watched_page,
        lambda: row_of(watched_page, made.common_name),
        "/identities/",
        active_now=False,
        message=f"Identity “{made.common_name}” is active.",
    )
    assert identity_state(running_service, made) == "active"
    watched_page.assert_clean()

    # An API key switched off on the API Keys page; the other stays on.
    page.goto(running_service.url + "/api-keys/")
    flip_switch(
        watched_page,
        lambda: row_of(watched_page, CHOSEN_KEY),
        "/api-keys/",
        active_now=True,
        message=re.compile(rf"API key “{CHOSEN_KEY} \(smk_[0-9a-f]{{10}}_…\)” is inactive\."),
    )
    expect_switch(row_of(watched_page, OTHER_KEY), active=True)
    watched_page.assert_styled()
    watched_page.assert_clean()


def test_non_admin_sees_and_switches_the_identity_only(
    running_service, watched_page, create_user, identity, tmp_path
):
    made = manage_import(running_service, identity, tmp_path)
    page = watched_page.page
    create_user("bob", BOB_FIRST_PASSWORD)
    watched_page.first_sign_in("bob", BOB_FIRST_PASSWORD, BOB_PASSWORD)
    expect(page.locator("header .who")).to_have_text("bob")

    page.get_by_role("link", name="Signing Certificates").click()
    watched_page.expect_path("/identities/")
    expect(row_of(watched_page, made.common_name)).to_contain_text(made.sha1.upper())
    expect(page.get_by_role("link", name="Import Signing Certificate")).to_have_count(0)
    watched_page.assert_styled()
    watched_page.assert_clean()

    page.get_by_role("link", name=made.common_name).click()
    pk = identity_pk(watched_page)
    detail_path = f"/identities/{pk}/"
    expect(page.get_by_role("heading", level=1)).to_have_text(made.common_name)
    expect(page.locator("#sha1")).to_have_text(made.sha1.upper())
    expect(page.get_by_role("link", name="Back", exact=True)).to_be_visible()
    for name in ADMIN_ONLY_LINKS:
        expect(page.get_by_role("link", name=name, exact=True)).to_have_count(0)
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
    watched_page.assert_styled()
    watched_page.assert_clean()

    # Bob may switch the identity, here and on the list page.
    flip_switch(
        watched_page,
        lambda: page.locator("table.facts"),
        detail_path,
        active_now=True,
        message=f"Identity “{made.common_name}” is inactive.",
    )
    assert identity_state(running_service, made) == "inactive"
    page.goto(running_service.url + "/identities/")
    flip_switch(
        watched_page,
        lambda: row_of(watched_page, made.common_name),
        "/identities/",
        active_now=False,
        message=f"Identity “{made.common_name}” is active.",
    )
    assert identity_state(running_service, made) == "active"
    watched_page.assert_clean()

    # No key creation for him either.
    page.get_by_role("link", name="API Keys").click()
    watched_page.expect_path("/api-keys/")
    expect(page.get_by_role("link", name="Create API key")).to_have_count(0)
    expect(page.get_by_role("link", name="All clients")).to_be_visible()

    # The admin pages themselves refuse him. Chromium logs each 403 document as a console error.
    admin_pages = (
        *(f"/identities/{pk}/{action}/" for action in ("sign", "authorize", "edit", "delete")),
        "/identities/import/",
        "/api-keys/new/",
    )
    forbidden = tuple(
        f"status of 403 (Forbidden) (source {running_service.url}{path}," for path in admin_pages
    )
    for path in admin_pages:
        response = page.goto(running_service.url + path)
        assert response is not None
        assert response.status == 403, path
        expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    watched_page.assert_clean(allowed_console_errors=forbidden)


# The centre of the form's text node reading ``caption``, wherever the template puts it.
CAPTION_CENTRE = """(caption) => {
  const form = document.querySelector("main form");
  const walker = document.createTreeWalker(form, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    if (walker.currentNode.textContent.trim() === caption) {
      const range = document.createRange();
      range.selectNodeContents(walker.currentNode);
      const box = range.getBoundingClientRect();
      return {x: box.x + box.width / 2, y: box.y + box.height / 2};
    }
  }
  return null;
}"""


def test_authorize_checkboxes_are_labelled_by_their_key_only(
    running_service, watched_page, create_user, identity, tmp_path
):
    made = manage_import(running_service, identity, tmp_path)
    for name in KEY_NAMES:
        created = running_service.manage("apikey", "create", name)
        assert created.returncode == 0, created.stdout + created.stderr
    create_user("alice", ALICE_FIRST_PASSWORD, admin=True)
    watched_page.first_sign_in("alice", ALICE_FIRST_PASSWORD, ALICE_PASSWORD)
    page = watched_page.page
    page.goto(running_service.url + "/identities/")
    page.get_by_role("link", name=made.common_name).click()
    pk = identity_pk(watched_page)
    page.get_by_role("link", name="Authorize", exact=True).click()
    watched_page.expect_path(f"/identities/{pk}/authorize/")
    page.get_by_label("Only the API keys chosen below").check()
    boxes = [key_checkbox(watched_page, name) for name in KEY_NAMES]
    for box in boxes:
        expect(box).not_to_be_checked()
    watched_page.assert_clean()

    # A click on the field's caption, as on any heading, chooses no key.
    centre = page.evaluate(CAPTION_CENTRE, "Authorized API keys")
    assert centre is not None, "no caption 'Authorized API keys' on the page"
    page.mouse.click(centre["x"], centre["y"])
    for box in boxes:
        expect(box).not_to_be_checked()

    # Each checkbox is named by its key alone (what a screen reader says; what
    # get_by_label finds), and no label is nested in another (invalid HTML).
    for name in KEY_NAMES:
        expect(page.get_by_role("checkbox", name=key_label(name))).to_have_count(1)
    expect(page.locator("label label")).to_have_count(0)
    watched_page.assert_clean()
