"""One-time fee components get the defaults pricing.md gives them: billed once per subscription, from
the signature. Until now a fee component took neither ``per_device`` nor ``starts_on``, so the
rows hold the model's defaults for services (per device, from activation), which never applied to
a fee: they are set to what such a plan meant."""

from django.db import migrations


def fee_defaults(apps, schema_editor):  # type: ignore[no-untyped-def]
    PlanComponent = apps.get_model("catalog", "PlanComponent")
    PlanComponent.objects.filter(kind="fee").update(per_device=False, starts_on="subscription_start")


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0002_plan_early_termination"),
    ]

    # Reversing leaves the rows as they are: nothing read the two fields of a fee before.
    operations = [migrations.RunPython(fee_defaults, migrations.RunPython.noop)]
