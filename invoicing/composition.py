"""What the invoice of a customer and billing date D holds (billing.md): for every subscription
whose period ends at D, the hardware instalments due, the first days of the fees that started in
the period that ends (activations, a start mid-period, a trial's end), the in-advance fees of the
next period, the in-arrears usage of the period, the one-time fees triggered and not billed yet,
late-usage adjustments for the previous invoice's period, and pending change credits and charges.
Taxes per category on the sum of the rounded lines (EN 16931), rounded once.

The projection of ``invoicing.upcoming`` computes the period's lines (``invoicing.fees``); this
module adds what only exists at bill time (adjustments, pending changes) and keeps the lines of the
subscriptions that are due.
"""

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Q
from djmoney.money import Money

from billing_platform.money import round_minor
from billing_platform.periods import Period, local_midnight
from catalog.models import Meter, PlanComponent, ProductKind
from catalog.taxes import TaxLine, customer_tax_parties, document_taxes
from catalog.versions import ResolvedPrice, customer_price_book
from customers.models import Customer
from invoicing.fees import usage_component_price
from invoicing.lines import DraftLine, LineType
from invoicing.models import Invoice, InvoiceKind, InvoiceLine, InvoiceStatus, InvoicingSettings
from invoicing.upcoming import invoice_upcoming
from subscriptions.devices import devices_active_in, plan_needs_activation
from subscriptions.ledger import charge_line_type, one_time_fees_billed
from subscriptions.models import ChargeSource, ServiceCharge, Subscription, SubscriptionStatus
from subscriptions.periods import subscription_period_at
from tenancy.models import Tenant
from usage.aggregation import AggregateRow, aggregate_many, with_late_events
from usage.measure import matrix_grouping, usage_measured_from_rows
from usage.services import usage_settings_get
from usage.usage_context import DeviceRow, UsageContext, usage_context_load


@dataclass
class Composition:
    """An invoice to write: its lines and taxes (amounts in the customer's currency) and its totals
    as ``Money``."""

    customer: Customer
    billing_date: date
    lines: list[DraftLine]
    net_total: Money
    taxes: list[TaxLine]
    tax_total: Money
    total: Money
    due_subscriptions: list[Subscription]
    devices: dict[Any, list[DeviceRow]] = field(default_factory=dict)  # of the due subscriptions


def _due_instant(customer: Customer, billing_date: date) -> datetime:
    return local_midnight(billing_date, customer.timezone)


@dataclass
class BilledUsage:
    """What earlier invoices billed for one usage component of a subscription over one period: the
    original line plus the late-usage adjustments billed since."""

    line: InvoiceLine  # the original usage line
    quantity: Decimal  # the metered quantity billed so far (the latest measure)
    amount: Decimal  # the amount billed so far, adjustments included (a credit one subtracts)


@dataclass(frozen=True)
class Grouping:
    """How a usage line measured its period: the pooled total, per device, or by a matrix's
    dimensions (time band included). A late-usage adjustment re-measures the period the same way."""

    by_device: bool = False
    dimensions: tuple[str, ...] | None = None


TOTAL = Grouping()
BY_DEVICE = Grouping(by_device=True)


@dataclass(frozen=True)
class LateUsage:
    """A usage period billed earlier whose subscription is due now: what re-rating it needs."""

    billed: BilledUsage
    subscription: Subscription
    component: PlanComponent
    period: Period
    resolved: ResolvedPrice

    @property
    def meter(self) -> Meter:
        assert self.component.meter is not None
        return self.component.meter

    @property
    def groupings(self) -> tuple[Grouping, ...]:
        """The pooled total (the line's metered quantity), and the grouping its amount is priced by."""
        assert self.resolved.charge is not None
        if self.resolved.charge.get("model") == "matrix":
            return TOTAL, Grouping(dimensions=tuple(self.resolved.charge["dimensions"]))
        return (TOTAL,) if self.component.pooled else (TOTAL, BY_DEVICE)


