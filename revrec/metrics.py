"""MRR and its movements (analytics.md), computed from the subscriptions, their devices and the
catalog's prices, never from a second copy of them.

- The MRR of a subscription at an instant: its recurring service fees normalised to a month, the
  per-device fees times the devices billable at that instant and the flat fees, a quarterly fee ÷ 3
  and a yearly one ÷ 12, at the prices in effect at that instant (customer overrides and price
  locks applied, as billing resolves them: ``catalog.versions.PriceBook``), without tax. Which
  devices pay is billing's rule (``subscriptions.devices.device_is_billable``), and a fee is priced
  by its charge model (``catalog.charge_models.pricing.price``), as the in-advance fee of
  ``invoicing.fees.service_fee_lines`` is. Hardware, usage and one-time fees are not MRR. A
  subscription has none before it starts, during its trial, and from its end (a cancellation, an
  end of commitment without renewal); a suspended one keeps its MRR.
- A customer's MRR is the sum of its subscriptions' MRR, rounded once to the currency's minor unit.
- Per calendar month in the tenant's time zone, per customer: the MRR at the start of the month
  (the end of the previous one) and at its end, and the movement between them: ``new`` (the first
  MRR ever, as seen at month ends), ``expansion``, ``contraction``, ``churn`` (to zero),
  ``reactivation`` (from zero after a churn); so that end = start + new + expansion − contraction −
  churn + reactivation, per customer and in total.
- Amounts stay in each customer's currency: the customers in the tenant's currency come first, the
  others are reported per currency. ``mrr_in_reporting_currency`` then converts each month's
  per-currency totals at that month's rate (``revrec.rates.RateTable``) and adds them up; a month
  missing the rate of a currency in use has null converted totals and is listed as missing, never
  converted at 1. Every figure of a month (its start included) is converted at that month's rate,
  so end = start + movements holds within the month, and a month's start can differ from the
  previous month's end by the change of rate.
- ARPD: MRR at a month's end ÷ the devices paying a per-device fee then. NRR (net revenue
  retention) of the customers who had MRR at the start: (their MRR at the start + their
  expansion − contraction − churn + reactivation) ÷ their MRR at the start, i.e. their MRR at the
  end ÷ their MRR at the start, as a percentage with 2 places: per month, and over the report's
  months (converted at the last month's rate, so that exchange rates do not move it).

Devices and prices are read for the whole tenant in a few queries, and every month is computed in
memory.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from django.db.models import Prefetch
from djmoney.money import Money

from billing_platform.db_router import replica_report
from billing_platform.money import round_minor
from billing_platform.periods import add_months, local_midnight
from catalog.charge_models.base import Usage
from catalog.charge_models.pricing import price
from catalog.models import INTERVAL_MONTHS, Interval, PlanComponent, ProductKind, StartsOn
from catalog.versions import PriceBook, customer_price_book
from revrec.rates import RateTable
from subscriptions.devices import DeviceLike, device_is_billable
from subscriptions.models import Device, Subscription
from subscriptions.periods import subscription_end
from tenancy.models import Tenant

ZERO = Decimal(0)


@dataclass(frozen=True)
class SubscriptionMrr:
    amount: Decimal  # unrounded, in the customer's currency
    devices: int  # devices paying a per-device fee at the instant


@dataclass(frozen=True)
class CustomerMrr:
    customer_id: Any
    external_id: str
    name: str
    start: Money
    end: Money
    new: Money
    expansion: Money
    contraction: Money
    churn: Money
    reactivation: Money
    devices: int  # billable at the month's end


@dataclass(frozen=True)
class CurrencyMrr:
    """One currency's customers in one month and their totals."""

    currency: str
    start: Money
    end: Money
    new: Money
    expansion: Money
    contraction: Money
    churn: Money
    reactivation: Money
    devices: int
    arpd: Money | None  # MRR at the end ÷ billable devices; None without a device
    customers: list[CustomerMrr]


@dataclass(frozen=True)
class MonthMrr:
    month: date  # its first day
    currencies: list[CurrencyMrr]  # the tenant's currency first, then the others by code


