"""gunicorn's access log without the lines of probes and scrapes: an orchestrator polls each
replica every few seconds, which would drown the requests people make. A readiness verdict
that changes is logged once, as a warning, by ``readiness``."""

from __future__ import annotations

from gunicorn.glogging import Logger

QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class QuietAccessLogger(Logger):
    def access(self, resp, req, environ, request_time):
        if environ.get("PATH_INFO") not in QUIET_PATHS:
            super().access(resp, req, environ, request_time)
