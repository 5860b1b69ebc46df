"""The monthly recognition run (specs/revrec.md): what each performance obligation recognizes in a
calendar month, posted once, with its journal.

For every obligation with dates, the month recognizes what is due by the month's end less what
earlier runs recognized of it: a point-in-time obligation its whole amount once its day has come,
a ratable one round(allocated x elapsed days / total days) to date (``revrec.schedules``). So a
device activated in a month that is closed since is caught up in the open month (corrections post
in the open period), and an obligation that a later month's run has caught up already recognizes
nothing more.

- Usage (variable consideration): before recognizing, the run refreshes each contract's usage
  obligations (``revrec.usage_obligations``): one per usage period, its amount as invoiced, or as
  rated so far while the period is open. A usage obligation whose amount changed since an earlier
  run recognizes the difference (a true-up, possibly negative) in the month being run.
- Idempotent: one recognition entry per obligation and period (unique); a run repeated after
  something changed (usage rated further, a period invoiced) adds the difference to the period's
  entry and journals only that, in the same transaction, so re-running a month with nothing new
  changes nothing. An obligation that a later month's run has already posted is left to that month:
  running an earlier month again never reverses what a later one caught up.
- A closed period refuses the run (``PeriodClosed``, 409); the period's row is locked while the run
  posts, so a close waits for it.
- ``contract_ids`` restricts a run to some contracts: a run chunked by contracts posts what one
  run over all of them would.
- Set-based: two statements and one usage context (``usage.usage_context``) refresh the usage
  obligations, one query reads the obligations with what they recognized so far, one statement
  writes the entries, two the journal, whatever the number of contracts: about 20 queries a run.
- The journal, per contract and currency: Dr contract balance / Cr revenue by stream (hardware,
  service, usage, fees), balanced; a negative amount (usage trued down) posts on the other side,
  Dr revenue / Cr contract balance.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from django.db.models import DecimalField, F, Max, Q, Sum, Value
from django.db.models.functions import Coalesce

from revrec.contracts import contracts_sync
from revrec.errors import PeriodClosed
from revrec.journal import Posting, journal_post
from revrec.models import (
    Account,
    JournalSource,
    ObligationKind,
    Pattern,
    PerformanceObligation,
    RevenuePeriod,
)
from revrec.schedules import next_month, recognized_to_date
from revrec.usage_obligations import usage_obligations_refresh

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
ON CONFLICT (obligation_id, period) DO UPDATE SET amount = revrec_recognitionentry.amount + EXCLUDED.amount
RETURNING obligation_id
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
    """Recognize the calendar month starting on ``month`` for the tenant's obligations (those of
    ``contract_ids`` only, when given) and post its journal. Raises ``PeriodClosed`` if the month
    is closed. A whole-tenant run first brings the contracts up to date (``contracts_sync``); a run
    by chunks of contracts expects its caller to have done so once for all the chunks."""
    if contract_ids is None:
        contracts_sync(tenant_id=tenant_id, at=at)
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
    usage_obligations_refresh(tenant_id=tenant_id, month=month, end=end, contract_ids=contract_ids)
    zero = Value(Decimal(0), output_field=DecimalField())
    obligations = PerformanceObligation.objects.filter(tenant_id=tenant_id)
    if contract_ids is not None:
        obligations = obligations.filter(contract_id__in=list(contract_ids))
    rows = list(
        obligations.filter(
            Q(pattern=Pattern.POINT_IN_TIME, recognized_on__lt=end)
            | Q(pattern=Pattern.RATABLE, starts_on__lt=end, ends_on__isnull=False)
        )
        .annotate(recognized=Coalesce(Sum("entries__amount"), zero), last_period=Max("entries__period"))
        .exclude(recognized=F("allocated"))
        .filter(Q(last_period__isnull=True) | Q(last_period__lte=month))
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
    due = [(row, amount) for row in rows if (amount := _due(row, end=end)) != 0]
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
        cursor.fetchall()
    # Per contract and currency, the revenue of each stream this run recognized (signed).
    postings: dict[tuple[Any, str], dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    revenue: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row, amount in due:
        postings[(row["contract_id"], row["currency"])][row["kind"]] += amount
        revenue[(row["currency"], row["kind"])] += amount
    journal = []
    for (contract_id, currency), streams in postings.items():
        posting = Posting(
            tenant_id=tenant_id,
            period=month,
            date=end - timedelta(days=1),
            source_type=JournalSource.RECOGNITION,
            source_id=str(contract_id),
            contract_id=contract_id,
            currency=currency,
        )
        posting.add(Account.CONTRACT_BALANCE, sum(streams.values(), Decimal(0)))
        for kind, amount in sorted(streams.items()):
            posting.add(REVENUE_ACCOUNT[ObligationKind(kind)], -amount)
        journal.append(posting)
    entries = journal_post(journal, at=at)
    return RunReport(
        month=month,
        entries=len(due),
        revenue={key: value for key, value in revenue.items() if value != 0},
        journal_entries=len(entries),
    )