def subscription_mrr(
    *, subscription: Subscription, devices: Sequence[DeviceLike], prices: PriceBook, at: datetime
) -> SubscriptionMrr:
    """The MRR of ``subscription`` at ``at`` (see the module's docstring), unrounded, with the number
    of devices paying a per-device fee. ``subscription.customer`` and the plan's components (with
    their products) are read, ``devices`` are the subscription's (removed ones included)."""
    end = subscription_end(subscription)
    if at < subscription.starts_at or (end is not None and at >= end):
        return SubscriptionMrr(ZERO, 0)
    if subscription.trial_ends_at is not None and at < subscription.trial_ends_at:
        return SubscriptionMrr(ZERO, 0)
    customer = subscription.customer
    resolved = prices.resolve(
        plan=subscription.plan,
        currency=customer.currency,
        country=customer.country,
        at=at,
        customer_id=customer.pk,
        locked=subscription,
        price_book=customer_price_book(customer),
    )
    months = INTERVAL_MONTHS[Interval(subscription.plan.interval)]
    amount, paying = ZERO, set[int]()
    for r in resolved:
        c = r.component
        if c.kind != ProductKind.SERVICE or r.charge is None:
            continue
        billable = [d for d in devices if device_is_billable(d, c, at)]
        units = _units(c, billable)
        if not units:
            continue
        if c.per_device:
            paying.update(id(d) for d in billable)
        amount += price(
            charge=r.charge, usage=Usage(quantity=Decimal(units)), currency=customer.currency
        ).precise_amount
    return SubscriptionMrr(amount / months, len(paying))


def _units(component: PlanComponent, billable: Sequence[DeviceLike]) -> int:
    """How many times the fee is due, as the in-advance fee bills it: once per billable device, or
    once for the subscription (from its first activation when the fee waits for one)."""
    if component.per_device:
        return len(billable)
    return 1 if billable or component.starts_on != StartsOn.ACTIVATION else 0


def month_starts(start: date, end: date) -> list[date]:
    """The first days of the months from ``start``'s to ``end``'s, both included."""
    months, (year, month) = [], (start.year, start.month)
    while (year, month) <= (end.year, end.month):
        months.append(date(year, month, 1))
        year, month = add_months(year, month, 1)
    return months


def _next_month(day: date) -> date:
    year, month = add_months(day.year, day.month, 1)
    return date(year, month, 1)


def _previous_month(day: date) -> date:
    year, month = add_months(day.year, day.month, -1)
    return date(year, month, 1)


def month_end(month: date, tz: str | ZoneInfo) -> datetime:
    """The instant the MRR "at the end" of ``month`` is taken: the last microsecond of its last day,
    local time. A device removed, a subscription ended or a new price in effect at the next
    midnight still count for this month."""
    return local_midnight(_next_month(month), tz) - timedelta(microseconds=1)


def _movements(start: Decimal, end: Decimal, churned_before: bool) -> dict[str, Decimal]:
    moves = dict.fromkeys(("new", "expansion", "contraction", "churn", "reactivation"), ZERO)
    if start == 0 and end > 0:
        moves["reactivation" if churned_before else "new"] = end
    elif start > 0 and end == 0:
        moves["churn"] = start
    elif end > start:
        moves["expansion"] = end - start
    elif end < start:
        moves["contraction"] = start - end
    return moves


