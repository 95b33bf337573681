from django.apps import AppConfig


class ConfigurationConfig(AppConfig):
    name = "signing_service.configuration"
    label = "configuration"
    verbose_name = "Settings"
