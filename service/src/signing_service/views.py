"""The main page, the client download, and the answer to a failure no view caught."""

from __future__ import annotations

import sys
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string

from signing_service.api import errors
from signing_service.api.middleware import API_PREFIX
from signing_service.database import log_database_failure

CLIENT_WHEEL_PATTERN = "signing_manager-*-py3-none-any.whl"


def service_url(request: HttpRequest) -> str:
    return settings.PUBLIC_URL or request.build_absolute_uri("/").rstrip("/")


def client_wheel() -> Path | None:
    """The newest signing-manager wheel in the client directory, if one was built."""
    wheels = sorted(Path(settings.CLIENT_WHEEL_DIR).glob(CLIENT_WHEEL_PATTERN))
    return max(wheels, key=lambda path: path.stat().st_mtime) if wheels else None


def tls_certificate() -> Path | None:
    path = Path(settings.DATA_DIR) / "tls" / "cert.pem"
    return path if path.is_file() else None


def home(request: HttpRequest) -> HttpResponse:
    wheel = client_wheel()
    context = {
        "service_url": service_url(request),
        "wheel_name": wheel.name if wheel else None,
        "self_signed": tls_certificate() is not None and not settings.BEHIND_PROXY,
    }
    return render(request, "home.html", context)


@login_not_required  # the client is public; build machines download it without a session
def client_download(request: HttpRequest, filename: str) -> FileResponse:
    wheel = client_wheel()
    if wheel is None or filename != wheel.name:
        raise Http404("No such client package.")
    return FileResponse(wheel.open("rb"), as_attachment=True, filename=wheel.name)


@login_not_required  # a certificate is public; clients fetch it to trust the service
def service_certificate(request: HttpRequest) -> FileResponse:
    path = tls_certificate()
    if path is None:
        raise Http404("This service does not use its self-signed certificate.")
    return FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename="signing-service.pem",
        content_type="application/x-pem-file",
    )


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's ``handler500``, called while the uncaught error is being handled. A database
    fault (anywhere: the session, the user, a view) passes by itself, so it is a 503 with
    ``Retry-After``: a page saying the database is unreachable, or the API's JSON. Neither
    reads the database (no signed-in user, no context processors)."""
    error = sys.exc_info()[1]
    if not isinstance(error, DatabaseError):
        return HttpResponse(render_to_string("500.html"), status=500)
    log_database_failure(request, error)
    unavailable = errors.service_unavailable()
    if request.path.startswith(API_PREFIX):
        response = JsonResponse(unavailable.body(), status=503)
    else:
        response = HttpResponse(render_to_string("503.html"), status=503)
    response["Retry-After"] = str(unavailable.retry_after)
    return response
