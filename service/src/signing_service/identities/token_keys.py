"""Identities whose keys live in a PKCS#11 token: generating a key pair there with its CSR,
attaching the certificate a CA issued for it, importing a .p12's key into a token, and moving a
sealed key into one.

Every private key created here is sensitive and non-extractable, so the token never gives it
out (not its value, not wrapped under another key), and it is not kept anywhere else. The CSR is
PKCS#10 (RFC 2986): its CertificationRequestInfo is built with asn1crypto and signed by the key
in the token, the one signer cryptography's CSR builder cannot drive.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from asn1crypto import csr as asn1_csr
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID
from django.db import transaction

from signing_manager.algorithms import Algorithm
from signing_manager.cms import ASN1_ERRORS
from signing_manager.key_usage import code_signing_problem
from signing_service.authorities.reading import name_of
from signing_service.identities import hsm
from signing_service.identities.models import Identity, PendingIdentity
from signing_service.identities.p12 import ParsedIdentity
from signing_service.identities.signers import Pkcs11Signer


@dataclass(frozen=True)
class KeySpec:
    """A kind of key an admin may generate, and the signature its CSR carries."""

    label: str
    key_type: str
    key_size: int
    curve: str = ""  # EC only
    csr_algorithm: Algorithm = Algorithm.RSA_PKCS1V15_SHA256
    csr_signature_name: str = "sha256_rsa"  # asn1crypto's name for it


KEY_SPECS = {
    "rsa2048": KeySpec("RSA 2048 (for Apple's Developer ID)", "RSA", 2048),
    "rsa3072": KeySpec("RSA 3072", "RSA", 3072),
    "rsa4096": KeySpec("RSA 4096", "RSA", 4096),
    "ec-p256": KeySpec("EC P-256", "EC", 256, "secp256r1", Algorithm.ECDSA_SHA256, "sha256_ecdsa"),
    "ec-p384": KeySpec("EC P-384", "EC", 384, "secp384r1", Algorithm.ECDSA_SHA384, "sha384_ecdsa"),
}
MAX_CERTIFICATE_FILE = 1024 * 1024  # a leaf and its chain are a few KiB


class TokenKeyError(ValueError):
    """The request cannot be carried out; the message says why, for the admin."""


@dataclass(frozen=True)
class Subject:
    """The subject an admin asks for (Apple's portal reads only the CSR's key; a CA that takes
    the subject from it reads these)."""

    common_name: str
    email: str = ""
    organization: str = ""
    organizational_unit: str = ""
    country: str = ""

    def name(self) -> x509.Name:
        attributes = [
            (NameOID.COUNTRY_NAME, self.country),
            (NameOID.ORGANIZATION_NAME, self.organization),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, self.organizational_unit),
            (NameOID.COMMON_NAME, self.common_name),
            (NameOID.EMAIL_ADDRESS, self.email),
        ]
        try:
            return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes if value])
        except ValueError as error:  # e.g. a country that is not two letters
            raise TokenKeyError(f"The subject is not valid: {error}") from None


def private_key_template(pkcs11, label: str) -> dict:
    """What makes a private key stay in its token: stored, private, sensitive, never
    extractable, and good for signing only."""
    attribute = pkcs11.Attribute
    return {
        attribute.TOKEN: True,
        attribute.PRIVATE: True,
        attribute.SENSITIVE: True,
        attribute.EXTRACTABLE: False,
        attribute.SIGN: True,
        attribute.DECRYPT: False,
        attribute.UNWRAP: False,
        attribute.LABEL: label,
    }


def new_key_id() -> bytes:
    return secrets.token_bytes(16)


def generate_in_token(token_label: str, key_spec: str, subject: Subject) -> PendingIdentity:
    """A new key pair in the token and its CSR, kept as a pending identity (saved)."""
    if key_spec not in KEY_SPECS:
        raise TokenKeyError(f"Choose one of {', '.join(KEY_SPECS)}, not {key_spec!r}.")
    spec = KEY_SPECS[key_spec]
    name = subject.name()
    pkcs11 = hsm.pkcs11_module()
    key_id = new_key_id()
    with hsm.sessions().session(token_label) as session:
        template = private_key_template(pkcs11, subject.common_name[:64])
        public_template = {pkcs11.Attribute.TOKEN: True, pkcs11.Attribute.VERIFY: True}
        if spec.key_type == "RSA":
            public, _ = session.generate_keypair(
                pkcs11.KeyType.RSA, spec.key_size, id=key_id, store=True,
                public_template=public_template, private_template=template,
            )  # fmt: skip
            spki = rsa_spki(pkcs11.util.rsa.encode_rsa_public_key(public))
        else:
            parameters = session.create_domain_parameters(
                pkcs11.KeyType.EC,
                {
                    pkcs11.Attribute.EC_PARAMS: pkcs11.util.ec.encode_named_curve_parameters(
                        spec.curve
                    )
                },
                local=True,
            )
            public, _ = parameters.generate_keypair(
                id=key_id, store=True, public_template=public_template, private_template=template
            )
            spki = pkcs11.util.ec.encode_ec_public_key(public)
    csr = signed_request(token_label, key_id, name, spki, spec)
    return PendingIdentity.objects.create(
        common_name=subject.common_name,
        token_label=token_label,
        token_key_id=key_id.hex(),
        key_type=spec.key_type,
        key_size=spec.key_size,
        csr_der=csr,
    )


def rsa_spki(pkcs1_public_key: bytes) -> bytes:
    return asn1_keys.PublicKeyInfo.wrap(asn1_keys.RSAPublicKey.load(pkcs1_public_key), "rsa").dump()


def signed_request(
    token_label: str, key_id: bytes, name: x509.Name, spki: bytes, spec: KeySpec
) -> bytes:
    """The DER of a PKCS#10 request for ``name`` and the public key ``spki``, signed in the
    token by the key ``key_id`` as ``spec`` says (SHA-256; SHA-384 for P-384)."""
    info = asn1_csr.CertificationRequestInfo(
        {
            "version": "v1",
            "subject": asn1_x509.Name.load(name.public_bytes()),
            "subject_pk_info": asn1_keys.PublicKeyInfo.load(spki),
            "attributes": [],
        }
    )
    algorithm = spec.csr_algorithm
    digest = hashlib.new(algorithm.hash_algorithm.name, info.dump()).digest()
    signature = Pkcs11Signer(token_label, key_id).sign_digest(digest, algorithm)
    return asn1_csr.CertificationRequest(
        {
            "certification_request_info": info,
            "signature_algorithm": {"algorithm": spec.csr_signature_name},
            "signature": signature,
        }
    ).dump()


def read_certificates(data: bytes) -> list[x509.Certificate]:
    """The certificates of an uploaded file: PEM (one or more), DER, or PKCS#7 (.p7b, .p7c,
    some .cer), PEM or DER."""
    if not data.strip():
        raise TokenKeyError("The file is empty.")
    if len(data) > MAX_CERTIFICATE_FILE:
        raise TokenKeyError("The file is larger than 1 MiB; a certificate is a few KiB.")
    if b"PRIVATE KEY-----" in data:
        raise TokenKeyError("The file holds a private key: upload the certificate only.")
    is_pem = data.lstrip().startswith(b"-----BEGIN")
    readers = (
        [x509.load_pem_x509_certificates, pkcs7.load_pem_pkcs7_certificates]
        if is_pem
        else [lambda der: [x509.load_der_x509_certificate(der)], pkcs7.load_der_pkcs7_certificates]
    )
    for reader in readers:
        try:
            certificates = reader(data)
            for certificate in certificates:  # parsed lazily: read everything now
                certificate.subject, certificate.issuer, certificate.public_key()
                list(certificate.extensions)
        except (*ASN1_ERRORS, x509.DuplicateExtension, x509.InvalidVersion):
            continue
        if certificates:
            return certificates
    raise TokenKeyError(
        "This is not a certificate or a certificate chain (PEM, DER or PKCS#7), or it is corrupt."
    )


def public_key_der(key) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def attach_certificate(
    pending: PendingIdentity, data: bytes, allow_any_usage: bool = False
) -> Identity:
    """The identity that the uploaded certificate (with its chain, if the file has one) makes
    of a pending key; refused unless it is for that very key, new, and for code signing."""
    certificates = read_certificates(data)
    wanted = public_key_der(pending.csr().public_key())
    leaf = next((c for c in certificates if public_key_der(c.public_key()) == wanted), None)
    if leaf is None:
        raise TokenKeyError(
            "This certificate is for another key, not the one generated for "
            f"“{pending.common_name}”: upload the certificate issued for its CSR."
        )
    problem = code_signing_problem(leaf)
    if problem and not allow_any_usage:
        raise TokenKeyError(f"The certificate is not for code signing: {problem}.")
    identity = Identity()
    identity.fill_certificate(leaf, [c for c in certificates if c != leaf], bool(problem))
    identity.keep_key_in_token(pending.token_label, bytes.fromhex(pending.token_key_id))
    if existing := Identity.objects.filter(sha256=identity.sha256).first():
        raise TokenKeyError(f"This certificate is already imported as “{existing.common_name}”.")
    with transaction.atomic():
        identity.save()
        pending.delete()
    return identity


def fill_identity(identity: Identity, parsed: ParsedIdentity, token_label: str = "") -> None:
    """Take a parsed .p12 into the record (not saved): its key sealed in the record, or, with
    ``token_label``, created in that token and kept nowhere else."""
    identity.fill_certificate(parsed.certificate, parsed.chain, parsed.usage_check_overridden)
    if token_label:
        key_id = create_in_token(parsed.private_key, token_label, parsed.certificate)
        identity.keep_key_in_token(token_label, key_id)
    else:
        identity.seal_key(parsed.private_key_der())


def discard_pending(pending: PendingIdentity) -> None:
    """Destroy a pending identity's key pair in its token, then forget it."""
    pkcs11 = hsm.pkcs11_module()
    with hsm.sessions().session(pending.token_label) as session:
        for key in session.get_objects({pkcs11.Attribute.ID: bytes.fromhex(pending.token_key_id)}):
            key.destroy()
    pending.delete()


