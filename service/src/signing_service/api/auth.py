"""Who is calling the client API: an API key (to register) or a client token (to list and sign).

The bearer classes never refuse by themselves; they resolve the token into ``Caller`` and the
endpoint calls ``Caller.require_*``, so every refusal is audited with its reason in one place
(``api/audit.py``) and answered in the contract's error form.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest
from ninja.security import HttpBearer

from signing_service.access import tokens
from signing_service.access.models import ApiKey, Client
from signing_service.api import errors, lookups


@dataclass
class Caller:
    api_key: ApiKey | None = None
    client: Client | None = None
    error: errors.ApiError | None = None

    def require_active_key(self) -> ApiKey:
        if self.error:
            raise self.error
        if not self.api_key.is_active:
            raise errors.inactive_key(self.api_key.name)
        return self.api_key

    def require_active_client(self) -> Client:
        self.require_active_key()
        if self.client is None:
            raise errors.bad_credentials()
        if not self.client.is_active:
            raise errors.inactive_client(self.client.hostname)
        if not self.client.is_approved:
            raise errors.pending_client(self.client.hostname)
        return self.client


def bearer_token(request: HttpRequest) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def find_client(secret: str) -> Client | None:
    token_id = tokens.split_secret(secret, tokens.CLIENT_TOKEN_PREFIX)
    client = lookups.client_with_key(token_id) if token_id else None
    if client is None or not tokens.secret_matches(secret, client.token_hash):
        return None
    return client


class AuditedBearer(HttpBearer):
    """A bearer scheme that also notes which kind of request it guards, for the audit record
    of a request refused before its endpoint runs (a body that does not parse)."""

    def __init__(self, request_type: str):
        super().__init__()
        self.request_type = request_type

    def __call__(self, request: HttpRequest) -> Caller:
        request.audit_request_type = self.request_type
        return self.resolve(request)

    def resolve(self, request: HttpRequest) -> Caller:
        raise NotImplementedError

    def authenticate(self, request, token):  # pragma: no cover - resolve does the work
        raise NotImplementedError


class ApiKeyBearer(AuditedBearer):
    """``Authorization: Bearer smk_…`` — the API key, used once to register a client."""

    def resolve(self, request: HttpRequest) -> Caller:
        token = bearer_token(request)
        api_key = ApiKey.find(token) if token else None
        return Caller(api_key=api_key, error=None if api_key else errors.bad_credentials())


class ClientTokenBearer(AuditedBearer):
    """``Authorization: Bearer smc_…`` — the token a client got when it registered."""

    def resolve(self, request: HttpRequest) -> Caller:
        token = bearer_token(request)
        client = find_client(token) if token else None
        if client is None:
            return Caller(error=errors.bad_credentials())
        return Caller(api_key=client.api_key, client=client)
