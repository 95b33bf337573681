import tempfile
from io import StringIO
from pathlib import Path

from django.core.management import CommandError, call_command

from signing_service.accounts.models import User
from signing_service.test import BaseTestCase

STRONG = "a long enough passphrase"


class UserCommandTestCase(BaseTestCase):
    def setUp(self):
        self.directory = Path(self.enterContext(tempfile.TemporaryDirectory()))

    def password_file(self, text: str) -> str:
        path = self.directory / f"password-{len(list(self.directory.iterdir()))}"
        path.write_text(text + "\n")
        return str(path)

    def run_command(self, *args):
        out = StringIO()
        call_command("user", *args, stdout=out)
        return out.getvalue()

    def test_it_creates_an_admin_who_must_change_the_password(self):
        output = self.run_command(
            "create", "dora", "--admin", "--password-file", self.password_file(STRONG)
        )
        self.assertIn("Created admin dora", output)
        dora = User.objects.get(username="dora")
        self.assertTrue(dora.is_admin)
        self.assertTrue(dora.must_change_password)
        self.assertTrue(dora.check_password(STRONG))

    def test_it_sets_a_password(self):
        self.run_command("set-password", "bob", "--password-file", self.password_file(STRONG))
        self.bob.refresh_from_db()
        self.assertTrue(self.bob.check_password(STRONG))
        self.assertTrue(self.bob.must_change_password)

    def test_it_refuses_bad_requests_with_a_clear_message(self):
        cases = [
            (("create", "alice", "--password-file", self.password_file(STRONG)), "already exists"),
            (("set-password", "nobody", "--password-file", self.password_file(STRONG)), "no user"),
            (("create", "dora", "--password-file", self.password_file("short")), "too short"),
            (("create", "dora", "--password-file", "/nonexistent/file"), "Cannot read"),
        ]
        for args, message in cases:
            with self.subTest(message), self.assertRaisesMessage(CommandError, message):
                self.run_command(*args)
        self.assertFalse(User.objects.filter(username="dora").exists())
