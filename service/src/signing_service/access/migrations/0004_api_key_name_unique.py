"""API key names become unique, ignoring case. Keys that share a name already keep the oldest's
as it is; each later one gets " (2)", " (3)"... so that the constraint can be added."""

import django.db.models.functions.text
from django.db import migrations, models

NAME_MAX_LENGTH = 100


def unique_name(name, taken):
    """``name``, or the first "name (n)" not in ``taken`` (lowercase names), within the limit."""
    if name.lower() not in taken:
        return name
    number = 2
    while True:
        suffix = f" ({number})"
        candidate = name[: NAME_MAX_LENGTH - len(suffix)] + suffix
        if candidate.lower() not in taken:
            return candidate
        number += 1


def rename_duplicates(apps, schema_editor):
    ApiKey = apps.get_model("access", "ApiKey")
    taken = set()
    for key in ApiKey.objects.order_by("id"):
        name = unique_name(key.name, taken)
        taken.add(name.lower())
        if name != key.name:
            key.name = name
            key.save(update_fields=["name"])


class Migration(migrations.Migration):

    dependencies = [
        ('access', '0003_client_is_approved'),
    ]

    operations = [
        migrations.RunPython(rename_duplicates, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='apikey',
            constraint=models.UniqueConstraint(django.db.models.functions.text.Lower('name'), name='api_key_name_unique_ignoring_case'),
        ),
    ]
