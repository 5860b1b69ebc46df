"""Tax rates get a period of validity: ``valid_from`` (included) and ``valid_to`` (included, open
when empty). The rows that exist get ``valid_from`` 1900-01-01 ("since always") and no end, so every
invoice, past or future, keeps the rate it had. The one rate per (tenant, country, category) becomes
one rate per period, and two periods of a (tenant, country, category) may not overlap: an exclusion
constraint, which needs PostgreSQL's btree_gist extension (a trusted extension: the database's
owner may create it)."""

import catalog.models
import datetime
import django.contrib.postgres.constraints
from django.contrib.postgres.operations import BtreeGistExtension
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('catalog', '0005_ssp_and_override_amounts_as_money'),
        ('tenancy', '0004_payment_instructions'),
    ]

    operations = [
        BtreeGistExtension(),
        migrations.AlterModelOptions(
            name='taxrate',
            options={'ordering': ['country', 'tax_category', 'valid_from']},
        ),
        migrations.RemoveConstraint(
            model_name='taxrate',
            name='tax_rate_unique',
        ),
        migrations.AddField(
            model_name='taxrate',
            name='valid_from',
            field=models.DateField(default=datetime.date(1900, 1, 1)),
        ),
        migrations.AddField(
            model_name='taxrate',
            name='valid_to',
            field=models.DateField(blank=True, null=True),
        ),
        migrations.AddConstraint(
            model_name='taxrate',
            constraint=models.UniqueConstraint(fields=('tenant', 'country', 'tax_category', 'valid_from'), name='tax_rate_unique'),
        ),
        migrations.AddConstraint(
            model_name='taxrate',
            constraint=django.contrib.postgres.constraints.ExclusionConstraint(expressions=[('tenant', '='), ('country', '='), ('tax_category', '='), (catalog.models.DateRange('valid_from', 'valid_to', models.Value('[]')), '&&')], name='tax_rate_periods_do_not_overlap'),
        ),
        migrations.AddConstraint(
            model_name='taxrate',
            constraint=models.CheckConstraint(condition=models.Q(('valid_to__isnull', True), ('valid_to__gte', models.F('valid_from')), _connector='OR'), name='tax_rate_period_order'),
        ),
    ]
