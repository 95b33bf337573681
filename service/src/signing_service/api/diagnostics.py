"""Answers to "why can't my client connect?": what a secret may do, what we see of a request."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.http import HttpRequest

from signing_service.access import tokens
from signing_service.access.models import ApiKey
from signing_service.api.auth import find_client
from signing_service.client_address import client_address
from signing_service.identities.models import Identity


@dataclass
class CredentialCheck:
    kind: str  # "API key", "client token" or "unknown"
    found: bool
    problems: list[str] = field(default_factory=list)
    name: str = ""
    identities: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return self.found and not self.problems


def check_credential(secret: str) -> CredentialCheck:
    """What an API key or client token may do here, and what stops it."""
    secret = secret.strip()
    if secret.startswith(tokens.API_KEY_PREFIX + "_"):
        key, client = ApiKey.find(secret), None
        check = CredentialCheck(kind="API key", found=key is not None)
    elif secret.startswith(tokens.CLIENT_TOKEN_PREFIX + "_"):
        client = find_client(secret)
        key = client.api_key if client else None
        check = CredentialCheck(kind="client token", found=client is not None)
    else:
        return CredentialCheck(kind="unknown", found=False)
    if key is None:
        return check
    check.name = f"{key.name} / {client.hostname}" if client else key.name
    if not key.is_active:
        check.problems.append(f"The API key “{key.name}” is inactive.")
    if client is not None and not client.is_active:
        check.problems.append(f"The client “{client.hostname}” is inactive.")
    check.identities = [identity.common_name for identity in Identity.objects.usable_by(key)]
    if not check.identities:
        check.problems.append("No active identity is authorized for this API key.")
    return check


def request_facts(request: HttpRequest) -> list[tuple[str, str]]:
    """How this request reached the service: what a proxy set-up gets wrong shows here."""
    meta = request.META
    return [
        ("Scheme seen by the service", request.scheme),
        ("Host", request.get_host()),
        ("Client address (as throttling and the audit see it)", client_address(request) or ""),
        ("Connection from", meta.get("REMOTE_ADDR", "")),
        ("X-Forwarded-For", meta.get("HTTP_X_FORWARDED_FOR", "(none)")),
        ("X-Forwarded-Proto", meta.get("HTTP_X_FORWARDED_PROTO", "(none)")),
    ]
