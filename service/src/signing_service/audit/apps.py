from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "signing_service.audit"
    label = "audit"
    verbose_name = "Audit"
