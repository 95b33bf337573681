"""The first sign-in, in a real browser: password change, user agreement, main page.

Each test starts its own service (fresh data directory and database) and its own Chromium,
which trusts only that service's self-signed certificate (see conftest.py).
"""

from __future__ import annotations

import re
from importlib import metadata

import pytest
from playwright.sync_api import expect

DEFAULT_PASSWORD = "change_password"
ADMIN_PASSWORD = "Quartz-lantern-river-8841"
BOB_FIRST_PASSWORD = "Velvet-harbour-mosaic-2207"
BOB_PASSWORD = "Copper-meadow-signal-5930"
SCREENSHOT = "/tmp/browser-main.png"
# The wheel a new service packs from the Signing Manager it runs with, and offers.
CLIENT_WHEEL = f"signing_manager-{metadata.version('signing-manager')}-py3-none-any.whl"


pytestmark = pytest.mark.browser


def nav_link_names(watched) -> list[str]:
    return watched.page.locator("header.topbar nav a").all_inner_texts()


def test_first_login_of_the_default_admin(running_service, watched_page):
    page = watched_page.page

    # Nothing is reachable before signing in: the main page sends us to the login page.
    response = page.goto(running_service.url)
    assert response is not None
    assert response.ok
    watched_page.expect_path("/accounts/login/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    watched_page.assert_styled()
    watched_page.assert_clean()

    watched_page.sign_in("admin", DEFAULT_PASSWORD)

    # The default password must be replaced before anything else...
    watched_page.expect_path("/accounts/password/")
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    watched_page.assert_styled()
    watched_page.assert_clean()

    # ...and not by itself: the form says why.
    watched_page.change_password(DEFAULT_PASSWORD, DEFAULT_PASSWORD)
    watched_page.expect_path("/accounts/password/")
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    field_errors = page.locator(".field.invalid .errors")
    expect(field_errors.filter(has_text="default password")).to_have_count(1)
    watched_page.assert_clean()

    watched_page.change_password(DEFAULT_PASSWORD, ADMIN_PASSWORD)

    # Then the user agreement, before the main page.
    watched_page.expect_path("/accounts/agreement/")
    expect(page.get_by_role("heading", name="User Agreement")).to_be_visible()
    expect(page.get_by_role("button", name="Decline and sign out")).to_be_visible()
    accept = page.get_by_role("button", name="Accept", exact=True)
    expect(accept).to_be_visible()
    watched_page.assert_styled()
    watched_page.assert_clean()
    accept.click()

    # The main page.
    watched_page.expect_path("/")
    expect(page.get_by_role("heading", name="Signing Service", exact=True)).to_be_visible()
    expect(page.locator("#service-url")).to_have_value(running_service.url)
    expect(page.get_by_role("link", name="API Keys").first).to_be_visible()
    download = page.get_by_role("link", name="Download Signing Manager")
    expect(download).to_be_visible()
    expect(download).to_have_attribute("href", f"/client/{CLIENT_WHEEL}")
    # The commands read in the browser as they are to be pasted (quotes and all).
    expect(page.locator("#install-command")).to_have_value(
        f"curl --cacert signing-service.pem --remote-name {running_service.url}/client/"
        f"{CLIENT_WHEEL} && pipx install ./{CLIENT_WHEEL}"
    )
    expect(page.locator("#configure-command")).to_have_value(
        f"signing-manager -s -i {running_service.url} -a YOUR_API_KEY -u"
    )
    expect(page.locator("header .who")).to_have_text("admin (admin)")
    assert {"Users", "Audit"} <= set(nav_link_names(watched_page))
    watched_page.assert_styled()

    # Located by what it copies: its accessible name changes to "Copied" for a moment.
    copy = page.locator("button[data-copy=service-url]")
    expect(copy).to_have_text("Copy")
    copy.click()
    expect(copy).to_have_text("Copied")  # app.js does the copying
    assert page.evaluate("navigator.clipboard.readText()") == running_service.url
    expect(copy).to_have_text("Copy")  # the label comes back after a moment

    page.screenshot(path=SCREENSHOT, full_page=True)
    watched_page.assert_clean()


def test_non_admin_sees_no_admin_pages(running_service, watched_page, tmp_path):
    password_file = tmp_path / "bob-password"
    password_file.write_text(BOB_FIRST_PASSWORD + "\n", encoding="utf-8")
    created = running_service.manage("user", "create", "bob", "--password-file", str(password_file))
    assert created.returncode == 0, created.stdout + created.stderr
    page = watched_page.page

    page.goto(running_service.url)
    watched_page.sign_in("bob", BOB_FIRST_PASSWORD)
    watched_page.expect_path("/accounts/password/")
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    watched_page.change_password(BOB_FIRST_PASSWORD, BOB_PASSWORD)
    watched_page.accept_agreement()

    expect(page.get_by_role("heading", name="Signing Service", exact=True)).to_be_visible()
    expect(page.locator("header .who")).to_have_text("bob")
    names = nav_link_names(watched_page)
    assert "API Keys" in names
    assert "Users" not in names
    assert "Audit" not in names
    expect(page.get_by_role("link", name=re.compile(r"^(Users|Audit)$"))).to_have_count(0)
    watched_page.assert_styled()
    watched_page.assert_clean()

    admin_pages = ("/accounts/users/", "/audit/")
    # Chromium logs the 403 of each such document as a console error; those are expected.
    forbidden = tuple(
        f"status of 403 (Forbidden) (source {running_service.url}{path}," for path in admin_pages
    )
    for path in admin_pages:
        response = page.goto(running_service.url + path)
        assert response is not None
        assert response.status == 403
        watched_page.expect_path(path)
        expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
        watched_page.assert_styled()
        watched_page.assert_clean(allowed_console_errors=forbidden)

    watched_page.assert_clean(allowed_console_errors=forbidden)