@replica_report
def mrr_report(*, tenant_id: UUID, start: date, end: date) -> list[MonthMrr]:
    """MRR at each month's end and its movements, per customer and per currency, for the calendar
    months from ``start``'s to ``end``'s (tenant's time zone). The history before ``start`` is read
    to tell a new customer from a reactivated one. Seven queries, whatever the number of
    subscriptions and months."""
    tenant = Tenant.objects.get(pk=tenant_id)
    tz = ZoneInfo(tenant.timezone)
    first, last = date(start.year, start.month, 1), date(end.year, end.month, 1)
    horizon = local_midnight(_next_month(last), tz)
    components = PlanComponent.objects.select_related("product").order_by("position", "product__code")
    subscriptions = list(
        Subscription.objects.filter(tenant_id=tenant_id, starts_at__lt=horizon)
        .select_related("customer__partner", "plan")
        .prefetch_related(Prefetch("plan__components", queryset=components))
        .order_by("starts_at", "external_id")
    )
    devices: dict[Any, list[Device]] = defaultdict(list)
    for device in Device.objects.filter(tenant_id=tenant_id, subscription__in=[s.pk for s in subscriptions]).only(
        "subscription_id", "device_id", "added_at", "activated_at", "deactivated_at", "removed_at"
    ):
        devices[device.subscription_id].append(device)
    prices = PriceBook.load(
        plan_ids={s.plan_id for s in subscriptions},
        currencies={s.customer.currency for s in subscriptions},
        customer_ids={s.customer_id for s in subscriptions},
    )
    customers = {s.customer_id: s.customer for s in subscriptions}
    by_customer: dict[Any, list[Subscription]] = defaultdict(list)
    for s in subscriptions:
        by_customer[s.customer_id].append(s)

    def at_instant(instant: datetime) -> dict[Any, tuple[Decimal, int]]:
        mrr = {}
        for customer_id, subs in by_customer.items():
            parts = [subscription_mrr(subscription=s, devices=devices[s.pk], prices=prices, at=instant) for s in subs]
            amount = sum((p.amount for p in parts), ZERO)
            mrr[customer_id] = (round_minor(amount, customers[customer_id].currency), sum(p.devices for p in parts))
        return mrr

    # From the month of the first subscription: a customer's earlier MRR tells a reactivation.
    earliest = min((s.starts_at.astimezone(tz).date() for s in subscriptions), default=first)
    history_from = min(first, date(earliest.year, earliest.month, 1))
    previous = at_instant(month_end(_previous_month(history_from), tz))
    had_mrr = {customer_id for customer_id, (amount, _) in previous.items() if amount > 0}
    report = []
    for month in month_starts(history_from, last):
        current = at_instant(month_end(month, tz))
        rows: dict[str, list[CustomerMrr]] = defaultdict(list)
        for customer_id, (amount, count) in current.items():
            before = previous[customer_id][0]
            moves = _movements(before, amount, customer_id in had_mrr)
            if amount > 0:
                had_mrr.add(customer_id)
            if month < first or (before == 0 and amount == 0):
                continue
            customer = customers[customer_id]
            cur = customer.currency
            rows[cur].append(
                CustomerMrr(
                    customer_id=customer_id,
                    external_id=customer.external_id,
                    name=customer.name,
                    start=Money(before, cur),
                    end=Money(amount, cur),
                    devices=count,
                    **{name: Money(round_minor(value, cur), cur) for name, value in moves.items()},
                )
            )
        previous = current
        if month >= first:
            report.append(MonthMrr(month=month, currencies=_currency_totals(rows, tenant.default_currency)))
    return report


def _currency_totals(rows: dict[str, list[CustomerMrr]], reporting_currency: str) -> list[CurrencyMrr]:
    totals = []
    for currency in sorted(rows, key=lambda c: (c != reporting_currency, c)):
        customers = sorted(rows[currency], key=lambda r: r.external_id)

        def total(field: str, customers: list[CustomerMrr] = customers, currency: str = currency) -> Money:
            return Money(round_minor(sum((getattr(r, field).amount for r in customers), ZERO), currency), currency)

        end = total("end")
        devices = sum(r.devices for r in customers)
        totals.append(
            CurrencyMrr(
                currency=currency,
                start=total("start"),
                end=end,
                new=total("new"),
                expansion=total("expansion"),
                contraction=total("contraction"),
                churn=total("churn"),
                reactivation=total("reactivation"),
                devices=devices,
                arpd=Money(round_minor(end.amount / devices, currency), currency) if devices else None,
                customers=customers,
            )
        )
    return totals


MOVEMENTS = ("start", "new", "expansion", "contraction", "churn", "reactivation", "end")
RETENTION_MOVES = ("start", "expansion", "contraction", "churn", "reactivation")
HUNDRED = Decimal(100)


