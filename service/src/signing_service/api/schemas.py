"""Request and response bodies of the client API v1 (DESIGN.md, "Client API v1")."""

from __future__ import annotations

from typing import Annotated

from ninja import Field, Schema
from pydantic import BaseModel, StringConstraints

from signing_manager.algorithms import Algorithm

MAX_BATCH = 1000


# What a client names itself with is shown on pages, written to logs and exported as CSV:
# no control characters (C0, DEL, C1; PostgreSQL cannot even hold NUL), no line or paragraph
# separators, no bidirectional overrides that make text read other than it is.
PLAIN_TEXT = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]*$"
# Leading and trailing spaces are trimmed before the checks.
ClientText = Annotated[str, StringConstraints(strip_whitespace=True, pattern=PLAIN_TEXT)]


class RegisterIn(Schema):
    hostname: ClientText = Field(min_length=1, max_length=255)
    os: ClientText = Field("", max_length=255)
    client_version: ClientText = Field("", max_length=64)
    machine_id: ClientText = Field(min_length=1, max_length=255)


class RegisterOut(Schema):
    client_id: int
    client_token: str


class CertificateOut(Schema):
    sha1: str
    sha256: str
    common_name: str
    certificate: str = Field(description="Base64 DER.")
    chain: list[str] = Field(description="Issuer certificates, base64 DER, leaf's issuer first.")
    key_type: str
    key_size: int
    not_after: str = Field(description="ISO 8601, UTC.")
    key_location: str | None = Field(
        default=None,
        description="Where the private key lives: `database` (sealed in the service's "
        "database) or `token:LABEL` (in that PKCS#11 token). Added after API 1.0: a client "
        "must not need it.",
    )


class CertificatesOut(Schema):
    certificates: list[CertificateOut]


# 40 or 64 hex digits (SHA-1 or SHA-256), colons allowed between them, blanks around.
FINGERPRINT = r"^\s*(?:(?:[0-9A-Fa-f]:?){39}|(?:[0-9A-Fa-f]:?){63})[0-9A-Fa-f]\s*$"
# Standard base64 with its padding: a digest of 20 (SHA-1) to 64 (SHA-512) bytes.
BASE64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


# The sign endpoints' bodies are plain pydantic models: ninja's Schema wraps every object it
# validates in a getter for model attributes, which the sign path never hands it; in a batch
# that cost 9 µs an item against 1 (bench/README.md, issue 20).
class SignIn(BaseModel):
    # The limits are stated in the document but checked by signing.py, item by item: in a
    # batch, a malformed item gets its own error and the others are still signed.
    certificate: str = Field(
        description="SHA-1 or SHA-256 fingerprint of the certificate, hex (colons allowed).",
        json_schema_extra={"pattern": FINGERPRINT, "maxLength": 200},
    )
    algorithm: Algorithm
    digest: str = Field(
        description="Base64 of the digest, made with the algorithm's hash; its length must be "
        "the hash's (20 bytes for SHA-1 up to 64 for SHA-512).",
        json_schema_extra={"pattern": BASE64, "minLength": 28, "maxLength": 88, "format": "byte"},
    )


class SignOut(BaseModel):
    signature: str = Field(description="Base64; DER for ECDSA.")


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorOut(Schema):
    error: ErrorDetail


class BatchIn(BaseModel):
    requests: list[SignIn] = Field(min_length=1, max_length=MAX_BATCH)


class BatchItemOut(BaseModel):
    signature: str | None = None
    error: ErrorDetail | None = None


class BatchOut(BaseModel):
    results: list[BatchItemOut]
