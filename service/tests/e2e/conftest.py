"""Fixtures for the end-to-end tests: browser stand-ins that talk to a running Signing Service.

The fixtures that start the service (``start_service``, ``running_service``) come from the
project's top-level ``conftest.py``; this file adds what talking to it over HTTPS takes. Every
client verifies the service's certificate with ``service.ssl_context()``, never anything weaker.

Test files cannot import from each other (``--import-mode=importlib``), so the helpers reach
them as fixtures and as methods of ``WebUser``.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import re
import secrets
from concurrent.futures import ThreadPoolExecutor

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
        files: dict | None = None,
    ) -> httpx.Response:
        """Load the form's page for its CSRF token, then submit the form as a browser would.

        ``files`` (field name to ``(filename, bytes, content type)``) sends the form as
        multipart/form-data, as a browser does for a form with a file input.
        """
        token = self.csrf_token(token_from or path)
        sent_headers = {"Origin": self.service.url, "Referer": self.service.url + path}
        sent_headers.update(headers or {})
        return self.client.post(
            path,
            data={"csrfmiddlewaretoken": token, **data},
            files=files or None,
            headers=sent_headers,
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

    # Signing certificates (admins only).

    IDENTITIES_PATH = "/identities/"
    IMPORT_PATH = "/identities/import/"

    def import_identity(
        self, p12: bytes, password: str, filename: str = "identity.p12"
    ) -> httpx.Response:
        """Submit the Import Signing Certificate form with a .p12 file and its password."""
        return self.post_form(
            self.IMPORT_PATH,
            {"password": password},
            files={"p12_file": (filename, p12, "application/x-pkcs12")},
        )

    def identity_pk(self, common_name: str) -> int:
        """The id of the identity with this common name, from the Signing Certificates page."""
        page = self.get(self.IDENTITIES_PATH)
        assert page.status_code == 200, f"GET {self.IDENTITIES_PATH} gave {page.status_code}"
        links = {
            html.unescape(name): int(pk)
            for pk, name in re.findall(r'<a href="/identities/(\d+)/">([^<]*)</a>', page.text)
        }
        assert common_name in links, f"{common_name!r} not among {sorted(links)}"
        return links[common_name]

    def sign_on_web(self, pk: int, text: str, algorithm: str) -> httpx.Response:
        """Sign ``text`` on the identity's Test sign page (audited as a web sign request)."""
        return self.post_form(f"/identities/{pk}/sign/", {"text": text, "algorithm": algorithm})

    # API keys, clients and their switches (admins and non-admins alike may toggle).

    API_KEYS_PATH = "/api-keys/"
    CLIENTS_PATH = "/api-keys/clients/"

    def api_key_pk(self, name: str) -> int:
        """The id of the API key with this name, as the API Keys list links its clients."""
        page = self.get(self.API_KEYS_PATH)
        assert page.status_code == 200, f"GET {self.API_KEYS_PATH} gave {page.status_code}"
        rows = re.findall(
            r"<td>([^<]*)</td>\s*<td><code>[^<]*</code></td>\s*"
            r'<td><a href="/api-keys/(\d+)/clients/">',
            page.text,
        )
        keys = {html.unescape(key_name): int(pk) for key_name, pk in rows}
        assert name in keys, f"{name!r} not among {sorted(keys)}"
        return keys[name]

    def toggle_active(self, action: str, token_from: str) -> httpx.Response:
        """Press the on/off switch whose form posts to ``action`` on ``token_from``; where the
        service asks to confirm a deactivation (a key with clients, an identity used today),
        confirm it."""
        response = self.post_form(action, {"next": token_from}, token_from=token_from)
        if response.status_code == 200 and 'name="confirmed"' in response.text:
            confirmed = {"next": token_from, "confirmed": "1"}
            response = self.post_form(action, confirmed, token_from=token_from)
        assert response.status_code == 302, f"POST {action} gave {response.status_code}"
        return response

    def toggle_api_key(self, pk: int) -> httpx.Response:
        return self.toggle_active(f"{self.API_KEYS_PATH}{pk}/toggle/", self.API_KEYS_PATH)

    def toggle_client(self, pk: int) -> httpx.Response:
        return self.toggle_active(f"{self.CLIENTS_PATH}{pk}/toggle/", self.CLIENTS_PATH)

    def toggle_identity(self, pk: int) -> httpx.Response:
        return self.toggle_active(f"{self.IDENTITIES_PATH}{pk}/toggle/", self.IDENTITIES_PATH)

    def authorize_only(self, identity_pk: int, api_key_pks: list[int]) -> httpx.Response:
        """Let only the chosen API keys use the identity (the Authorize form)."""
        path = f"{self.IDENTITIES_PATH}{identity_pk}/authorize/"
        response = self.client.post(
            path,
            data={
                "csrfmiddlewaretoken": self.csrf_token(path),
                "authorize_all_keys": "False",
                "authorized_keys": [str(pk) for pk in api_key_pks],
            },
            headers={"Origin": self.service.url, "Referer": self.service.url + path},
        )
        assert response.status_code == 302, self.page_text(response)
        return response

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
def new_admin(new_web_user, new_password):
    """A function signing in the default admin of a fresh service and finishing its first steps."""

    def make(service) -> WebUser:
        admin = new_web_user(service)
        admin.set_up_account(admin.DEFAULT_USERNAME, admin.DEFAULT_PASSWORD, new_password())
        return admin

    return make


