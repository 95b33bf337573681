"""Request and response bodies of the client API v1 (DESIGN.md, "Client API v1")."""

from __future__ import annotations

from ninja import Field, Schema

from signing_manager.algorithms import Algorithm

MAX_BATCH = 1000


NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL; refuse it as bad input


class RegisterIn(Schema):
    hostname: str = Field(min_length=1, max_length=255, pattern=NO_NUL)
    os: str = Field("", max_length=255, pattern=NO_NUL)
    client_version: str = Field("", max_length=64, pattern=NO_NUL)
    machine_id: str = Field(min_length=1, max_length=255, pattern=NO_NUL)


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


class CertificatesOut(Schema):
    certificates: list[CertificateOut]


class SignIn(Schema):
    certificate: str = Field(description="SHA-1 or SHA-256 fingerprint of the certificate, hex.")
    algorithm: Algorithm
    digest: str = Field(description="Base64 of the digest, made with the algorithm's hash.")


class SignOut(Schema):
    signature: str = Field(description="Base64; DER for ECDSA.")


class ErrorDetail(Schema):
    code: str
    message: str


class ErrorOut(Schema):
    error: ErrorDetail


class BatchIn(Schema):
    requests: list[SignIn] = Field(min_length=1, max_length=MAX_BATCH)


class BatchItemOut(Schema):
    signature: str | None = None
    error: ErrorDetail | None = None


class BatchOut(Schema):
    results: list[BatchItemOut]