@dataclass
class BillingContext:
    """Everything composing the invoices of some customers for one billing date reads, loaded at
    once (``billing_context_load``): a bill run composes a chunk of hundreds of customers from a
    dozen queries, whatever its size (no query per customer)."""

    billing_date: date
    usage: UsageContext
    existing: dict[Any, Invoice]  # by customer pk: the invoice already dated billing_date
    billed_usage: dict[Any, list[BilledUsage]]  # by customer pk: usage periods still open to late events
    pending: dict[Any, list[ServiceCharge]]  # by subscription pk: change entries not invoiced yet
    # Those periods that received late events re-measured from the raw events, by (subscription,
    # meter, period start, grouping): the pooled total, and the rows of the grouping each line
    # was priced by (per device, or by a matrix's dimensions and time band).
    remeasured: dict[tuple[uuid.UUID, uuid.UUID, datetime, Grouping], list[AggregateRow]]
    # The one-time fees already billed, (subscription, component, device or None): left out.
    billed_fees: set[tuple[Any, Any, Any]] = field(default_factory=set)
    # The tenant's ``bill_while_suspended``: off, a subscription suspended for non-payment is not billed.
    bill_suspended: bool = True

    def due_subscriptions(self, customer: Customer) -> list[Subscription]:
        """The live subscriptions of ``customer`` whose period ends at the billing date (not the
        suspended ones when the tenant does not bill them)."""
        due = _due_instant(customer, self.billing_date)
        return [
            s
            for s in self.usage.subscriptions[customer.pk]
            if self.usage.periods[s.pk].end == due and (self.bill_suspended or s.status != SubscriptionStatus.SUSPENDED)
        ]


def billing_context_load(
    *, tenant: Tenant, customers: Sequence[Customer], billing_date: date, bill_suspended: bool | None = None
) -> BillingContext:
    """What composing these customers' invoices for ``billing_date`` reads. ``bill_suspended`` is the
    tenant's ``bill_while_suspended`` (read when not given)."""
    usage = usage_context_load(
        tenant=tenant,
        customers_at=[(c, _due_instant(c, billing_date) - timedelta(microseconds=1)) for c in customers],
    )
    ids = [c.pk for c in customers]
    live = Invoice.objects.filter(tenant=tenant, customer_id__in=ids, kind=InvoiceKind.INVOICE).exclude(
        status=InvoiceStatus.VOID
    )
    # An order's invoice (hardware at signature, billed at once) is not the billing date's invoice.
    existing = {
        i.customer_id: i
        for i in live.filter(issue_date=billing_date, order__isnull=True).order_by("customer_id", "created_at")
    }
    # Late events billed now are those that arrived since each subscription's previous billing date:
    # the start of the period that closes now (a quarter back for a quarterly plan).
    since = min((usage.periods[s.pk].start for c in customers for s in usage.subscriptions[c.pk]), default=None)
    billed_usage = _billed_usage(tenant, customers, billing_date, since)
    context = BillingContext(billing_date, usage, existing, billed_usage, defaultdict(list), {})
    if bill_suspended is None:
        bill_suspended = not InvoicingSettings.objects.filter(tenant=tenant, bill_while_suspended=False).exists()
    context.bill_suspended = bill_suspended
    due = {s.pk: s for c in customers for s in context.due_subscriptions(c)}
    with_fees = [pk for pk, s in due.items() if any(c.kind == ProductKind.FEE for c in s.plan.components.all())]
    context.billed_fees = one_time_fees_billed(subscription_ids=with_fees)
    if due:
        for entry in (
            ServiceCharge.objects.filter(
                tenant=tenant, subscription_id__in=list(due), change__isnull=False, invoiced_at__isnull=True
            )
            .select_related("component__product", "device", "change")
            .order_by("change__effective_at", "id")
        ):
            context.pending[entry.subscription_id].append(entry)
    # Late usage: the billed periods that received late events re-measured from the raw events,
    # one statement per period (bill runs share periods), grouping and aggregation kind.
    to_measure: dict[tuple[Period, Grouping], tuple[set[Any], dict[Any, Meter]]] = {}
    watched: dict[Period, tuple[set[Any], set[Any]]] = {}  # each period's subscriptions and meters
    for c in customers:
        for late in _late_usage(c, context, due):
            for grouping in late.groupings:
                subs, meters = to_measure.setdefault((late.period, grouping), (set(), {}))
                subs.add(late.subscription.pk)
                meters[late.meter.pk] = late.meter
            watched_subs, watched_meters = watched.setdefault(late.period, (set(), set()))
            watched_subs.add(late.subscription.pk)
            watched_meters.add(late.meter.pk)
    late_pairs = {
        period: with_late_events(subscription_ids=list(subs), meter_ids=list(meter_ids), period=period)
        for period, (subs, meter_ids) in watched.items()
    }
    for (period, grouping), (subs, meters) in to_measure.items():
        pairs = {(s, m) for s, m in late_pairs[period] if s in subs and m in meters}
        if not pairs:
            continue  # nothing arrived after the period closed: what was billed stands
        dimensions, by_band = matrix_grouping(grouping.dimensions or ())
        for (sub_id, meter_id), rows in aggregate_many(
            subscription_ids=sorted({s for s, _ in pairs}),
            meters=[meters[m] for m in {m for _, m in pairs}],
            period=period,
            group_by_dimensions=dimensions if grouping.dimensions is not None else False,
            by_time_band=by_band,
            group_by_device=grouping.by_device,
        ).items():
            if (sub_id, meter_id) in pairs:
                context.remeasured[(sub_id, meter_id, period.start, grouping)] = rows
    return context


