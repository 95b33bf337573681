"""The hash chain: records get a sequence and a hash; those already written are chained in the
order they were written (oldest first), so the chain covers them too."""

import django.utils.timezone
from django.db import migrations, models

from signing_service.audit import chain

BATCH = 2000


def chain_existing(apps, schema_editor):
    events = apps.get_model("audit", "AuditEvent")
    sequence, previous = 0, chain.GENESIS_HASH
    # Walked by id in batches: constant memory, however many records there are.
    last_id, batch = 0, True
    while batch:
        batch = list(events.objects.filter(id__gt=last_id).order_by("id")[:BATCH])
        for event in batch:
            sequence += 1
            event.sequence = sequence
            event.hash = previous = chain.next_hash(previous, chain.fields_of(event))
        events.objects.bulk_update(batch, ["sequence", "hash"])
        last_id = batch[-1].id if batch else last_id


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0006_daily_activity"),
    ]

    operations = [
        migrations.CreateModel(
            name="Checkpoint",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("sequence", models.PositiveBigIntegerField(db_index=True)),
                ("hash", models.CharField(max_length=64)),
                ("created", models.DateTimeField(default=django.utils.timezone.now)),
                ("kind", models.CharField(choices=[("periodic", "periodic"), ("shutdown", "shutdown"), ("purge", "retention purge"), ("request", "on request"), ("export", "export")], max_length=16)),
                ("signature", models.CharField(help_text="Ed25519, base64.", max_length=88)),
            ],
            options={"ordering": ["sequence", "id"]},
        ),
        migrations.CreateModel(
            name="Verification",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("finished", models.DateTimeField(default=django.utils.timezone.now)),
                ("sequence", models.PositiveBigIntegerField(help_text="The last record verified.")),
                ("problems", models.PositiveIntegerField(default=0)),
                ("first_problem", models.CharField(blank=True, max_length=500)),
            ],
        ),
        migrations.AddField(
            model_name="auditevent",
            name="sequence",
            field=models.PositiveBigIntegerField(editable=False, null=True),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(chain_existing, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="auditevent",
            name="sequence",
            field=models.PositiveBigIntegerField(editable=False, unique=True),
        ),
    ]
