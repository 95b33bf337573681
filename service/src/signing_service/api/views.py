"""The API reference page: versions for support, the API's documents, and connection checks."""

from __future__ import annotations

import platform

import django
from django import forms
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

import signing_service
from signing_service.accounts.permissions import Permission, permission_required
from signing_service.api.diagnostics import check_credential, request_facts
from signing_service.api.ninja_api import API_VERSION
from signing_service.tls import certificate_sha256
from signing_service.views import service_url, tls_certificate


class CredentialCheckForm(forms.Form):
    secret = forms.CharField(
        label="API key or client token",
        strip=True,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
    )


def database_version() -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("select sqlite_version()")
            return f"SQLite {cursor.fetchone()[0]}"
        if connection.vendor == "postgresql":
            cursor.execute("show server_version")
            return f"PostgreSQL {cursor.fetchone()[0]}"
    return connection.vendor


@never_cache
@permission_required(Permission.VIEW_API_REFERENCE)
def reference(request: HttpRequest) -> HttpResponse:
    versions = [
        ("Service version", signing_service.__version__),
        ("API version", str(API_VERSION)),
        ("Python", platform.python_version()),
        ("Django", django.get_version()),
        ("Database", database_version()),
    ]
    form = CredentialCheckForm(request.POST or None)
    check = check_credential(form.cleaned_data["secret"]) if form.is_valid() else None
    certificate = tls_certificate()
    context = {
        "versions": versions,
        "service_url": service_url(request),
        "certificate_sha256": certificate_sha256(certificate) if certificate else "",
        "request_facts": request_facts(request),
        "form": CredentialCheckForm(),  # never echo the secret back
        "check": check,
    }
    return render(request, "api/reference.html", context)
