"""``signing-service prepare`` started several times at once on a new database (replicas and a
migration job starting together): each waits its turn, none fails, and the database ends with
every migration applied once and one default admin."""

from __future__ import annotations

import subprocess

from signing_service.test import SERVICE_COMMAND

AT_ONCE = 4
COUNT_USERS = (
    "from signing_service.accounts.models import User; "
    "print(User.objects.count(), User.objects.filter(is_admin=True).count())"
)


def signing_service(data_dir, env, *args) -> subprocess.Popen:
    return subprocess.Popen(
        [SERVICE_COMMAND, *args, "--data-dir", str(data_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finished(process: subprocess.Popen) -> tuple[int, str]:
    output, _ = process.communicate(timeout=180)
    return process.returncode, output


def test_preparing_a_new_database_many_times_at_once_prepares_it_once(
    service_environment, tmp_path
):
    data_dir = tmp_path / "data"
    started = [signing_service(data_dir, service_environment, "prepare") for _ in range(AT_ONCE)]

    results = [finished(process) for process in started]

    assert results == [(0, "The database is ready.\n")] * AT_ONCE
    status, plan = finished(signing_service(data_dir, service_environment, "showmigrations"))
    assert status == 0, plan
    assert "[X]" in plan
    assert "[ ]" not in plan
    counted = signing_service(
        data_dir, service_environment, "shell", "--no-imports", "-c", COUNT_USERS
    )
    assert finished(counted) == (0, "1 1\n")
