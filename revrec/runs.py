"""The monthly recognition run (specs/revrec.md): what each performance obligation recognizes in a
calendar month, posted once, with its journal.

For every obligation with dates, the month recognizes what is due by the month's end less what
earlier runs recognized of it: a point-in-time obligation its whole amount once its day has come,
a ratable one round(allocated x elapsed days / total days) to date (``revrec.schedules``). So a
device activated in a month that is closed since is caught up in the open month (corrections post
in the open period), and an obligation that a later month's run has caught up already recognizes
nothing more.

- Idempotent: one recognition entry per obligation and period (unique), inserted with
  ON CONFLICT DO NOTHING; the journal posts only what this run inserted, in the same transaction,
  so re-running a month changes nothing.
- A closed period refuses the run (``PeriodClosed``, 409); the period's row is locked while the run
  posts, so a close waits for it.
- Set-based: one query reads the obligations with what they recognized so far, one statement
  inserts the entries, two write the journal, whatever the number of contracts.
- The journal, per contract and currency: Dr contract balance / Cr revenue by stream (hardware,
  service, usage, fees), balanced.

Usage (variable consideration recognized over its usage period) is not posted by this run yet.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from django.db.models import DecimalField, F, Q, Sum, Value
from django.db.models.functions import Coalesce

from revrec.errors import PeriodClosed
from revrec.models import (
    Account,
    JournalEntry,
    JournalLine,
    JournalSource,
    ObligationKind,
    Pattern,
    PerformanceObligation,
    RevenuePeriod,
)
from revrec.schedules import next_month, recognized_to_date

REVENUE_ACCOUNT = {
    ObligationKind.HARDWARE: Account.REVENUE_HARDWARE,
    ObligationKind.SERVICE: Account.REVENUE_SERVICE,
    ObligationKind.USAGE: Account.REVENUE_USAGE,
    ObligationKind.FEE: Account.REVENUE_FEES,
}

_INSERT = """
INSERT INTO revrec_recognitionentry (tenant_id, obligation_id, period, currency, amount, created_at)
SELECT %(tenant)s, t.obligation, %(period)s, t.currency, t.amount, %(at)s
FROM unnest(%(obligations)s::bigint[], %(currencies)s::varchar[], %(amounts)s::numeric[])
    AS t(obligation, currency, amount)
ON CONFLICT (obligation_id, period) DO NOTHING
RETURNING obligation_id, amount
"""


@dataclass(frozen=True)
class RunReport:
    """What a run posted: the entries it inserted, the revenue by (currency, stream), the journal
    entries it wrote. A repeated run reports zeros."""

    month: date
    entries: int = 0
    revenue: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    journal_entries: int = 0


def _due(row: Mapping[str, Any], *, end: date) -> Decimal:
    """What ``row`` (an obligation with ``recognized``, its total so far) still recognizes by the
    day before ``end``."""
    allocated: Decimal = row["allocated"]
    if row["pattern"] == Pattern.POINT_IN_TIME:
        to_date = allocated if row["recognized_on"] < end else Decimal(0)
    else:
        to_date = recognized_to_date(
            allocated, start=row["starts_on"], end=row["ends_on"], through=end, currency=row["currency"]
        )
    return to_date - row["recognized"]


@transaction.atomic
def recognition_run(
    *, tenant_id: Any, month: date, at: datetime, contract_ids: Sequence[UUID] | None = None
) -> RunReport:
    """Recognize the calendar month starting on ``month`` for the tenant's obligations and post its
    journal. Raises ``PeriodClosed`` if the month is closed. ``contract_ids`` limits the run to
    those contracts (a chunk of a run on Celery, ``revrec.periods``); None is every contract."""
    if month.day != 1:
        raise ValueError("a revenue period is named by the first day of its month")
    RevenuePeriod.objects.get_or_create(tenant_id=tenant_id, month=month)
    period = RevenuePeriod.objects.select_for_update().get(tenant_id=tenant_id, month=month)
    if period.closed_at is not None:
        raise PeriodClosed(
            "The revenue period %s is closed: corrections post in the open period." % f"{month:%Y-%m}",
            extra={"period": f"{month:%Y-%m}"},
        )
    end = next_month(month)
    zero = Value(Decimal(0), output_field=DecimalField())
    obligations = PerformanceObligation.objects.filter(tenant_id=tenant_id)
    if contract_ids is not None:
        obligations = obligations.filter(contract_id__in=list(contract_ids))
    rows = list(
        obligations.filter(
            Q(pattern=Pattern.POINT_IN_TIME, recognized_on__lt=end)
            | Q(pattern=Pattern.RATABLE, starts_on__lt=end, ends_on__isnull=False)
        )
        .annotate(recognized=Coalesce(Sum("entries__amount"), zero))
        .filter(recognized__lt=F("allocated"))
        .values(
            "id",
            "contract_id",
            "kind",
            "pattern",
            "currency",
            "allocated",
            "recognized",
            "starts_on",
            "ends_on",
            "recognized_on",
        )
    )
    due = [(row, amount) for row in rows if (amount := _due(row, end=end)) > 0]
    if not due:
        return RunReport(month=month)
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT,
            {
                "tenant": tenant_id,
                "period": month,
                "at": at,
                "obligations": [row["id"] for row, _ in due],
                "currencies": [row["currency"] for row, _ in due],
                "amounts": [amount for _, amount in due],
            },
        )
        inserted = dict(cursor.fetchall())
    by_id = {row["id"]: row for row, _ in due}
    # Per contract and currency, the revenue of each stream this run inserted.
    postings: dict[tuple[Any, str], dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    revenue: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for obligation_id, amount in inserted.items():
        row = by_id[obligation_id]
        postings[(row["contract_id"], row["currency"])][row["kind"]] += amount
        revenue[(row["currency"], row["kind"])] += amount
    entries = JournalEntry.objects.bulk_create(
        JournalEntry(
            tenant_id=tenant_id,
            period=month,
            date=end - timedelta(days=1),
            source_type=JournalSource.RECOGNITION,
            source_id=str(contract_id),
            contract_id=contract_id,
            currency=currency,
            created_at=at,
        )
        for contract_id, currency in postings
    )
    lines = []
    for entry, streams in zip(entries, postings.values(), strict=True):
        lines.append(
            JournalLine(
                tenant_id=tenant_id,
                entry=entry,
                account=Account.CONTRACT_BALANCE,
                currency=entry.currency,
                debit=sum(streams.values(), Decimal(0)),
                credit=Decimal(0),
            )
        )
        lines.extend(
            JournalLine(
                tenant_id=tenant_id,
                entry=entry,
                account=REVENUE_ACCOUNT[ObligationKind(kind)],
                currency=entry.currency,
                debit=Decimal(0),
                credit=amount,
            )
            for kind, amount in sorted(streams.items())
        )
    JournalLine.objects.bulk_create(lines)
    return RunReport(month=month, entries=len(inserted), revenue=dict(revenue), journal_entries=len(entries))
