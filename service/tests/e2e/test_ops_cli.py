"""``signing-service user create|set-password`` against a running service's data and database."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest


def write_password_file(path, password: str):
    path.write_text(password + "\n", encoding="utf-8")
    path.chmod(0o600)
    return str(path)


def assert_one_line_error(result, expected: str, args=()) -> None:
    """The command failed, saying why on one line of stderr, without a traceback."""
    assert result.returncode != 0, (args, result)
    assert "Traceback" not in result.stderr + result.stdout, (args, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, (args, result.stderr)
    assert expected in lines[0], (args, result.stderr)


@pytest.mark.e2e
def test_users_made_on_the_command_line_sign_in_and_must_change_password(
    running_service, tmp_path, new_web_user, new_password
):
    service = running_service

    # Create a user; they can sign in over HTTPS, but must replace the password first.
    first_password = new_password()
    result = service.manage(
        "user",
        "create",
        "carol",
        "--password-file",
        write_password_file(tmp_path / "carol.txt", first_password),
    )
    assert result.returncode == 0, result.stderr
    assert "Created user carol" in result.stdout
    carol = new_web_user(service)
    assert carol.login("carol", first_password).status_code == 302
    assert carol.redirect_path(carol.get("/")) == carol.PASSWORD_PATH
    second_password = new_password()
    assert carol.change_password(first_password, second_password).status_code == 302
    assert carol.redirect_path(carol.get("/")) == carol.AGREEMENT_PATH
    assert carol.accept_agreement().status_code == 302
    assert carol.get("/").status_code == 200
    # carol is no admin.
    assert carol.get("/accounts/users/").status_code == 403

    # An admin made on the command line is one, after the same first steps.
    dave_password = new_password()
    result = service.manage(
        "user",
        "create",
        "dave",
        "--admin",
        "--password-file",
        write_password_file(tmp_path / "dave.txt", dave_password),
    )
    assert result.returncode == 0, result.stderr
    assert "Created admin dave" in result.stdout
    dave = new_web_user(service)
    dave.set_up_account("dave", dave_password, new_password())
    assert dave.get("/accounts/users/").status_code == 200

    # set-password: the new password works, the old one no longer does, carol's open session
    # ends, and the new password must be changed at sign-in again.
    reset_password = new_password()
    result = service.manage(
        "user",
        "set-password",
        "carol",
        "--password-file",
        write_password_file(tmp_path / "carol-reset.txt", reset_password),
    )
    assert result.returncode == 0, result.stderr
    assert "Set the password of user carol" in result.stdout
    assert carol.redirect_path(carol.get("/")).startswith(carol.LOGIN_PATH)
    assert carol.login("carol", second_password).status_code == 200
    assert carol.login("carol", reset_password).status_code == 302
    assert carol.redirect_path(carol.get("/")) == carol.PASSWORD_PATH
    assert carol.change_password(reset_password, new_password()).status_code == 302
    # The agreement was accepted already and stays accepted.
    assert carol.get("/").status_code == 200


@pytest.mark.e2e
def test_user_command_errors_are_one_line_without_traceback(
    running_service, tmp_path, new_web_user
):
    service = running_service
    good = write_password_file(tmp_path / "good.txt", "a perfectly fine passphrase")
    weak = write_password_file(tmp_path / "weak.txt", "password")
    default = write_password_file(tmp_path / "default.txt", "Change_Password")
    empty = tmp_path / "empty.txt"
    empty.touch()
    missing = str(tmp_path / "missing.txt")
    cases = [
        (["create", "erin", "--password-file", weak], "This password is too short."),
        (["set-password", "admin", "--password-file", weak], "This password is too short."),
        (["create", "erin", "--password-file", str(empty)], "This password is too short."),
        (
            ["set-password", "admin", "--password-file", default],
            "This is the default password everyone knows",
        ),
        (["create", "admin", "--password-file", good], "A user named 'admin' already exists."),
        (["create", "ADMIN", "--password-file", good], "A user named 'ADMIN' already exists."),
        (["set-password", "nobody", "--password-file", good], "There is no user named 'nobody'."),
        (
            ["create", "erin", "--password-file", missing],
            f"Cannot read the password file {missing}",
        ),
        (
            ["set-password", "admin", "--password-file", missing],
            f"Cannot read the password file {missing}",
        ),
    ]
    # Each command starts Django afresh (about a second); they only read, so run them together.
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda case: service.manage("user", *case[0]), cases))
    for (args, expected), result in zip(cases, results, strict=True):
        assert_one_line_error(result, expected, args)

    # None of that changed anything: there is no erin, and admin keeps the default password.
    assert_one_line_error(
        service.manage("user", "set-password", "erin", "--password-file", good),
        "There is no user named 'erin'.",
    )
    admin = new_web_user(service)
    assert admin.login(admin.DEFAULT_USERNAME, admin.DEFAULT_PASSWORD).status_code == 302
    assert admin.redirect_path(admin.get("/")) == admin.PASSWORD_PATH


@pytest.mark.e2e
def test_invalid_user_names_are_refused_with_one_line(running_service, tmp_path):
    good = write_password_file(tmp_path / "good.txt", "a perfectly fine passphrase")
    names = ["", "two words", "bad/name", "x" * 151]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(
                lambda name: running_service.manage(
                    "user", "create", name, "--password-file", good
                ),
                names,
            )
        )
    for name, result in zip(names, results, strict=True):
        assert_one_line_error(result, "", name)
