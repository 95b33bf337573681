"""Signing for the client API: find the identity a caller may use, check the request, sign.

Nothing here returns a signature to the caller; the endpoints do, once the audit is committed.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import logging
import re
from dataclasses import dataclass

from django.utils import timezone

from signing_manager.algorithms import Algorithm
from signing_service.access.models import ApiKey
from signing_service.api import lookups
from signing_service.api.errors import ApiError, bad_parameters, key_unavailable, unknown_identity
from signing_service.identities.hsm import TokenUnavailable
from signing_service.identities.models import Identity
from signing_service.identities.signers import signer_for

log = logging.getLogger(__name__)

FINGERPRINT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


@dataclass
class SignJob:
    """One digest to sign, and what became of it."""

    fingerprint: str
    algorithm: Algorithm
    encoded_digest: str
    identity: Identity | None = None
    digest: bytes = b""
    signature: bytes | None = None
    error: ApiError | None = None


def find_identity(fingerprint: str, api_key: ApiKey, cache: dict | None = None) -> Identity:
    """The identity with this SHA-1 or SHA-256 fingerprint (normalised): 404 if none. It
    carries ``authorized`` (may ``api_key`` use it) and ``identities_version``."""
    if cache is not None and fingerprint in cache:
        return cache[fingerprint]
    identity = lookups.identity_for(fingerprint, api_key)
    if identity is None:
        raise unknown_identity(fingerprint)
    if cache is not None:
        cache[fingerprint] = identity
    return identity


def normal_fingerprint(fingerprint: str) -> str:
    fingerprint = fingerprint.strip().lower().replace(":", "")
    if not FINGERPRINT.fullmatch(fingerprint):
        raise bad_parameters("certificate must be a SHA-1 or SHA-256 fingerprint in hex.")
    return fingerprint


def check_usable(identity: Identity, fingerprint: str) -> None:
    """404 unless the identity is active and the caller's key is authorized to use it (as for
    an identity that does not exist); 403 unless its certificate is valid now."""
    name = identity.common_name
    if not identity.is_active:
        raise unknown_identity(fingerprint, "inactive_identity", f"“{name}” is inactive.")
    if not identity.authorized:
        raise unknown_identity(
            fingerprint,
            "unauthorized_identity",
            f"This API key is not authorized to use “{name}”.",
        )
    check_valid(identity, timezone.now())


def check_valid(identity: Identity, now: datetime.datetime) -> None:
    """403 outside the certificate's validity."""
    problem = identity.validity_problem(now)
    if problem:
        raise ApiError(403, *problem)


def decode_digest(job: SignJob) -> bytes:
    try:
        digest = base64.b64decode(job.encoded_digest, validate=True)
    except (binascii.Error, ValueError):
        raise bad_parameters("digest is not valid base64.") from None
    if len(digest) != job.algorithm.digest_size:
        raise bad_parameters(
            f"{job.algorithm} needs a {job.algorithm.digest_size}-byte digest, "
            f"not {len(digest)} bytes."
        )
    return digest


def prepare(job: SignJob, api_key: ApiKey, cache: dict | None = None) -> None:
    """Resolve the identity and digest of a job, or set its error."""
    try:
        fingerprint = normal_fingerprint(job.fingerprint)
        job.identity = find_identity(fingerprint, api_key, cache)
        # Decoded before the checks so a refusal's audit record holds the digest too, but an
        # unusable identity is reported before a malformed digest.
        try:
            job.digest = decode_digest(job)
        except ApiError as digest_error:
            check_usable(job.identity, fingerprint)
            raise digest_error from None
        check_usable(job.identity, fingerprint)
        if job.algorithm.key_type != job.identity.key_type:
            raise bad_parameters(
                f"{job.algorithm} cannot be used with the {job.identity.key_type} key "
                f"of “{job.identity.common_name}”."
            )
    except ApiError as error:
        job.error = error


def sign_jobs(jobs: list[SignJob]) -> None:
    """Sign every prepared job, decrypting each identity's key (or reaching its token) once.
    A token that is unavailable fails its identity's jobs with 503, which the audit records."""
    by_identity: dict[int, list[SignJob]] = {}
    for job in jobs:
        if job.error is None:
            by_identity.setdefault(job.identity.pk, []).append(job)
    for group in by_identity.values():
        identity = group[0].identity
        try:
            signatures = signer_for(identity, identity.identities_version).sign_digests(
                [(job.digest, job.algorithm) for job in group]
            )
        except TokenUnavailable as error:
            log.warning("Could not sign with “%s”: %s", identity.common_name, error)
            for job in group:
                job.error = key_unavailable(identity.common_name, str(error))
            continue
        for job, signature in zip(group, signatures, strict=True):
            job.signature = signature
