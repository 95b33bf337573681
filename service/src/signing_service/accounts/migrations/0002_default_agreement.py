from django.db import migrations


def create_default_agreement(apps, schema_editor):
    from signing_service.accounts.models import DEFAULT_AGREEMENT

    UserAgreement = apps.get_model("accounts", "UserAgreement")
    if not UserAgreement.objects.exists():
        UserAgreement.objects.create(text=DEFAULT_AGREEMENT)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(create_default_agreement, migrations.RunPython.noop)]
