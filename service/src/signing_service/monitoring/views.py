"""Probes for orchestrators (Kubernetes, Docker's HEALTHCHECK) and load balancers, and the
metrics for Prometheus.

``/healthz`` says the process answers and touches nothing else: restarting a replica because
its database is down would not help. ``/readyz`` says whether this replica can sign now (see
``readiness``). Both need no sign-in, answer in plain text with "ok" or the failing check's
name alone, and are left out of the access log (``run.QuietAccessLogger``).
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from signing_service.monitoring.metrics import registry
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


@login_not_required
@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics, for a scraper presenting ``SIGNING_SERVICE_METRICS_TOKEN`` as a
    bearer token; without a token configured there are none to see (404)."""
    if not settings.METRICS_TOKEN:
        raise Http404("Metrics are off: set SIGNING_SERVICE_METRICS_TOKEN to turn them on.")
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode(), settings.METRICS_TOKEN.encode()
    ):
        response = plain("A bearer token is needed.", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
