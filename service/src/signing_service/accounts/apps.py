from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "signing_service.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        from signing_service.accounts import sign_ins  # noqa: F401 - connects the receivers
