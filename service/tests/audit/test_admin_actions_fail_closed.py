"""An admin action whose audit record cannot be written does not happen: the change and its
record are one transaction, as a signature and its record are. The web answers 503, the ops
command line fails in one sentence, and nothing changed."""

import os
import tempfile
from io import StringIO
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import DatabaseError, connection

from signing_service.__main__ import main
from signing_service.access.models import ApiKey
from signing_service.accounts.models import User
from signing_service.audit.models import AuditEvent
from signing_service.configuration.models import ServiceSettings
from signing_service.identities import hsm, token_keys
from signing_service.identities.models import Identity, PendingIdentity
from signing_service.test import (
    PASSWORD,
    BaseTestCase,
    SoftHsm,
    issue_for_request,
    make_identity,
    refuse_audit_inserts,
    token_objects,
)

TOKEN = SoftHsm.label  # the label of the run's token, which the token_settings fixture configures


class WebFailClosedTestCase(BaseTestCase):
    def setUp(self):
        self.client = self.client_class(raise_request_exception=False)
        self.sign_in_unrecorded(self.alice)
        self.identity, _ = self.store_identity()

    def post_unaudited(self, path: str, data=None):
        with connection.execute_wrapper(refuse_audit_inserts):
            response = self.client.post(path, data or {})
        self.assertEqual(response.status_code, 503)
        self.assertFalse(AuditEvent.objects.exists())

    def test_a_switch_stays_as_it_was(self):
        self.post_unaudited(f"/identities/{self.identity.pk}/toggle/", {"confirmed": "1"})
        self.identity.refresh_from_db()
        self.assertTrue(self.identity.is_active)

    def test_an_identity_is_not_deleted(self):
        self.post_unaudited(f"/identities/{self.identity.pk}/delete/")
        self.assertTrue(Identity.objects.filter(pk=self.identity.pk).exists())

    def test_an_authorization_stays_as_it_was(self):
        ApiKey.create("build")
        self.post_unaudited(
            f"/identities/{self.identity.pk}/authorize/", {"authorize_all_keys": "False"}
        )
        self.identity.refresh_from_db()
        self.assertTrue(self.identity.authorize_all_keys)

    def test_no_api_key_is_made(self):
        self.post_unaudited("/api-keys/new/", {"name": "build"})
        self.assertFalse(ApiKey.objects.exists())

    def test_a_user_is_not_deleted(self):
        self.post_unaudited(f"/accounts/users/{self.bob.pk}/delete/")
        self.assertTrue(User.objects.filter(pk=self.bob.pk).exists())

    def test_settings_stay_as_they_were(self):
        self.post_unaudited("/settings/", {"audit_retention_days": "30", "agreement_text": "New."})
        self.assertEqual(ServiceSettings.load().audit_retention_days, 365)

    def test_no_one_signs_in_without_a_record(self):
        self.client.logout()
        AuditEvent.objects.all().delete()
        self.post_unaudited("/accounts/login/", {"username": "alice", "password": PASSWORD})
        self.assertNotIn("_auth_user_id", self.client.session)
        self.assertEqual(self.client.get("/").status_code, 302)

    # Keys in a token: the token is not transactional, so a key generated or moved there may
    # stay in it (operations.py says so); the database is as it was.

    @pytest.mark.usefixtures("token_settings")
    def test_no_key_is_left_pending_after_generating(self):
        self.post_unaudited(
            "/identities/generate/", {"token": TOKEN, "key": "ec-p256", "common_name": "Unaudited"}
        )
        self.assertFalse(PendingIdentity.objects.exists())

    @pytest.mark.usefixtures("token_settings")
    def test_a_certificate_is_not_attached(self):
        pending = token_keys.generate_in_token(TOKEN, "ec-p256", token_keys.Subject("Pending"))
        issued = make_identity().pem(issue_for_request(pending.csr()))
        self.post_unaudited(
            f"/identities/pending/{pending.pk}/",
            {"certificate": SimpleUploadedFile("issued.pem", issued)},
        )
        self.assertTrue(PendingIdentity.objects.filter(pk=pending.pk).exists())
        self.assertEqual(list(Identity.objects.all()), [self.identity])

    @pytest.mark.usefixtures("token_settings")
    def test_a_pending_key_is_not_discarded(self):
        pending = token_keys.generate_in_token(TOKEN, "ec-p256", token_keys.Subject("Pending"))
        self.post_unaudited(f"/identities/pending/{pending.pk}/delete/")
        self.assertTrue(PendingIdentity.objects.filter(pk=pending.pk).exists())
        # The record comes before the key is destroyed: the pending row still has its key.
        self.assertEqual(len(token_objects(TOKEN, pending.token_key_id)), 2)


class CommandFailClosedTestCase(BaseTestCase):
    def run_unaudited(self, *args) -> None:
        """``signing-service identity ARGS`` fails for want of its record, and records nothing."""
        hsm.sessions().reset()  # a command's own process has not logged in to a token yet
        with (
            connection.execute_wrapper(refuse_audit_inserts),
            self.assertRaisesMessage(DatabaseError, "the audit table is not writable"),
        ):
            call_command("identity", *args, stdout=StringIO(), stderr=StringIO())
        self.assertFalse(AuditEvent.objects.exists())

    def test_an_identity_is_not_deleted(self):
        identity, made = self.store_identity()
        self.run_unaudited("delete", made.sha1)
        self.assertTrue(Identity.objects.filter(pk=identity.pk).exists())

    @pytest.mark.usefixtures("token_settings")
    def test_no_key_is_left_pending_after_generating(self):
        self.run_unaudited("generate", "--key", "ec-p256", "--common-name", "Unaudited", "--token")
        self.assertFalse(PendingIdentity.objects.exists())

    @pytest.mark.usefixtures("token_settings")
    def test_a_certificate_is_not_attached(self):
        pending = token_keys.generate_in_token(TOKEN, "ec-p256", token_keys.Subject("Pending"))
        with tempfile.NamedTemporaryFile(suffix=".pem") as issued:
            issued.write(make_identity().pem(issue_for_request(pending.csr())))
            issued.flush()
            self.run_unaudited("attach", str(pending.pk), issued.name)
        self.assertTrue(PendingIdentity.objects.filter(pk=pending.pk).exists())
        self.assertFalse(Identity.objects.exists())

    @pytest.mark.usefixtures("token_settings")
    def test_a_key_moved_to_a_token_stays_sealed_in_the_database(self):
        identity, made = self.store_identity(key_kind="ec256")
        self.run_unaudited("move-to-token", made.sha1, "--token")
        identity.refresh_from_db()
        self.assertEqual(identity.key_location, "database")
        self.assertEqual(
            identity.private_key().private_numbers(), made.private_key.private_numbers()
        )


def test_the_command_line_says_so_in_one_sentence():
    """What ``signing-service`` prints when a record (or anything) cannot be written."""
    refused = DatabaseError("the audit table is not writable\nDETAIL: more")
    # patch.dict: main() sets the ops commands' log level, which must not outlive the test.
    with (
        mock.patch.dict(os.environ),
        mock.patch("django.core.management.execute_from_command_line", side_effect=refused),
        pytest.raises(SystemExit) as exit,
    ):
        main(["identity", "delete", "00"])
    message = str(exit.value.code)
    assert message.startswith("signing-service: "), message
    assert message.endswith("cannot be used: the audit table is not writable."), message
