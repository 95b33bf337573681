from django.apps import AppConfig


class AuthoritiesConfig(AppConfig):
    name = "signing_service.authorities"
    label = "authorities"
    verbose_name = "Certificate authorities"