def _billed_usage(
    tenant: Tenant, customers: Sequence[Customer], billing_date: date, since: datetime | None
) -> dict[Any, list[BilledUsage]]:
    """The usage billed on the customers' earlier invoices for periods that can have received events
    since ``since`` (their previous billing date): those ending within the tenant's maximum event
    age before it, per subscription, product and period. A period takes events until the maximum
    age after its end; counting back from the billing date instead would leave out a quarterly
    plan's previous quarter, whose invoice comes three months later, and its late events with it.
    The original line is returned with the late-usage adjustments billed since (a credit one when a
    re-rated period came to less, e.g. across a volume tier's edge)."""
    max_age = usage_settings_get(tenant=tenant).max_event_age_days
    cutoff = min((_due_instant(c, billing_date) for c in customers), default=None)
    if cutoff is None:
        return {}
    if since is not None:
        cutoff = min(cutoff, since)
    lines = (
        InvoiceLine.objects.filter(
            Q(type=LineType.USAGE) | Q(type=LineType.CREDIT, adjustment=True),
            tenant=tenant,
            invoice__tenant=tenant,
            invoice__customer_id__in=[c.pk for c in customers],
            invoice__kind=InvoiceKind.INVOICE,
            invoice__issue_date__lt=billing_date,
            subscription__isnull=False,
            period_end__gt=cutoff - timedelta(days=max_age + 1),
        )
        .exclude(invoice__status=InvoiceStatus.VOID)
        .select_related("invoice")
        .order_by("period_start", "position", "id")
    )
    groups: dict[tuple[Any, ...], list[InvoiceLine]] = defaultdict(list)
    for line in lines:
        groups[(line.invoice.customer_id, line.subscription_id, line.product, line.period_start)].append(line)
    billed: dict[Any, list[BilledUsage]] = defaultdict(list)
    for (customer_id, *_), group in groups.items():
        original = next((x for x in group if not x.adjustment), None)
        if original is None:
            continue
        # The latest measure: a latest-value meter, or one that accepts negative values, can measure less later.
        last = max(group, key=lambda x: (x.invoice.issue_date, x.pk))
        quantity = Decimal(str(last.detail.get("metered_quantity", "0")))
        billed[customer_id].append(BilledUsage(original, quantity, sum((x.signed_amount for x in group), Decimal(0))))
    return billed


def _late_usage(customer: Customer, context: BillingContext, due: dict[Any, Subscription]) -> list[LateUsage]:
    """The usage periods billed on ``customer``'s earlier invoices whose subscription is due now,
    each with its component and the prices in effect at the period's start."""
    out = []
    for billed in context.billed_usage.get(customer.pk, []):
        line = billed.line
        subscription = due.get(line.subscription_id)
        if subscription is None or line.period_start is None:
            continue
        component = next(
            (
                c
                for c in subscription.plan.components.all()
                if c.product.code == line.product and c.kind == ProductKind.USAGE
            ),
            None,
        )
        if component is None or component.meter is None:
            continue
        period = subscription_period_at(subscription, at=line.period_start)
        prices = context.usage.prices.resolve(
            plan=subscription.plan,
            currency=customer.currency,
            country=customer.country,
            at=period.start,
            customer_id=customer.pk,
            locked=subscription,
            price_book=customer_price_book(customer),
        )
        resolved = next(r for r in prices if r.component.pk == component.pk)
        if resolved.charge is None:
            continue
        out.append(LateUsage(billed, subscription, component, period, resolved))
    return out


def compose(*, customer: Customer, billing_date: date, context: BillingContext | None = None) -> Composition:
    """Lines of the invoice dated ``billing_date``; ``context`` is what ``billing_context_load`` read
    for this customer and date (read here when not given). The usage lines of the customer's
    previous invoice are re-measured, to bill late events of that period as adjustments."""
    if context is None:
        context = billing_context_load(tenant=customer.tenant, customers=[customer], billing_date=billing_date)
    elif context.billing_date != billing_date:
        raise ValueError("the billing context was loaded for another date")
    due = _due_instant(customer, billing_date)
    projection = invoice_upcoming(
        customer=customer,
        at=due - timedelta(microseconds=1),
        context=context.usage,
        billed_fees=context.billed_fees,
    )
    subs = {s.pk: s for s in context.due_subscriptions(customer)}
    lines = [p for p in projection.projected.lines if p.subscription is not None and p.subscription.pk in subs]
    lines += _adjustments(customer, context, subs)
    lines += _pending_changes(subs.values(), context)
    # A missing tax rate fails this customer's invoice (strict): it must never be billed tax-free by
    # mistake. The rates are those in force on the billing date, the invoice's issue date.
    taxes: list[TaxLine] = []
    if lines:
        decided = document_taxes(
            parties=customer_tax_parties(customer),
            lines=lines,
            table=context.usage.tax_rates,
            on=billing_date,
            currency=customer.currency,
            language=customer.language,
        )
        taxes = decided.taxes
        lines = [replace(x, vat_category=decided.vat_category(x)) for x in lines]
    signed_net = sum((x.signed_amount for x in lines), Decimal(0))
    tax = sum((t.amount for t in taxes), Decimal(0))
    return Composition(
        customer,
        billing_date,
        lines,
        Money(signed_net, customer.currency),
        taxes,
        Money(tax, customer.currency),
        Money(signed_net + tax, customer.currency),
        list(subs.values()),
        {pk: context.usage.devices[pk] for pk in subs},
    )


