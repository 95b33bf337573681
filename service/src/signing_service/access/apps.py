from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "signing_service.access"
    label = "access"
    verbose_name = "API keys and clients"
