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
from typing import Any, NamedTuple

from django.db.models import Count, Prefetch, Q, QuerySet, Sum
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
from subscriptions.devices import plan_needs_activation
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


class DeviceCounts(NamedTuple):
    """A subscription's bound devices (slots left out), counted by the database: no row per device."""

    in_service: int = 0  # neither removed nor deactivated
    in_service_activated: int = 0  # of those, activated
    billable: int = 0  # neither removed nor deactivated at ``at`` (``device_is_billable``)
    billable_activated: int = 0  # of those, activated by ``at``

    def active(self, needs_activation: bool) -> int:
        """Active now, as the portal counts them: activated when the plan's fees wait for it."""
        return self.in_service_activated if needs_activation else self.in_service

    def paying(self, component: PlanComponent) -> int:
        """The devices that pay ``component``'s fee at ``at`` (``device_is_billable``)."""
        return self.billable_activated if component.starts_on == StartsOn.ACTIVATION else self.billable


def device_counts(subscription_ids: list[Any], at: datetime) -> dict[Any, DeviceCounts]:
    """``DeviceCounts`` of each subscription at ``at``, in one statement."""
    in_service = Q(removed_at__isnull=True, deactivated_at__isnull=True)
    billable = (Q(removed_at__isnull=True) | Q(removed_at__gt=at)) & (
        Q(deactivated_at__isnull=True) | Q(deactivated_at__gt=at)
    )
    rows = (
        Device.objects.filter(subscription_id__in=subscription_ids)
        .exclude(device_id="")
        .values("subscription_id")
        .annotate(
            in_service=Count("pk", filter=in_service),
            in_service_activated=Count("pk", filter=in_service & Q(activated_at__isnull=False)),
            billable=Count("pk", filter=billable),
            billable_activated=Count("pk", filter=billable & Q(activated_at__lte=at)),
        )
        .order_by()
    )
    return {
        r["subscription_id"]: DeviceCounts(
            r["in_service"], r["in_service_activated"], r["billable"], r["billable_activated"]
        )
        for r in rows
    }


def subscription_month_amount(
    subscription: Subscription,
    customer: Customer,
    prices: PriceBook,
    at: datetime,
    counts: DeviceCounts,
    price_book: str = "",
) -> Decimal:
    """The subscription's MRR at ``at``, unrounded (see the module's docstring); ``counts`` are its
    devices' at ``at``."""
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
    amount = ZERO
    for r in resolved:
        c = r.component
        if c.kind != ProductKind.SERVICE or r.charge is None:
            continue
        paying = counts.paying(c)
        units = paying if c.per_device else (1 if paying or c.starts_on != StartsOn.ACTIVATION else 0)
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
    """Active devices, MRR and amount due of each of ``customers``: seven queries, whatever their
    number and their devices' (subscriptions, components, device counts, three of prices, invoices)."""
    if not customers:
        return {}
    components = PlanComponent.objects.select_related("product").order_by("position", "product__code")
    subscriptions = list(
        Subscription.objects.filter(
            tenant=ctx.tenant, customer__in=[c.pk for c in customers], status__in=SubscriptionStatus.LIVE
        )
        .select_related("plan")
        .prefetch_related(Prefetch("plan__components", queryset=components))
        .order_by("-starts_at", "external_id")
    )
    by_customer: dict[Any, list[Subscription]] = defaultdict(list)
    for s in subscriptions:
        by_customer[s.customer_id].append(s)
    counts = device_counts([s.pk for s in subscriptions], at)
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
            n = counts.get(s.pk, DeviceCounts())
            active += n.active(plan_needs_activation(s.plan.components.all()))
            mrr += subscription_month_amount(s, customer, prices, at, n, ctx.partner.price_book)
        cur = customer.currency
        figures[customer.pk] = CustomerFigures(
            active_devices=active,
            mrr=Money(round_minor(mrr, cur), cur),
            amount_due=Money(due.get((customer.pk, cur)) or ZERO, cur),
        )
    return figures
