"""``signing-service run``: prepare the data directory, the database and the client download, then
serve with gunicorn."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connections
from gunicorn.app.base import BaseApplication

from signing_service.accounts.bootstrap import prepare_database, users_with_default_password
from signing_service.audit import checkpoints, stream
from signing_service.audit.models import CheckpointKind
from signing_service.database import first_line, wait_for_database
from signing_service.environment import env, env_int
from signing_service.listeners import assign_socket, bind, keep_own_socket
from signing_service.monitoring import multiprocess
from signing_service.tls import certificate_sha256, ensure_self_signed_certificate
from signing_service.views import provide_client_wheel

log = logging.getLogger("signing_service")


def parse_bind(value: str) -> tuple[str, int]:
    host, separator, port = value.rpartition(":")
    if not separator or not port.isdigit() or not 0 < int(port) < 65536:
        raise CommandError(f"--bind must look like HOST:PORT (e.g. 0.0.0.0:8443), not {value!r}.")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - serving the network is the job


def server_exited(server) -> None:
    """gunicorn's main process is stopping (SIGTERM, SIGINT): sign the audit chain's head, so
    that everything written before the shutdown is pinned; then tidy the metrics files."""
    try:
        checkpoints.sign_head(CheckpointKind.SHUTDOWN)
    except DatabaseError as error:
        log.error("Could not write the audit checkpoint at shutdown: %s", first_line(error))
    finally:
        connections.close_all()
    multiprocess.server_exited(server)


class GunicornServer(BaseApplication):
    """gunicorn, configured from a dict rather than its own command line."""

    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from signing_service.wsgi import application

        return application


class Command(BaseCommand):
    help = "Serve the Signing Service (HTTPS with a self-signed certificate unless --http)."

    def add_arguments(self, parser):
        # --data-dir and --http are read by __main__ before the settings load; listed for --help.
        parser.add_argument("--data-dir", help="Data directory (database, keys, TLS).")
        parser.add_argument(
            "--bind", default="0.0.0.0:8443", help="HOST:PORT to listen on (default 0.0.0.0:8443)."
        )
        parser.add_argument(
            "--http",
            action="store_true",
            help="Serve plain HTTP behind a TLS-terminating proxy that sets X-Forwarded-Proto.",
        )

    def handle(self, *args, **options):
        host, port = parse_bind(options["bind"])
        workers = env_int("WORKERS", os.cpu_count() or 2, minimum=1)
        # Bound first: a port that is taken fails the start before the database is waited for.
        listeners = bind(host, port, workers)
        stream.check_destination(settings.AUDIT_LOG)
        wait_for_database(settings.DB_WAIT_SECONDS)
        prepare_database()
        provide_client_wheel()
        server_options = self.server_options(listeners, workers)
        if not settings.BEHIND_PROXY:
            cert_path, key_path = self.tls_files()
            server_options.update(certfile=str(cert_path), keyfile=str(key_path))
            log.info("TLS certificate %s (SHA-256 %s)", cert_path, certificate_sha256(cert_path))
        scheme = "http" if settings.BEHIND_PROXY else "https"
        shown_host = socket.gethostname() if host in {"0.0.0.0", "::"} else host  # noqa: S104
        log.info("Signing Service at %s://%s:%d/", scheme, shown_host, port)
        log.info("Data directory %s", settings.DATA_DIR)
        for username in users_with_default_password():
            log.warning(
                "User %r still has the default password: sign in and change it now.", username
            )
        # Connections opened here must not be shared with the forked workers.
        connections.close_all()
        GunicornServer(server_options).run()

    @staticmethod
    def tls_files():
        supplied = [env("TLS_CERT_PATH"), env("TLS_KEY_PATH")]
        if any(supplied):
            paths = [Path(name).absolute() for name in supplied if name]
            if len(paths) != 2:
                raise CommandError(
                    "Set both SIGNING_SERVICE_TLS_CERT_PATH and SIGNING_SERVICE_TLS_KEY_PATH."
                )
            for path in paths:
                if not path.is_file():
                    raise CommandError(f"TLS file {path} does not exist.")
            return paths[0], paths[1]
        return ensure_self_signed_certificate(settings.DATA_DIR / "tls", settings.HOSTNAMES)

    @staticmethod
    def server_options(listeners: list[int], workers: int) -> dict:
        options = {
            "bind": [f"fd://{descriptor}" for descriptor in listeners],
            "workers": workers,
            "pre_fork": assign_socket,
            "post_fork": keep_own_socket,
            "worker_class": "gthread",
            "threads": env_int("THREADS", 8),
            "accesslog": "-",
            "logger_class": "signing_service.monitoring.access_log.QuietAccessLogger",
            "errorlog": "-",
            "timeout": 60,
            "graceful_timeout": 10,
            "preload_app": True,
            "proc_name": "signing-service",
            # gunicorn's control socket lives in $HOME and would clash between instances.
            "control_socket_disable": True,
            "child_exit": multiprocess.worker_exited,
            "on_exit": server_exited,
        }
        if settings.BEHIND_PROXY:
            options["forwarded_allow_ips"] = ",".join(settings.TRUSTED_PROXIES)
        return options
