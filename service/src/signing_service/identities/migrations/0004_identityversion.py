from django.db import migrations, models


def first_version(apps, schema_editor):
    apps.get_model("identities", "IdentityVersion").objects.create(pk=1, number=0)


class Migration(migrations.Migration):

    dependencies = [
        ('identities', '0003_token_keys'),
    ]

    operations = [
        migrations.CreateModel(
            name='IdentityVersion',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number', models.PositiveBigIntegerField(default=0)),
            ],
        ),
        migrations.RunPython(first_version, migrations.RunPython.noop),
    ]
