"""The address of the machine behind a request, as login throttling, the audit and clients'
"last seen" use it.

Served directly, it is the socket's address. Behind proxies (``signing-service run --http``),
each proxy appends the address it was connected from to ``X-Forwarded-For``, so with
``SIGNING_SERVICE_PROXY_COUNT`` proxies the client is that many entries from the right, and
only when the connection comes from one of ``SIGNING_SERVICE_TRUSTED_PROXIES`` (addresses or
networks; ``*`` for any). Entries further left were written by the client and prove nothing: a
forged header changes nothing. A header too short or not an address falls back to the socket's.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str | None:
    remote = request.META.get("REMOTE_ADDR")
    if not settings.BEHIND_PROXY or not trusted_proxy(remote):
        return remote
    forwarded = [item.strip() for item in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [item for item in forwarded if item]
    if len(forwarded) < settings.PROXY_COUNT:
        return remote
    candidate = forwarded[-settings.PROXY_COUNT]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


def trusted_proxy(address: str | None) -> bool:
    if address is None:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for entry in settings.TRUSTED_PROXIES:
        if entry == "*":
            return True
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue  # not an address or network: trusts nothing
    return False
