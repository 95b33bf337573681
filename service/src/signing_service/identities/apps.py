from django.apps import AppConfig


class IdentitiesConfig(AppConfig):
    name = "signing_service.identities"
    label = "identities"
    verbose_name = "Identities"
