"""Gapless document numbers: ``<prefix>-<year>-<sequence>`` (INV-2026-000001), one sequence per
tenant, series (invoices, credit notes) and year."""

from typing import Any

from django.db import connection

NEXT_NUMBER_SQL = """
INSERT INTO invoicing_invoicenumbersequence (tenant_id, series, year, last) VALUES (%(tenant)s, %(series)s, %(year)s,
    %(count)s)
ON CONFLICT (tenant_id, series, year) DO UPDATE SET last = invoicing_invoicenumbersequence.last + %(count)s
RETURNING last
"""


def numbers_take(*, tenant_id: Any, series: str, year: int, count: int = 1) -> range:
    """``count`` consecutive sequence numbers of the series and year, in order. Gapless: one
    statement takes them and locks the sequence row until the caller's transaction commits, so two
    finalizations never take the same number and a rolled-back one gives its numbers back."""
    with connection.cursor() as cursor:
        cursor.execute(NEXT_NUMBER_SQL, {"tenant": tenant_id, "series": series, "year": year, "count": count})
        (last,) = cursor.fetchone()
    return range(int(last) - count + 1, int(last) + 1)


def number_format(prefix: str, year: int, sequence: int) -> str:
    """``number_format("INV", 2026, 41)`` -> ``"INV-2026-000041"``: at most 32 characters with a prefix
    of up to 8 (``invoicing.services.settings.PREFIX_RE``)."""
    return "%s-%d-%06d" % (prefix, year, sequence)
