"""The main page, the client download, and the answer to a failure no view caught."""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse

from signing_service import client_wheel as wheels
from signing_service.api import errors
from signing_service.api.middleware import API_PREFIX
from signing_service.database import log_database_failure
from signing_service.tls import certificate_sha256

log = logging.getLogger("signing_service")

API_KEY_PLACEHOLDER = "YOUR_API_KEY"
CERTIFICATE_FILE = "signing-service.pem"

# Why ``run`` could not put the client's wheel in CLIENT_WHEEL_DIR, when it could not: set in the
# process that starts gunicorn, before it forks the workers that show it on the main page.
wheel_problem = ""


def service_url(request: HttpRequest) -> str:
    return settings.PUBLIC_URL or request.build_absolute_uri("/").rstrip("/")


def client_wheel() -> Path | None:
    """The installed Signing Manager's wheel in the client directory, if it is there. A wheel
    of another version (left by an earlier one of the service) is never offered."""
    path = Path(settings.CLIENT_WHEEL_DIR) / wheels.client_wheel_name()
    return path if path.is_file() else None


def provide_client_wheel() -> None:
    """Put the installed Signing Manager's wheel in the client directory unless it is there
    already; ``run`` calls this as it starts. A directory the service cannot write to costs a
    warning in the log and the download: the main page then says why it offers none."""
    global wheel_problem
    directory = Path(settings.CLIENT_WHEEL_DIR)
    try:
        path = wheels.provide_client_wheel(directory)
    except OSError as error:
        wheel_problem = (
            f"the service could not write {wheels.client_wheel_name()} to {directory} "
            f"({error.strerror or error})"
        )
        log.warning("No Signing Manager download: %s.", wheel_problem)
        return
    wheel_problem = ""
    log.info("Signing Manager download %s", path)


def no_wheel_reason() -> str:
    """Why there is no wheel to offer, as a sentence for the main page."""
    if wheel_problem:
        return (
            f"{wheel_problem} when it started. Make that directory writable for the service, "
            "or set SIGNING_SERVICE_CLIENT_WHEEL_DIR to one that is, and restart the service."
        )
    return (
        f"{settings.CLIENT_WHEEL_DIR} holds no {wheels.client_wheel_name()}. The service puts it "
        "there when it starts: restart the service."
    )


def tls_certificate() -> Path | None:
    path = Path(settings.DATA_DIR) / "tls" / "cert.pem"
    return path if path.is_file() else None


@dataclasses.dataclass(frozen=True)
class ClientSetup:
    """How a client machine gets Signing Manager from this service and is set up to use it:
    what ``_client_setup.html`` shows on the main page and on the "API key created" page."""

    service_url: str
    api_key: str
    wheel_name: str  # empty when there is no package to offer
    missing_wheel_reason: str  # why not, then
    certificate_sha256: str  # the self-signed certificate's, when the service presents it

    @classmethod
    def for_request(cls, request: HttpRequest, api_key: str = API_KEY_PLACEHOLDER) -> ClientSetup:
        """The set-up as this request sees the service, for ``api_key`` (else a placeholder)."""
        wheel = client_wheel()
        certificate = tls_certificate()
        self_signed = certificate is not None and not settings.BEHIND_PROXY
        return cls(
            service_url=service_url(request),
            api_key=api_key,
            wheel_name=wheel.name if wheel else "",
            missing_wheel_reason="" if wheel else no_wheel_reason(),
            certificate_sha256=certificate_sha256(certificate) if self_signed else "",
        )

    @property
    def self_signed(self) -> bool:
        return bool(self.certificate_sha256)

    @property
    def key_is_placeholder(self) -> bool:
        return self.api_key == API_KEY_PLACEHOLDER

    @property
    def wheel_url(self) -> str:
        return self.service_url + reverse("client_download", args=[self.wheel_name])

    @property
    def latest_wheel_url(self) -> str:
        return self.service_url + reverse("client_download_latest")

    @property
    def certificate_command(self) -> str:
        # Fetched without checking: the fingerprint shown beside it is what is checked.
        url = self.service_url + reverse("service_certificate")
        return f"curl --insecure --output {CERTIFICATE_FILE} {url}"

    @property
    def install_command(self) -> str:
        if not self.self_signed:
            return f"pipx install {self.wheel_url}"
        # Not pipx's --pip-args='--cert …': pipx runs pip in another folder, where a relative
        # path is not found, and its uv backend takes no self-signed certificate as an anchor.
        # curl fetches the wheel trusting exactly this service's certificate; pipx installs it.
        download = f"curl --cacert {CERTIFICATE_FILE} --remote-name {self.wheel_url}"
        return f"{download} && pipx install ./{self.wheel_name}"

    @property
    def configure_command(self) -> str:
        pin = " -u" if self.self_signed else ""
        return f"signing-manager -s -i {self.service_url} -a {self.api_key}{pin}"


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"client_setup": ClientSetup.for_request(request)})


@login_not_required  # the client is public; build machines download it without a session
def client_download(request: HttpRequest, filename: str) -> FileResponse:
    wheel = client_wheel()
    if wheel is None or filename != wheel.name:
        raise Http404("No such client package.")
    return FileResponse(wheel.open("rb"), as_attachment=True, filename=wheel.name)


@login_not_required
def client_download_latest(request: HttpRequest) -> HttpResponse:
    """A link that stays the same across versions, to the wheel's own name (which pip needs)."""
    wheel = client_wheel()
    if wheel is None:
        raise Http404("No client package.")
    return redirect("client_download", wheel.name)


@login_not_required  # a certificate is public; clients fetch it to trust the service
def service_certificate(request: HttpRequest) -> FileResponse:
    path = tls_certificate()
    if path is None:
        raise Http404("This service does not use its self-signed certificate.")
    return FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename=CERTIFICATE_FILE,
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
