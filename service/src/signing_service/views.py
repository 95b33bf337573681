"""The main page, and pages whose full versions arrive with the identities and API keys work."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from signing_service.accounts.permissions import Permission, permission_required


def service_url(request: HttpRequest) -> str:
    return settings.PUBLIC_URL or request.build_absolute_uri("/").rstrip("/")


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"service_url": service_url(request)})


def client_download(request: HttpRequest) -> HttpResponse:
    return render(request, "client_download.html", {"service_url": service_url(request)})


@permission_required(Permission.VIEW_IDENTITIES)
def identities(request: HttpRequest) -> HttpResponse:
    return render(request, "placeholder.html", {"title": "Signing Certificates"})


@permission_required(Permission.VIEW_API_KEYS)
def api_keys(request: HttpRequest) -> HttpResponse:
    return render(request, "placeholder.html", {"title": "API Keys"})


@permission_required(Permission.VIEW_AUDIT)
def audit(request: HttpRequest) -> HttpResponse:
    return render(request, "placeholder.html", {"title": "Audit"})
