from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "signing_service.monitoring"
    verbose_name = "Probes and metrics"
