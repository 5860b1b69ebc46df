"""What the partner dashboard reads of a partner's customers: the customers themselves (only those
whose ``partner`` is this partner: any other is not found), their subscriptions and devices, their
MRR and what they owe. A page of customers is read in a fixed number of queries, whatever its size.

- **Active devices**: bound to a slot, on a live subscription, neither removed nor deactivated, and
  activated when the plan's fees wait for the device cloud's activation (as the portal counts them).
- **MRR** now: each live subscription's recurring service fees normalised to a month (a quarterly
  fee ÷ 3, a yearly one ÷ 12), the per-device fees times the devices that pay them now, at the
  prices billing resolves for the customer (overrides, price locks and the partner's price book
  applied), without tax;
  hardware, usage and one-time fees are not MRR; nothing during a trial. The back-office's
  figure (``revrec.metrics.subscription_mrr``) follows the same rules; the sum per customer is
  rounded once to its currency's minor unit.
- **Amount due**: the ``amount_due`` of the customer's finalized invoices, as payments keep it."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Prefetch, QuerySet, Sum
from django.http import Http404
from djmoney.money import Money

from billing_platform.money import round_minor
from catalog.charge_models.base import Usage
from catalog.charge_models.pricing import price
from catalog.models import INTERVAL_MONTHS, Interval, PlanComponent, ProductKind, StartsOn
from catalog.versions import PriceBook
from customers.models import Customer
from invoicing.models import Invoice, InvoiceKind, InvoiceStatus
from partners.dashboard.access import PartnerContext
from subscriptions.devices import device_is_billable, plan_needs_activation
from subscriptions.models import Device, Subscription, SubscriptionStatus
from subscriptions.periods import subscription_end

ZERO = Decimal(0)


def partner_customers(ctx: PartnerContext) -> QuerySet[Customer]:
    return Customer.objects.filter(tenant=ctx.tenant, partner=ctx.partner).order_by("name", "external_id")


def partner_customer_get(ctx: PartnerContext, external_id: str) -> Customer:
    """The partner's customer ``external_id``; another partner's, a direct customer and an unknown
    id are all not found."""
    customer = partner_customers(ctx).filter(external_id=external_id).first()
    if customer is None:
        raise Http404("No such customer.")
    customer.tenant = ctx.tenant
    customer.partner = ctx.partner
    return customer


def partner_subscription_get(ctx: PartnerContext, external_id: str) -> Subscription:
    subscription = (
        Subscription.objects.filter(
            tenant=ctx.tenant, external_id=external_id, customer__partner=ctx.partner, customer__tenant=ctx.tenant
        )
        .select_related("customer", "plan")
        .first()
    )
    if subscription is None:
        raise Http404("No such subscription.")
    subscription.customer.tenant = ctx.tenant
    return subscription


def subscriptions_of(ctx: PartnerContext, customers: list[Customer]) -> list[Subscription]:
    """The subscriptions of ``customers`` with their plan's components and their devices (removed
    ones included, as MRR reads them): three queries."""
    components = PlanComponent.objects.select_related("product").order_by("position", "product__code")
    return list(
        Subscription.objects.filter(tenant=ctx.tenant, customer__in=[c.pk for c in customers])
        .select_related("plan")
        .prefetch_related(
            Prefetch("plan__components", queryset=components),
            Prefetch("devices", queryset=Device.objects.order_by("added_at", "device_id", "pk")),
        )
        .order_by("-starts_at", "external_id")
    )


def device_is_active(device: Device, needs_activation: bool) -> bool:
    if not device.device_id or device.removed_at is not None or device.deactivated_at is not None:
        return False
    return device.activated_at is not None or not needs_activation


def subscription_month_amount(
    subscription: Subscription, customer: Customer, prices: PriceBook, at: datetime, price_book: str = ""
) -> Decimal:
    """The subscription's MRR at ``at``, unrounded (see the module's docstring)."""
    end = subscription_end(subscription)
    if at < subscription.starts_at or (end is not None and at >= end):
        return ZERO
    if subscription.trial_ends_at is not None and at < subscription.trial_ends_at:
        return ZERO
    resolved = prices.resolve(
        plan=subscription.plan,
        currency=customer.currency,
        country=customer.country,
        at=at,
        customer_id=customer.pk,
        locked=subscription,
        price_book=price_book,
    )
    devices = list(subscription.devices.all())
    amount = ZERO
    for r in resolved:
        c = r.component
        if c.kind != ProductKind.SERVICE or r.charge is None:
            continue
        billable = [d for d in devices if device_is_billable(d, c, at)]
        units = len(billable) if c.per_device else (1 if billable or c.starts_on != StartsOn.ACTIVATION else 0)
        if units:
            amount += price(
                charge=r.charge, usage=Usage(quantity=Decimal(units)), currency=customer.currency
            ).precise_amount
    return amount / INTERVAL_MONTHS[Interval(subscription.plan.interval)]


@dataclass(frozen=True)
class CustomerFigures:
    active_devices: int
    mrr: Money
    amount_due: Money


def customer_figures(ctx: PartnerContext, customers: list[Customer], at: datetime) -> dict[Any, CustomerFigures]:
    """Active devices, MRR and amount due of each of ``customers``: eight queries, whatever their
    number (subscriptions, components, devices, three of prices, invoices)."""
    if not customers:
        return {}
    subscriptions = subscriptions_of(ctx, customers)
    by_customer: dict[Any, list[Subscription]] = defaultdict(list)
    for s in subscriptions:
        by_customer[s.customer_id].append(s)
    prices = PriceBook.load(
        plan_ids={s.plan_id for s in subscriptions},
        currencies={c.currency for c in customers},
        customer_ids={c.pk for c in customers},
    )
    due = {
        (row["customer_id"], row["currency"]): row["due"]
        for row in Invoice.objects.filter(
            tenant=ctx.tenant,
            customer__in=[c.pk for c in customers],
            kind=InvoiceKind.INVOICE,
            status=InvoiceStatus.FINALIZED,
        )
        .values("customer_id", "currency")
        .annotate(due=Sum("amount_due"))
        .order_by()
    }
    figures = {}
    for customer in customers:
        active, mrr = 0, ZERO
        for s in by_customer[customer.pk]:
            if s.status not in SubscriptionStatus.LIVE:
                continue
            needs = plan_needs_activation(s.plan.components.all())
            active += sum(1 for d in s.devices.all() if device_is_active(d, needs))
            mrr += subscription_month_amount(s, customer, prices, at, ctx.partner.price_book)
        cur = customer.currency
        figures[customer.pk] = CustomerFigures(
            active_devices=active,
            mrr=Money(round_minor(mrr, cur), cur),
            amount_due=Money(due.get((customer.pk, cur)) or ZERO, cur),
        )
    return figures
