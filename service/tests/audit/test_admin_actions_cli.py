"""Every admin action of the ops command line writes exactly one admin record, as the web's do:
``source`` cli and the OS user's name instead of a signed-in user; and the new commands refuse
what the web refuses, in one sentence."""

import getpass
import tempfile
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from signing_service.access.models import ApiKey, Client
from signing_service.accounts.models import User, UserAgreement
from signing_service.audit.models import AuditEvent, Source, Status
from signing_service.authorities.models import CertificateAuthority
from signing_service.configuration.models import ServiceSettings
from signing_service.identities import hsm
from signing_service.identities.models import Identity, PendingIdentity
from signing_service.test import (
    BaseTestCase,
    SoftHsm,
    issue_for_request,
    make_client,
    make_identity,
    make_intermediate_ca,
)

STRONG = "a long enough passphrase"
TOKEN = SoftHsm.label  # the label of the run's token, which the token_settings fixture configures


class AdminActionsCliTestCase(BaseTestCase):
    def setUp(self):
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        self.directory = Path(directory.name)

    def write(self, name: str, data: bytes | str) -> str:
        path = self.directory / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return str(path)

    def run_command(self, *args) -> str:
        out = StringIO()
        hsm.sessions().reset()  # a command's own process has not logged in to a token yet
        call_command(*args, stdout=out, stderr=StringIO())
        return out.getvalue()

    def assert_by_operator(self, action: str, changes: dict | None = None) -> AuditEvent:
        event = self.only_admin_record(action)
        self.assertEqual(event.source, Source.CLI)
        self.assertIsNone(event.user)
        self.assertEqual(event.username, getpass.getuser())
        self.assertIsNone(event.address)
        self.assertEqual(event.status, Status.SUCCESS)
        if changes is not None:
            self.assertEqual(event.changes, changes)
        AuditEvent.objects.all().delete()  # the next step's record is then the only one
        return event

    # --- Identities --------------------------------------------------------------------------

    def test_identity_import_replace_toggle_authorize_delete(self):
        made = make_identity()
        password_file = self.write("password", made.password)
        self.run_command(
            "identity", "import", self.write("a.p12", made.p12), "--password-file", password_file
        )
        identity = Identity.objects.get()
        event = self.assert_by_operator("identity.import")
        self.assertEqual((event.identity, event.changes["sha1"]), (identity, [None, made.sha1]))

        new = make_identity()
        self.run_command(
            "identity", "replace", made.sha1.upper(), self.write("b.p12", new.p12),
            "--password-file", self.write("password2", new.password),
        )  # fmt: skip
        event = self.assert_by_operator("identity.edit")
        self.assertEqual(event.changes["sha1"], [made.sha1, new.sha1])

        output = self.run_command("identity", "toggle", new.sha1, "--off")
        self.assertIn("is inactive", output)
        self.assert_by_operator("identity.toggle", {"is_active": [True, False]})
        self.run_command("identity", "toggle", new.sha1, "--off")  # already off: nothing to record
        self.assertFalse(AuditEvent.objects.exists())
        self.run_command("identity", "toggle", new.sha1)
        self.assert_by_operator("identity.toggle", {"is_active": [False, True]})

        build, _ = ApiKey.create("build")
        self.run_command("identity", "authorize", new.sha1, "--only", "build")
        self.assert_by_operator(
            "identity.authorize",
            {"authorize_all_keys": [True, False], "authorized_keys": [[], [str(build)]]},
        )
        self.run_command("identity", "authorize", new.sha1, "--all")
        self.assert_by_operator("identity.authorize", {"authorize_all_keys": [False, True]})
        self.assertEqual(list(Identity.objects.get().authorized_keys.all()), [build])  # kept

        self.run_command("identity", "delete", new.sha1)
        self.assert_by_operator("identity.delete")
        self.assertFalse(Identity.objects.exists())

    def test_identity_commands_refuse_unknown_identities_and_keys(self):
        identity, _ = self.store_identity()
        for args, message in [
            (("toggle", "00" * 20), f"No identity has the SHA-1 fingerprint {'00' * 20}."),
            (("delete", "nope"), "No identity has the SHA-1 fingerprint nope."),
            (
                ("authorize", identity.sha1, "--only", "ghost"),
                "No API key is named or has the id 'ghost'.",
            ),
        ]:
            with self.subTest(args=args), self.assertRaisesMessage(CommandError, message):
                self.run_command("identity", *args)
        self.assertFalse(AuditEvent.objects.exists())

    # --- Keys in a token (the run's SoftHSM2 token) ----------------------------------------

    @pytest.mark.usefixtures("token_settings")
    def test_identity_import_into_a_token(self):
        made = make_identity(key_kind="ec256")
        self.run_command(
            "identity", "import", self.write("a.p12", made.p12),
            "--password-file", self.write("password", made.password), "--token", TOKEN,
        )  # fmt: skip
        event = self.assert_by_operator("identity.import")
        self.assertEqual(event.changes["key_location"], [None, f"token:{TOKEN}"])

    @pytest.mark.usefixtures("token_settings")
    def test_identity_generate_and_attach(self):
        self.run_command(
            "identity", "generate", "--key", "ec-p256", "--common-name", "Operator Key",
            "--email", "ops@example.com", "--token",
        )  # fmt: skip
        pending = PendingIdentity.objects.get()
        self.assert_by_operator(
            "identity.generate",
            {
                "subject": [None, "emailAddress=ops@example.com,CN=Operator Key"],
                "key": [None, "EC 256"],
                "key_location": [None, f"token:{TOKEN}"],
            },
        )
        self.run_command("identity", "csr", str(pending.pk))  # reads only: no record
        self.assertFalse(AuditEvent.objects.exists())

        issued = make_identity().pem(issue_for_request(pending.csr()))
        self.run_command("identity", "attach", str(pending.pk), self.write("issued.pem", issued))
        identity = Identity.objects.get()
        event = self.assert_by_operator("identity.attach")
        self.assertEqual(event.identity, identity)
        self.assertEqual(event.changes["sha1"], [None, identity.sha1])
        self.assertEqual(event.changes["key_location"], [None, f"token:{TOKEN}"])

    @pytest.mark.usefixtures("token_settings")
    def test_identity_move_to_token(self):
        identity, made = self.store_identity(key_kind="ec256")
        self.run_command("identity", "move-to-token", made.sha1, "--token")
        event = self.assert_by_operator(
            "identity.move_to_token", {"key_location": ["database", f"token:{TOKEN}"]}
        )
        self.assertEqual(event.identity, identity)
        with self.assertRaisesMessage(CommandError, "is in a token already."):
            self.run_command("identity", "move-to-token", made.sha1, "--token")
        self.assertFalse(AuditEvent.objects.exists())

    # --- CAs, API keys, clients --------------------------------------------------------------

    def test_ca_import_and_delete(self):
        certificate, _ = make_intermediate_ca()
        self.run_command("ca", "import", self.write("ca.pem", make_identity().pem(certificate)))
        authority = CertificateAuthority.objects.get()
        self.assert_by_operator(
            "ca.upload",
            {"common_name": [None, [authority.common_name]], "sha256": [None, [authority.sha256]]},
        )
        self.run_command("ca", "delete", authority.sha256)
        self.assert_by_operator(
            "ca.delete",
            {"common_name": [authority.common_name, None], "sha256": [authority.sha256, None]},
        )

    def test_apikey_create_toggle_delete(self):
        secret = self.run_command("apikey", "create", "build machines").strip()
        key = ApiKey.objects.get()
        event = self.assert_by_operator("apikey.create", {"name": [None, "build machines"]})
        self.assertNotIn(secret, event.message)
        make_client(key)
        # By the id `apikey list` prints, or by the name in any case.
        self.assertIn("is inactive", self.run_command("apikey", "toggle", key.display_id))
        self.assert_by_operator("apikey.toggle", {"is_active": [True, False]})
        self.run_command("apikey", "toggle", "BUILD MACHINES", "--on")
        self.assert_by_operator("apikey.toggle", {"is_active": [False, True]})
        output = self.run_command("apikey", "delete", f"smk_{key.token_id}")
        self.assertIn("and its 1 clients", output)
        self.assert_by_operator(
            "apikey.delete", {"name": ["build machines", None], "clients": [1, 0]}
        )
        self.assertFalse(ApiKey.objects.exists())

    def test_apikey_commands_refuse_an_unknown_key(self):
        for action in ("toggle", "delete"):
            with (
                self.subTest(action),
                self.assertRaisesMessage(CommandError, "No API key is named or has the id 'x'."),
            ):
                self.run_command("apikey", action, "x")

    def test_client_list_toggle_delete(self):
        key, _ = ApiKey.create("build machines")
        client, _ = make_client(key, hostname="mac-mini-1")
        self.assertIn(
            f"{client.pk}\tactive\tapproved\tbuild machines\tmac-mini-1",
            self.run_command("client", "list"),
        )
        self.run_command("client", "toggle", str(client.pk))
        event = self.assert_by_operator("client.toggle", {"is_active": [True, False]})
        self.assertEqual(event.client_hostname, "mac-mini-1")
        self.assertIn("inactive\tapproved", self.run_command("client", "list"))
        self.run_command("client", "delete", str(client.pk))
        self.assert_by_operator("client.delete", {"hostname": ["mac-mini-1", None]})
        self.assertFalse(Client.objects.exists())
        with self.assertRaisesMessage(CommandError, f"No client has the id {client.pk}."):
            self.run_command("client", "delete", str(client.pk))

    # --- Users -------------------------------------------------------------------------------

    def test_user_create_set_password_edit_switch_delete(self):
        self.run_command("user", "create", "dora", "--password-file", self.write("p", STRONG))
        event = self.assert_by_operator(
            "user.add", {"username": [None, "dora"], "is_admin": [None, False]}
        )
        self.assertNotIn(STRONG, event.message)
        self.run_command(
            "user", "set-password", "dora", "--password-file", self.write("p2", STRONG + "!")
        )
        self.assert_by_operator("user.password_reset", {"must_change_password": [True, True]})
        self.run_command("user", "edit", "dora", "--rename", "dorothy", "--admin")
        self.assert_by_operator(
            "user.edit", {"username": ["dora", "dorothy"], "is_admin": [False, True]}
        )
        self.run_command("user", "deactivate", "dorothy")
        self.assert_by_operator("user.deactivate", {"is_active": [True, False]})
        self.run_command("user", "activate", "dorothy")
        self.assert_by_operator("user.activate", {"is_active": [False, True]})
        self.run_command("user", "delete", "dorothy")
        self.assert_by_operator("user.delete")
        self.assertFalse(User.objects.filter(username="dorothy").exists())

    def test_user_commands_never_leave_the_service_without_an_active_admin(self):
        for args in [("deactivate", "alice"), ("delete", "alice"), ("edit", "alice", "--no-admin")]:
            with (
                self.subTest(args=args),
                self.assertRaisesMessage(
                    CommandError, "alice is the last active admin; the service would have none."
                ),
            ):
                self.run_command("user", *args)
        self.assertTrue(User.objects.get(username="alice").is_admin)
        self.run_command("user", "deactivate", "bob")  # not an admin: fine
        self.assertFalse(AuditEvent.objects.exclude(action="user.deactivate").exists())

    def test_user_edit_refuses_what_the_web_form_refuses(self):
        with self.assertRaisesMessage(CommandError, "A user with this name already exists."):
            self.run_command("user", "edit", "bob", "--rename", "ALICE")
        with self.assertRaisesMessage(CommandError, "There is no user named 'nobody'."):
            self.run_command("user", "delete", "nobody")
        self.assertFalse(AuditEvent.objects.exists())

    # --- Settings and the audit itself -------------------------------------------------------

    def test_settings_show_and_set(self):
        old = UserAgreement.current()
        output = self.run_command("settings", "show")
        self.assertIn("audit-retention-days\t365\n", output)
        self.assertIn("clients-need-approval\tno\n", output)
        output = self.run_command(
            "settings", "set", "--audit-retention-days", "30", "--clients-need-approval", "yes",
            "--agreement-file", self.write("agreement.txt", "New terms."),
        )  # fmt: skip
        self.assertIn("audit-retention-days\t30\n", output)
        new = UserAgreement.current()
        self.assertEqual(new.text, "New terms.")
        self.assert_by_operator(
            "settings.change",
            {
                "audit_retention_days": [365, 30],
                "clients_need_approval": [False, True],
                "agreement": [old.pk, new.pk],
            },
        )
        self.run_command("settings", "set", "--audit-retention-days", "30")  # no change, no record
        self.assertFalse(AuditEvent.objects.exists())

    def test_settings_set_refuses_what_the_page_refuses(self):
        with self.assertRaisesMessage(
            CommandError, "Audit retention (days): Ensure this value is greater than or equal to 1."
        ):
            self.run_command("settings", "set", "--audit-retention-days", "0")
        self.assertEqual(ServiceSettings.load().audit_retention_days, 365)
        self.assertFalse(AuditEvent.objects.exists())

    def test_audit_export_records_the_range(self):
        self.run_command(
            "audit", "export", "--from", "2026-01-01", "--to", "2026-01-31", "--format", "json"
        )
        self.assert_by_operator(
            "audit.export", {"from": "2026-01-01", "to": "2026-01-31", "format": "json"}
        )

    def test_saving_what_is_already_so_records_nothing(self):
        identity, _ = self.store_identity()
        self.run_command("identity", "authorize", identity.sha1, "--all")
        self.run_command("user", "edit", "bob", "--no-admin")
        self.assertFalse(AuditEvent.objects.exists())
        self.run_command("apikey", "create", "build")
        AuditEvent.objects.all().delete()
        self.run_command("apikey", "toggle", "build", "--on")
        self.assertFalse(AuditEvent.objects.exists())
