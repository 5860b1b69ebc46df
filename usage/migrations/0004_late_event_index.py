"""A small partial index of the late events: bill runs look for periods that received late usage
before re-measuring them from the raw events, so a period without late events is never scanned."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("usage", "0003_daily_rollups")]

    operations = [
        migrations.RunSQL(
            'CREATE INDEX usage_event_late ON usage_event (subscription_id, meter_id, "timestamp") WHERE late',
            "DROP INDEX IF EXISTS usage_event_late",
        )
    ]
