"""Settings an admin changes on the Settings page (the guide's "subscription license" page)."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

DEFAULT_AUDIT_RETENTION_DAYS = 365
AUDIT_RETENTION_DAYS_RANGE = (1, 36500)


class ServiceSettings(models.Model):
    """The service's one row of settings."""

    audit_retention_days = models.PositiveIntegerField(
        default=DEFAULT_AUDIT_RETENTION_DAYS,
        validators=[
            MinValueValidator(AUDIT_RETENTION_DAYS_RANGE[0]),
            MaxValueValidator(AUDIT_RETENTION_DAYS_RANGE[1]),
        ],
        help_text="Audit records older than this are purged as new ones are written.",
    )
    clients_need_approval = models.BooleanField(
        "New clients need an admin's approval",
        default=False,
        help_text="A machine that registers with an API key can list and sign only once an "
        "admin approves it (API Keys → clients, or signing-service client approve).",
    )

    class Meta:
        verbose_name = "service settings"
        verbose_name_plural = "service settings"

    def __str__(self) -> str:
        return "Service settings"

    @classmethod
    def load(cls) -> ServiceSettings:
        settings, _ = cls.objects.get_or_create(pk=1)
        return settings
