"""Identities: a code-signing certificate, its chain, and its private key sealed at rest."""

from __future__ import annotations

import base64
import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models import Q
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from signing_manager.apple_pki import apple_certificates
from signing_manager.chains import complete_chain
from signing_service.authorities.models import CertificateAuthority
from signing_service.identities import envelope
from signing_service.identities.certificates import CertificateFacts, describe
from signing_service.identities.p12 import P12Error, ParsedIdentity, parse_p12
from signing_service.master_key import current_master_key


class IdentityQuerySet(models.QuerySet):
    def usable_by(self, api_key) -> IdentityQuerySet:
        """Active identities that the key is authorized for (all keys, or chosen ones)."""
        return (
            self.filter(is_active=True)
            .filter(Q(authorize_all_keys=True) | Q(authorized_keys=api_key))
            .distinct()
        )


class Identity(models.Model):
    """A signing identity. Inactive: offered to and usable by nobody."""

    common_name = models.CharField(max_length=255)
    sha1 = models.CharField("SHA-1 fingerprint", max_length=40, unique=True)
    sha256 = models.CharField("SHA-256 fingerprint", max_length=64, unique=True)
    certificate_der = models.BinaryField()
    supplied_chain = models.JSONField(
        default=list, help_text="The .p12's other certificates, base64 DER."
    )
    chain = models.JSONField(
        default=list, help_text="The completed chain, base64 DER, the leaf's issuer first."
    )
    chain_reaches_root = models.BooleanField(default=False)
    usage_check_overridden = models.BooleanField(
        default=False, help_text="Imported although its certificate is not for code signing."
    )
    key_type = models.CharField(max_length=8)
    key_size = models.PositiveIntegerField()
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    # Where the private key lives: sealed in these two fields, or (token_label set) in that
    # PKCS#11 token under the id token_key_id, the fields then empty. Never both.
    wrapped_data_key = models.BinaryField(blank=True, default=b"")
    encrypted_private_key = models.BinaryField(blank=True, default=b"")
    token_label = models.CharField(
        max_length=32,
        blank=True,
        help_text="The PKCS#11 token holding the key; empty: sealed here.",
    )
    token_key_id = models.CharField(
        max_length=64, blank=True, help_text="The key's CKA_ID in its token, hex."
    )
    is_active = models.BooleanField(default=True)
    authorize_all_keys = models.BooleanField(default=True)
    authorized_keys = models.ManyToManyField(
        "access.ApiKey", blank=True, related_name="authorized_identities"
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = IdentityQuerySet.as_manager()

    class Meta:
        ordering = ["common_name", "id"]
        verbose_name_plural = "identities"

    def __str__(self) -> str:
        return self.common_name

    def fill_from(self, parsed: ParsedIdentity) -> None:
        """Take certificate, chain and (sealed) key from a parsed .p12; the record is not saved."""
        self.fill_certificate(parsed.certificate, parsed.chain, parsed.usage_check_overridden)
        self.seal_key(parsed.private_key_der())

    def fill_certificate(
        self,
        certificate: x509.Certificate,
        chain: list[x509.Certificate],
        usage_check_overridden: bool = False,
    ) -> None:
        """Take a certificate, the chain that came with it, and what they say; not saved."""
        facts = describe(certificate)
        self.common_name = facts.common_name
        self.sha1, self.sha256 = facts.sha1, facts.sha256
        self.certificate_der = certificate.public_bytes(serialization.Encoding.DER)
        self.supplied_chain = encode_certificates(chain)
        self.usage_check_overridden = usage_check_overridden
        self.complete_chain()
        self.key_type, self.key_size = facts.key_type, facts.key_size
        self.not_before, self.not_after = facts.not_before, facts.not_after

    def seal_key(self, private_key_der: bytes) -> None:
        """Keep the key sealed in this record (under the master key); not saved."""
        sealed = envelope.seal(private_key_der, current_master_key(), self.seal_context)
        self.wrapped_data_key = sealed.wrapped_data_key
        self.encrypted_private_key = sealed.ciphertext
        self.token_label = self.token_key_id = ""

    def keep_key_in_token(self, token_label: str, key_id: bytes) -> None:
        """Record that the key lives in a token, and drop any sealed copy; not saved."""
        self.token_label, self.token_key_id = token_label, key_id.hex()
        self.wrapped_data_key = self.encrypted_private_key = b""

    @property
    def token_key_id_bytes(self) -> bytes:
        return bytes.fromhex(self.token_key_id)

    @property
    def key_location(self) -> str:
        """Where the private key lives, as the pages and the API say it."""
        return f"token:{self.token_label}" if self.token_label else "database"

    @property
    def seal_context(self) -> bytes:
        return b"identity:" + self.sha256.encode()

    def certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(bytes(self.certificate_der))

    def chain_certificates(self) -> list[x509.Certificate]:
        return decode_certificates(self.chain)

    def complete_chain(self, authorities: list[x509.Certificate] | None = None) -> None:
        """Build the chain from the .p12's certificates, then ``authorities`` (by default
        Apple's CAs and the uploaded ones), in that order of preference; not saved."""
        if authorities is None:
            authorities = known_authorities()
        candidates = [*decode_certificates(self.supplied_chain), *authorities]
        chain = complete_chain(self.certificate(), candidates)
        self.chain = encode_certificates(chain.issuers)
        self.chain_reaches_root = chain.complete

    def facts(self) -> CertificateFacts:
        return describe(self.certificate())

    def private_key(self):
        """The decrypted private key: for the signing path only, never to be logged or shown."""
        sealed = envelope.SealedKey(bytes(self.wrapped_data_key), bytes(self.encrypted_private_key))
        der = envelope.unseal(sealed, current_master_key(), self.seal_context)
        # The key was checked against its certificate at import; skipping the RSA consistency
        # check again keeps it off every signature's path.
        return serialization.load_der_private_key(
            der, password=None, unsafe_skip_rsa_key_validation=True
        )

    def validity_problem(self, now: datetime.datetime) -> tuple[str, str] | None:
        """``(code, sentence)`` when the certificate is outside its validity at ``now``:
        Apple's tools refuse such an identity, and its signatures would not be trusted."""
        if now > self.not_after:
            return "expired_identity", (
                f"The certificate of “{self.common_name}” expired on "
                f"{self.not_after:%Y-%m-%d %H:%M} UTC; an admin must import its renewal."
            )
        if now < self.not_before:
            return "not_yet_valid_identity", (
                f"The certificate of “{self.common_name}” is valid only from "
                f"{self.not_before:%Y-%m-%d %H:%M} UTC."
            )
        return None


class IdentityVersion(models.Model):
    """One number that every change to any identity (edit, switch, replace, move to a token,
    delete) increases, in the change's transaction: the sign path reads it with the identity,
    and a worker holding decrypted keys (key_cache.py) drops them all when it has moved. One
    row, ``id`` 1, made by the migration; without it nothing is cached."""

    number = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"identities version {self.number}"

    @classmethod
    def increase(cls) -> None:
        if not cls.objects.filter(pk=1).update(number=models.F("number") + 1):
            cls.objects.get_or_create(pk=1)  # the row was lost (a flushed database)


@receiver([post_save, post_delete], sender=Identity)
def identity_changed(**_) -> None:
    IdentityVersion.increase()


class PendingIdentity(models.Model):
    """A key pair generated in a token, waiting for its certificate: it is no identity yet, so
    nobody can list, authorize or sign with it. The certificate an admin uploads for it
    (token_keys.attach_certificate) makes it an ``Identity`` and this record goes."""

    common_name = models.CharField(max_length=255)
    token_label = models.CharField(max_length=32)
    token_key_id = models.CharField(max_length=64, help_text="The key's CKA_ID, hex.")
    key_type = models.CharField(max_length=8)
    key_size = models.PositiveIntegerField()
    csr_der = models.BinaryField(help_text="The PKCS#10 request, signed by the key.")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["common_name", "id"]

    def __str__(self) -> str:
        return self.common_name

    @property
    def key_location(self) -> str:
        return f"token:{self.token_label}"

    def csr(self) -> x509.CertificateSigningRequest:
        return x509.load_der_x509_csr(bytes(self.csr_der))

    def csr_pem(self) -> str:
        return self.csr().public_bytes(serialization.Encoding.PEM).decode()

    def subject(self) -> str:
        """The requested subject, as RFC 4514 writes it (the email address by its name)."""
        return self.csr().subject.rfc4514_string({NameOID.EMAIL_ADDRESS: "emailAddress"})


def encode_certificates(certificates) -> list[str]:
    return [
        base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        for cert in certificates
    ]


def decode_certificates(encoded: list[str]) -> list[x509.Certificate]:
    return [x509.load_der_x509_certificate(base64.b64decode(item)) for item in encoded]


def known_authorities() -> list[x509.Certificate]:
    """Apple's CAs shipped with the client, then the CAs an admin uploaded."""
    return [*apple_certificates(), *CertificateAuthority.certificates()]


def rebuild_chains() -> int:
    """Complete every identity's chain again (after the CAs changed); how many changed."""
    changed = 0
    authorities = known_authorities()
    for identity in Identity.objects.only(
        "certificate_der", "supplied_chain", "chain", "chain_reaches_root"
    ):
        before = (identity.chain, identity.chain_reaches_root)
        identity.complete_chain(authorities)
        if (identity.chain, identity.chain_reaches_root) != before:
            identity.save(update_fields=["chain", "chain_reaches_root", "updated"])
            changed += 1
    return changed


def read_new_identity(
    data: bytes,
    password: str,
    replacing: Identity | None = None,
    allow_any_usage: bool = False,
):
    """The identity in a .p12, refused (``P12Error``) if another record already holds it."""
    parsed = parse_p12(data, password, allow_any_usage=allow_any_usage)
    duplicate = Identity.objects.filter(sha256=parsed.sha256)
    if replacing is not None:
        duplicate = duplicate.exclude(pk=replacing.pk)
    if existing := duplicate.first():
        raise P12Error(f"This identity is already imported as “{existing.common_name}”.")
    return parsed


def check_master_key() -> None:
    """Refuse (``ImproperlyConfigured``) a master key that does not open the stored identities:
    a service started without the key it was installed with would make a new one, and every
    identity would fail to sign, or be sealed under two keys."""
    identity = Identity.objects.filter(token_label="").only("sha256", "wrapped_data_key").first()
    master_key = current_master_key()
    if identity is None:
        return
    try:
        envelope.unwrap_data_key(
            bytes(identity.wrapped_data_key), master_key, identity.seal_context
        )
    except envelope.UnsealError:
        raise ImproperlyConfigured(
            "The database holds identities sealed under another master key: give this service "
            "the master key it was installed with (SIGNING_SERVICE_MASTER_KEY or "
            "SIGNING_SERVICE_MASTER_KEY_FILE)."
        ) from None
