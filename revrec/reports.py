"""Revenue reports (specs/revrec.md, "Reports"), read from the recognition entries, the performance
obligations and the journal, never from a second copy of them.

- **Revenue by stream**: what the recognition entries of each calendar month recognized, per
  stream (the obligation's kind: hardware, service, usage, fees) and currency.
- **Contract balances** at each month's end: per contract, billed − recognized = Σ (credit − debit)
  on the contract balance account of the journal entries dated on or before that day. A positive
  balance is deferred revenue (a contract liability), a negative one a contract asset (unbilled);
  the two are summed separately over the contracts, never netted against each other.
- **Billings vs revenue**: per month (the period a journal entry posts in), billings are the net
  invoiced amount (Cr contract balance of invoice entries, less the Dr of their credit notes) and
  revenue the month's recognition entries. Billings − revenue is the month's change of the net
  contract balance.
- **Waterfall** as of a month's end: what is allocated to the obligations but not recognized by
  then (entries of that month and earlier), spread over the months ahead by the obligations'
  schedules (``revrec.schedules``), the way the monthly run would recognize it: its first month,
  the one reported on, holds what is already due but not yet posted (a month not yet run, a device
  activated late). Obligations without dates yet (a device not activated) are "unscheduled".

Amounts stay in each contract's currency: the tenant's currency first, the others by code, never
converted. Every selector runs a fixed number of queries whatever the number of contracts,
obligations, entries and months.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db.models import Count, DecimalField, F, Prefetch, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from djmoney.money import Money

from billing_platform.db_router import reads_connection, replica_report
from revrec.errors import RevenueContractNotFound
from revrec.metrics import month_starts
from revrec.models import (
    Account,
    Contract,
    JournalEntry,
    JournalLine,
    JournalSource,
    ObligationKind,
    Pattern,
    PerformanceObligation,
    RecognitionEntry,
)
from revrec.rates import RateTable
from revrec.schedules import Recognition, next_month, point_in_time_schedule, ratable_schedule
from subscriptions.errors import SubscriptionNotFound
from subscriptions.models import Subscription
from tenancy.models import Tenant

ZERO = Decimal(0)
# The revenue streams in the order reports show them, named as the revenue accounts name them.
STREAMS: tuple[str, ...] = ("hardware", "service", "usage", "fees")
STREAM_OF_KIND = {
    ObligationKind.HARDWARE: "hardware",
    ObligationKind.SERVICE: "service",
    ObligationKind.USAGE: "usage",
    ObligationKind.FEE: "fees",
}


@dataclass(frozen=True)
class StreamRevenue:
    """One month's revenue of one currency, per stream."""

    month: date
    hardware: Money
    service: Money
    usage: Money
    fees: Money

    @property
    def total(self) -> Money:
        return self.hardware + self.service + self.usage + self.fees


@dataclass(frozen=True)
class ContractBalances:
    """The contract balances at a month's end: deferred revenue (the contracts billed ahead of
    recognition) and contract assets (recognized ahead of billing), each a positive amount."""

    month: date
    deferred_revenue: Money
    contract_asset: Money

    @property
    def net(self) -> Money:
        """Deferred revenue − contract assets: Σ (billed − recognized) over the contracts."""
        return self.deferred_revenue - self.contract_asset


@dataclass(frozen=True)
class BillingsRevenue:
    month: date
    billings: Money
    revenue: Money

    @property
    def difference(self) -> Money:
        """Billings − revenue: what the month added to the net contract balance."""
        return self.billings - self.revenue


@dataclass(frozen=True)
class WaterfallMonth:
    month: date
    amount: Money


@dataclass(frozen=True)
class Waterfall:
    """What remains to recognize after ``as_of``'s month end minus its own due part (see the
    module's docstring): ``remaining`` = Σ ``months`` + ``unscheduled``."""

    as_of: date  # the first day of the month reported on
    months: list[WaterfallMonth]
    unscheduled: Money
    currency: str

    @property
    def scheduled(self) -> Money:
        return sum((m.amount for m in self.months), Money(0, self.currency))

    @property
    def remaining(self) -> Money:
        return self.scheduled + self.unscheduled


