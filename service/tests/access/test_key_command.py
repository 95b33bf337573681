"""``signing-service apikey create``: the web form's rules for a name."""

import io

from django.core.management import CommandError, call_command

from signing_service.access.models import ApiKey
from signing_service.test import BaseTestCase


class KeyCreateCommandTestCase(BaseTestCase):
    def create(self, name: str) -> str:
        out = io.StringIO()
        call_command("apikey", "create", name, stdout=out)
        return out.getvalue()

    def test_it_prints_the_secret_of_a_new_key(self):
        secret = self.create("build machines")
        self.assertEqual(ApiKey.find(secret.strip()).name, "build machines")

    def test_it_refuses_a_name_over_100_characters_and_says_so(self):
        with self.assertRaisesMessage(CommandError, "The name has 101 characters"):
            self.create("x" * 101)
        self.assertFalse(ApiKey.objects.exists())

    def test_it_refuses_a_name_taken_in_any_case(self):
        self.create("Build Machines")
        with self.assertRaisesMessage(CommandError, "“Build Machines” exists already"):
            self.create("BUILD MACHINES")
        self.assertEqual(ApiKey.objects.count(), 1)
