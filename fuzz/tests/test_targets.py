"""The targets' own judgement: which bytes a signature covers, and that mutations are made
again from their number and reach past the first check (a DER tree written back, a MAC
recomputed)."""

from __future__ import annotations

import random

import pytest
from asn1crypto import pkcs12 as asn1_pkcs12

from fuzz import macho, p12, packages
from fuzz.mutations import mutate
from signing_manager.local_key import LocalSigner
from signing_service.test import make_identity


@pytest.fixture(scope="module")
def signer() -> LocalSigner:
    identity = make_identity("Developer ID Installer: Targets (ABCDE12345)", installer=True)
    return LocalSigner(identity.certificate, identity.private_key, [identity.ca_certificate])


def flipped(data: bytes, position: int) -> bytes:
    changed = bytearray(data)
    changed[position] ^= 0x01
    return bytes(changed)


def test_a_mach_o_seed_knows_what_each_slice_signature_covers(tmp_path, signer):
    made = macho.make_seeds(macho.unsigned_seeds(tmp_path), signer, [])
    seeds = {seed.name: seed for seed in made}
    universal = seeds["universal-exe signed"]
    assert len(universal.signed) == 2  # one range per slice
    (start, end), _ = universal.signed

    assert macho.changed_signed_bytes(universal, flipped(universal.data, start + 100))
    assert macho.changed_signed_bytes(universal, flipped(universal.data, end - 1))
    assert not macho.changed_signed_bytes(universal, flipped(universal.data, end + 8))
    assert not macho.changed_signed_bytes(universal, flipped(universal.data, 4))  # fat header
    assert macho.changed_signed_bytes(universal, universal.data[: end - 1])


def test_a_mutant_is_made_again_from_its_number(tmp_path, signer):
    seed = macho.make_seeds(macho.unsigned_seeds(tmp_path), signer, [])[0]

    def made(number: int) -> bytes:
        return mutate(random.Random(f"1:macho:{number}"), seed.data, seed.layout, 2)[0]

    assert made(7) == made(7)
    assert made(7) != made(8)
    assert all(made(number) != seed.data for number in range(20))


def test_a_package_seed_leaves_only_its_signature_blobs_uncovered(tmp_path, signer):
    seeds = {seed.name: seed for seed in packages.make_seeds(tmp_path, signer, [])}
    signed = seeds["gzip-sha1 signed"]
    (rsa_start, _), (_, cms_end) = signed.signatures

    assert not packages.changed_signed_bytes(signed, flipped(signed.data, cms_end - 1))
    assert not packages.changed_signed_bytes(signed, flipped(signed.data, rsa_start))
    assert not packages.changed_signed_bytes(signed, signed.data + b"appended")
    assert packages.changed_signed_bytes(signed, flipped(signed.data, 40))  # the TOC
    assert packages.changed_signed_bytes(signed, flipped(signed.data, len(signed.data) - 1))
    assert packages.changed_signed_bytes(signed, signed.data[:-1])
    assert not packages.changed_signed_bytes(seeds["stored unsigned"], b"")


def test_a_p12_is_read_and_written_back_byte_for_byte_and_its_mac_recomputed():
    for seed in p12.make_seeds():
        assert p12.read_der(seed)[0].encode() == seed
    protected = p12.make_seeds()[0]
    mac = asn1_pkcs12.Pfx.load(protected)["mac_data"]["mac"]["digest"].native
    broken = protected.replace(mac, bytes(len(mac)))

    assert p12.recompute_mac(broken, p12.PASSWORD) == protected


def test_tree_mutations_change_the_file_and_keep_it_der():
    seed = p12.make_seeds()[0]
    changed = 0
    for number in range(20):
        tree = p12.read_der(seed)[0]
        p12.mutate_tree(random.Random(number), tree)
        mutant = tree.encode()
        changed += mutant != seed  # a few set a value to what it was (an empty NULL)
        assert p12.read_der(mutant)[0].encode() == mutant
    assert changed >= 15
