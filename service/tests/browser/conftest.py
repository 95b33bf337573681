"""Real-browser fixtures: Debian's Chromium, headless, talking HTTPS to a running service.

The service presents a self-signed certificate. Rather than switching certificate checks off
(``ignore_https_errors``), Chromium is told to accept exactly this service's key: the
``--ignore-certificate-errors-spki-list`` flag carries the base64 SHA-256 of the certificate's
SubjectPublicKeyInfo, so any other untrusted certificate is still refused
(``test_browser_harness.py`` checks that).

Every page is watched: Content-Security-Policy violations (from Chromium's console messages, and
from a ``securitypolicyviolation`` listener that writes them to the console too), console errors,
uncaught script errors, and static files (``/static/...``) that do not load.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    Response,
    expect,
    sync_playwright,
)

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 20_000  # for actions and for expect(): a loaded machine hashes argon2 slowly
CSP_MARKER = "content security policy"
STATIC_PREFIX = "/static/"
# Chromium's console errors when a <link rel=stylesheet> or <script src> gets something else
# than CSS or JavaScript, e.g. an HTML page it was redirected to.
WRONG_ASSET_TYPE = ("Refused to apply style from", "Refused to execute script from")
# The service has no favicon; the 404 of Chromium's own request for it is not a page's fault.
FAVICON = "/favicon.ico"
TRANSPARENT = "rgba(0, 0, 0, 0)"
ASSET_OK = {200, 304}  # 304: revalidated from the browser cache

# Reports each CSP violation on the console, where the console listener below picks it up.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(
    "Content Security Policy violation (event): " + event.violatedDirective +
    " blocked " + (event.blockedURI || "inline") + " on " + document.location.href
  );
});
"""


def spki_sha256_base64(public_key: PublicKeyTypes) -> str:
    """What Chromium's ``--ignore-certificate-errors-spki-list`` expects for a public key."""
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def spki_pin(cert_path: Path) -> str:
    """The pin of the certificate in a PEM file."""
    return spki_sha256_base64(x509.load_pem_x509_certificate(cert_path.read_bytes()).public_key())


def chromium_args(pin: str) -> list[str]:
    return [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--ignore-certificate-errors-spki-list={pin}",
    ]


