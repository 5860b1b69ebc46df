"""What the invoice of a customer and billing date D holds (billing.md): for every subscription
whose period ends at D, the hardware instalments due, the prorated fees of devices activated in
the period that ends, the in-advance fees of the next period, the in-arrears usage of the period,
late-usage adjustments for the previous invoice's period, and pending change credits and charges.
Taxes per category on the sum of the rounded lines (EN 16931), rounded once.

The projection of ``usage.current`` computes the period's lines; this module adds what only exists
at bill time (adjustments, pending changes) and keeps the lines of the subscriptions that are due.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from billing_platform.money import round_minor
from billing_platform.periods import local_midnight
from catalog.charge_models.base import Usage
from catalog.charge_models.pricing import price
from catalog.models import ProductKind
from catalog.quotes import QuoteLine, taxes_for
from catalog.versions import component_prices_as_of
from customers.models import Customer
from subscriptions.changes import period_of
from subscriptions.models import ServiceCharge, Subscription
from usage.aggregation import aggregate
from usage.current import ProjectedLine, current_usage


@dataclass
class ComposedLine:
    type: str
    product: str
    description: str
    quantity: Decimal
    unit_amount: Decimal | None
    amount: Decimal
    tax_category: str
    subscription: Subscription | None
    period_start: datetime | None
    period_end: datetime | None
    devices: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)
    adjustment: bool = False
    charge_ids: list[int] = field(default_factory=list)  # pending change entries this line bills


@dataclass
class Composition:
    customer: Customer
    billing_date: date
    lines: list[ComposedLine]
    net_total: Decimal
    taxes: Any
    total: Decimal
    due_subscriptions: list[Subscription]


def _due_instant(customer: Customer, billing_date: date) -> datetime:
    return local_midnight(billing_date, customer.timezone)


def compose(*, customer: Customer, billing_date: date, previous_lines: Sequence[Any] = ()) -> Composition:
    """Lines of the invoice dated ``billing_date``. ``previous_lines`` are the usage lines of the
    customer's previous invoice, to bill late events of that period as adjustments."""
    due = _due_instant(customer, billing_date)
    projection = current_usage(customer=customer, at=due - timedelta(microseconds=1))
    due_subs = {u.subscription for u in projection.subscriptions if u.period.end == due}
    subs = {s.external_id: s for s in Subscription.objects.filter(customer=customer, external_id__in=due_subs)}
    lines = [_from_projected(p, subs) for p in projection.projected.lines if p.subscription in due_subs]
    lines += _adjustments(customer, subs, previous_lines)
    lines += _pending_changes(customer, subs)
    currency = customer.currency
    # A missing tax rate fails this customer's invoice (strict): it must never be billed tax-free by mistake.
    taxes, _ = (
        taxes_for(
            tenant=customer.tenant,
            country=customer.country,
            lines=[
                QuoteLine(
                    x.type,
                    x.product,
                    x.description,
                    x.quantity,
                    x.unit_amount,
                    -x.amount if x.type == "credit" else x.amount,
                    x.tax_category,
                )
                for x in lines
            ],
            currency=currency,
        )
        if lines
        else ([], [])
    )
    signed_net = sum((-x.amount if x.type == "credit" else x.amount for x in lines), Decimal(0))
    total = signed_net + sum((t.amount for t in taxes), Decimal(0))
    return Composition(customer, billing_date, lines, signed_net, taxes, total, list(subs.values()))


def _from_projected(p: ProjectedLine, subs: dict[str, Subscription]) -> ComposedLine:
    return ComposedLine(
        type=p.type,
        product=p.product,
        description=p.description,
        quantity=p.quantity,
        unit_amount=p.unit_amount,
        amount=p.amount,
        tax_category=p.tax_category,
        subscription=subs.get(p.subscription),
        period_start=p.period_start,
        period_end=p.period_end,
        devices=list(p.devices),
        detail=dict(p.detail),
    )


def _adjustments(
    customer: Customer, subs: dict[str, Subscription], previous_lines: Sequence[Any]
) -> list[ComposedLine]:
    """Late usage: re-measure the previous invoice's usage periods from the raw events; when more has
    arrived since, bill the difference of the priced amounts (the allowance is applied once, to the
    whole period, never again to the late part: pitfall #12)."""
    out = []
    for previous in previous_lines:
        if previous.type != "usage" or previous.subscription_id is None or previous.adjustment:
            continue
        subscription = next((s for s in subs.values() if s.pk == previous.subscription_id), None)
        if subscription is None:
            continue
        component = subscription.plan.components.filter(product__code=previous.product, kind=ProductKind.USAGE).first()
        if component is None or component.meter is None or not component.pooled:
            continue
        period = period_of(subscription, subscription.plan, previous.period_start)
        [now] = aggregate(subscription_ids=[subscription.pk], meter=component.meter, period=period)
        billed_quantity = Decimal(str(previous.detail.get("metered_quantity", "0")))
        if now.quantity <= billed_quantity:
            continue
        prices = component_prices_as_of(
            plan=subscription.plan,
            currency=customer.currency,
            country=customer.country,
            at=period.start,
            customer_id=customer.pk,
        )
        resolved = next(r for r in prices if r.component.pk == component.pk)
        assert resolved.charge is not None
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
        difference = round_minor(priced.precise_amount, customer.currency) - previous.amount
        if difference <= 0:
            continue
        out.append(
            ComposedLine(
                type="usage",
                product=previous.product,
                description="%s (late usage)" % previous.description,
                quantity=now.quantity - billed_quantity,
                unit_amount=None,
                amount=difference,
                tax_category=previous.tax_category,
                subscription=subscription,
                period_start=period.start,
                period_end=period.end,
                detail={
                    "metered_quantity": _plain(now.quantity),
                    "billed_quantity": _plain(billed_quantity),
                    "previously_billed": str(round_minor(previous.amount, customer.currency)),
                },
                adjustment=True,
            )
        )
    return out


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _pending_changes(customer: Customer, subs: dict[str, Subscription]) -> list[ComposedLine]:
    """Credits and charges of subscription changes not invoiced yet, one line per change entry group."""
    entries = (
        ServiceCharge.objects.filter(
            subscription__in=list(subs.values()), change__isnull=False, invoiced_at__isnull=True
        )
        .select_related("component__product", "device", "subscription")
        .order_by("change__effective_at", "id")
    )
    groups: dict[tuple[Any, ...], ComposedLine] = {}
    for e in entries:
        key = (e.change_id, e.kind, e.source, e.component_id, e.covered_start, e.description)
        line = groups.get(key)
        if line is None:
            line = groups[key] = ComposedLine(
                type="credit" if e.kind == "credit" else ("fee" if e.source == "early_termination" else "service"),
                product=e.component.product.code,
                description=e.description or e.component.product.name,
                quantity=Decimal(0),
                unit_amount=None,
                amount=Decimal(0),
                tax_category=e.component.product.tax_category,
                subscription=e.subscription,
                period_start=e.covered_start,
                period_end=e.covered_end,
            )
        line.quantity += 1
        line.amount += e.amount
        line.charge_ids.append(e.pk)
        if e.device is not None:
            line.devices.append(e.device.device_id)
    return list(groups.values())
