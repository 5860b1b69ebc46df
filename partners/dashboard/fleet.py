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

import dataclasses
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

import orjson
import redis
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Count, Min, Prefetch, Q, QuerySet
from django.http import Http404
from django.urls import reverse
from djmoney.money import Money

from billing_platform.formatting import money_text
from billing_platform.generations import (
    ENTRY_TTL,
    GLOBAL,
    PREFIX,
    cache_usable,
    client,
    generations_read,
    tenant_key,
)
from billing_platform.money import round_minor
from catalog.charge_models.base import Usage
from catalog.charge_models.pricing import price
from catalog.models import (
    INTERVAL_MONTHS,
    ComponentPrice,
    Interval,
    PlanComponent,
    PriceOverride,
    PriceVersion,
    ProductKind,
    StartsOn,
)
from catalog.versions import PriceBook
from customers.models import Customer
from invoicing.models import InvoiceKind, InvoiceStatus
from invoicing.usage_cache import CODE
from partners.dashboard.access import PartnerContext
from subscriptions.devices import plan_needs_activation
from subscriptions.models import Device, Subscription, SubscriptionStatus
from subscriptions.periods import subscription_end

logger = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class Figures:
    active: dict[Any, int]  # active devices, by customer id
    mrr: dict[Any, Money]  # rounded once per customer
    instants: list[datetime | None]  # the prices' effective dates (versions, overrides)


def _figures(ctx: PartnerContext, customers: list[Customer], at: datetime) -> tuple[list[Subscription], Figures]:
    """Active devices and MRR of each of ``customers``, and their live subscriptions: six queries,
    whatever their number and their devices' (subscriptions, components, device counts, three of
    prices). No device is loaded: the database counts them per subscription."""
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
    plan_ids = {s.plan_id for s in subscriptions}
    currencies = {c.currency for c in customers}
    versions = list(PriceVersion.objects.filter(plan_id__in=plan_ids, currency__in=currencies))
    overrides = list(
        PriceOverride.objects.filter(
            customer_id__in=[c.pk for c in customers], component__plan_id__in=plan_ids, currency__in=currencies
        )
    )
    prices = PriceBook(versions, ComponentPrice.objects.filter(version__in=versions) if versions else [], overrides)
    active: dict[Any, int] = {}
    mrr: dict[Any, Money] = {}
    for customer in customers:
        n_active, amount = 0, ZERO
        for s in by_customer[customer.pk]:
            n = counts.get(s.pk, DeviceCounts())
            n_active += n.active(plan_needs_activation(s.plan.components.all()))
            amount += subscription_month_amount(s, customer, prices, at, n, ctx.partner.price_book)
        active[customer.pk] = n_active
        mrr[customer.pk] = Money(round_minor(amount, customer.currency), customer.currency)
    instants = [v.effective_from for v in versions] + [o.effective_from for o in overrides]
    return subscriptions, Figures(active=active, mrr=mrr, instants=instants)


def customer_figures(ctx: PartnerContext, customers: list[Customer], at: datetime) -> dict[Any, CustomerFigures]:
    """Active devices, MRR and amount due of each of ``customers``: seven queries, whatever their
    number and their devices' (subscriptions, components, device counts, three of prices, invoices)."""
    if not customers:
        return {}
    _, figures = _figures(ctx, customers, at)
    due = amounts_due(ctx, [str(c.pk) for c in customers])
    return {
        c.pk: CustomerFigures(
            active_devices=figures.active[c.pk],
            mrr=figures.mrr[c.pk],
            amount_due=Money(due.get((str(c.pk), c.currency)) or ZERO, c.currency),
        )
        for c in customers
    }


# --- the customers' page, cached ---------------------------------------------------------------


@dataclass(frozen=True)
class CustomerRow:
    """A row of the customers' page, as the page shows it: everything but the amount due, which is
    read afresh on every request (invoices and payments are not watched by the generations)."""

    pk: str
    external_id: str
    name: str
    href: str
    currency: str
    active_devices: int
    mrr: str  # formatted in the page's language


@dataclass(frozen=True)
class CustomerPage:
    count: int  # the partner's customers
    number: int  # the page shown (Paginator.get_page's: the last one past the end)
    rows: tuple[CustomerRow, ...]


PAGE_ENTRY = PREFIX + "partner_customers:%s:%s:%s:%s:%s"


def _next_instant(at: datetime, instants: Iterable[datetime | None]) -> datetime | None:
    return min((t for t in instants if t is not None and t > at), default=None)


