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
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from billing_platform.money import round_minor
from billing_platform.periods import Period, local_midnight
from catalog.charge_models.base import Usage
from catalog.charge_models.pricing import price
from catalog.models import Meter, PlanComponent, ProductKind
from catalog.taxes import taxes_for
from customers.models import Customer
from invoicing.fees import per_device_usage_amount
from invoicing.lines import DraftLine, LineType
from invoicing.models import Invoice, InvoiceKind, InvoiceLine, InvoiceStatus
from invoicing.upcoming import invoice_upcoming
from subscriptions.devices import devices_active_in, plan_needs_activation
from subscriptions.ledger import charge_line_type, one_time_fees_billed
from subscriptions.models import ChargeSource, ServiceCharge, Subscription
from subscriptions.periods import subscription_period_at
from tenancy.models import Tenant
from usage.aggregation import AggregateRow, aggregate_many, with_late_events
from usage.services import usage_settings_get
from usage.usage_context import DeviceRow, UsageContext, usage_context_load


@dataclass
class Composition:
    customer: Customer
    billing_date: date
    lines: list[DraftLine]
    net_total: Decimal
    taxes: Any
    total: Decimal
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
    amount: Decimal  # the amount billed so far, adjustments included


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
    # Those periods re-measured from the raw events, by (subscription, meter, period start): the
    # total of a pooled component, the quantity of each device of a per-device one.
    remeasured: dict[tuple[uuid.UUID, uuid.UUID, datetime], list[AggregateRow]]
    # The one-time fees already billed, (subscription, component, device or None): left out.
    billed_fees: set[tuple[Any, Any, Any]] = field(default_factory=set)

    def due_subscriptions(self, customer: Customer) -> list[Subscription]:
        """The live subscriptions of ``customer`` whose period ends at the billing date."""
        due = _due_instant(customer, self.billing_date)
        return [s for s in self.usage.subscriptions[customer.pk] if self.usage.periods[s.pk].end == due]


def billing_context_load(*, tenant: Tenant, customers: Sequence[Customer], billing_date: date) -> BillingContext:
    usage = usage_context_load(
        tenant=tenant,
        customers_at=[(c, _due_instant(c, billing_date) - timedelta(microseconds=1)) for c in customers],
    )
    ids = [c.pk for c in customers]
    live = Invoice.objects.filter(customer_id__in=ids, kind=InvoiceKind.INVOICE).exclude(status=InvoiceStatus.VOID)
    existing = {i.customer_id: i for i in live.filter(issue_date=billing_date).order_by("customer_id", "created_at")}
    # Late events billed now are those that arrived since each subscription's previous billing date:
    # the start of the period that closes now (a quarter back for a quarterly plan).
    since = min((usage.periods[s.pk].start for c in customers for s in usage.subscriptions[c.pk]), default=None)
    billed_usage = _billed_usage(tenant, customers, billing_date, since)
    context = BillingContext(billing_date, usage, existing, billed_usage, defaultdict(list), {})
    due = {s.pk: s for c in customers for s in context.due_subscriptions(c)}
    with_fees = [pk for pk, s in due.items() if any(c.kind == ProductKind.FEE for c in s.plan.components.all())]
    context.billed_fees = one_time_fees_billed(subscription_ids=with_fees)
    if due:
        for entry in (
            ServiceCharge.objects.filter(subscription_id__in=list(due), change__isnull=False, invoiced_at__isnull=True)
            .select_related("component__product", "device", "change")
            .order_by("change__effective_at", "id")
        ):
            context.pending[entry.subscription_id].append(entry)
    # Late usage: the billed periods re-measured from the raw events in one statement per period
    # (bill runs share periods), aggregation kind and grouping (pooled or per device).
    to_measure: dict[tuple[Period, bool], tuple[set[Any], dict[Any, Meter]]] = {}
    for c in customers:
        for billed in context.billed_usage.get(c.pk, []):
            found = _late_component(billed.line, due)
            if found is not None:
                subscription, component, period = found
                assert component.meter is not None
                subs, meters = to_measure.setdefault((period, not component.pooled), (set(), {}))
                subs.add(subscription.pk)
                meters[component.meter.pk] = component.meter
    for (period, by_device), (subs, meters) in to_measure.items():
        late = with_late_events(subscription_ids=list(subs), meter_ids=list(meters), period=period)
        if not late:
            continue  # nothing arrived after the period closed: what was billed stands
        for (sub_id, meter_id), rows in aggregate_many(
            subscription_ids=sorted({s for s, _ in late}),
            meters=[meters[m] for m in {m for _, m in late}],
            period=period,
            group_by_device=by_device,
        ).items():
            if (sub_id, meter_id) in late:
                context.remeasured[(sub_id, meter_id, period.start)] = rows
    return context