@dataclass
class WatchedPage:
    """A page plus what went wrong on it so far.

    ``asset_failures`` lists static files that did not load (status, URL). Console errors about
    static files are kept apart in ``asset_console_errors``: they are the browser's echo of those
    failures, and ``assert_clean`` lets them pass only while such failures explain them.
    """

    page: Page
    base_url: str
    csp_violations: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    asset_console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    asset_failures: list[str] = field(default_factory=list)

    def watch(self) -> WatchedPage:
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        self.page.on("response", self._on_response)
        self.page.on("requestfailed", self._on_request_failed)
        return self

    def _on_console(self, message: ConsoleMessage) -> None:
        source = message.location.get("url", "")
        where = f"{message.text} (source {source or '?'}, page {self.page.url})"
        if CSP_MARKER in message.text.lower():
            self.csp_violations.append(where)
        elif message.type == "error" and source != self.base_url + FAVICON:
            about_assets = (
                STATIC_PREFIX in message.text
                or STATIC_PREFIX in source
                or message.text.startswith(WRONG_ASSET_TYPE)
            )
            (self.asset_console_errors if about_assets else self.console_errors).append(where)

    def _is_asset(self, url: str) -> bool:
        return url.startswith(self.base_url + STATIC_PREFIX)

    def _on_response(self, response: Response) -> None:
        if self._is_asset(response.url) and response.status not in ASSET_OK:
            self.asset_failures.append(f"{response.status} {response.url}")

    def _on_request_failed(self, request: Request) -> None:
        if self._is_asset(request.url):
            self.asset_failures.append(f"{request.failure} {request.url}")

    def assert_clean(self, *, allowed_console_errors: tuple[str, ...] = ()) -> None:
        """No CSP violation, no uncaught script error, no unexpected console error so far."""
        problems = {
            "Content-Security-Policy violations": self.csp_violations,
            "uncaught script errors": self.page_errors,
            "console errors": [
                error
                for error in self.console_errors
                if not any(allowed in error for allowed in allowed_console_errors)
            ],
            "static files that did not load": self.asset_failures,
            "console errors about static files": self.asset_console_errors,
        }
        report = "\n".join(
            f"{kind}:\n  " + "\n  ".join(items) for kind, items in problems.items() if items
        )
        assert not report, report

    def expect_path(self, path: str) -> None:
        """The page is at ``path`` of the service, with any query string."""
        expect(self.page).to_have_url(re.compile(re.escape(self.base_url + path) + r"(\?.*)?$"))

    def assert_styled(self) -> None:
        """app.css loaded and applied: the top bar has a background of its own (unstyled, a
        header is transparent)."""
        topbar = self.page.locator("header.topbar")
        expect(topbar).to_be_visible()
        expect(topbar).not_to_have_css("background-color", TRANSPARENT)

    # The first-login steps, for tests that need them done rather than examined in detail.

    def sign_in(self, username: str, password: str) -> None:
        self.expect_path("/accounts/login/")
        self.page.locator("input[name=username]").fill(username)
        self.page.locator("input[name=password]").fill(password)
        self.page.get_by_role("button", name="Sign in").click()

    def change_password(self, old: str, new: str) -> None:
        self.expect_path("/accounts/password/")
        self.page.locator("input[name=old_password]").fill(old)
        self.page.locator("input[name=new_password1]").fill(new)
        self.page.locator("input[name=new_password2]").fill(new)
        self.page.get_by_role("button", name="Change password").click()

    def accept_agreement(self) -> None:
        self.expect_path("/accounts/agreement/")
        self.page.get_by_role("button", name="Accept", exact=True).click()
        self.expect_path("/")

    def first_sign_in(self, username: str, first_password: str, new_password: str) -> None:
        """A new user's first sign-in from the login page: sign in, replace the password given
        at creation, accept the agreement; it ends on the main page."""
        self.page.goto(self.base_url + "/")
        self.sign_in(username, first_password)
        self.change_password(first_password, new_password)
        self.accept_agreement()


expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture
def chromium_launcher() -> Iterator[Callable[[str], Browser]]:
    """Launch headless Chromium trusting the given SPKI pin; every browser is closed after."""
    with sync_playwright() as playwright:
        browsers: list[Browser] = []

        def launch(pin: str) -> Browser:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=chromium_args(pin)
            )
            browsers.append(browser)
            return browser

        yield launch
        for browser in browsers:
            browser.close()


@pytest.fixture
def spki_pin_of() -> Callable[[PublicKeyTypes], str]:
    """The function computing a public key's pin, for tests that need a pin of their own."""
    return spki_sha256_base64


@pytest.fixture
def browser(chromium_launcher, running_service) -> Browser:
    """Chromium that trusts exactly the running service's certificate."""
    return chromium_launcher(spki_pin(running_service.cert_path))


@pytest.fixture
def new_page(browser, running_service) -> Iterator[Callable[[], WatchedPage]]:
    """A function opening a watched page in a new browser context (its own cookie jar)."""
    contexts: list[BrowserContext] = []

    def open_page() -> WatchedPage:
        context = browser.new_context(base_url=running_service.url)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=running_service.url)
        context.set_default_timeout(TIMEOUT_MS)
        context.add_init_script(REPORT_CSP_VIOLATIONS)
        contexts.append(context)
        return WatchedPage(context.new_page(), running_service.url).watch()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def watched_page(new_page) -> WatchedPage:
    return new_page()


@pytest.fixture
def create_user(running_service, tmp_path) -> Callable[..., None]:
    """A function adding a user with ``signing-service user create`` on the running service.

    Like every user created that way, the user must change the password at the first sign-in
    (``WatchedPage.first_sign_in``).
    """

    def create(username: str, password: str, *, admin: bool = False) -> None:
        password_file = tmp_path / f"{username}-password"
        password_file.write_text(password + "\n", encoding="utf-8")
        options = ("--admin",) if admin else ()
        created = running_service.manage(
            "user", "create", username, *options, "--password-file", str(password_file)
        )
        assert created.returncode == 0, created.stdout + created.stderr

    return create
