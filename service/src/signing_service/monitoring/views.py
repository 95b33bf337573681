"""Probes for orchestrators (Kubernetes, Docker's HEALTHCHECK) and load balancers.

``/healthz`` says the process answers and touches nothing else: restarting a replica because
its database is down would not help. ``/readyz`` says whether this replica can sign now (see
``readiness``). Both need no sign-in, answer in plain text with "ok" or the failing check's
name alone, and are left out of the access log (``run.QuietAccessLogger``).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from signing_service.monitoring.readiness import failing_check


def plain(text: str, status: int = 200) -> HttpResponse:
    response = HttpResponse(f"{text}\n", content_type="text/plain; charset=utf-8", status=status)
    # A failing probe is routine for the orchestrator, and logged once by readiness instead
    # of once a poll by Django's request logger.
    response._has_been_logged = True
    return response


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    return plain("ok")


@login_not_required
@never_cache
@require_GET
def readyz(request: HttpRequest) -> HttpResponse:
    failing = failing_check()
    return plain("ok") if failing is None else plain(failing, status=503)