@dataclass(frozen=True)
class CurrencyRevenue:
    """One currency's share of a report: the months of the range (zeros included) in each table."""

    currency: str
    revenue: list[StreamRevenue]
    contract_balances: list[ContractBalances]
    billings: list[BillingsRevenue]
    waterfall: Waterfall


@dataclass(frozen=True)
class ReportingMonth:
    """One month's revenue by stream in the reporting currency: each currency's amount converted at
    the month's rate (``revrec.rates.RateTable``). A currency with revenue in the month and no rate
    is listed in ``missing_rates`` and makes the totals it enters None: never converted at 1."""

    month: date
    hardware: Decimal | None
    service: Decimal | None
    usage: Decimal | None
    fees: Decimal | None
    total: Decimal | None
    missing_rates: list[str]


@dataclass(frozen=True)
class RevenueReport:
    start: date  # first day of the first month
    end: date  # first day of the last month
    reporting_currency: str
    currencies: list[CurrencyRevenue]
    in_reporting_currency: list[ReportingMonth] = field(default_factory=list)


@dataclass(frozen=True)
class StreamReport:
    """Revenue by stream and month alone (analytics' ``GET /reports/revenue``)."""

    start: date
    end: date
    reporting_currency: str
    currencies: list[tuple[str, list[StreamRevenue]]]
    in_reporting_currency: list[ReportingMonth] = field(default_factory=list)


# --- selectors ------------------------------------------------------------------------------------


def _currency_order(codes: Iterable[str], reporting: str) -> list[str]:
    """The tenant's currency first, then the others by code."""
    return sorted(set(codes), key=lambda code: (code != reporting, code))


@replica_report
def revenue_by_stream(*, tenant_id: Any, start: date, end: date) -> dict[str, list[StreamRevenue]]:
    """Per currency, every month from ``start``'s to ``end``'s: what its recognition entries
    recognized per stream. One query."""
    months = month_starts(start, end)
    sums: dict[tuple[str, date, str], Decimal] = defaultdict(Decimal)
    rows = (
        RecognitionEntry.objects.filter(tenant_id=tenant_id, period__gte=months[0], period__lte=months[-1])
        .values("currency", "period", "obligation__kind")
        .annotate(amount=Sum("amount"))
        .order_by()
    )
    for row in rows:
        sums[(row["currency"], row["period"], STREAM_OF_KIND[ObligationKind(row["obligation__kind"])])] += row["amount"]
    currencies = {currency for currency, _, _ in sums}
    return {
        currency: [
            StreamRevenue(month, *(Money(sums.get((currency, month, stream), ZERO), currency) for stream in STREAMS))
            for month in months
        ]
        for currency in currencies
    }


# Per contract and currency, the month's movement on the contract balance (entries before the
# range folded into its first month), every month of the range for every contract that has one
# (zeros filled in), the running balance at each month's end, and the positive and negative
# balances summed apart.
_BALANCES = """
WITH moves AS (
    SELECT e.contract_id, l.currency,
           GREATEST(date_trunc('month', e.date)::date, %(start)s::date) AS month,
           SUM(l.credit - l.debit) AS amount
    FROM revrec_journalline l JOIN revrec_journalentry e ON e.id = l.entry_id
    WHERE l.tenant_id = %(tenant)s AND e.tenant_id = %(tenant)s AND l.account = %(account)s
      AND e.date < %(horizon)s
    GROUP BY 1, 2, 3
),
contracts AS (SELECT DISTINCT contract_id, currency FROM moves),
months AS (SELECT generate_series(%(start)s::date, %(last)s::date, interval '1 month')::date AS month),
running AS (
    SELECT c.currency, m.month,
           SUM(COALESCE(mv.amount, 0)) OVER (
               PARTITION BY c.contract_id, c.currency ORDER BY m.month
           ) AS balance
    FROM contracts c CROSS JOIN months m
    LEFT JOIN moves mv ON mv.contract_id IS NOT DISTINCT FROM c.contract_id
        AND mv.currency = c.currency AND mv.month = m.month
)
SELECT currency, month,
       SUM(GREATEST(balance, 0)) AS deferred,
       SUM(GREATEST(-balance, 0)) AS asset
FROM running GROUP BY 1, 2
"""


