"""The first start and the first sign-in, over real HTTPS with the generated certificate."""

from __future__ import annotations

import ipaddress
import re
import secrets
import socket
import ssl
import stat
from importlib import metadata

import httpx
import pytest
from cryptography import x509

import signing_service

# Pages that must stay out of reach until the first-login steps are done.
GUARDED_PAGES = ["/", "/accounts/users/", "/api/", "/api-keys/"]
# A stand-in for the installed Signing Manager's wheel, put in DATA_DIR/client before the first
# start (as the container image has its own): the service offers it rather than packing another.
CLIENT_WHEEL = f"signing_manager-{metadata.version('signing-manager')}-py3-none-any.whl"


def mode_of(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.e2e
def test_first_start_makes_private_files_a_verified_certificate_and_log_lines(running_service):
    data_dir = running_service.data_dir

    # Secrets are readable by the service's user alone.
    assert mode_of(data_dir) == 0o700
    assert mode_of(data_dir / "master.key") == 0o600
    assert mode_of(data_dir / "tls") == 0o700
    assert mode_of(data_dir / "tls" / "key.pem") == 0o600

    # The self-signed certificate covers the names clients use to reach the service.
    certificate = x509.load_pem_x509_certificate(running_service.cert_path.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns_names = set(names.get_values_for_type(x509.DNSName))
    ip_addresses = set(names.get_values_for_type(x509.IPAddress))
    assert {"localhost", socket.gethostname()} <= dns_names
    assert ipaddress.ip_address("127.0.0.1") in ip_addresses
    assert ipaddress.ip_address("::1") in ip_addresses

    log = running_service.log()
    assert f"Signing Service at {running_service.url}/" in log
    assert f"Data directory {data_dir}" in log
    assert "Created the default admin 'admin'" in log
    assert re.search(r"WARNING .*User 'admin' still has the default password", log)

    # The system's trust store does not know the self-signed certificate.
    with (
        httpx.Client(verify=ssl.create_default_context()) as client,
        pytest.raises(httpx.ConnectError, match=r"self.signed certificate"),
    ):
        client.get(running_service.url + "/api/v1/version")

    # Trusting the certificate is not enough when the name asked for is not in it.
    with (
        httpx.Client(verify=running_service.ssl_context()) as client,
        pytest.raises(httpx.ConnectError, match="Hostname mismatch"),
    ):
        client.get(
            running_service.url + "/api/v1/version",
            extensions={"sni_hostname": "not-this-service.example"},
        )

    # Trusting exactly this certificate, for the address in it, works.
    with httpx.Client(verify=running_service.ssl_context()) as client:
        response = client.get(running_service.url + "/api/v1/version")
    assert response.status_code == 200
    assert response.json() == {"service_version": signing_service.__version__, "api_version": 1}


@pytest.mark.e2e
def test_first_login_walks_through_password_change_and_agreement(
    tmp_path, start_service, new_web_user, new_password
):
    data_dir = tmp_path / "data"
    (data_dir / "client").mkdir(mode=0o700, parents=True)
    wheel = secrets.token_bytes(64)
    (data_dir / "client" / CLIENT_WHEEL).write_bytes(wheel)
    running_service = start_service(data_dir)
    user = new_web_user(running_service)

    # Signed out, every page sends the visitor to the sign-in page.
    for page in GUARDED_PAGES:
        response = user.get(page)
        assert user.redirect_path(response).startswith(user.LOGIN_PATH), page

    # The sign-in page: security headers, and a CSRF cookie that never leaves HTTPS.
    login_page = user.get(user.LOGIN_PATH)
    assert login_page.status_code == 200
    assert_security_headers(login_page)
    csrf_cookie = user.cookie_attributes(user.set_cookie_headers(login_page)["signing_csrf"])
    assert {"secure", "httponly"} <= csrf_cookie.keys()
    assert csrf_cookie["samesite"].lower() == "strict"

    # A wrong password is refused.
    response = user.login(user.DEFAULT_USERNAME, "not the password")
    assert response.status_code == 200
    assert "Please enter a correct username and password" in user.page_text(response)
    assert "signing_session" not in user.client.cookies

    # Signing in with the documented defaults: the session cookie is Secure, HttpOnly, Strict.
    response = user.login(user.DEFAULT_USERNAME, user.DEFAULT_PASSWORD)
    assert response.status_code == 302
    assert_security_headers(response)
    session_cookie = user.cookie_attributes(user.set_cookie_headers(response)["signing_session"])
    assert {"secure", "httponly"} <= session_cookie.keys()
    assert session_cookie["samesite"].lower() == "strict"

    # Until the password is changed, every page leads to the password change.
    for page in [*GUARDED_PAGES, user.AGREEMENT_PATH]:
        assert user.redirect_path(user.get(page)) == user.PASSWORD_PATH, page
    page = user.get(user.PASSWORD_PATH)
    assert page.status_code == 200
    assert "Choose a new password" in user.page_text(page)

    # The default password, in any case, and weak passwords are refused with the reason shown.
    refusals = {
        user.DEFAULT_PASSWORD: "The new password must differ from the current one.",
        "Change_Password": "This is the default password everyone knows; choose another one.",
        "short1": "This password is too short.",
        "password1234": "This password is too common.",
        "123456789012": "This password is entirely numeric.",
    }
    for refused, message in refusals.items():
        response = user.change_password(user.DEFAULT_PASSWORD, refused)
        assert response.status_code == 200, refused
        assert message in user.page_text(response), refused
        assert 'role="alert"' in response.text, refused
    # The two new passwords must match, and the old one must be right.
    password = new_password()
    response = user.change_password(user.DEFAULT_PASSWORD, password, again=password + "x")
    assert response.status_code == 200
    assert "The two password fields didn\u2019t match." in user.page_text(response)
    response = user.change_password("wrong old password", password)
    assert response.status_code == 200
    assert "Your old password was entered incorrectly." in user.page_text(response)
    # Nothing of that got the user past the password change.
    assert user.redirect_path(user.get("/")) == user.PASSWORD_PATH

    response = user.change_password(user.DEFAULT_PASSWORD, password)
    assert response.status_code == 302, user.page_text(response)

    # Next comes the agreement; other pages, the password change included, lead there.
    for page in [*GUARDED_PAGES, user.PASSWORD_PATH]:
        assert user.redirect_path(user.get(page)) == user.AGREEMENT_PATH, page
    page = user.get(user.AGREEMENT_PATH)
    assert page.status_code == 200
    assert "User Agreement" in page.text
    assert 'name="accept"' in page.text

    # Declining signs the user out; signing in again returns to the agreement, not the password.
    response = user.decline_agreement()
    assert user.redirect_path(response) == user.LOGIN_PATH
    assert user.redirect_path(user.get("/")).startswith(user.LOGIN_PATH)
    assert user.login(user.DEFAULT_USERNAME, user.DEFAULT_PASSWORD).status_code == 200
    assert user.login(user.DEFAULT_USERNAME, password).status_code == 302
    assert user.redirect_path(user.get("/")) == user.AGREEMENT_PATH

    response = user.accept_agreement()
    assert user.redirect_path(response) == "/"

    # The main page: the URL clients use, and the way to API keys and the client download.
    main_page = user.get("/")
    assert main_page.status_code == 200
    assert_security_headers(main_page)
    service_url = re.search(r'<input id="service-url"[^>]* value="([^"]*)"', main_page.text)
    assert service_url, main_page.text
    assert service_url.group(1) == running_service.url
    assert 'href="/api-keys/"' in main_page.text
    assert f'href="/client/{CLIENT_WHEEL}"' in main_page.text
    download = user.get(f"/client/{CLIENT_WHEEL}")
    assert download.status_code == 200
    assert download.content == wheel
    for page in GUARDED_PAGES:
        assert user.get(page).status_code == 200, page

    # Signing out ends the session: every page leads to the sign-in page again.
    response = user.logout()
    assert user.redirect_path(response) == user.LOGIN_PATH
    for page in GUARDED_PAGES:
        assert user.redirect_path(user.get(page)).startswith(user.LOGIN_PATH), page

    # Signing in again goes straight to the main page: both steps are done for good.
    again = new_web_user(running_service)
    assert again.login(again.DEFAULT_USERNAME, password).status_code == 302
    assert again.get("/").status_code == 200


def assert_security_headers(response: httpx.Response) -> None:
    hsts = response.headers.get("strict-transport-security", "")
    assert re.fullmatch(r"max-age=\d+.*", hsts), hsts
    assert int(re.match(r"max-age=(\d+)", hsts).group(1)) > 0
    csp = response.headers.get("content-security-policy", "")
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