def create_in_token(private_key, token_label: str, certificate: x509.Certificate) -> bytes:
    pkcs11 = hsm.pkcs11_module()
    key_id = new_key_id()
    if isinstance(private_key, rsa.RSAPrivateKey):
        decode = pkcs11.util.rsa.decode_rsa_private_key
    elif isinstance(private_key, ec.EllipticCurvePrivateKey):
        decode = pkcs11.util.ec.decode_ec_private_key
    else:
        raise TokenKeyError("Only RSA and EC keys can be kept in a token.")
    attributes = decode(  # PKCS#1 RSAPrivateKey or SEC 1 ECPrivateKey, as python-pkcs11 reads
        private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    attributes.update(private_key_template(pkcs11, name_of(certificate)[:64]))
    attributes[pkcs11.Attribute.ID] = key_id
    with hsm.sessions().session(token_label) as session:
        session.create_object(attributes)
    return key_id


def move_to_token(identity: Identity, token_label: str) -> None:
    """Put a sealed identity's key into the token, then drop the sealed copy (saved)."""
    if identity.token_label:
        raise TokenKeyError(f"The key of “{identity.common_name}” is in a token already.")
    key_id = create_in_token(identity.private_key(), token_label, identity.certificate())
    identity.keep_key_in_token(token_label, key_id)
    identity.save(
        update_fields=[
            "token_label", "token_key_id", "wrapped_data_key", "encrypted_private_key", "updated"
        ]
    )  # fmt: skip