@replica_report
def contract_balances(*, tenant_id: Any, start: date, end: date) -> dict[str, list[ContractBalances]]:
    """Per currency, deferred revenue and contract assets at the end of every month from
    ``start``'s to ``end``'s (see the module's docstring). One query."""
    months = month_starts(start, end)
    with reads_connection().cursor() as cursor:
        cursor.execute(
            _BALANCES,
            {
                "tenant": tenant_id,
                "account": Account.CONTRACT_BALANCE,
                "start": months[0],
                "last": months[-1],
                "horizon": next_month(months[-1]),
            },
        )
        rows = cursor.fetchall()
    found: dict[tuple[str, date], tuple[Decimal, Decimal]] = {
        (currency, month): (deferred, asset) for currency, month, deferred, asset in rows
    }
    return {
        currency: [
            ContractBalances(
                month,
                *(Money(amount, currency) for amount in found.get((currency, month), (ZERO, ZERO))),
            )
            for month in months
        ]
        for currency in {currency for currency, _ in found}
    }


@replica_report
def billings_by_month(*, tenant_id: Any, start: date, end: date) -> dict[str, dict[date, Decimal]]:
    """Per currency and month (the period entries post in), the net invoiced amount: Σ (credit −
    debit) on the contract balance of invoice entries, so a credit note's debit nets it. One query."""
    rows = (
        JournalLine.objects.filter(
            tenant_id=tenant_id,
            account=Account.CONTRACT_BALANCE,
            entry__source_type=JournalSource.INVOICE,
            entry__period__gte=date(start.year, start.month, 1),
            entry__period__lte=date(end.year, end.month, 1),
        )
        .values("currency", "entry__period")
        .annotate(amount=Sum(F("credit") - F("debit")))
        .order_by()
    )
    billings: dict[str, dict[date, Decimal]] = defaultdict(dict)
    for row in rows:
        billings[row["currency"]][row["entry__period"]] = row["amount"]
    return dict(billings)


def _schedule(row: Mapping[str, Any]) -> list[Recognition] | None:
    """An obligation's schedule, or None while it has no dates."""
    if row["pattern"] == Pattern.POINT_IN_TIME:
        if row["recognized_on"] is None:
            return None
        return point_in_time_schedule(row["allocated"], on=row["recognized_on"])
    if row["starts_on"] is None or row["ends_on"] is None:
        return None
    return ratable_schedule(row["allocated"], start=row["starts_on"], end=row["ends_on"], currency=row["currency"])


def _ahead(schedule: list[Recognition], *, recognized: Decimal, first: date) -> dict[date, Decimal]:
    """What each month from ``first`` on recognizes of a schedule of which ``recognized`` is
    posted already: recognized-to-date at a month's end is max(posted, the schedule's cumulative
    sum), as the run catches up what is due and never takes back. What is due by ``first``'s end
    and not posted lands in ``first``."""
    ahead: dict[date, Decimal] = {}
    to_date = sum((line.amount for line in schedule if line.month < first), ZERO)
    before = recognized
    later = [line for line in schedule if line.month >= first]
    months = sorted({first, *(line.month for line in later)})
    by_month = {line.month: line.amount for line in later}
    for month in months:
        to_date += by_month.get(month, ZERO)
        cumulative = max(recognized, to_date)
        if cumulative != before:
            ahead[month] = cumulative - before
        before = cumulative
    return ahead