@pytest.fixture
def new_password():
    """A function returning a fresh password that every password rule accepts."""
    return lambda: f"e2e-{secrets.token_urlsafe(16)}"


# --- The client API and the ops commands, as the API tests use them ----------------------------


class ClientApi:
    """The client API v1 over HTTPS, verifying the service's certificate, as a client calls it."""

    def __init__(self, service):
        self.service = service
        self.client = httpx.Client(
            base_url=service.url + "/api/v1", verify=service.ssl_context(), timeout=120
        )

    @staticmethod
    def assert_error(response: httpx.Response, status: int, code: str) -> str:
        """The response is the client API's error form, exactly; its message."""
        assert response.status_code == status, (status, code, response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/json"), response.headers
        body = response.json()
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"code", "message"}, body
        assert body["error"]["code"] == code, body
        message = body["error"]["message"]
        assert isinstance(message, str), body
        assert message.strip(), body
        return message

    def close(self) -> None:
        self.client.close()

    def call(self, method: str, path: str, token: str | None = None, **kwargs) -> httpx.Response:
        """A request with ``Authorization: Bearer <token>`` (no such header if token is None)."""
        headers = dict(kwargs.pop("headers", None) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.request(method, path, headers=headers, **kwargs)

    def version(self) -> httpx.Response:
        return self.call("GET", "/version")

    def register(
        self, api_key: str | None, machine_id: str, hostname: str, **fields
    ) -> httpx.Response:
        body = {"hostname": hostname, "os": "Linux", "client_version": "1.0"}
        body.update(machine_id=machine_id, **fields)
        return self.call("POST", "/clients", api_key, json=body)

    def register_client(self, api_key: str, machine_id: str, hostname: str) -> str:
        """Register a machine and return its client token."""
        response = self.register(api_key, machine_id, hostname)
        assert response.status_code == 201, response.text
        return response.json()["client_token"]

    def certificates(self, token: str | None) -> httpx.Response:
        return self.call("GET", "/certificates", token)

    @staticmethod
    def sign_request(certificate: str, algorithm: str, digest: bytes | str) -> dict:
        if isinstance(digest, bytes):
            digest = base64.b64encode(digest).decode()
        return {"certificate": certificate, "algorithm": str(algorithm), "digest": digest}

    def sign(
        self, token: str | None, certificate: str, algorithm: str, digest: bytes | str
    ) -> httpx.Response:
        return self.call(
            "POST", "/sign", token, json=self.sign_request(certificate, algorithm, digest)
        )

    def sign_batch(self, token: str | None, requests: list[dict]) -> httpx.Response:
        return self.call("POST", "/sign/batch", token, json={"requests": requests})


@pytest.fixture
def new_client_api():
    """A function making client API callers for a running service; all closed after the test."""
    callers: list[ClientApi] = []

    def make(service) -> ClientApi:
        caller = ClientApi(service)
        callers.append(caller)
        return caller

    yield make
    for caller in callers:
        caller.close()


class OpsCli:
    """``signing-service identity|apikey|audit`` on a service's data, as an operator runs them."""

    def __init__(self, service, folder):
        self.service = service
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)

    def import_identity(self, made) -> str:
        """Import a ``make_identity`` .p12; its SHA-1 (lower-case hex), as the command printed."""
        result = self.service.import_identity(made, self.folder)
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"{made.common_name}\t{made.sha1.upper()}\n", result.stdout
        return made.sha1

    def import_identities(self, *made) -> list[str]:
        """Import several at once (each command starts Django, about a second)."""
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(self.import_identity, made))

    def set_up(self, identities: list, api_key_names: list[str]) -> tuple[list[str], list[str]]:
        """Import identities and create API keys side by side; their SHA-1s and secrets."""
        with ThreadPoolExecutor(max_workers=4) as pool:
            sha1s = [pool.submit(self.import_identity, made) for made in identities]
            keys = [pool.submit(self.create_api_key, name) for name in api_key_names]
            return [job.result() for job in sha1s], [job.result() for job in keys]

    def create_api_key(self, name: str) -> str:
        """Create an API key; its secret, printed once."""
        result = self.service.manage("apikey", "create", name)
        assert result.returncode == 0, result.stderr
        secret = result.stdout.strip()
        assert secret, result.stdout
        assert "\n" not in secret, result.stdout
        return secret

    def audit_export(
        self, start: datetime.date | None = None, end: datetime.date | None = None
    ) -> list[dict]:
        """The client requests' audit records of the days from ``start`` to ``end`` (UTC,
        default today), as the JSON export holds them: the admin records of the test's own
        set-up (and of this export) left out."""
        today = datetime.datetime.now(datetime.UTC).date()
        result = self.service.manage(
            "audit",
            "export",
            "--from",
            (start or today).isoformat(),
            "--to",
            (end or today).isoformat(),
            "--format",
            "json",
        )
        assert result.returncode == 0, result.stderr
        records = json.loads(result.stdout)["records"]
        return [row for row in records if row["request_type"] != "admin"]


@pytest.fixture
def new_ops(tmp_path):
    """A function making ``OpsCli`` helpers for a service (files go to the test's tmp_path)."""
    counter = iter(range(1_000_000))
    return lambda service: OpsCli(service, tmp_path / f"ops-{next(counter)}")
