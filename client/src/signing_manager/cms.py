"""CMS SignedData (RFC 5652), built once for every signer.

A detached signature over some content: ``SignedData`` with no encapsulated content, the
signer's certificate and chain, and one ``SignerInfo`` whose signed attributes (content type,
message digest, signing time, and any extra attributes a format needs, such as Apple's cdhash
attributes) are what the key signs. The signature is asked of a signer by digest only.
"""

from __future__ import annotations

import datetime
import hashlib

from asn1crypto import algos, cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from signing_manager.algorithms import Algorithm, verify_digest
from signing_manager.timestamp import request_timestamp

# What damaged DER can raise from asn1crypto (which parses lazily) and cryptography.
ASN1_ERRORS = (
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    OverflowError,
    UnsupportedAlgorithm,
)
DIGEST_NAMES = {"sha1": "sha1", "sha256": "sha256", "sha384": "sha384", "sha512": "sha512"}


def asn1_certificate(certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


def common_name(certificate: x509.Certificate) -> str:
    """The subject's common name, or the whole subject when it has none."""
    names = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else certificate.subject.rfc4514_string()


def signature_algorithm(algorithm: Algorithm) -> algos.SignedDigestAlgorithm:
    hash_name = algorithm.hash_algorithm.name
    if algorithm.key_type == "EC":
        return algos.SignedDigestAlgorithm({"algorithm": f"{hash_name}_ecdsa"})
    if algorithm.value.startswith("rsa-pss"):
        parameters = algos.RSASSAPSSParams(
            {
                "hash_algorithm": {"algorithm": hash_name},
                "mask_gen_algorithm": {
                    "algorithm": "mgf1",
                    "parameters": {"algorithm": hash_name},
                },
                "salt_length": algorithm.digest_size,
            }
        )
        return algos.SignedDigestAlgorithm({"algorithm": "rsassa_pss", "parameters": parameters})
    return algos.SignedDigestAlgorithm({"algorithm": "rsassa_pkcs1v15"})


def signed_attributes(
    content_digest: bytes, signing_time: datetime.datetime, extra: list[dict] = ()
) -> cms.CMSAttributes:
    return cms.CMSAttributes(
        [
            {"type": "content_type", "values": ["data"]},
            {"type": "signing_time", "values": [cms.Time({"utc_time": signing_time})]},
            {"type": "message_digest", "values": [content_digest]},
            *extra,
        ]
    )


class DetachedSignature:
    """A detached SignedData in two steps, so that many can share one batch of remote signing:
    ``digest_to_sign`` is what the key must sign; ``finish(signature)`` gives the DER."""

    def __init__(
        self,
        signer,
        content_digest: bytes,
        algorithm: Algorithm,
        *,
        signing_time: datetime.datetime | None = None,
        extra_attributes: list[dict] = (),
    ):
        self.signer = signer
        self.algorithm = algorithm
        self.attributes = signed_attributes(
            content_digest,
            signing_time or datetime.datetime.now(datetime.UTC).replace(microsecond=0),
            list(extra_attributes),
        )
        # What is signed is the DER of the attributes as a SET OF (RFC 5652, section 5.4).
        self.digest_to_sign = hashlib.new(
            algorithm.hash_algorithm.name, self.attributes.dump()
        ).digest()

    def finish(self, signature: bytes, timestamp_url: str | None = None) -> bytes:
        """The DER, with an RFC 3161 timestamp over the signature when a TSA is given."""
        hash_name = self.algorithm.hash_algorithm.name
        certificate = asn1_certificate(self.signer.certificate)
        signer_info = cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier(
                    {
                        "issuer_and_serial_number": {
                            "issuer": certificate.issuer,
                            "serial_number": certificate.serial_number,
                        }
                    }
                ),
                "digest_algorithm": {"algorithm": hash_name},
                "signed_attrs": self.attributes,
                "signature_algorithm": signature_algorithm(self.algorithm),
                "signature": signature,
            }
        )
        if timestamp_url:
            token = request_timestamp(timestamp_url, signature)
            signer_info["unsigned_attrs"] = cms.CMSAttributes(
                [{"type": "signature_time_stamp_token", "values": [token]}]
            )
        chain = [asn1_certificate(c) for c in self.signer.chain]
        signed_data = cms.SignedData(
            {
                "version": "v1",
                "digest_algorithms": [{"algorithm": hash_name}],
                "encap_content_info": {"content_type": "data"},
                "certificates": [certificate, *chain],
                "signer_infos": [signer_info],
            }
        )
        return cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()