@replica_report
def revenue_waterfall(*, tenant_id: Any, as_of: date) -> dict[str, Waterfall]:
    """Per currency, the waterfall as of the end of ``as_of``'s month (see the module's docstring).
    One query; the schedules are computed in memory."""
    month = date(as_of.year, as_of.month, 1)
    zero = Value(ZERO, output_field=DecimalField())
    rows = (
        PerformanceObligation.objects.filter(tenant_id=tenant_id)
        .annotate(
            recognized=Coalesce(Sum("entries__amount", filter=Q(entries__period__lte=month)), zero),
        )
        .filter(recognized__lt=F("allocated"))
        .values("currency", "allocated", "recognized", "pattern", "starts_on", "ends_on", "recognized_on")
        .order_by()
    )
    ahead: dict[str, dict[date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    unscheduled: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        currency = row["currency"]
        schedule = _schedule(row)
        if schedule is None:
            unscheduled[currency] += row["allocated"] - row["recognized"]
            continue
        for key, amount in _ahead(schedule, recognized=row["recognized"], first=month).items():
            ahead[currency][key] += amount
    waterfalls = {}
    for currency in {*ahead, *unscheduled}:
        amounts = ahead.get(currency, {})
        last = max(amounts, default=month)
        waterfalls[currency] = Waterfall(
            as_of=month,
            months=[WaterfallMonth(m, Money(amounts.get(m, ZERO), currency)) for m in month_starts(month, last)],
            unscheduled=Money(unscheduled.get(currency, ZERO), currency),
            currency=currency,
        )
    return waterfalls


def _empty_waterfall(currency: str, month: date) -> Waterfall:
    return Waterfall(as_of=month, months=[], unscheduled=Money(0, currency), currency=currency)


STREAM_FIELDS = ("hardware", "service", "usage", "fees")


def in_reporting_currency(*, tenant: Tenant, revenue: Mapping[str, list[StreamRevenue]]) -> list[ReportingMonth]:
    """Revenue by stream and month summed over the currencies in the reporting currency, at each
    month's rate (one query for the rates). 100.00 USD of service in March at 0.92 and 50.00 EUR:
    142.00 EUR; without a March rate for USD, March's service and total are None and USD missing."""
    months = sorted({row.month for rows in revenue.values() for row in rows})
    rates = RateTable.load(tenant=tenant, months=months, currencies=revenue)
    by_month: dict[date, list[StreamRevenue]] = defaultdict(list)
    for rows in revenue.values():
        for row in rows:
            by_month[row.month].append(row)
    result = []
    for month in months:
        sums: dict[str, Decimal | None] = dict.fromkeys(STREAM_FIELDS, Decimal(0))
        missing: set[str] = set()
        for row in by_month[month]:
            for name in STREAM_FIELDS:
                amount: Money = getattr(row, name)
                if not amount.amount:
                    continue
                converted = rates.convert(amount.amount, amount.currency.code, month)
                if converted is None:
                    missing.add(amount.currency.code)
                    sums[name] = None
                elif (so_far := sums[name]) is not None:
                    sums[name] = so_far + converted
        known = [v for v in sums.values() if v is not None]
        total = sum(known, Decimal(0)) if len(known) == len(sums) else None
        result.append(
            ReportingMonth(
                month,
                hardware=sums["hardware"],
                service=sums["service"],
                usage=sums["usage"],
                fees=sums["fees"],
                total=total,
                missing_rates=sorted(missing),
            )
        )
    return result


@replica_report
def revenue_report(*, tenant_id: Any, start: date, end: date) -> RevenueReport:
    """The whole report for the months from ``start``'s to ``end``'s: revenue by stream, contract
    balances, billings vs revenue, and the waterfall as of ``end``'s month. Five queries (the tenant
    and one per table)."""
    tenant = Tenant.objects.only("default_currency").get(pk=tenant_id)
    first, last = date(start.year, start.month, 1), date(end.year, end.month, 1)
    months = month_starts(first, last)
    revenue = revenue_by_stream(tenant_id=tenant_id, start=first, end=last)
    balances = contract_balances(tenant_id=tenant_id, start=first, end=last)
    billings = billings_by_month(tenant_id=tenant_id, start=first, end=last)
    waterfalls = revenue_waterfall(tenant_id=tenant_id, as_of=last)
    currencies = []
    for code in _currency_order([*revenue, *balances, *billings, *waterfalls], tenant.default_currency):
        none = Money(0, code)
        stream_rows = revenue.get(code) or [StreamRevenue(m, none, none, none, none) for m in months]
        billed = billings.get(code, {})
        currencies.append(
            CurrencyRevenue(
                currency=code,
                revenue=stream_rows,
                contract_balances=balances.get(code) or [ContractBalances(m, none, none) for m in months],
                billings=[
                    BillingsRevenue(row.month, Money(billed.get(row.month, ZERO), code), row.total)
                    for row in stream_rows
                ],
                waterfall=waterfalls.get(code) or _empty_waterfall(code, last),
            )
        )
    return RevenueReport(
        start=first,
        end=last,
        reporting_currency=tenant.default_currency,
        currencies=currencies,
        in_reporting_currency=in_reporting_currency(tenant=tenant, revenue=revenue),
    )


@replica_report
def revenue_stream_report(*, tenant_id: Any, start: date, end: date) -> StreamReport:
    """Revenue by stream and month alone, per currency. Two queries."""
    tenant = Tenant.objects.only("default_currency").get(pk=tenant_id)
    first, last = date(start.year, start.month, 1), date(end.year, end.month, 1)
    revenue = revenue_by_stream(tenant_id=tenant_id, start=first, end=last)
    return StreamReport(
        start=first,
        end=last,
        reporting_currency=tenant.default_currency,
        currencies=[(code, revenue[code]) for code in _currency_order(revenue, tenant.default_currency)],
        in_reporting_currency=in_reporting_currency(tenant=tenant, revenue=revenue),
    )


# --- a contract's schedules -----------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleLine:
    """One month of an obligation: what its schedule plans and what the runs posted in it (they
    differ when a run caught up a late activation)."""

    month: date
    planned: Money
    recognized: Money


@dataclass(frozen=True)
class ObligationSchedule:
    id: int
    kind: str
    product_code: str
    device_id: str
    pattern: str
    currency: str
    allocated: Money
    starts_on: date | None
    ends_on: date | None
    recognized_on: date | None
    recognized: Money  # posted so far, all months
    lines: list[ScheduleLine]

    @property
    def remaining(self) -> Money:
        return self.allocated - self.recognized


@dataclass(frozen=True)
class ContractSchedule:
    subscription: str  # its external id
    contract_id: Any
    currency: str
    transaction_price: Money
    created_at: datetime
    obligations: list[ObligationSchedule]

    @property
    def allocated(self) -> Money:
        return sum((o.allocated for o in self.obligations), Money(0, self.currency))

    @property
    def recognized(self) -> Money:
        return sum((o.recognized for o in self.obligations), Money(0, self.currency))


def _obligation_schedule(obligation: PerformanceObligation) -> ObligationSchedule:
    currency = obligation.currency
    allocated: Decimal = obligation.allocated.amount
    row = {
        "pattern": obligation.pattern,
        "allocated": allocated,
        "currency": currency,
        "starts_on": obligation.starts_on,
        "ends_on": obligation.ends_on,
        "recognized_on": obligation.recognized_on,
    }
    planned = {line.month: line.amount for line in _schedule(row) or []}
    posted: dict[date, Decimal] = defaultdict(Decimal)
    for entry in obligation.entries.all():
        posted[entry.period] += entry.amount.amount
    return ObligationSchedule(
        id=obligation.pk,
        kind=obligation.kind,
        product_code=obligation.product_code,
        device_id=obligation.device_id,
        pattern=obligation.pattern,
        currency=currency,
        allocated=Money(allocated, currency),
        starts_on=obligation.starts_on,
        ends_on=obligation.ends_on,
        recognized_on=obligation.recognized_on,
        recognized=Money(sum(posted.values(), ZERO), currency),
        lines=[
            ScheduleLine(month, Money(planned.get(month, ZERO), currency), Money(posted.get(month, ZERO), currency))
            for month in sorted({*planned, *posted})
        ],
    )


def contract_schedule_get(*, tenant: Tenant, subscription: str) -> ContractSchedule:
    """The contract of the subscription whose external id is ``subscription``: its transaction
    price, and each obligation's allocation, dates and monthly lines (planned by its schedule,
    recognized by the runs). Raises ``SubscriptionNotFound`` or ``RevenueContractNotFound``. Three
    queries (four when there is no contract)."""
    contract = (
        Contract.objects.filter(tenant=tenant, subscription__tenant=tenant, subscription__external_id=subscription)
        .select_related("subscription")
        .prefetch_related(
            Prefetch(
                "obligations",
                queryset=PerformanceObligation.objects.filter(tenant=tenant)
                .order_by("id")
                .prefetch_related(
                    Prefetch("entries", queryset=RecognitionEntry.objects.filter(tenant=tenant).order_by("period"))
                ),
            )
        )
        .first()
    )
    if contract is None:
        if not Subscription.objects.filter(tenant=tenant, external_id=subscription).exists():
            raise SubscriptionNotFound(
                "No subscription with external_id %r." % subscription, extra={"subscription": subscription}
            )
        raise RevenueContractNotFound(
            "Subscription %r has no revenue contract yet." % subscription, extra={"subscription": subscription}
        )
    return ContractSchedule(
        subscription=contract.subscription.external_id,
        contract_id=contract.pk,
        currency=contract.currency,
        transaction_price=contract.transaction_price,
        created_at=contract.created_at,
        obligations=[_obligation_schedule(o) for o in contract.obligations.all()],
    )


# --- the journal ----------------------------------------------------------------------------------


def journal_entry_list(
    *, tenant_id: Any, period: date | None = None, source_type: str | None = None
) -> QuerySet[JournalEntry]:
    """The journal entries of a period (all periods without one), of one source if given, each
    with its contract's subscription and, prefetched, its lines."""
    qs = JournalEntry.objects.filter(tenant_id=tenant_id)
    if period is not None:
        qs = qs.filter(period=date(period.year, period.month, 1))
    if source_type:
        qs = qs.filter(source_type=source_type)
    return qs.select_related("contract__subscription").prefetch_related(
        Prefetch("lines", queryset=JournalLine.objects.filter(tenant_id=tenant_id).order_by("id"))
    )


@dataclass(frozen=True)
class JournalTotals:
    currency: str
    entries: int
    debit: Money
    credit: Money

    @property
    def balanced(self) -> bool:
        return self.debit == self.credit


def journal_totals(
    *, tenant_id: Any, period: date | None = None, source_type: str | None = None
) -> list[JournalTotals]:
    """Per currency, the debits and credits of the entries ``journal_entry_list`` selects: equal
    when every entry is balanced. One query."""
    qs = JournalLine.objects.filter(tenant_id=tenant_id)
    if period is not None:
        qs = qs.filter(entry__period=date(period.year, period.month, 1))
    if source_type:
        qs = qs.filter(entry__source_type=source_type)
    rows = (
        qs.values("currency")
        .annotate(debit=Sum("debit"), credit=Sum("credit"), entries=Count("entry_id", distinct=True))
        .order_by("currency")
    )
    return [
        JournalTotals(
            row["currency"], row["entries"], Money(row["debit"], row["currency"]), Money(row["credit"], row["currency"])
        )
        for row in rows
    ]


def journal_line_list(
    *, tenant_id: Any, period: date | None = None, source_type: str | None = None
) -> QuerySet[JournalLine]:
    """The lines of the entries ``journal_entry_list`` selects, in the same order, each with its
    entry and the entry's subscription: the journal flat, one line a row (its export)."""
    qs = JournalLine.objects.filter(tenant_id=tenant_id)
    if period is not None:
        qs = qs.filter(entry__period=date(period.year, period.month, 1))
    if source_type:
        qs = qs.filter(entry__source_type=source_type)
    return qs.select_related("entry__contract__subscription").order_by("entry__date", "entry_id", "id")
