from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "signing_service.accounts"
    label = "accounts"
    verbose_name = "Accounts"
