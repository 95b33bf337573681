from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "signing_service.api"
    label = "api"
    verbose_name = "Client API"