def _adjustments(customer: Customer, context: BillingContext, due: dict[Any, Subscription]) -> list[DraftLine]:
    """Late usage: the usage periods billed earlier (still open to late events) that received late
    events, re-rated from the raw events as a whole, with the same grouping as their original line
    (the pooled total with its allowance, per device, or by a matrix's dimensions and time bands,
    ``invoicing.fees.usage_component_price``). The difference with everything billed for the
    period so far is billed as an adjustment, or credited when the period now comes to less (a
    volume tier's edge, a latest value). The allowance is applied once, to the whole period, never
    again to the late part (pitfall #12)."""
    out = []
    for late in _late_usage(customer, context, due):
        subscription, period = late.subscription, late.period
        key = (_uuid(subscription.pk), _uuid(late.meter.pk), period.start)
        measured = {g: context.remeasured.get((*key, g)) for g in late.groupings}
        total = measured[TOTAL]
        if total is None:
            continue  # no late event in that period
        [total_row] = total
        grouping = late.groupings[-1]
        active = devices_active_in(
            context.usage.devices[subscription.pk],
            period,
            needs_activation=plan_needs_activation(subscription.plan.components.all()),
        )
        usage = usage_component_price(
            subscription=subscription,
            resolved=late.resolved,
            period=period,
            rollups=None,
            active=active,
            currency=customer.currency,
            measured=usage_measured_from_rows(
                total=total_row,
                groups=measured[grouping] if grouping.dimensions is not None else None,
                matrix_dimensions=grouping.dimensions,
            ),
            by_device=measured[grouping] if grouping.by_device else None,
        )
        billed, previous = late.billed, late.billed.line
        difference = usage.amount - billed.amount
        if difference == 0:
            continue
        out.append(
            DraftLine(
                type=LineType.USAGE if difference > 0 else LineType.CREDIT,
                product_code=previous.product,
                product_name=previous.description,
                qualifiers={"late_usage": True},
                quantity=usage.quantity - billed.quantity,
                unit_amount=None,
                amount=abs(difference),
                precise_amount=abs(usage.precise_amount - billed.amount),
                tax_category=previous.tax_category,
                subscription=subscription,
                period=period,
                detail={
                    "metered_quantity": _plain(usage.quantity),
                    "billed_quantity": _plain(billed.quantity),
                    "previously_billed": str(round_minor(billed.amount, customer.currency)),
                },
                adjustment=True,
            )
        )
    return out


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _pending_changes(subscriptions: Iterable[Subscription], context: BillingContext) -> list[DraftLine]:
    """Credits and charges of subscription changes not invoiced yet, one line per change entry group."""
    subscriptions = list(subscriptions)
    entries = sorted(
        (e for s in subscriptions for e in context.pending.get(s.pk, [])),
        key=_change_order,
    )
    by_pk = {s.pk: s for s in subscriptions}
    groups: dict[tuple[Any, ...], list[ServiceCharge]] = defaultdict(list)
    for e in entries:
        groups[(e.change_id, e.kind, e.source, e.component_id, e.covered_start, e.description)].append(e)
    lines = []
    for group in groups.values():
        first = group[0]
        lines.append(
            DraftLine(
                type=LineType(charge_line_type(kind=first.kind, source=first.source)),
                product_code=first.component.product.code,
                product_name=first.description or first.component.product.name,
                quantity=Decimal(len(group)),
                unit_amount=None,
                amount=sum((e.amount for e in group), Decimal(0)),
                tax_category=first.component.product.tax_category,
                subscription=by_pk[first.subscription_id],
                period=Period(first.covered_start, first.covered_end),
                devices=tuple(e.device.device_id for e in group if e.device is not None),
                source=ChargeSource(first.source),
                charge_ids=tuple(e.pk for e in group),
            )
        )
    return lines


def _change_order(entry: ServiceCharge) -> tuple[datetime, int]:
    assert entry.change is not None  # pending entries are loaded with change__isnull=False
    return entry.change.effective_at, entry.pk


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
