"""Audit records: one per client request (list, register, each digest signed), per web test sign
and per admin action (``request_type`` admin, with ``action`` and ``changes``); and the daily
roll-up of the signature records that activity at a glance reads (``rollup.py``).

A record keeps a snapshot of the names involved, so it still reads correctly after the API key,
client or identity is deleted. It never holds a secret.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone


class ChainedQuerySet(models.QuerySet):
    def bulk_create(self, objs):
        """Every new record joins the hash chain, whichever way it is written, and the live
        stream once written."""
        from signing_service.audit import chain, rows, stream

        objs = list(objs)
        if not objs:
            return objs
        chain.prepare(objs)  # the encoding, and (Rows) every other value, before the lock
        new_rows = rows.Rows(objs, self.db)
        if new_rows.linked_by_database:
            new_rows.append()
        else:
            # No savepoint of its own (two statements) when the caller's transaction is open.
            with transaction.atomic(using=self.db, savepoint=False):
                chain.link(objs, using=self.db)
                new_rows.insert()
        stream.after_commit(objs)
        return objs


class RequestType(models.TextChoices):
    INDEX = "index", "index"
    SIGN = "sign", "sign"
    REGISTER = "register", "register"
    APPROVE = "approve", "approve client"
    REJECT = "reject", "reject client"
    # What a person did through the web or the ops command line; ``action`` says which.
    ADMIN = "admin", "admin action"


class Status(models.TextChoices):
    SUCCESS = "success", "success"
    FAILURE = "failure", "failure"


class Source(models.TextChoices):
    API = "api", "client API"
    WEB = "web", "web"
    CLI = "cli", "ops command line"


class AuditEvent(models.Model):
    # The hash chain (chain.py): the record's place in the one sequence of all records, and
    # SHA-256 of the previous record's hash and this record's canonical encoding.
    sequence = models.PositiveBigIntegerField(unique=True, editable=False)
    hash = models.CharField(max_length=64, editable=False)
    created = models.DateTimeField(default=timezone.now, db_index=True)
    request_type = models.CharField(max_length=16, choices=RequestType.choices)
    status = models.CharField(max_length=16, choices=Status.choices)
    reason = models.CharField(max_length=64, blank=True, help_text="Why it failed, as a code.")
    message = models.CharField(max_length=500, blank=True)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.API)
    api_key = models.ForeignKey(
        "access.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    api_key_name = models.CharField(max_length=100, blank=True)
    client = models.ForeignKey(
        "access.Client", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    client_hostname = models.CharField(max_length=255, blank=True)
    identity = models.ForeignKey(
        "identities.Identity", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    identity_common_name = models.CharField(max_length=255, blank=True)
    identity_sha1 = models.CharField(max_length=40, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(max_length=150, blank=True)
    algorithm = models.CharField(max_length=32, blank=True)
    digest = models.CharField(max_length=128, blank=True, help_text="Hex of the signed digest.")
    address = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(
        max_length=48, blank=True, help_text="For admin records: what was done (identity.toggle)."
    )
    changes = models.JSONField(
        default=dict,
        blank=True,
        help_text="For admin records: {field: [before, after]} or other details; never a secret.",
    )
    count = models.PositiveIntegerField(
        default=1, help_text="Requests this record stands for (failed authentications aggregate)."
    )

    objects = ChainedQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            models.Index(fields=["request_type", "status", "created"]),
            # Activity at a glance (activity.py) reads the last 30 days of signatures from these
            # alone, never the table (covering: every column its queries use).
            models.Index(
                fields=["request_type", "created", "identity", "status", "client"],
                name="audit_signatures_idx",
            ),
            models.Index(
                fields=["identity", "request_type", "status", "created", "client"],
                name="audit_identity_signatures_idx",
            ),
            # Partial: only failures, so successes cost them nothing.
            models.Index(
                fields=["created", "id"],
                condition=models.Q(status=Status.FAILURE),
                name="audit_refusals_idx",
            ),
            # One identity's last refusals: without it SQLite walks every failure of the
            # window through the index above to find an identity that rarely fails.
            models.Index(
                fields=["identity", "created", "id"],
                condition=models.Q(status=Status.FAILURE),
                name="audit_identity_refusals_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.created:%Y-%m-%d %H:%M:%S} {self.request_type} {self.status}"

    def save(self, *args, **kwargs) -> None:
        """A new record joins the chain (an existing one is never saved again: that would be
        the very edit the chain exists to reveal)."""
        if self._state.adding and self.sequence is None:
            AuditEvent.objects.bulk_create([self])
        else:
            super().save(*args, **kwargs)


class RolledUpDay(models.Model):
    """A complete UTC day whose signature records are counted in ``DailyActivity``: claimed once,
    by whoever rolls the day up first (the primary key makes a second claim fail)."""

    day = models.DateField(primary_key=True)

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d}"


class DailyActivity(models.Model):
    """How many signature records one rolled-up day had for one identity, client and status.

    The foreign keys go NULL when the identity or client is deleted, as the records' do, so the
    roll-up groups a deleted one's signatures exactly as a live count of the records would."""

    day = models.DateField(db_index=True)
    identity = models.ForeignKey(
        "identities.Identity", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    client = models.ForeignKey(
        "access.Client", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status.choices)
    signatures = models.PositiveIntegerField()

    class Meta:
        verbose_name_plural = "daily activity"

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} {self.status} {self.signatures}"


class CheckpointKind(models.TextChoices):
    PERIODIC = "periodic", "periodic"
    SHUTDOWN = "shutdown", "shutdown"
    PURGE = "purge", "retention purge"
    REQUEST = "request", "on request"
    EXPORT = "export", "export"


class Checkpoint(models.Model):
    """The chain head at a moment, signed with the service's checkpoint key (checkpoints.py):
    records up to ``sequence`` cannot be changed, removed or reordered without breaking it."""

    sequence = models.PositiveBigIntegerField(db_index=True)
    hash = models.CharField(max_length=64)
    created = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=16, choices=CheckpointKind.choices)
    signature = models.CharField(max_length=88, help_text="Ed25519, base64.")

    class Meta:
        ordering = ["sequence", "id"]

    def __str__(self) -> str:
        return f"{self.kind} checkpoint of record {self.sequence}"


class Verification(models.Model):
    """The outcome of the last verification of the chain, for the Audit page."""

    finished = models.DateTimeField(default=timezone.now)
    sequence = models.PositiveBigIntegerField(help_text="The last record verified.")
    problems = models.PositiveIntegerField(default=0)
    first_problem = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return f"verified up to record {self.sequence}: {self.problems} problem(s)"