def detached_signature(
    signer,
    content_digest: bytes,
    algorithm: Algorithm,
    *,
    signing_time: datetime.datetime | None = None,
    extra_attributes: list[dict] = (),
) -> bytes:
    """DER of a ContentInfo holding a detached SignedData over content with this digest."""
    pending = DetachedSignature(
        signer,
        content_digest,
        algorithm,
        signing_time=signing_time,
        extra_attributes=extra_attributes,
    )
    return pending.finish(signer.sign_digest(pending.digest_to_sign, algorithm))


# Checking signatures made by anyone (ours, Apple's tools, a TSA's).


def first_attribute_values(signer_info) -> dict:
    return {attr["type"].native: attr["values"][0] for attr in signer_info["signed_attrs"]}


def verify_signer_info(signed_data, signer_info, content: bytes):
    """(problem or None, signer certificate): messageDigest of ``content`` and the signature
    over the signed attributes, with the signer's certificate from the SignedData."""
    try:
        attributes = first_attribute_values(signer_info)
        digest_name = signer_info["digest_algorithm"]["algorithm"].native
        signature_name = signer_info["signature_algorithm"].signature_algo
    except (ValueError, KeyError, TypeError):
        return "is damaged", None
    if digest_name not in DIGEST_NAMES:  # an OID hashlib does not know, in a damaged CMS
        return f"uses a digest algorithm we do not check ({digest_name})", None
    digest = attributes.get("message_digest")
    if digest is None or digest.native != hashlib.new(digest_name, content).digest():
        return "is over other content", None
    try:
        signer = find_signer(signed_data, signer_info)
    except (ValueError, KeyError, TypeError):  # asn1crypto parses certificates when read
        return "carries a damaged certificate", None
    if signer is None:
        return "does not carry its signer's certificate", None
    scheme = "ecdsa" if signature_name == "ecdsa" else "rsa-pkcs1v15"
    try:
        algorithm = Algorithm(f"{scheme}-{digest_name}")
    except ValueError:
        return f"uses an algorithm we do not check ({signature_name}, {digest_name})", signer
    # Signed is the DER of the attributes as a SET OF, not with the [0] tag they carry here.
    signed_attributes_der = b"\x31" + signer_info["signed_attrs"].dump()[1:]
    signed = hashlib.new(digest_name, signed_attributes_der).digest()
    signature = signer_info["signature"].native
    try:
        valid = verify_digest(signer.public_key(), algorithm, signed, signature)
    except (ValueError, UnsupportedAlgorithm):  # a key unreadable, or not of the signature's kind
        valid = False
    if not valid:
        return "does not verify with its certificate", signer
    return None, signer


def find_signer(signed_data, signer_info) -> x509.Certificate | None:
    wanted = signer_info["sid"].chosen
    for candidate in signed_data["certificates"]:
        certificate = candidate.chosen
        if (
            certificate.issuer == wanted["issuer"]
            and certificate.serial_number == wanted["serial_number"].native
        ):
            return x509.load_der_x509_certificate(certificate.dump())
    return None


def verify_timestamp(signer_info) -> tuple[str | None, datetime.datetime | None]:
    """(problem or None, time) of the RFC 3161 token over the signature, if there is one:
    its imprint and the TSA's signature are checked."""
    unsigned = signer_info["unsigned_attrs"]
    tokens = [
        attribute["values"][0]
        for attribute in (unsigned if unsigned.native else [])
        if attribute["type"].native == "signature_time_stamp_token"
    ]
    if not tokens:
        return None, None
    try:
        token_data = tokens[0]["content"]
        info_bytes = token_data["encap_content_info"]["content"].contents
        info = token_data["encap_content_info"]["content"].parsed
        imprint = info["message_imprint"]
        hashed = hashlib.new(
            imprint["hash_algorithm"]["algorithm"].native, signer_info["signature"].native
        ).digest()
    except (ValueError, KeyError, TypeError):
        return "The timestamp is damaged.", None
    if imprint["hashed_message"].native != hashed:
        return "The timestamp is over another signature.", None
    problem, _ = verify_signer_info(token_data, token_data["signer_infos"][0], info_bytes)
    if problem:
        return f"The timestamp {problem}.", None
    return None, info["gen_time"].native
