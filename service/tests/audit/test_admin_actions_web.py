"""Every admin action on the web writes exactly one admin record: who (the signed-in user, or
the name tried at sign-in), from which address, what changed; never a password or secret."""

import json

import pytest
from cryptography.hazmat.primitives import serialization
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from signing_service.access.models import ApiKey, Client
from signing_service.accounts.models import UserAgreement
from signing_service.audit.models import AuditEvent, Source, Status
from signing_service.authorities.models import CertificateAuthority
from signing_service.configuration.models import ServiceSettings
from signing_service.identities import token_keys
from signing_service.identities.models import Identity, PendingIdentity
from signing_service.test import (
    PASSWORD,
    BaseTestCase,
    SoftHsm,
    issue_for_request,
    make_client,
    make_identity,
    make_intermediate_ca,
)

ADDRESS = "192.0.2.7"
NEW_PASSWORD = "a much longer new password 7"
TOKEN = SoftHsm.label  # the label of the run's token, which the token_settings fixture configures


class AdminActionsWebTestCase(BaseTestCase):
    def setUp(self):
        self.client = self.client_class(REMOTE_ADDR=ADDRESS)
        self.sign_in_unrecorded(self.alice)

    def assert_by_alice(self, action: str, changes: dict | None = None) -> AuditEvent:
        event = self.only_admin_record(action)
        self.assertEqual(event.user, self.alice)
        self.assertEqual(event.username, "alice")
        self.assertEqual(event.source, Source.WEB)
        self.assertEqual(event.address, ADDRESS)
        self.assertEqual(event.status, Status.SUCCESS)
        if changes is not None:
            self.assertEqual(event.changes, changes)
        return event

    # --- Users -------------------------------------------------------------------------------

    def test_adding_a_user_records_name_and_role_never_the_password(self):
        self.client.post(
            "/accounts/users/add/",
            {
                "username": "dave",
                "is_admin": "on",
                "password1": NEW_PASSWORD,
                "password2": NEW_PASSWORD,
            },
        )
        event = self.assert_by_alice(
            "user.add", {"username": [None, "dave"], "is_admin": [None, True]}
        )
        self.assertIn("dave", event.message)
        self.assertNotIn(NEW_PASSWORD, json.dumps(event.changes) + event.message)

    def test_editing_a_user_records_before_and_after(self):
        self.client.post(
            f"/accounts/users/{self.bob.pk}/",
            {"username": "robert", "is_admin": "on", "is_active": "on"},
        )
        self.assert_by_alice(
            "user.edit", {"username": ["bob", "robert"], "is_admin": [False, True]}
        )

    def test_switching_a_user_off_and_on_records_each(self):
        self.client.post(f"/accounts/users/{self.bob.pk}/toggle/")
        self.assert_by_alice("user.deactivate", {"is_active": [True, False]})
        AuditEvent.objects.all().delete()
        self.client.post(f"/accounts/users/{self.bob.pk}/toggle/")
        self.assert_by_alice("user.activate", {"is_active": [False, True]})

    def test_a_refused_change_records_nothing(self):
        self.client.post(f"/accounts/users/{self.alice.pk}/toggle/")
        self.client.post(f"/accounts/users/{self.alice.pk}/delete/")
        self.assertFalse(AuditEvent.objects.exists())

    def test_deleting_a_user_records_who_it_was(self):
        self.client.post(f"/accounts/users/{self.bob.pk}/delete/")
        event = self.assert_by_alice("user.delete")
        self.assertEqual(event.changes["username"], ["bob", None])
        self.assertIn("bob", event.message)

    def test_resetting_a_password_records_it_never_the_password(self):
        self.client.post(
            f"/accounts/users/{self.bob.pk}/password/",
            {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        )
        event = self.assert_by_alice("user.password_reset", {"must_change_password": [False, True]})
        self.assertIn("bob", event.message)
        self.assertNotIn(NEW_PASSWORD, json.dumps(event.changes) + event.message)

    def test_changing_ones_own_password_is_recorded(self):
        self.client.post(
            "/accounts/password/",
            {
                "old_password": PASSWORD,
                "new_password1": NEW_PASSWORD,
                "new_password2": NEW_PASSWORD,
            },
        )
        event = self.assert_by_alice("user.password_change", {})
        self.assertNotIn(PASSWORD, event.message)

    def test_accepting_the_agreement_is_recorded_with_its_version(self):
        old = UserAgreement.current()
        new = UserAgreement.objects.create(text="New terms.")
        self.client.post("/accounts/agreement/", {"accept": "1"})
        self.assert_by_alice("agreement.accept", {"accepted_agreement": [old.pk, new.pk]})

    # --- Identities --------------------------------------------------------------------------

    def test_importing_an_identity_records_its_certificate(self):
        made = make_identity()
        self.client.post(
            "/identities/import/",
            {"p12_file": SimpleUploadedFile("id.p12", made.p12), "password": made.password},
        )
        event = self.assert_by_alice("identity.import")
        self.assertEqual(event.identity, Identity.objects.get())
        self.assertEqual(event.changes["sha1"], [None, made.sha1])
        self.assertEqual(event.changes["common_name"], [None, made.common_name])
        self.assertNotIn(made.password, json.dumps(event.changes))

    def test_replacing_an_identity_records_old_and_new_certificate(self):
        identity, old = self.store_identity()
        new = make_identity()
        self.client.post(
            f"/identities/{identity.pk}/edit/",
            {"p12_file": SimpleUploadedFile("id.p12", new.p12), "password": new.password},
        )
        event = self.assert_by_alice("identity.edit")
        self.assertEqual(event.changes["sha1"], [old.sha1, new.sha1])

    def test_deleting_an_identity_records_what_it_was(self):
        identity, made = self.store_identity()
        self.client.post(f"/identities/{identity.pk}/delete/")
        event = self.assert_by_alice("identity.delete")
        self.assertEqual(event.identity_sha1, made.sha1)
        self.assertEqual(event.changes["sha1"], [made.sha1, None])

    def test_switching_an_identity_records_its_state(self):
        identity, _ = self.store_identity()
        self.client.post(f"/identities/{identity.pk}/toggle/")
        event = self.assert_by_alice("identity.toggle", {"is_active": [True, False]})
        self.assertEqual(event.identity, identity)

    def test_authorizing_records_the_keys_before_and_after(self):
        identity, _ = self.store_identity()
        build, _ = ApiKey.create("build")
        release, _ = ApiKey.create("release")
        self.client.post(
            f"/identities/{identity.pk}/authorize/",
            {"authorize_all_keys": "False", "authorized_keys": [build.pk, release.pk]},
        )
        self.assert_by_alice(
            "identity.authorize",
            {
                "authorize_all_keys": [True, False],
                "authorized_keys": [[], sorted([str(build), str(release)])],
            },
        )
        # A key's name and public id, never its secret.
        self.assertIn(build.display_id, str(build))

    # --- Keys in a token (the run's SoftHSM2 token) ----------------------------------------

    @pytest.mark.usefixtures("token_settings")
    def test_importing_into_a_token_records_where_the_key_went(self):
        made = make_identity(key_kind="ec256")
        self.client.post(
            "/identities/import/",
            {
                "p12_file": SimpleUploadedFile("id.p12", made.p12),
                "password": made.password,
                "key_location": TOKEN,
            },
        )
        event = self.assert_by_alice("identity.import")
        self.assertEqual(event.changes["key_location"], [None, f"token:{TOKEN}"])
        self.assertEqual(event.changes["sha1"], [None, made.sha1])

    @pytest.mark.usefixtures("token_settings")
    def test_replacing_into_a_token_records_the_key_leaving_the_database(self):
        identity, _ = self.store_identity()
        new = make_identity(key_kind="ec256")
        self.client.post(
            f"/identities/{identity.pk}/edit/",
            {
                "p12_file": SimpleUploadedFile("id.p12", new.p12),
                "password": new.password,
                "key_location": TOKEN,
            },
        )
        event = self.assert_by_alice("identity.edit")
        self.assertEqual(event.changes["key_location"], ["database", f"token:{TOKEN}"])

    @pytest.mark.usefixtures("token_settings")
    def test_generating_a_key_records_its_subject_kind_and_token(self):
        self.client.post(
            "/identities/generate/",
            {"token": TOKEN, "key": "ec-p256", "common_name": "Web Key", "country": "us"},
        )
        self.assertTrue(PendingIdentity.objects.exists())
        event = self.assert_by_alice(
            "identity.generate",
            {
                "subject": [None, "CN=Web Key,C=US"],
                "key": [None, "EC 256"],
                "key_location": [None, f"token:{TOKEN}"],
            },
        )
        self.assertIn("Web Key", event.message)

    @pytest.mark.usefixtures("token_settings")
    def test_attaching_the_certificate_records_the_new_identity(self):
        pending = token_keys.generate_in_token(TOKEN, "ec-p256", token_keys.Subject("Attached"))
        issued = issue_for_request(pending.csr()).public_bytes(serialization.Encoding.PEM)
        self.client.post(
            f"/identities/pending/{pending.pk}/",
            {"certificate": SimpleUploadedFile("issued.cer", issued)},
        )
        identity = Identity.objects.get()
        event = self.assert_by_alice("identity.attach")
        self.assertEqual(event.identity, identity)
        self.assertEqual(event.changes["sha1"], [None, identity.sha1])
        self.assertEqual(event.changes["common_name"], [None, "Attached"])
        self.assertEqual(event.changes["key_location"], [None, f"token:{TOKEN}"])

    @pytest.mark.usefixtures("token_settings")
    def test_a_certificate_for_another_key_records_nothing(self):
        pending = token_keys.generate_in_token(TOKEN, "ec-p256", token_keys.Subject("Waiting"))
        response = self.client.post(
            f"/identities/pending/{pending.pk}/",
            {"certificate": SimpleUploadedFile("other.pem", make_identity().pem())},
        )
        self.assertContains(response, "for another key")
        self.assertFalse(AuditEvent.objects.exists())

    @pytest.mark.usefixtures("token_settings")
    def test_discarding_a_pending_key_records_what_it_was(self):
        pending = token_keys.generate_in_token(TOKEN, "ec-p256", token_keys.Subject("Discarded"))
        self.client.post(f"/identities/pending/{pending.pk}/delete/")
        self.assertFalse(PendingIdentity.objects.exists())
        self.assert_by_alice(
            "identity.discard",
            {
                "subject": ["CN=Discarded", None],
                "key": ["EC 256", None],
                "key_location": [f"token:{TOKEN}", None],
            },
        )

    # --- CAs, API keys, clients --------------------------------------------------------------

    def test_uploading_and_deleting_a_ca_are_recorded(self):
        certificate, _ = make_intermediate_ca()
        self.client.post(
            "/certificate-authorities/upload/",
            {"certificate_file": SimpleUploadedFile("ca.pem", make_identity().pem(certificate))},
        )
        authority = CertificateAuthority.objects.get()
        self.assert_by_alice(
            "ca.upload",
            {"common_name": [None, [authority.common_name]], "sha256": [None, [authority.sha256]]},
        )
        AuditEvent.objects.all().delete()
        self.client.post(f"/certificate-authorities/{authority.pk}/delete/")
        self.assert_by_alice(
            "ca.delete",
            {"common_name": [authority.common_name, None], "sha256": [authority.sha256, None]},
        )

    def test_creating_an_api_key_records_its_name_never_its_secret(self):
        response = self.client.post("/api-keys/new/", {"name": "build machines"}, follow=True)
        secret = response.context["secret"]
        event = self.assert_by_alice("apikey.create", {"name": [None, "build machines"]})
        self.assertEqual(event.api_key, ApiKey.objects.get())
        self.assertNotIn(secret, json.dumps(event.changes) + event.message)

    def test_switching_and_deleting_an_api_key_are_recorded(self):
        key, _ = ApiKey.create("build machines")
        make_client(key)
        self.client.post(f"/api-keys/{key.pk}/toggle/", {"confirmed": "1"})
        self.assert_by_alice("apikey.toggle", {"is_active": [True, False]})
        AuditEvent.objects.all().delete()
        self.client.post(f"/api-keys/{key.pk}/delete/")
        event = self.assert_by_alice(
            "apikey.delete", {"name": ["build machines", None], "clients": [1, 0]}
        )
        self.assertEqual(event.api_key_name, "build machines")

    def test_switching_and_deleting_a_client_are_recorded(self):
        key, _ = ApiKey.create("build machines")
        client, _ = make_client(key, hostname="mac-mini-1")
        self.client.post(f"/api-keys/clients/{client.pk}/toggle/")
        event = self.assert_by_alice("client.toggle", {"is_active": [True, False]})
        self.assertEqual(
            (event.client_hostname, event.api_key_name), ("mac-mini-1", "build machines")
        )
        AuditEvent.objects.all().delete()
        self.client.post(f"/api-keys/clients/{client.pk}/delete/")
        self.assert_by_alice("client.delete", {"hostname": ["mac-mini-1", None]})
        self.assertFalse(Client.objects.exists())

    # --- Settings and the audit itself -------------------------------------------------------

    def test_changing_settings_records_each_change(self):
        old = UserAgreement.current()
        self.client.post(
            "/settings/",
            {"audit_retention_days": "30", "clients_need_approval": "on", "agreement_text": "New."},
        )
        new = UserAgreement.current()
        self.assert_by_alice(
            "settings.change",
            {
                "audit_retention_days": [365, 30],
                "clients_need_approval": [False, True],
                "agreement": [old.pk, new.pk],
            },
        )

    def test_saving_unchanged_settings_records_nothing(self):
        settings = ServiceSettings.load()
        self.client.post(
            "/settings/",
            {
                "audit_retention_days": str(settings.audit_retention_days),
                "agreement_text": UserAgreement.current().text,
            },
        )
        self.assertFalse(AuditEvent.objects.exists())

    def test_an_export_records_who_exported_which_range(self):
        response = self.client.get(
            "/audit/export/?date_from=2026-03-10&date_to=2026-03-12&format=json"
        )
        b"".join(response.streaming_content)
        self.assert_by_alice(
            "audit.export", {"from": "2026-03-10", "to": "2026-03-12", "format": "json"}
        )


class SignInRecordsTestCase(BaseTestCase):
    """Signing in and out, failed sign-ins and lockouts: one record per attempt."""

    def setUp(self):
        self.client = self.client_class(REMOTE_ADDR=ADDRESS)

    def sign_in(self, username: str, password: str):
        return self.client.post("/accounts/login/", {"username": username, "password": password})

    def assert_record(self, action: str, user, username: str, status=Status.SUCCESS):
        event = self.only_admin_record(action)
        self.assertEqual((event.user, event.username), (user, username))
        self.assertEqual((event.source, event.address, event.status), (Source.WEB, ADDRESS, status))
        self.assertNotIn("wrong password", json.dumps(event.changes) + event.message)
        return event

    def test_signing_in_and_out_is_recorded(self):
        self.sign_in("alice", PASSWORD)
        self.assert_record("user.sign_in", self.alice, "alice")
        AuditEvent.objects.all().delete()
        self.client.post("/accounts/logout/")
        self.assert_record("user.sign_out", self.alice, "alice")

    def test_a_wrong_password_is_recorded_with_the_user(self):
        self.sign_in("alice", "wrong password")
        event = self.assert_record("user.sign_in_failed", self.alice, "alice", Status.FAILURE)
        self.assertEqual(event.reason, "wrong_credentials")

    def test_an_unknown_name_is_recorded_as_typed_without_a_user(self):
        self.sign_in("mallory", "wrong password")
        self.assert_record("user.sign_in_failed", None, "mallory", Status.FAILURE)

    @override_settings(AXES_FAILURE_LIMIT=3)
    def test_the_attempt_that_locks_out_and_those_after_are_lockouts(self):
        actions = []
        for attempt in range(5):
            AuditEvent.objects.all().delete()
            self.sign_in("alice", "wrong password" if attempt < 4 else PASSWORD)
            (event,) = AuditEvent.objects.all()
            self.assertEqual(event.status, Status.FAILURE)
            actions.append(event.action)
        self.assertEqual(
            actions,
            ["user.sign_in_failed"] * 2 + ["user.locked_out"] * 3,
        )
        self.assertNotIn("_auth_user_id", self.client.session)
