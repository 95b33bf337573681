"""The API reference page: versions a support request needs, and where the API lives."""

import platform

import django
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

import signing_service
from signing_service.accounts.permissions import Permission, permission_required
from signing_service.api.ninja_api import API_VERSION


def database_version() -> str:
    vendor = connection.vendor
    with connection.cursor() as cursor:
        if vendor == "sqlite":
            cursor.execute("select sqlite_version()")
            return f"SQLite {cursor.fetchone()[0]}"
        if vendor == "postgresql":
            cursor.execute("show server_version")
            return f"PostgreSQL {cursor.fetchone()[0]}"
    return vendor


@permission_required(Permission.VIEW_API_REFERENCE)
def reference(request: HttpRequest) -> HttpResponse:
    versions = [
        ("Service version", signing_service.__version__),
        ("API version", str(API_VERSION)),
        ("Python", platform.python_version()),
        ("Django", django.get_version()),
        ("Database", database_version()),
    ]
    return render(request, "api/reference.html", {"versions": versions})
