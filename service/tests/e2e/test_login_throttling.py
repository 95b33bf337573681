"""Repeated failed sign-ins lock a user name out for the address they came from."""

from __future__ import annotations

import re

import pytest

FAILURE_LIMIT = 5  # the service's default SIGNING_SERVICE_LOGIN_FAILURE_LIMIT
LOCKED_OUT = "Too many failed sign-ins"
WRONG_CREDENTIALS = "Please enter a correct username and password"


@pytest.mark.e2e
def test_failed_logins_lock_the_user_name_and_forwarded_for_does_not_help(
    running_service, web_user, new_web_user
):
    user = web_user

    # Each failure comes with a different X-Forwarded-For: were that header trusted, every try
    # would count for another address and none would ever reach the limit.
    for attempt in range(1, FAILURE_LIMIT + 1):
        response = user.login(
            user.DEFAULT_USERNAME,
            f"wrong password {attempt}",
            headers={"X-Forwarded-For": f"203.0.113.{attempt}"},
        )
        if attempt < FAILURE_LIMIT:
            assert response.status_code == 200, attempt
            assert WRONG_CREDENTIALS in user.page_text(response), attempt
            assert LOCKED_OUT not in user.page_text(response), attempt
        else:  # The failure that reaches the limit may already answer with the lockout page.
            assert response.status_code in {200, 429}, attempt

    # Locked: even the right password gets the lockout page, and no session.
    response = user.login(user.DEFAULT_USERNAME, user.DEFAULT_PASSWORD)
    assert response.status_code == 429
    assert LOCKED_OUT in user.page_text(response)
    assert f"locked after {FAILURE_LIMIT} failed attempts" in user.page_text(response)
    assert "signing_session" not in user.client.cookies

    # Claiming to come from elsewhere does not help: the service is not behind a proxy.
    for forwarded in ["198.51.100.7", "127.0.0.2", "198.51.100.7, 127.0.0.1"]:
        response = user.login(
            user.DEFAULT_USERNAME,
            user.DEFAULT_PASSWORD,
            headers={"X-Forwarded-For": forwarded, "X-Real-IP": forwarded},
        )
        assert response.status_code == 429, forwarded
        assert LOCKED_OUT in user.page_text(response), forwarded

    # A fresh browser (no cookies) from the same address is locked out too.
    other = new_web_user(running_service)
    response = other.login(other.DEFAULT_USERNAME, other.DEFAULT_PASSWORD)
    assert response.status_code == 429
    assert LOCKED_OUT in other.page_text(response)
    assert other.redirect_path(other.get("/")).startswith(other.LOGIN_PATH)

    # The lock is for that user name only: another name from the same address is still heard.
    response = other.login("someone-else", "wrong password")
    assert response.status_code == 200
    assert WRONG_CREDENTIALS in other.page_text(response)


@pytest.mark.e2e
def test_a_password_reset_by_an_admin_lifts_the_lockout(
    running_service, tmp_path, new_web_user, new_password
):
    service = running_service
    admin = new_web_user(service)
    admin.set_up_account(admin.DEFAULT_USERNAME, admin.DEFAULT_PASSWORD, new_password())
    password_file = tmp_path / "carol.txt"
    password_file.write_text(new_password() + "\n", encoding="utf-8")
    result = service.manage("user", "create", "carol", "--password-file", str(password_file))
    assert result.returncode == 0, result.stderr

    carol = new_web_user(service)
    for attempt in range(FAILURE_LIMIT):
        carol.login("carol", f"wrong password {attempt}")
    locked = carol.login("carol", password_file.read_text().strip())
    assert locked.status_code == 429
    assert "ask an admin to reset your password" in carol.page_text(locked)

    # The admin (not locked out: the lock is per user name) follows that advice on the web.
    users = admin.get("/accounts/users/")
    pk = re.search(r'href="/accounts/users/(\d+)/password/"', users.text.split("carol", 1)[1])
    assert pk, users.text
    reset_password = new_password()
    response = admin.post_form(
        f"/accounts/users/{pk.group(1)}/password/",
        {"password1": reset_password, "password2": reset_password},
    )
    assert admin.redirect_path(response) == "/accounts/users/", admin.page_text(response)

    # carol can now sign in with the temporary password (and must change it).
    response = carol.login("carol", reset_password)
    assert response.status_code == 302, f"still locked out: HTTP {response.status_code}"
    assert carol.redirect_path(carol.get("/")) == carol.PASSWORD_PATH
