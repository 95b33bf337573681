"""API key and client token secrets: their format, parsing, and the hash-only storage of keys."""

import hashlib
import re
from unittest import mock

from django.test import SimpleTestCase, TestCase

from signing_service.access import tokens
from signing_service.access.models import ApiKey

# A prefix, a 10-character hex id, and 32 random bytes in URL-safe base64 (43 characters).
SECRET_FORMAT = r"^{prefix}_([0-9a-f]{{10}})_([A-Za-z0-9_-]{{43}})$"


class NewSecretTestCase(SimpleTestCase):
    def test_an_api_key_looks_like_smk_id_random(self):
        secret = tokens.new_secret(tokens.API_KEY_PREFIX)
        match = re.match(SECRET_FORMAT.format(prefix="smk"), secret.value)
        self.assertIsNotNone(match, secret.value)
        self.assertEqual(match.group(1), secret.token_id)

    def test_a_client_token_looks_like_smc_id_random(self):
        secret = tokens.new_secret(tokens.CLIENT_TOKEN_PREFIX)
        match = re.match(SECRET_FORMAT.format(prefix="smc"), secret.value)
        self.assertIsNotNone(match, secret.value)
        self.assertEqual(match.group(1), secret.token_id)

    def test_its_digest_is_the_sha256_of_the_whole_secret(self):
        secret = tokens.new_secret(tokens.API_KEY_PREFIX)
        self.assertEqual(secret.digest, hashlib.sha256(secret.value.encode()).hexdigest())
        self.assertNotIn(secret.value.rsplit("_", 1)[-1], secret.digest)

    def test_every_secret_is_new(self):
        values = {tokens.new_secret(tokens.API_KEY_PREFIX).value for _ in range(50)}
        ids = {value.split("_")[1] for value in values}
        self.assertEqual(len(values), 50)
        self.assertEqual(len(ids), 50)


class SplitSecretTestCase(SimpleTestCase):
    def test_it_finds_the_id_of_a_well_formed_secret(self):
        secret = tokens.new_secret(tokens.API_KEY_PREFIX)
        self.assertEqual(tokens.split_secret(secret.value, "smk"), secret.token_id)

    def test_the_random_part_may_contain_underscores(self):
        for random_part in ["_leading", "in_the_middle", "trailing_", "__"]:
            with self.subTest(random_part):
                value = f"smk_0123456789_{random_part}"
                self.assertEqual(tokens.split_secret(value, "smk"), "0123456789")

    def test_it_rejects_malformed_secrets(self):
        for value in [
            "",
            "smk",
            "smk_",
            "smk_0123456789",
            "smk_012345678_random",
            "smk_01234567890_random",
            "smk__random",
            "SMK_0123456789_random",
            " smk_0123456789_random",
            "xsmk_0123456789_random",
            "smk-0123456789-random",
            "Bearer smk_0123456789_random",
        ]:
            with self.subTest(value=value):
                self.assertIsNone(tokens.split_secret(value, "smk"))

    def test_it_rejects_a_secret_of_the_other_kind(self):
        key = tokens.new_secret(tokens.API_KEY_PREFIX).value
        client_token = tokens.new_secret(tokens.CLIENT_TOKEN_PREFIX).value
        self.assertIsNone(tokens.split_secret(key, tokens.CLIENT_TOKEN_PREFIX))
        self.assertIsNone(tokens.split_secret(client_token, tokens.API_KEY_PREFIX))


class SecretMatchesTestCase(SimpleTestCase):
    def test_it_matches_the_secret_of_the_digest_only(self):
        secret = tokens.new_secret(tokens.API_KEY_PREFIX)
        other = tokens.new_secret(tokens.API_KEY_PREFIX)
        self.assertTrue(tokens.secret_matches(secret.value, secret.digest))
        self.assertFalse(tokens.secret_matches(other.value, secret.digest))
        self.assertFalse(tokens.secret_matches(secret.value + "x", secret.digest))
        self.assertFalse(tokens.secret_matches(secret.value[:-1], secret.digest))
        self.assertFalse(tokens.secret_matches(secret.digest, secret.digest))
        self.assertFalse(tokens.secret_matches("", secret.digest))

    def test_it_compares_in_constant_time(self):
        secret = tokens.new_secret(tokens.API_KEY_PREFIX)
        with mock.patch.object(
            tokens.hmac, "compare_digest", wraps=tokens.hmac.compare_digest
        ) as compare:
            tokens.secret_matches(secret.value, secret.digest)
        compare.assert_called_once()


class ApiKeyCreateTestCase(TestCase):
    def test_it_stores_only_the_hash_of_the_secret(self):
        key, secret = ApiKey.create("build machines")
        token_id, random_part = tokens.split_secret(secret, "smk"), secret.split("_", 2)[2]
        self.assertEqual(key.token_id, token_id)
        self.assertEqual(key.secret_hash, hashlib.sha256(secret.encode()).hexdigest())
        row = ApiKey.objects.filter(pk=key.pk).values().get()
        for column, value in row.items():
            with self.subTest(column=column):
                self.assertNotIn(secret, str(value))
                self.assertNotIn(random_part, str(value))

    def test_it_returns_a_secret_of_the_api_key_kind(self):
        _, secret = ApiKey.create("build machines")
        self.assertRegex(secret, SECRET_FORMAT.format(prefix="smk"))

    def test_every_key_gets_its_own_secret(self):
        first, first_secret = ApiKey.create("one")
        second, second_secret = ApiKey.create("two")
        self.assertNotEqual(first_secret, second_secret)
        self.assertNotEqual(first.token_id, second.token_id)


class ApiKeyFindTestCase(TestCase):
    def setUp(self):
        self.key, self.secret = ApiKey.create("build machines")
        self.other, self.other_secret = ApiKey.create("release machines")

    def test_it_finds_the_key_of_its_secret(self):
        self.assertEqual(ApiKey.find(self.secret), self.key)
        self.assertEqual(ApiKey.find(self.other_secret), self.other)

    def test_it_finds_an_inactive_key_too(self):
        self.key.is_active = False
        self.key.save()
        self.assertEqual(ApiKey.find(self.secret), self.key)

    def test_a_wrong_secret_with_the_right_id_finds_nothing(self):
        forged = f"smk_{self.key.token_id}_{self.other_secret.split('_', 2)[2]}"
        self.assertIsNone(ApiKey.find(forged))
        self.assertIsNone(ApiKey.find(self.secret[:-1]))
        self.assertIsNone(ApiKey.find(self.secret + "A"))

    def test_the_stored_hash_is_not_a_secret(self):
        self.assertIsNone(ApiKey.find(f"smk_{self.key.token_id}_{self.key.secret_hash}"))
        self.assertIsNone(ApiKey.find(self.key.secret_hash))

    def test_a_malformed_secret_finds_nothing(self):
        for value in [
            "",
            "smk",
            self.key.token_id,
            f"smk_{self.key.token_id}",
            f"smc_{self.key.token_id}_{self.secret.split('_', 2)[2]}",
            self.secret.upper(),
            "garbage",
        ]:
            with self.subTest(value=value):
                self.assertIsNone(ApiKey.find(value))

    def test_a_secret_with_underscores_in_its_random_part_is_found(self):
        with mock.patch.object(tokens.secrets, "token_urlsafe", return_value="_a_b_c_"):
            key, secret = ApiKey.create("underscored")
        self.assertEqual(secret, f"smk_{key.token_id}__a_b_c_")
        self.assertEqual(ApiKey.find(secret), key)
