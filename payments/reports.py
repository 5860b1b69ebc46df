"""Receivables: what customers owe as of a day, by how late it is (aging), and how well the money
comes in (DSO, collection rate, dunning recovery); per currency, never summed across currencies.

What was owed on ``as_of`` is reconstructed, not read from today's ``amount_due``: an invoice counts
when it was finalized by the end of that day (in the tenant's time zone) and is not void, and what
it still owed is ``max(0, total - credit notes finalized by then - allocations created by then)``,
the ledger's own formula (``payments.models``) over the rows that existed on that day. A report of
a past day therefore does not change when a payment arrives later. Invoices written off as
uncollectible are left out: a write-off removes the amount from receivables (it becomes a loss),
and the report does not keep when it happened.

Aging buckets count the days from the due date to ``as_of``: not yet due (0 or less), 1-30, 31-60,
61-90, over 90 days past due.

Over the 90 days ending on ``as_of`` (``WINDOW_DAYS``):

- DSO = receivables on ``as_of`` / totals of the invoices issued in the window x 90;
- collection rate = what was paid on those invoices by ``as_of`` (payments, credit balance, less
  refunds) / their totals;
- dunning recovery = what succeeded attempts took after an invoice's first failed attempt / the
  amount of those first failed attempts, for first failures in the window (``PaymentAttempt`` rows).

Each ratio is ``None`` when its denominator is zero.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from djmoney.money import Money

from billing_platform.db_router import reads_connection, replica_report
from billing_platform.money import round_minor
from billing_platform.periods import local_midnight
from tenancy.models import Tenant

WINDOW_DAYS = 90
BUCKETS = ("current", "days_1_30", "days_31_60", "days_61_90", "over_90")

__all__ = [
    "BUCKETS",
    "WINDOW_DAYS",
    "Aging",
    "CurrencyReceivables",
    "CustomerAging",
    "ReceivablesReport",
    "customer_receivables",
    "receivables_aging",
]


@dataclass(frozen=True)
class Aging:
    """Amounts owed by how late they are; ``total`` is their sum."""

    current: Money
    days_1_30: Money
    days_31_60: Money
    days_61_90: Money
    over_90: Money
    total: Money

    def buckets(self) -> list[Money]:
        return [getattr(self, name) for name in BUCKETS]


@dataclass(frozen=True)
class CustomerAging:
    customer_id: UUID
    external_id: str
    name: str
    aging: Aging
    invoices: int


@dataclass(frozen=True)
class CurrencyReceivables:
    currency: str
    total: Aging
    invoices: int
    customers: list[CustomerAging]
    billed: Money
    collected: Money
    failed: Money
    recovered: Money
    dso: Decimal | None = None
    collection_rate: Decimal | None = None
    dunning_recovery: Decimal | None = None


@dataclass(frozen=True)
class ReceivablesReport:
    as_of: date
    window_start: date
    currencies: list[CurrencyReceivables] = field(default_factory=list)


# One statement: each open invoice's outstanding amount on the day, then the buckets per customer
# and per currency (GROUPING SETS), with FILTERed sums. The amounts are MATERIALIZED: inlined, the
# planner pushed ``outstanding > 0`` (two subqueries per invoice) into the invoice scan, ahead of the
# customer's filter of ``customer_receivables``, and one customer's figure computed the amounts of
# every invoice of the tenant.
_AGING_SQL = """
WITH open_invoices AS MATERIALIZED (
    SELECT i.id, i.customer_id, i.currency, (%(as_of)s::date - i.due_date) AS late,
           GREATEST(
               0,
               i.total
               - COALESCE((SELECT SUM(n.total) FROM invoicing_invoice n
                           WHERE n.credited_invoice_id = i.id AND n.kind = 'credit_note'
                             AND n.status <> 'void' AND n.finalized_at < %(cutoff)s), 0)
               - COALESCE((SELECT SUM(a.amount) FROM payments_paymentallocation a
                           WHERE a.invoice_id = i.id AND a.created_at < %(cutoff)s), 0)
           ) AS outstanding
    FROM invoicing_invoice i
    WHERE i.tenant_id = %(tenant)s AND i.kind = 'invoice' AND i.status <> 'void' AND i.status <> 'draft'
      AND i.finalized_at < %(cutoff)s AND i.payment_status <> 'uncollectible' AND i.due_date IS NOT NULL
)
SELECT o.currency, o.customer_id, MIN(c.external_id), MIN(c.name), COUNT(*),
       COALESCE(SUM(o.outstanding) FILTER (WHERE o.late <= 0), 0),
       COALESCE(SUM(o.outstanding) FILTER (WHERE o.late BETWEEN 1 AND 30), 0),
       COALESCE(SUM(o.outstanding) FILTER (WHERE o.late BETWEEN 31 AND 60), 0),
       COALESCE(SUM(o.outstanding) FILTER (WHERE o.late BETWEEN 61 AND 90), 0),
       COALESCE(SUM(o.outstanding) FILTER (WHERE o.late > 90), 0),
       SUM(o.outstanding)
