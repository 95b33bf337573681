"""The client API's one error type and its wire form: ``{"error": {"code", "message"}}``."""

from __future__ import annotations


class ApiError(Exception):
    """A refusal with its HTTP status, a snake_case code and a sentence for the user. What the
    audit records may say more (``reason``, ``audit_message``) than the caller may learn."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        reason: str | None = None,
        audit_message: str | None = None,
        retry_after: int | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.reason = reason or code
        self.audit_message = audit_message or message
        self.retry_after = retry_after  # seconds, for the Retry-After header

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


def bad_credentials() -> ApiError:
    return ApiError(401, "bad_credentials", "The token is missing, malformed or unknown.")


def too_many_failures(retry_after: int) -> ApiError:
    return ApiError(
        429,
        "too_many_failures",
        "Too many calls without a valid token came from this address; try again in "
        f"{retry_after} s.",
        retry_after=retry_after,
    )


def inactive_key(name: str) -> ApiError:
    return ApiError(403, "inactive_key", f"The API key “{name}” is inactive.")


def inactive_client(hostname: str) -> ApiError:
    return ApiError(403, "inactive_client", f"This client ({hostname}) is inactive.")


def pending_client(hostname: str) -> ApiError:
    return ApiError(
        403,
        "pending_client",
        f"This client ({hostname}) waits for an admin's approval before it may list or sign.",
    )


def bad_parameters(message: str) -> ApiError:
    return ApiError(422, "bad_parameters", message)


# How long a client should wait before asking again after a 503: databases come back (or fail
# over) within seconds; the client retries with its own backoff.
RETRY_AFTER_SECONDS = 5


def service_unavailable() -> ApiError:
    return ApiError(
        503,
        "service_unavailable",
        "The service's database is unavailable; nothing was done. Try again shortly.",
        retry_after=RETRY_AFTER_SECONDS,
    )


def audit_unavailable() -> ApiError:
    return ApiError(
        503,
        "audit_unavailable",
        "The request could not be audited, so it was not carried out.",
        retry_after=RETRY_AFTER_SECONDS,
    )


def key_unavailable(name: str, why: str) -> ApiError:
    """503 when the token holding an identity's key is absent or refuses: nothing was signed,
    and the client may try again (the token may come back)."""
    return ApiError(
        503,
        "key_unavailable",
        f"The key of “{name}” is in a token that is unavailable now; nothing was signed. "
        "Try again shortly.",
        audit_message=why,
        retry_after=RETRY_AFTER_SECONDS,
    )


def unknown_identity(fingerprint: str, reason: str | None = None, why: str | None = None):
    """404 for an identity that does not exist **or** that this caller may not use: the two
    read the same, so a client cannot probe which identities exist; the audit keeps why."""
    return ApiError(
        404,
        "unknown_identity",
        f"No identity available to this client has the fingerprint {fingerprint}.",
        reason=reason,
        audit_message=why,
    )
