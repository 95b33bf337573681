"""Fixtures for the end-to-end tests: browser stand-ins that talk to a running Signing Service.

The fixtures that start the service (``start_service``, ``running_service``) come from the
project's top-level ``conftest.py``; this file adds what talking to it over HTTPS takes. Every
client verifies the service's certificate with ``service.ssl_context()``, never anything weaker.

Test files cannot import from each other (``--import-mode=importlib``), so the helpers reach
them as fixtures and as methods of ``WebUser``.
"""

from __future__ import annotations

import html
import re
import secrets

import httpx
import pytest

CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class WebUser:
    """A browser stand-in: keeps cookies, sends the form's CSRF token and an Origin with POSTs."""

    DEFAULT_USERNAME = "admin"
    DEFAULT_PASSWORD = "change_password"
    LOGIN_PATH = "/accounts/login/"
    LOGOUT_PATH = "/accounts/logout/"
    PASSWORD_PATH = "/accounts/password/"
    AGREEMENT_PATH = "/accounts/agreement/"

    def __init__(self, service):
        self.service = service
        self.client = httpx.Client(
            base_url=service.url,
            verify=service.ssl_context(),
            follow_redirects=False,
            timeout=30,
        )

    def close(self) -> None:
        self.client.close()

    # Requests.

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def csrf_token(self, path: str) -> str:
        """The CSRF token of the form on the page at ``path``, as a browser would have it."""
        page = self.get(path)
        assert page.status_code == 200, f"GET {path} gave {page.status_code}"
        match = CSRF_FIELD.search(page.text)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def post_form(
        self,
        path: str,
        data: dict[str, str],
        *,
        token_from: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Load the form's page for its CSRF token, then submit the form as a browser would."""
        token = self.csrf_token(token_from or path)
        sent_headers = {"Origin": self.service.url, "Referer": self.service.url + path}
        sent_headers.update(headers or {})
        return self.client.post(
            path, data={"csrfmiddlewaretoken": token, **data}, headers=sent_headers
        )

    # The steps of the web interface.

    def login(self, username: str, password: str, **kwargs) -> httpx.Response:
        return self.post_form(
            self.LOGIN_PATH, {"username": username, "password": password}, **kwargs
        )

    def change_password(self, old: str, new: str, again: str | None = None) -> httpx.Response:
        return self.post_form(
            self.PASSWORD_PATH,
            {"old_password": old, "new_password1": new, "new_password2": again or new},
        )

    def accept_agreement(self) -> httpx.Response:
        return self.post_form(self.AGREEMENT_PATH, {"accept": "1"})

    def decline_agreement(self) -> httpx.Response:
        return self.post_form(self.AGREEMENT_PATH, {"decline": "1"})

    def logout(self, token_from: str = "/") -> httpx.Response:
        """Press "Sign out" on the page at ``token_from`` (every signed-in page has the form)."""
        return self.post_form(self.LOGOUT_PATH, {}, token_from=token_from)

    def set_up_account(self, username: str, password: str, new_password: str) -> None:
        """Sign in for the first time, replace the password and accept the agreement."""
        response = self.login(username, password)
        assert response.status_code == 302, self.page_text(response)
        assert self.redirect_path(self.get("/")) == self.PASSWORD_PATH
        response = self.change_password(password, new_password)
        assert response.status_code == 302, self.page_text(response)
        assert self.redirect_path(self.get("/")) == self.AGREEMENT_PATH
        response = self.accept_agreement()
        assert response.status_code == 302, self.page_text(response)
        assert self.get("/").status_code == 200

    # Reading responses.

    @staticmethod
    def redirect_path(response: httpx.Response) -> str | None:
        """Where a redirect points to (path and query), or None if the response is no redirect."""
        if response.status_code not in {301, 302, 303, 307, 308}:
            return None
        location = httpx.URL(response.headers["location"])
        return location.raw_path.decode()

    @staticmethod
    def page_text(response: httpx.Response) -> str:
        """The page with HTML entities decoded, to look for messages in."""
        return html.unescape(response.text)

    @staticmethod
    def set_cookie_headers(response: httpx.Response) -> dict[str, str]:
        """The response's Set-Cookie headers by cookie name."""
        return {
            header.split("=", 1)[0].strip(): header
            for header in response.headers.get_list("set-cookie")
        }

    @staticmethod
    def cookie_attributes(header: str) -> dict[str, str]:
        """The attributes of one Set-Cookie header, names lower-cased; flags map to ""."""
        attributes = {}
        for part in header.split(";")[1:]:
            name, _, value = part.strip().partition("=")
            attributes[name.lower()] = value
        return attributes


@pytest.fixture
def new_web_user():
    """A function making browser stand-ins for a running service; all closed after the test."""
    users: list[WebUser] = []

    def make(service) -> WebUser:
        user = WebUser(service)
        users.append(user)
        return user

    yield make
    for user in users:
        user.close()


@pytest.fixture
def web_user(running_service, new_web_user) -> WebUser:
    """A browser stand-in for the test's running service."""
    return new_web_user(running_service)


@pytest.fixture
def new_password():
    """A function returning a fresh password that every password rule accepts."""
    return lambda: f"e2e-{secrets.token_urlsafe(16)}"
