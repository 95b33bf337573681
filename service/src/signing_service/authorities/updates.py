"""Adding and deleting uploaded CAs; each change re-completes every identity's chain at once,
so the certificates clients receive always reflect the CAs the service holds, and is audited
in the same transaction."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from django.db import transaction

from signing_manager.apple_pki import apple_certificates
from signing_service.audit.admin_actions import Action, Actor, record_admin_action
from signing_service.authorities.models import CertificateAuthority
from signing_service.authorities.reading import CertificateFileError, name_of
from signing_service.identities.models import rebuild_chains


def sha256_of(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


def add_authorities(
    certificates: list[x509.Certificate], actor: Actor
) -> list[CertificateAuthority]:
    """Store the CA certificates (all or none), re-complete the chains and record the upload."""
    shipped = {sha256_of(cert) for cert in apple_certificates()}
    with transaction.atomic():
        added = []
        for certificate in certificates:
            fingerprint = sha256_of(certificate)
            if fingerprint in shipped:
                raise CertificateFileError(f"“{name_of(certificate)}” ships with the service.")
            if CertificateAuthority.objects.filter(sha256=fingerprint).exists():
                raise CertificateFileError(f"“{name_of(certificate)}” is already uploaded.")
            added.append(
                CertificateAuthority.objects.create(
                    common_name=name_of(certificate)[:255],
                    subject=certificate.subject.rfc4514_string(),
                    sha256=fingerprint,
                    certificate_der=certificate.public_bytes(serialization.Encoding.DER),
                    not_after=certificate.not_valid_after_utc,
                    is_root=certificate.subject == certificate.issuer,
                )
            )
        rebuild_chains()
        changes = {
            "common_name": [None, [authority.common_name for authority in added]],
            "sha256": [None, [authority.sha256 for authority in added]],
        }
        record_admin_action(actor, Action.CA_UPLOAD, changes=changes)
    return added


def delete_authority(authority: CertificateAuthority, actor: Actor) -> None:
    with transaction.atomic():
        changes = {"common_name": [authority.common_name, None], "sha256": [authority.sha256, None]}
        record_admin_action(actor, Action.CA_DELETE, authority, changes=changes)
        authority.delete()
        rebuild_chains()
