import pytest

from signing_service.identities.envelope import SealedKey, UnsealError, seal, unseal

MASTER = bytes(range(32))
CONTEXT = b"identity:abc"


def test_it_round_trips_and_never_stores_the_plaintext():
    secret = b"private key bytes" * 10
    sealed = seal(secret, MASTER, CONTEXT)
    assert secret not in sealed.ciphertext + sealed.wrapped_data_key
    assert unseal(sealed, MASTER, CONTEXT) == secret


def test_each_seal_uses_a_new_data_key_and_nonce():
    first, second = seal(b"same", MASTER, CONTEXT), seal(b"same", MASTER, CONTEXT)
    assert first.wrapped_data_key != second.wrapped_data_key
    assert first.ciphertext != second.ciphertext


def test_another_master_key_does_not_open_it():
    sealed = seal(b"secret", MASTER, CONTEXT)
    with pytest.raises(UnsealError, match="is this the master key"):
        unseal(sealed, bytes(32), CONTEXT)


def test_a_sealed_key_moved_to_another_record_does_not_open():
    sealed = seal(b"secret", MASTER, CONTEXT)
    with pytest.raises(UnsealError):
        unseal(sealed, MASTER, b"identity:other")


@pytest.mark.parametrize("part", ["wrapped_data_key", "ciphertext"])
def test_any_altered_byte_is_detected(part):
    sealed = seal(b"secret", MASTER, CONTEXT)
    value = bytearray(getattr(sealed, part))
    value[-1] ^= 1
    altered = SealedKey(**{**sealed.__dict__, part: bytes(value)})
    with pytest.raises(UnsealError):
        unseal(altered, MASTER, CONTEXT)


def test_an_unknown_format_version_is_refused():
    sealed = seal(b"secret", MASTER, CONTEXT)
    with pytest.raises(UnsealError, match="Unknown sealed-key format"):
        unseal(SealedKey(b"\x02" + sealed.wrapped_data_key[1:], sealed.ciphertext), MASTER, CONTEXT)
