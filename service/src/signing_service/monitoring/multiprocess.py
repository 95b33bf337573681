"""prometheus_client's multiprocess mode, for gunicorn's workers: each worker writes its counts
to files in a shared directory, and a scrape (answered by any worker) adds them up.

The directory must be known before prometheus_client is first imported, so ``signing-service
run`` calls ``use_shared_directory`` before Django loads anything; gunicorn's master calls
``worker_exited`` when a worker ends and ``server_exited`` when it stops. This module imports
prometheus_client only inside those hooks, for that reason.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

ENVIRONMENT = "PROMETHEUS_MULTIPROC_DIR"
_created: list[Path] = []


def use_shared_directory() -> None:
    """A new, empty directory for this service's counts, unless the environment names one."""
    if not os.environ.get(ENVIRONMENT):
        path = Path(tempfile.mkdtemp(prefix="signing-service-metrics-"))
        os.environ[ENVIRONMENT] = str(path)
        _created.append(path)


def worker_exited(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def server_exited(server) -> None:
    for path in _created:
        shutil.rmtree(path, ignore_errors=True)