def percent(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    """numerator ÷ denominator as a percentage, 2 places half up (50 ÷ 75 = 66.666… → 66.67); None
    without a denominator."""
    if not denominator:
        return None
    return (numerator * HUNDRED / denominator).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class ConvertedMonth:
    """One month in the reporting currency; amounts are None when a rate is missing (``missing``)."""

    month: date
    start: Decimal | None
    new: Decimal | None
    expansion: Decimal | None
    contraction: Decimal | None
    churn: Decimal | None
    reactivation: Decimal | None
    end: Decimal | None
    devices: int
    arpd: Decimal | None  # end ÷ devices
    nrr: Decimal | None  # percent: the end of the customers with MRR at the start ÷ their start
    missing: list[str]  # currencies in use without a rate this month


@dataclass(frozen=True)
class Retention:
    """The customers who had MRR at the start of the first month, over all the months: their MRR
    at the start, their movements, their MRR at the end, and NRR = end ÷ start (percent)."""

    start: Decimal | None
    expansion: Decimal | None
    contraction: Decimal | None
    churn: Decimal | None
    reactivation: Decimal | None
    end: Decimal | None
    nrr: Decimal | None


@dataclass(frozen=True)
class MrrSummary:
    reporting_currency: str
    months: list[ConvertedMonth]
    missing_rates: list[tuple[date, str]]  # (month, currency), by month then currency
    retention: Retention


def _convert_sums(
    sums: dict[str, dict[str, Decimal]], *, rates: RateTable, month: date, fields: Sequence[str]
) -> tuple[dict[str, Decimal] | None, list[str]]:
    """Per-currency sums converted at ``month``'s rate and added up: each currency's figure rounded
    once to the reporting currency; None and the currencies lacking a rate when any does."""
    missing = sorted(c for c in sums if rates.rate(c, month) is None)
    if missing:
        return None, missing
    total = dict.fromkeys(fields, ZERO)
    for currency, values in sums.items():
        for name in fields:
            converted = rates.convert(values[name], currency, month)
            assert converted is not None  # every rate is there
            total[name] += converted
    return total, []


@replica_report
def mrr_in_reporting_currency(
    *, tenant: Tenant, months: Sequence[MonthMrr], rates: RateTable | None = None
) -> MrrSummary:
    """``months`` (from ``mrr_report``) in the reporting currency, with ARPD, NRR per month and over
    the months, and the (month, currency) pairs without a rate. One query for the rates (none when
    ``rates`` is given or every customer pays in the reporting currency)."""
    if rates is None:
        currencies = {c.currency for m in months for c in m.currencies}
        rates = RateTable.load(tenant=tenant, months=[m.month for m in months], currencies=currencies)
    converted: list[ConvertedMonth] = []
    missing_rates: list[tuple[date, str]] = []
    for month in months:
        sums = {c.currency: {name: getattr(c, name).amount for name in MOVEMENTS} for c in month.currencies}
        cohort = {
            c.currency: {
                "start": sum((r.start.amount for r in c.customers if r.start.amount > 0), ZERO),
                "end": sum((r.end.amount for r in c.customers if r.start.amount > 0), ZERO),
            }
            for c in month.currencies
        }
        total, missing = _convert_sums(sums, rates=rates, month=month.month, fields=MOVEMENTS)
        kept, _ = _convert_sums(cohort, rates=rates, month=month.month, fields=("start", "end"))
        devices = sum(c.devices for c in month.currencies)
        missing_rates.extend((month.month, c) for c in missing)
        values: dict[str, Decimal | None] = dict(total) if total else dict.fromkeys(MOVEMENTS)
        end = values["end"]
        converted.append(
            ConvertedMonth(
                month=month.month,
                start=values["start"],
                new=values["new"],
                expansion=values["expansion"],
                contraction=values["contraction"],
                churn=values["churn"],
                reactivation=values["reactivation"],
                end=end,
                devices=devices,
                arpd=round_minor(end / devices, rates.reporting_currency) if end is not None and devices else None,
                nrr=percent(kept["end"], kept["start"]) if kept else None,
                missing=missing,
            )
        )
    return MrrSummary(rates.reporting_currency, converted, missing_rates, _retention(months, rates))


def _retention(months: Sequence[MonthMrr], rates: RateTable) -> Retention:
    """NRR over ``months``: the customers with MRR at the start of the first, followed to the end of
    the last; each currency's sums converted at the last month's rate."""
    if not months:
        return Retention(None, None, None, None, None, None, None)
    cohort = {r.customer_id for c in months[0].currencies for r in c.customers if r.start.amount > 0}
    sums: dict[str, dict[str, Decimal]] = {}
    for index, month in enumerate(months):
        for currency in month.currencies:
            for row in currency.customers:
                if row.customer_id not in cohort:
                    continue
                values = sums.setdefault(currency.currency, dict.fromkeys(RETENTION_MOVES, ZERO))
                if index == 0:
                    values["start"] += row.start.amount
                for name in RETENTION_MOVES[1:]:
                    values[name] += getattr(row, name).amount
    total, _ = _convert_sums(sums, rates=rates, month=months[-1].month, fields=RETENTION_MOVES)
    if total is None:
        return Retention(None, None, None, None, None, None, None)
    end = total["start"] + total["expansion"] - total["contraction"] - total["churn"] + total["reactivation"]
    return Retention(**total, end=end, nrr=percent(end, total["start"]))


__all__ = [
    "ConvertedMonth",
    "CurrencyMrr",
    "CustomerMrr",
    "MonthMrr",
    "MrrSummary",
    "Retention",
    "mrr_in_reporting_currency",
    "percent",
    "SubscriptionMrr",
    "month_end",
    "month_starts",
    "mrr_report",
    "subscription_mrr",
]
