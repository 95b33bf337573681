"""The ``signing-service`` command: Django's management commands with this project's settings.

``run`` serves the service; ``user`` manages users; every other Django command (``migrate``,
``check``, ...) works too. ``--data-dir DIR`` and ``--http`` may follow any command; they shape the
settings, so they are taken out of the command line here and passed on through the environment
before Django loads the settings.
"""

from __future__ import annotations

import argparse
import os
import sys


def apply_environment_options(argv: list[str]) -> list[str]:
    """Move ``--data-dir`` and ``--http`` into the environment; the rest of the command line."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--data-dir")
    parser.add_argument("--http", action="store_true")
    known, rest = parser.parse_known_args(argv)
    if known.data_dir:
        os.environ["SIGNING_SERVICE_DATA_DIR"] = os.path.abspath(known.data_dir)
    if known.http:
        os.environ["SIGNING_SERVICE_BEHIND_PROXY"] = "true"
    return rest


def main(argv: list[str] | None = None) -> None:
    argv = apply_environment_options(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"]:
        from signing_service.monitoring.multiprocess import use_shared_directory

        use_shared_directory()  # before anything imports prometheus_client
    else:
        # Ops commands print their own results; the service's INFO lines would be noise there.
        os.environ.setdefault("SIGNING_SERVICE_LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "signing_service.settings")

    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line
    from django.db import DatabaseError

    try:
        execute_from_command_line(["signing-service", *argv])
    except ImproperlyConfigured as error:
        sys.exit(f"signing-service: configuration error: {error}")
    # Unreachable, wrong password, no such database, ... or an audit record that cannot be
    # written, which rolls back the change it records.
    except DatabaseError as error:
        from signing_service.database import describe_database, first_line

        sys.exit(f"signing-service: {describe_database()} cannot be used: {first_line(error)}.")


if __name__ == "__main__":
    main()
