"""Certificate authorities an admin uploads to complete identities' chains.

A .p12 exported from Keychain Access usually holds only the leaf; Apple's CAs ship with the
client (``signing_manager.apple_pki``), and any other issuer (a company's own code-signing CA)
is uploaded here. Only certificates are kept: they are public.
"""

from __future__ import annotations

from cryptography import x509
from django.db import models


class CertificateAuthority(models.Model):
    common_name = models.CharField(max_length=255)
    subject = models.TextField()
    sha256 = models.CharField("SHA-256 fingerprint", max_length=64, unique=True)
    certificate_der = models.BinaryField()
    not_after = models.DateTimeField()
    is_root = models.BooleanField(help_text="Self-signed: a chain ends here.")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["common_name", "id"]
        verbose_name_plural = "certificate authorities"

    def __str__(self) -> str:
        return self.common_name

    def certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(bytes(self.certificate_der))

    @classmethod
    def certificates(cls) -> list[x509.Certificate]:
        """Every uploaded CA certificate, oldest upload first."""
        rows = cls.objects.order_by("created", "id").values_list("certificate_der", flat=True)
        return [x509.load_der_x509_certificate(bytes(der)) for der in rows]