FROM open_invoices o JOIN customers_customer c ON c.id = o.customer_id
WHERE o.outstanding > 0
GROUP BY GROUPING SETS ((o.currency, o.customer_id), (o.currency))
ORDER BY o.currency, (o.customer_id IS NOT NULL), MIN(c.name), o.customer_id
"""

# Billed and collected over the window (invoices issued in it), and dunning recovery (first
# failures in it), per currency, in one statement.
_RATES_SQL = """
WITH billed AS (
    SELECT i.currency, SUM(i.total) AS billed,
           SUM(COALESCE((SELECT SUM(a.amount) FROM payments_paymentallocation a
                         WHERE a.invoice_id = i.id AND a.created_at < %(cutoff)s), 0)) AS collected
    FROM invoicing_invoice i
    WHERE i.tenant_id = %(tenant)s AND i.kind = 'invoice' AND i.status <> 'void' AND i.status <> 'draft'
      AND i.finalized_at < %(cutoff)s AND i.issue_date BETWEEN %(start)s AND %(as_of)s
    GROUP BY i.currency
),
first_failure AS (
    SELECT DISTINCT ON (t.invoice_id) t.invoice_id, t.currency, t.number, t.amount, t.created_at
    FROM payments_paymentattempt t
    WHERE t.tenant_id = %(tenant)s AND t.status = 'failed' AND t.created_at < %(cutoff)s
    ORDER BY t.invoice_id, t.number
),
dunning AS (
    SELECT f.currency, SUM(f.amount) AS failed,
           SUM(COALESCE((SELECT SUM(s.amount) FROM payments_paymentattempt s
                         WHERE s.invoice_id = f.invoice_id AND s.status = 'succeeded'
                           AND s.number > f.number AND s.created_at < %(cutoff)s), 0)) AS recovered
    FROM first_failure f
    WHERE f.created_at >= %(window_from)s
    GROUP BY f.currency
)
SELECT COALESCE(b.currency, d.currency), COALESCE(b.billed, 0), COALESCE(b.collected, 0),
       COALESCE(d.failed, 0), COALESCE(d.recovered, 0)
FROM billed b FULL OUTER JOIN dunning d ON d.currency = b.currency
"""


def _aging(row: Sequence[Any], currency: str) -> Aging:
    amounts = [Money(round_minor(Decimal(v), currency), currency) for v in row]
    return Aging(*amounts)


def _ratio(numerator: Decimal, denominator: Decimal, scale: int = 1, places: str = "0.0001") -> Decimal | None:
    if denominator <= 0:
        return None
    return (numerator * scale / denominator).quantize(Decimal(places))


@replica_report
def receivables_aging(*, tenant_id: UUID, as_of: date) -> ReceivablesReport:
    """The receivables of ``tenant_id`` on ``as_of`` (the end of that day in the tenant's zone), per
    currency: the aging per customer and in total, DSO, collection rate and dunning recovery over
    the 90 days ending that day."""
    tz = Tenant.objects.values_list("timezone", flat=True).get(pk=tenant_id)
    cutoff = local_midnight(as_of + timedelta(days=1), tz)
    start = as_of - timedelta(days=WINDOW_DAYS - 1)
    params: dict[str, Any] = {
        "tenant": tenant_id,
        "as_of": as_of,
        "cutoff": cutoff,
        "start": start,
        "window_from": local_midnight(start, tz),
    }
    with reads_connection().cursor() as cursor:
        cursor.execute(_AGING_SQL, params)
        aging_rows = cursor.fetchall()
        cursor.execute(_RATES_SQL, params)
        rate_rows = {row[0]: row[1:] for row in cursor.fetchall()}

    totals: dict[str, tuple[Aging, int]] = {}
    customers: dict[str, list[CustomerAging]] = {}
    for currency, customer_id, external_id, name, count, *amounts in aging_rows:
        aging = _aging(amounts, currency)
        if customer_id is None:
            totals[currency] = (aging, count)
        else:
            customers.setdefault(currency, []).append(
                CustomerAging(customer_id=customer_id, external_id=external_id, name=name, aging=aging, invoices=count)
            )

    report = ReceivablesReport(as_of=as_of, window_start=start)
    for currency in sorted(set(totals) | set(rate_rows)):
        zero = Money(0, currency)
        total, count = totals.get(currency, (Aging(*([zero] * 6)), 0))
        billed, collected, failed, recovered = (
            Money(round_minor(Decimal(v), currency), currency) for v in rate_rows.get(currency, (0, 0, 0, 0))
        )
        report.currencies.append(
            CurrencyReceivables(
                currency=currency,
                total=total,
                invoices=count,
                customers=customers.get(currency, []),
                billed=billed,
                collected=collected,
                failed=failed,
                recovered=recovered,
                dso=_ratio(total.total.amount, billed.amount, WINDOW_DAYS, "0.1"),
                collection_rate=_ratio(collected.amount, billed.amount),
                dunning_recovery=_ratio(recovered.amount, failed.amount),
            )
        )
    return report


# The aging statement narrowed to one customer's invoices: the same formula, read for the customer
# page without going through the whole tenant's receivables.
_TENANT_FILTER = "WHERE i.tenant_id = %(tenant)s AND "
_CUSTOMER_AGING_SQL = _AGING_SQL.replace(_TENANT_FILTER, _TENANT_FILTER + "i.customer_id = %(customer)s AND ", 1)
if _CUSTOMER_AGING_SQL == _AGING_SQL:  # the statement's tenant filter was reworded: narrow it again
    raise RuntimeError("the aging statement no longer reads WHERE i.tenant_id = ... AND")


def customer_receivables(*, tenant: Tenant, customer_id: UUID, currency: str, as_of: date) -> Aging:
    """What the customer owes on ``as_of`` in ``currency``, by how late it is: its row of
    ``receivables_aging`` for that day (zero when it owes nothing), read in one statement."""
    params: dict[str, Any] = {
        "tenant": tenant.pk,
        "customer": customer_id,
        "as_of": as_of,
        "cutoff": local_midnight(as_of + timedelta(days=1), tenant.timezone),
    }
    with reads_connection().cursor() as cursor:
        cursor.execute(_CUSTOMER_AGING_SQL, params)
        rows = cursor.fetchall()
    for row_currency, row_customer, _external_id, _name, _count, *amounts in rows:
        if row_customer is not None and row_currency == currency:
            return _aging(amounts, currency)
    zero = Money(0, currency)
    return Aging(*([zero] * 6))
