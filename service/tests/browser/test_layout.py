"""Every page an admin reaches fits a phone (390 px) and a laptop (1280 px), long names and all.

The service is filled with the longest names people give: an identity whose common name is 120
characters without a space, an API key named with 100, a client host name of 200, a user name of
150, audit records with 500-character messages. On each page, at each width, the document must be
no wider than the window (tables scroll inside their own box instead). A screenshot of each page
at each width is saved for a person to look at: under ``$SIGNING_TEST_SCREENSHOTS`` when it is
set, else under ``/tmp/browser-layout/`` (as the other browser tests use ``/tmp``).
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from playwright.sync_api import expect

from signing_service.test import make_identity, make_intermediate_ca

ADMIN_FIRST_PASSWORD = "Amber-falcon-ledger-3318"
ADMIN_PASSWORD = "Granite-orchid-beacon-7462"
USER_PASSWORD = "Velvet-harbour-mosaic-2207"
# A certificate's common name has at most 64 characters (RFC 5280, and cryptography checks); the
# service stores up to 255, so the imported identity's stored name is lengthened to 120 after.
CERTIFICATE_COMMON_NAME = "Developer-ID-Application:" + "X" * 39  # 64 characters, no space
LONG_COMMON_NAME = CERTIFICATE_COMMON_NAME + "Y" * 56  # 120
LONG_CA_NAME = "Intermediate-CA-" + "C" * 48  # 64
LONG_KEY_NAME = "release-" + "k" * 92  # 100, the longest a key name may be
LONG_HOSTNAME = "build-" + "h" * 194  # 200
LONG_USERNAME = "u" * 150  # the longest Django allows
LONG_MESSAGE = "m" * 500  # the longest an audit record keeps
WIDTHS = {"phone": (390, 844), "laptop": (1280, 800)}
SCREENSHOTS = Path(os.environ.get("SIGNING_TEST_SCREENSHOTS", "/tmp/browser-layout"))

# Audit records as the service writes them, at their longest; the shell is quicker than making
# the API fail that way 30 times (and a page of them shows the densest table).
LENGTHEN_AND_AUDIT = f"""
from signing_service.audit.models import AuditEvent
from signing_service.identities.models import Identity
Identity.objects.update(common_name={LONG_COMMON_NAME!r})
AuditEvent.objects.bulk_create(
    AuditEvent(
        request_type="sign", status="failure", reason="identity_inactive",
        message={LONG_MESSAGE!r}, api_key_name={LONG_KEY_NAME!r},
        client_hostname={LONG_HOSTNAME!r}, identity_common_name={LONG_COMMON_NAME!r},
        algorithm="rsa-pss-sha256", digest="ab" * 32, address="2001:db8::1",
    )
    for _ in range(30)
)
"""

pytestmark = pytest.mark.browser


def fill_with_long_names(service, tmp_path) -> None:
    made = make_identity(CERTIFICATE_COMMON_NAME)
    assert service.import_identity(made, tmp_path / "identity").returncode == 0
    ca = tmp_path / "ca.pem"
    ca.write_bytes(make_intermediate_ca(LONG_CA_NAME, index=96)[0].public_bytes(Encoding.PEM))
    imported = service.manage("ca", "import", str(ca))
    assert imported.returncode == 0, imported.stdout + imported.stderr

    created = service.manage("apikey", "create", LONG_KEY_NAME)
    assert created.returncode == 0, created.stdout + created.stderr
    secret = created.stdout.strip()
    with httpx.Client(base_url=service.url + "/api/v1", verify=service.ssl_context()) as api:
        registered = api.post(
            "/clients",
            headers={"Authorization": f"Bearer {secret}"},
            json={"hostname": LONG_HOSTNAME, "machine_id": "m-1", "os": "macOS 15.1"},
        )
        assert registered.status_code == 201, registered.text
    changed = service.manage("shell", "-c", LENGTHEN_AND_AUDIT)
    assert changed.returncode == 0, changed.stdout + changed.stderr


def link_target(page, selector: str) -> str:
    href = page.locator(selector).first.get_attribute("href")
    assert href, selector
    return href


def overflow(page) -> str | None:
    """How far the document is wider than the window, if it is."""
    width, window = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    return f"{width} px wide in a {window} px window" if width > window else None


def check_pages(watched, pages: dict[str, str], problems: list[str]) -> None:
    """Open each page at each width: note any overflow, save a screenshot."""
    page = watched.page
    for width_name, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        for name, path in pages.items():
            page.goto(watched.base_url + path)
            watched.assert_styled()
            if (wider := overflow(page)) is not None:
                problems.append(f"{name} ({path}) at {width} px: {wider}")
            page.screenshot(path=SCREENSHOTS / f"{name}-{width_name}.png", full_page=True)


def test_every_page_fits_a_phone_and_a_laptop_with_long_names(
    running_service, new_page, create_user, tmp_path
):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    fill_with_long_names(running_service, tmp_path)
    create_user("alice", ADMIN_FIRST_PASSWORD, admin=True)
    create_user(LONG_USERNAME, USER_PASSWORD)
    watched = new_page()
    watched.first_sign_in("alice", ADMIN_FIRST_PASSWORD, ADMIN_PASSWORD)
    page = watched.page

    page.goto(running_service.url + "/identities/")
    identity = link_target(page, "table.list tbody a")
    page.goto(running_service.url + "/api-keys/")
    key_clients = link_target(page, "table.list a[href$='/clients/']")
    page.goto(running_service.url + "/accounts/users/")
    user = link_target(page, f"table.list tr:has-text('{LONG_USERNAME}') a:text-is('Edit')")
    pages = {
        "main": "/",
        "identities": "/identities/",
        "identity": identity,
        "identity-authorize": identity + "authorize/",
        "identity-sign": identity + "sign/",
        "identity-edit": identity + "edit/",
        "identity-import": "/identities/import/",
        "authorities": "/certificate-authorities/",
        "api-keys": "/api-keys/",
        "api-key-create": "/api-keys/new/",
        "key-clients": key_clients,
        "clients": "/api-keys/clients/",
        "audit": "/audit/",
        # The summary line names the key with its long name.
        "audit-filtered": f"/audit/?status=success&api_key={key_clients.split('/')[2]}",
        "settings": "/settings/",
        "users": "/accounts/users/",
        "user-add": "/accounts/users/add/",
        "user-edit": user,
        "password": "/accounts/password/",
    }
    problems: list[str] = []
    check_pages(watched, pages, problems)
    watched.assert_clean()

    signed_out = new_page()
    check_pages(signed_out, {"login": "/accounts/login/"}, problems)
    signed_out.assert_clean()
    print(f"Screenshots in {SCREENSHOTS}")
    assert not problems, "\n".join(problems)


def test_the_menu_folds_away_on_a_phone(running_service, watched_page, create_user):
    create_user("alice", ADMIN_FIRST_PASSWORD, admin=True)
    watched_page.first_sign_in("alice", ADMIN_FIRST_PASSWORD, ADMIN_PASSWORD)
    page = watched_page.page
    menu_button = page.locator("header .menu summary")
    audit = page.locator("header nav").get_by_role("link", name="Audit")

    # A laptop: every link in one row, no Menu button.
    expect(audit).to_be_visible()
    expect(menu_button).to_be_hidden()

    # A phone: only the Menu button, which opens the links under the bar.
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(menu_button).to_be_visible()
    expect(audit).to_be_hidden()
    menu_button.click()
    expect(audit).to_be_visible()
    assert overflow(page) is None
    audit.click()
    watched_page.expect_path("/audit/")
    expect(audit).to_be_hidden()  # each page starts with the menu folded
    menu_button.click()
    expect(audit).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    watched_page.assert_clean()
