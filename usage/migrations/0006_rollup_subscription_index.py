import django.db.models.deletion
from django.db import migrations, models

# The 15-minute rollups' index on subscription alone repeats the first column of their unique
# index and costs every insert and every update that leaves its page. Only the index is dropped:
# the foreign key stays as it is (Django's AlterField would drop it and check the table again).
INDEX = "usage_usagerollup_subscription_id_d589e060"


class Migration(migrations.Migration):
    dependencies = [
        ("subscriptions", "0010_order_request_key"),
        ("usage", "0005_usage_archive"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="usagerollup",
                    name="subscription",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="subscriptions.subscription",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    "DROP INDEX IF EXISTS %s" % INDEX,
                    reverse_sql='CREATE INDEX %s ON usage_usagerollup ("subscription_id")' % INDEX,
                ),
            ],
        ),
    ]
