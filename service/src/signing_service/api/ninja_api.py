"""The client API, version 1 (django-ninja), mounted at ``/api/v1/``.

The wire contract is in DESIGN.md ("Client API v1"); this module is its only implementation.
"""

from __future__ import annotations

from ninja import NinjaAPI, Schema

import signing_service

API_VERSION = 1

api = NinjaAPI(
    title="Signing Service client API",
    version=str(API_VERSION),
    urls_namespace="api",
    docs_url="/docs",
)


class VersionOut(Schema):
    service_version: str
    api_version: int


@api.get("/version", response=VersionOut, auth=None, summary="Service and API versions")
def version(request):
    """Answer without authentication so a client can check it reached a Signing Service."""
    return {"service_version": signing_service.__version__, "api_version": API_VERSION}
