"""A .p12 that asks for absurd work (issue: hostile files): iteration counts are the file's to
choose, and are checked before any key is derived, with or without the right password. The
reproducers are real OpenSSL exports with one number (or algorithm) changed by asn1crypto."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from asn1crypto import pkcs12 as asn1_pkcs12

from signing_service.identities.p12 import MAX_ITERATIONS, P12Error, parse_p12
from signing_service.test import P12_PASSWORD, make_identity

ABSURD = 2**31 - 1


def edited(p12: bytes, edit_key_bag: Callable[[asn1_pkcs12.SafeBag], None]) -> bytes:
    """``p12`` with ``edit_key_bag`` applied to its shrouded key bag (its MAC then fails)."""
    pfx = asn1_pkcs12.Pfx.load(p12)
    contents = []
    for content in pfx.authenticated_safe:
        if content["content_type"].native == "data":
            bags = asn1_pkcs12.SafeContents.load(content["content"].native)
            for bag in bags:
                if bag["bag_id"].native == "pkcs8_shrouded_key_bag":
                    edit_key_bag(bag)
            content = asn1_pkcs12.ContentInfo(
                {"content_type": "data", "content": bags.dump(force=True)}
            )
        contents.append(content)
    safe = asn1_pkcs12.AuthenticatedSafe(contents).dump()
    return asn1_pkcs12.Pfx(
        {
            "version": pfx["version"],
            "auth_safe": {"content_type": "data", "content": safe},
            "mac_data": pfx["mac_data"],
        }
    ).dump()


def with_mac_iterations(p12: bytes, count: int) -> bytes:
    pfx = asn1_pkcs12.Pfx.load(p12)
    mac = pfx["mac_data"].copy()
    mac["iterations"] = count
    return asn1_pkcs12.Pfx(
        {"version": pfx["version"], "auth_safe": pfx["auth_safe"], "mac_data": mac}
    ).dump()


def key_iterations(count: int) -> Callable[[asn1_pkcs12.SafeBag], None]:
    def edit(bag: asn1_pkcs12.SafeBag) -> None:
        algorithm = bag["bag_value"]["encryption_algorithm"]
        derivation = algorithm["parameters"]["key_derivation_func"]
        derivation["parameters"]["iteration_count"] = count

    return edit


def unknown_key_algorithm(bag: asn1_pkcs12.SafeBag) -> None:
    bag["bag_value"]["encryption_algorithm"]["algorithm"] = "1.3.6.1.4.1.99999.1"


@pytest.fixture(scope="module")
def exported() -> bytes:
    """OpenSSL 3's default export: AES-256-CBC with PBKDF2 (2,048 rounds), HMAC-SHA256 MAC."""
    return make_identity(encoding="aes").p12


@pytest.mark.parametrize("password", [P12_PASSWORD, "wrong password"])
def test_a_mac_asking_for_absurd_work_is_refused_before_it_is_done(exported, password):
    with pytest.raises(P12Error, match=f"asks for {ABSURD:,} iterations to derive its MAC key"):
        parse_p12(with_mac_iterations(exported, ABSURD), password)


def test_a_private_key_asking_for_absurd_work_is_refused_before_it_is_done(exported):
    with pytest.raises(P12Error, match=f"asks for {ABSURD:,} iterations to derive its private"):
        parse_p12(edited(exported, key_iterations(ABSURD)), P12_PASSWORD)


def test_one_iteration_over_the_limit_is_refused_and_the_limit_itself_is_not(exported):
    with pytest.raises(P12Error, match=f"more than {MAX_ITERATIONS:,} is refused"):
        parse_p12(edited(exported, key_iterations(MAX_ITERATIONS + 1)), P12_PASSWORD)
    # At the limit the file is read on, and its MAC (broken by the edit) refuses it.
    with pytest.raises(P12Error, match="The password is wrong"):
        parse_p12(edited(exported, key_iterations(MAX_ITERATIONS)), P12_PASSWORD)


def test_an_unknown_encryption_is_named_not_called_a_wrong_password(exported):
    with pytest.raises(
        P12Error, match=r"encryption \(1\.3\.6\.1\.4\.1\.99999\.1\) is not supported"
    ):
        parse_p12(edited(exported, unknown_key_algorithm), P12_PASSWORD)
