"""Writing audit records: snapshots of the names involved, and purging by retention period."""

import datetime
import time
from unittest import mock

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from signing_service.access.models import ApiKey
from signing_service.audit import records
from signing_service.audit.models import AuditEvent, RequestType, Source, Status
from signing_service.configuration.models import ServiceSettings
from signing_service.identities.models import Identity
from signing_service.identities.p12 import parse_p12
from signing_service.test import BaseTestCase, make_client, make_identity


def store_identity() -> tuple[Identity, object]:
    made = make_identity()
    identity = Identity()
    identity.fill_from(parse_p12(made.p12, made.password))
    identity.save()
    return identity, made


def old_event(days: float, **fields) -> AuditEvent:
    """A record written ``days`` ago."""
    fields.setdefault("request_type", RequestType.INDEX)
    fields.setdefault("status", Status.SUCCESS)
    created = timezone.now() - datetime.timedelta(days=days)
    return AuditEvent.objects.create(created=created, **fields)


class RecordTestCase(BaseTestCase):
    def test_it_writes_what_happened(self):
        key, _ = ApiKey.create("build machines")
        client = make_client(key, "mac-mini-1")[0]
        identity, _ = store_identity()
        event = records.record(
            RequestType.SIGN,
            Status.FAILURE,
            reason="bad_parameters",
            message="The digest has the wrong length.",
            api_key=key,
            client=client,
            identity=identity,
            algorithm="rsa-pkcs1v15-sha256",
            digest=bytes(range(32)),
            address="10.0.0.5",
        )
        event.refresh_from_db()
        self.assertEqual(event.request_type, "sign")
        self.assertEqual(event.status, "failure")
        self.assertEqual(event.reason, "bad_parameters")
        self.assertEqual(event.message, "The digest has the wrong length.")
        self.assertEqual(event.source, Source.API)
        self.assertEqual(event.api_key, key)
        self.assertEqual(event.client, client)
        self.assertEqual(event.identity, identity)
        self.assertEqual(event.algorithm, "rsa-pkcs1v15-sha256")
        self.assertEqual(event.digest, bytes(range(32)).hex())
        self.assertEqual(event.address, "10.0.0.5")
        self.assertLess(abs(timezone.now() - event.created), datetime.timedelta(minutes=1))

    def test_the_names_survive_deleting_what_they_name(self):
        key, _ = ApiKey.create("build machines")
        client = make_client(key, "mac-mini-1")[0]
        identity, made = store_identity()
        dora = self.make_user("dora", is_admin=True)
        event = records.record(
            RequestType.SIGN,
            Status.SUCCESS,
            source=Source.WEB,
            api_key=key,
            client=client,
            identity=identity,
            user=dora,
        )
        client.delete()
        key.delete()
        identity.delete()
        dora.delete()
        event.refresh_from_db()
        self.assertIsNone(event.api_key)
        self.assertIsNone(event.client)
        self.assertIsNone(event.identity)
        self.assertIsNone(event.user)
        self.assertEqual(event.api_key_name, "build machines")
        self.assertEqual(event.client_hostname, "mac-mini-1")
        self.assertEqual(event.identity_common_name, made.common_name)
        self.assertEqual(event.identity_sha1, made.sha1)
        self.assertEqual(event.username, "dora")

    def test_the_names_are_those_at_the_time_of_the_request(self):
        key, _ = ApiKey.create("build machines")
        event = records.record(RequestType.REGISTER, Status.SUCCESS, api_key=key)
        key.name = "renamed later"
        key.save()
        event.refresh_from_db()
        self.assertEqual(event.api_key_name, "build machines")

    def test_a_record_without_a_key_or_client_has_empty_names(self):
        event = records.record(RequestType.INDEX, Status.FAILURE, reason="bad_credentials")
        event.refresh_from_db()
        for field in ["api_key_name", "client_hostname", "identity_common_name", "username"]:
            self.assertEqual(getattr(event, field), "", field)

    def test_a_long_message_is_cut_to_fit(self):
        event = records.record(RequestType.INDEX, Status.FAILURE, message="x" * 600)
        event.refresh_from_db()
        self.assertEqual(event.message, "x" * 500)


class PurgeTestCase(BaseTestCase):
    def setUp(self):
        ServiceSettings.objects.update_or_create(pk=1, defaults={"audit_retention_days": 30})

    def test_writing_a_record_purges_records_older_than_the_retention_period(self):
        expired = old_event(31, message="expired")
        kept = old_event(29, message="kept")
        records.allow_purge_now()
        new = records.record(RequestType.INDEX, Status.SUCCESS)
        self.assertFalse(AuditEvent.objects.filter(pk=expired.pk).exists())
        self.assertTrue(AuditEvent.objects.filter(pk=kept.pk).exists())
        self.assertTrue(AuditEvent.objects.filter(pk=new.pk).exists())

    def test_the_retention_period_is_the_one_in_the_settings(self):
        ServiceSettings.objects.filter(pk=1).update(audit_retention_days=400)
        expired = old_event(401)
        kept = old_event(399)
        records.allow_purge_now()
        records.record(RequestType.INDEX, Status.SUCCESS)
        self.assertTrue(AuditEvent.objects.filter(pk=kept.pk).exists())
        self.assertFalse(AuditEvent.objects.filter(pk=expired.pk).exists())

    def test_the_default_retention_is_a_year(self):
        ServiceSettings.objects.all().delete()
        expired = old_event(366)
        kept = old_event(364)
        records.allow_purge_now()
        records.record(RequestType.INDEX, Status.SUCCESS)
        self.assertTrue(AuditEvent.objects.filter(pk=kept.pk).exists())
        self.assertFalse(AuditEvent.objects.filter(pk=expired.pk).exists())

    def test_purging_is_throttled(self):
        expired = old_event(31, message="expired")
        records.purge_throttle.last = time.monotonic()  # a purge just ran
        records.record(RequestType.INDEX, Status.SUCCESS)
        self.assertTrue(AuditEvent.objects.filter(pk=expired.pk).exists())
        records.allow_purge_now()
        records.record(RequestType.INDEX, Status.SUCCESS)
        self.assertFalse(AuditEvent.objects.filter(pk=expired.pk).exists())

    def test_purging_deletes_in_short_batches(self):
        expired = [old_event(31) for _ in range(5)]
        kept = old_event(29)
        with (
            mock.patch.object(records, "PURGE_BATCH", 2),
            CaptureQueriesContext(connection) as queries,
        ):
            deleted = records.purge_expired()
        self.assertEqual(deleted, len(expired))
        self.assertEqual(list(AuditEvent.objects.values_list("pk", flat=True)), [kept.pk])
        deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE")]
        self.assertEqual(len(deletes), 3)  # 2 + 2 + 1: no statement deletes more than a batch

    def test_purging_keeps_every_record_within_the_period(self):
        within = [old_event(days) for days in [0, 1, 10, 29.9]]
        records.allow_purge_now()
        records.record(RequestType.SIGN, Status.SUCCESS)
        self.assertEqual(AuditEvent.objects.count(), len(within) + 1)
