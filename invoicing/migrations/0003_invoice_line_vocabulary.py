"""Invoice lines get their vocabulary: ``type`` its choices, ``qualifiers`` (what sets a line apart
from the product's other lines, rendered at display time by ``invoicing.lines.line_description``),
``precise_amount`` (the unrounded figure) and ``source`` (the ledger charge a service line is).

The lines already written had their qualifiers written into ``description`` in English, in exactly
three shapes (hardware "<name>, instalment k/n", prorated service "<name>, <from> to <to>
(days/days in period)", late usage "<name> (late usage)"). They are parsed once, here, into a name
and qualifiers, so an older invoice renders as a new one does, in the reader's language. A
description in none of these shapes stays as it is, without qualifiers, and renders as stored.
Reversing writes the English suffixes back onto every line's description.
"""

from django.db import migrations, models

FORWARD = [
    r"""
    UPDATE invoicing_invoiceline AS line
    SET description = parsed.m[1],
        qualifiers = jsonb_build_object('instalment', parsed.m[2]::int, 'of', parsed.m[3]::int)
    FROM (
        SELECT id, regexp_match(description, '^(.+), instalment (\d+)/(\d+)$') AS m
        FROM invoicing_invoiceline
        WHERE type = 'hardware'
    ) AS parsed
    WHERE line.id = parsed.id AND parsed.m IS NOT NULL
    """,
    r"""
    UPDATE invoicing_invoiceline AS line
    SET description = parsed.m[1],
        qualifiers = jsonb_build_object(
            'from', parsed.m[2], 'to', parsed.m[3], 'days', parsed.m[4]::int, 'days_in_period', parsed.m[5]::int
        )
    FROM (
        SELECT id,
               regexp_match(description, '^(.+), (\d{4}-\d{2}-\d{2}) to (\d{4}-\d{2}-\d{2}) \((\d+)/(\d+)\)$') AS m
        FROM invoicing_invoiceline
        WHERE type = 'service'
    ) AS parsed
    WHERE line.id = parsed.id AND parsed.m IS NOT NULL
    """,
    # Adjustments, and the credit-note lines that copied one.
    r"""
    UPDATE invoicing_invoiceline AS line
    SET description = parsed.m[1], qualifiers = '{"late_usage": true}'::jsonb
    FROM (
        SELECT id, regexp_match(description, '^(.+) \(late usage\)$') AS m
        FROM invoicing_invoiceline
        WHERE type = 'usage'
    ) AS parsed
    WHERE line.id = parsed.id AND parsed.m IS NOT NULL
    """,
]

BACKWARD = [
    """
    UPDATE invoicing_invoiceline
    SET description = left(
        description || ', instalment ' || (qualifiers ->> 'instalment') || '/' || (qualifiers ->> 'of'), 300
    )
    WHERE qualifiers ? 'instalment'
    """,
    """
    UPDATE invoicing_invoiceline
    SET description = left(
        description || ', ' || (qualifiers ->> 'from') || ' to ' || (qualifiers ->> 'to')
        || ' (' || (qualifiers ->> 'days') || '/' || (qualifiers ->> 'days_in_period') || ')',
        300
    )
    WHERE qualifiers ? 'days'
    """,
    """
    UPDATE invoicing_invoiceline
    SET description = left(description || ' (late usage)', 300)
    WHERE (qualifiers ->> 'late_usage')::boolean
    """,
]


class Migration(migrations.Migration):

    dependencies = [
        ('invoicing', '0002_invoice_sent_at'),
    ]

    operations = [
        migrations.AddField(
            model_name='invoiceline',
            name='precise_amount',
            field=models.DecimalField(blank=True, decimal_places=10, max_digits=28, null=True),
        ),
        migrations.AddField(
            model_name='invoiceline',
            name='qualifiers',
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name='invoiceline',
            name='source',
            field=models.CharField(blank=True, max_length=24, null=True),
        ),
        migrations.AlterField(
            model_name='invoiceline',
            name='type',
            field=models.CharField(choices=[('hardware', 'Hardware'), ('service', 'Service'), ('usage', 'Usage'), ('fee', 'Fee'), ('credit', 'Credit')], max_length=16),
        ),
        migrations.RunSQL(FORWARD, reverse_sql=BACKWARD),
    ]