def _billed_usage(
    tenant: Tenant, customers: Sequence[Customer], billing_date: date, since: datetime | None
) -> dict[Any, list[BilledUsage]]:
    """The usage billed on the customers' earlier invoices for periods that can have received events
    since ``since`` (their previous billing date): those ending within the tenant's maximum event
    age before it, per subscription, product and period. A period takes events until the maximum
    age after its end; counting back from the billing date instead would leave out a quarterly
    plan's previous quarter, whose invoice comes three months later, and its late events with it."""
    max_age = usage_settings_get(tenant=tenant).max_event_age_days
    cutoff = min((_due_instant(c, billing_date) for c in customers), default=None)
    if cutoff is None:
        return {}
    if since is not None:
        cutoff = min(cutoff, since)
    lines = (
        InvoiceLine.objects.filter(
            invoice__customer_id__in=[c.pk for c in customers],
            invoice__kind=InvoiceKind.INVOICE,
            invoice__issue_date__lt=billing_date,
            type=LineType.USAGE,
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
        quantity = max(Decimal(str(x.detail.get("metered_quantity", "0"))) for x in group)
        billed[customer_id].append(BilledUsage(original, quantity, sum((x.amount for x in group), Decimal(0))))
    return billed


def _late_component(
    line: InvoiceLine, due: dict[Any, Subscription]
) -> tuple[Subscription, PlanComponent, Period] | None:
    """The subscription, usage component and period an earlier usage line billed, when its
    subscription is due now."""
    subscription = due.get(line.subscription_id)
    if subscription is None:
        return None
    component = next(
        (
            c
            for c in subscription.plan.components.all()
            if c.product.code == line.product and c.kind == ProductKind.USAGE
        ),
        None,
    )
    if component is None or component.meter is None or line.period_start is None:
        return None
    return subscription, component, subscription_period_at(subscription, at=line.period_start)


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
    # A missing tax rate fails this customer's invoice (strict): it must never be billed tax-free by mistake.
    taxes, _ = (
        taxes_for(
            tenant=customer.tenant,
            country=customer.country,
            lines=lines,
            currency=customer.currency,
            rates=context.usage.tax_rates.get(customer.country, {}),
        )
        if lines
        else ([], [])
    )
    signed_net = sum((x.signed_amount for x in lines), Decimal(0))
    total = signed_net + sum((t.amount for t in taxes), Decimal(0))
    return Composition(
        customer,
        billing_date,
        lines,
        signed_net,
        taxes,
        total,
        list(subs.values()),
        {pk: context.usage.devices[pk] for pk in subs},
    )


def _adjustments(customer: Customer, context: BillingContext, due: dict[Any, Subscription]) -> list[DraftLine]:
    """Late usage: the usage periods billed earlier (still open to late events) re-measured from the
    raw events; when more has arrived since, bill the difference between the priced amount of the
    whole period and what was billed for it so far. The allowance is applied once, to the whole
    period, never again to the late part (pitfall #12)."""
    out = []
    for billed in context.billed_usage.get(customer.pk, []):
        previous = billed.line
        found = _late_component(previous, due)
        if found is None:
            continue
        subscription, component, period = found
        assert component.meter is not None
        rows = context.remeasured.get((_uuid(subscription.pk), _uuid(component.meter.pk), period.start))
        if rows is None:
            continue  # no late event in that period
        quantity = sum((r.quantity for r in rows), Decimal(0))
        if quantity <= billed.quantity:
            continue
        prices = context.usage.prices.resolve(
            plan=subscription.plan,
            currency=customer.currency,
            country=customer.country,
            at=period.start,
            customer_id=customer.pk,
            locked=subscription,
        )
        resolved = next(r for r in prices if r.component.pk == component.pk)
        assert resolved.charge is not None
        if component.pooled:
            [now] = rows
            devices = int(previous.detail.get("devices", 0))
            included = (component.included_per_device or Decimal(0)) * devices
            billable = max(now.quantity - included, Decimal(0))
            priced = price(
                charge=resolved.charge,
                usage=Usage(quantity=billable, event_count=now.event_count),
                currency=customer.currency,
                min_amount=resolved.min_amount,
                max_amount=resolved.max_amount,
            )
            amount, precise = round_minor(priced.precise_amount, customer.currency), priced.precise_amount
        else:
            active = devices_active_in(
                context.usage.devices[subscription.pk],
                period,
                needs_activation=plan_needs_activation(subscription.plan.components.all()),
            )
            by_device = per_device_usage_amount(
                subscription=subscription,
                resolved=resolved,
                period=period,
                active_ids={d.device_id for d in active},
                currency=customer.currency,
                measured=rows,
            )
            amount, precise = by_device.amount, by_device.precise_amount
        difference = amount - billed.amount
        if difference <= 0:
            continue
        out.append(
            DraftLine(
                type=LineType.USAGE,
                product_code=previous.product,
                product_name=previous.description,
                qualifiers={"late_usage": True},
                quantity=quantity - billed.quantity,
                unit_amount=None,
                amount=difference,
                precise_amount=precise - billed.amount,
                tax_category=previous.tax_category,
                subscription=subscription,
                period=period,
                detail={
                    "metered_quantity": _plain(quantity),
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