def customer_page_fresh(
    ctx: PartnerContext, *, number: Any, page_size: int, at: datetime, language: str
) -> tuple[CustomerPage, datetime | None]:
    """The page ``number`` of the partner's customers with their active devices and MRR, from the
    database, and until when the clock leaves its figures as they are: the first instant after
    ``at`` that a device (removed, deactivated, activated), a subscription (start, end, trial,
    commitment) or a price (version, override) compares ``at`` with."""
    count = partner_customers(ctx).count()
    page = Paginator(range(count), page_size).get_page(number)
    customers = list(
        partner_customers(ctx).only("pk", "external_id", "name", "currency", "country")[
            page.start_index() - 1 if count else 0 : page.end_index()
        ]
    )
    for c in customers:
        c.tenant = ctx.tenant
        c.partner = ctx.partner
    if not customers:
        return CustomerPage(count=count, number=page.number, rows=()), None
    subscriptions, figures = _figures(ctx, customers, at)
    instants: list[datetime | None] = []
    for s in subscriptions:
        instants += [s.starts_at, subscription_end(s), s.trial_ends_at, s.commitment_ends_at]
    if subscriptions:
        instants += (
            Device.objects.filter(subscription_id__in=[s.pk for s in subscriptions])
            .exclude(device_id="")
            .aggregate(
                removed=Min("removed_at", filter=Q(removed_at__gt=at)),
                deactivated=Min("deactivated_at", filter=Q(deactivated_at__gt=at)),
                activated=Min("activated_at", filter=Q(activated_at__gt=at)),
            )
            .values()
        )
    instants += figures.instants
    rows = tuple(
        CustomerRow(
            pk=str(c.pk),
            external_id=c.external_id,
            name=c.name,
            href=reverse("partners:customer", args=[c.external_id]),
            currency=c.currency,
            active_devices=figures.active[c.pk],
            mrr=money_text(figures.mrr[c.pk], currency=c.currency, language=language),
        )
        for c in customers
    )
    return CustomerPage(count=count, number=page.number, rows=rows), _next_instant(at, instants)


def customer_page(ctx: PartnerContext, *, number: Any, page_size: int, at: datetime, language: str) -> CustomerPage:
    """The page of customers (``customer_page_fresh``) from the cache while its entry holds: Redis's
    run, the global and the tenant's generations unchanged (any write to customers, partners, the
    catalog, subscriptions or devices bumps the tenant's), and the clock between the instant it was
    computed and the next instant its figures compare with. No query on a hit. Inside a transaction,
    or with Redis unreachable: computed afresh, never stored, never an error."""
    if not cache_usable():
        return customer_page_fresh(ctx, number=number, page_size=page_size, at=at, language=language)[0]
    tenant_id, partner_id = ctx.tenant.pk, ctx.partner.pk
    key = PAGE_ENTRY % (CODE, tenant_id, partner_id, number, language)
    read = generations_read([GLOBAL, tenant_key(tenant_id)], [key])
    stamp = [read[0], *(g.decode() if g is not None else None for g in read[1][:2])] if read is not None else None
    if read is not None and read[1][2] is not None:
        page = _entry_page(read[1][2], stamp=stamp, at=at)
        if page is not None:
            return page
    page, until = customer_page_fresh(ctx, number=number, page_size=page_size, at=at, language=language)
    # Only the page asked for is kept: a number past the end (or no number) is not a key of its own.
    if stamp is not None and str(page.number) == str(number):
        entry = {
            "stamp": stamp,
            "computed_at": at.isoformat(),
            "valid_until": until.isoformat() if until is not None else None,
            "count": page.count,
            "number": page.number,
            "rows": [dataclasses.astuple(row) for row in page.rows],
        }
        try:
            client().set(key, orjson.dumps(entry), ex=ENTRY_TTL)
        except redis.RedisError as exc:
            logger.warning("partner customers' page not cached: %s", exc)
    return page


def _entry_page(raw: bytes, *, stamp: list[Any] | None, at: datetime) -> CustomerPage | None:
    """The page an entry holds if it is still valid at ``at``; None for a stale, unreadable or
    foreign entry (a miss, never an error)."""
    try:
        entry = orjson.loads(raw)
        if entry["stamp"] != stamp or datetime.fromisoformat(entry["computed_at"]) > at:
            return None
        if entry["valid_until"] is not None and at >= datetime.fromisoformat(entry["valid_until"]):
            return None
        rows = tuple(CustomerRow(*row) for row in entry["rows"])
        return CustomerPage(count=int(entry["count"]), number=int(entry["number"]), rows=rows)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        logger.warning("partner customers' page entry unreadable: %s", exc)
        return None


# One statement, written once: on the page's every request, Django's compiler would cost more than
# PostgreSQL's answer. Row-level security applies as to any other read.
_AMOUNTS_DUE = """
    SELECT customer_id, currency, SUM(amount_due)
    FROM invoicing_invoice
    WHERE tenant_id = %s AND customer_id = ANY(%s) AND kind = %s AND status = %s
    GROUP BY customer_id, currency
"""


def amounts_due(ctx: PartnerContext, customer_ids: list[Any]) -> dict[tuple[str, str], Decimal]:
    """What each customer owes, by (customer id, currency): the ``amount_due`` of its finalized
    invoices, summed in one statement (invoices and payments change it: never cached)."""
    if not customer_ids:
        return {}
    ids = [c if isinstance(c, uuid.UUID) else uuid.UUID(str(c)) for c in customer_ids]
    with connection.cursor() as cursor:
        cursor.execute(_AMOUNTS_DUE, [ctx.tenant.pk, ids, InvoiceKind.INVOICE.value, InvoiceStatus.FINALIZED.value])
        rows = cursor.fetchall()
    return {(str(customer_id), currency): due for customer_id, currency, due in rows}
