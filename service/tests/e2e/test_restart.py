"""What the service keeps across a restart on the same data directory (and database)."""

from __future__ import annotations

import re

import pytest

KEPT_FILES = ["master.key", "tls/cert.pem", "tls/key.pem"]


@pytest.mark.e2e
def test_data_survives_a_restart(start_service, new_web_user, new_password):
    first = start_service()
    data_dir = first.data_dir
    kept = {name: (data_dir / name).read_bytes() for name in KEPT_FILES}

    user = new_web_user(first)
    password = new_password()
    user.set_up_account(user.DEFAULT_USERNAME, user.DEFAULT_PASSWORD, password)

    # SIGTERM shuts the service down cleanly.
    assert first.stop() == 0
    first_log = first.log()
    assert "Handling signal: term" in first_log
    assert "Shutting down: Master" in first_log
    assert "Traceback" not in first_log
    assert re.search(r"\bERROR\b", first_log) is None, first_log

    second = start_service(data_dir)
    assert second.port != first.port

    # The secrets and the certificate are the same files, not new ones.
    for name, content in kept.items():
        assert (data_dir / name).read_bytes() == content, name

    # No new default admin, and no warning about a default password that is gone.
    second_log = second.log()
    assert "Created the default admin" not in second_log
    assert "still has the default password" not in second_log
    assert f"Signing Service at {second.url}/" in second_log

    # A session opened before the restart is still good (the secret key did not change).
    user.client.base_url = second.url
    assert user.get("/").status_code == 200

    # The new password works; the default one does not.
    stranger = new_web_user(second)
    response = stranger.login(stranger.DEFAULT_USERNAME, stranger.DEFAULT_PASSWORD)
    assert response.status_code == 200
    assert "Please enter a correct username and password" in stranger.page_text(response)
    admin = new_web_user(second)
    assert admin.login(admin.DEFAULT_USERNAME, password).status_code == 302
    # Password changed and agreement accepted before the restart: straight to the main page.
    assert admin.get("/").status_code == 200

    # Still exactly one user: the admin.
    users = admin.get("/accounts/users/")
    assert users.status_code == 200
    rows = re.findall(r"<tr>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>", users.text)
    assert rows == [("admin", "Application admin")]
