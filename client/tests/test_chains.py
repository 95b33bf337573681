"""Chain completion: from a leaf to a root through issuers whose signatures verify."""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from signing_manager.apple_pki import apple_certificates
from signing_manager.chains import complete_chain

LEAVES = Path(__file__).parent / "data" / "apple-leaves"
NOW = datetime.datetime.now(datetime.UTC)


def common_name(certificate: x509.Certificate) -> str:
    return certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def issue(subject: str, issuer=None, *, ca=True, days=(-1, 365), key_ids=True, key=None):
    """(certificate, key); self-signed without ``issuer`` (a (certificate, key) pair)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    issuer_name = issuer[0].subject if issuer else x509.Name.from_rfc4514_string(f"CN={subject}")
    signing_key = issuer[1] if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name.from_rfc4514_string(f"CN={subject}"))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW + datetime.timedelta(days=days[0]))
        .not_valid_after(NOW + datetime.timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if key_ids:
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        ).add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()),
            critical=False,
        )
    return builder.sign(signing_key, hashes.SHA256()), key


def test_real_developer_id_leaves_complete_to_apple_root_ca():
    for name in ["application", "installer"]:
        leaf = x509.load_der_x509_certificate(
            (LEAVES / f"apple-signed-developer-id-{name}.cer").read_bytes()
        )

        chain = complete_chain(leaf, apple_certificates())

        assert [common_name(c) for c in chain.issuers] == [
            "Developer ID Certification Authority",
            "Apple Root CA",
        ]
        assert chain.complete
        assert chain.root == chain.issuers[-1]


def test_a_three_level_chain_is_completed_from_candidates_in_any_order():
    root = issue("Root")
    intermediate = issue("Intermediate", root)
    leaf, _ = issue("Leaf", intermediate, ca=False)

    chain = complete_chain(leaf, [root[0], intermediate[0]])

    assert chain.issuers == (intermediate[0], root[0])
    assert chain.complete


def test_a_missing_issuer_leaves_the_chain_incomplete_as_far_as_it_reaches():
    root = issue("Root")
    intermediate = issue("Intermediate", root)
    leaf, _ = issue("Leaf", intermediate, ca=False)

    assert complete_chain(leaf, [root[0]]).issuers == ()
    partial = complete_chain(leaf, [intermediate[0]])
    assert partial.issuers == (intermediate[0],)
    assert not partial.complete
    assert partial.root is None


def test_a_stand_in_with_the_issuers_name_but_another_key_is_passed_over():
    root = issue("Root")
    leaf, _ = issue("Leaf", root, ca=False, key_ids=False)
    stand_in, _ = issue("Root", key_ids=False)  # same name, self-signed, its own key

    chain = complete_chain(leaf, [stand_in, root[0]])

    assert chain.issuers == (root[0],)


def test_a_candidate_whose_key_identifier_differs_is_passed_over_before_any_signature_check():
    root = issue("Root")
    leaf, _ = issue("Leaf", root, ca=False)
    other_id, _ = issue("Root")  # same name; its subject key identifier is its own key's

    assert complete_chain(leaf, [other_id]).issuers == ()
    assert complete_chain(leaf, [other_id, root[0]]).issuers == (root[0],)


def test_an_issuer_valid_now_is_preferred_to_an_expired_one_with_the_same_key():
    root_key = ec.generate_private_key(ec.SECP256R1())
    expired, _ = issue("Root", days=(-400, -10), key=root_key)
    current, _ = issue("Root", key=root_key)
    leaf, _ = issue("Leaf", (current, root_key), ca=False)

    assert complete_chain(leaf, [expired, current]).issuers == (current,)


def test_issuers_that_certify_each_other_end_the_walk():
    key_a = ec.generate_private_key(ec.SECP256R1())
    key_b = ec.generate_private_key(ec.SECP256R1())
    a_by_b, _ = issue("A", (issue("B", key=key_b)[0], key_b), key=key_a)
    b_by_a, _ = issue("B", (a_by_b, key_a), key=key_b)
    leaf, _ = issue("Leaf", (a_by_b, key_a), ca=False)

    chain = complete_chain(leaf, [a_by_b, b_by_a])

    assert chain.issuers == (a_by_b, b_by_a)
    assert not chain.complete


def test_a_self_signed_leaf_is_its_own_complete_chain():
    leaf, _ = issue("Self")

    chain = complete_chain(leaf, apple_certificates())

    assert chain.issuers == ()
    assert chain.complete


def test_apple_root_cas_sha1_self_signature_is_checked_too():
    # cryptography's own check refuses SHA-1, which Apple Root CA (2006) signs itself with.
    leaf = x509.load_der_x509_certificate(
        (LEAVES / "apple-signed-developer-id-application.cer").read_bytes()
    )
    root = next(c for c in apple_certificates() if common_name(c) == "Apple Root CA")
    damaged = bytearray(root.public_bytes(serialization.Encoding.DER))
    damaged[-1] ^= 0x01  # the last byte of the signature
    others = [c for c in apple_certificates() if c != root]

    chain = complete_chain(leaf, [*others, x509.load_der_x509_certificate(bytes(damaged))])

    assert len(chain.issuers) == 2  # the damaged root still issued the intermediate...
    assert not chain.complete  # ...but is no root: its self-signature does not verify
