import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Case, Count, F, Prefetch, Q, QuerySet, Value, When, Window
from django.db.models.functions import RowNumber

from billing_platform.periods import add_months, local_midnight
from catalog.models import PlanComponent
from customers.models import Customer
from subscriptions.errors import SubscriptionNotFound, WebhookNotFound
from subscriptions.models import (
    Device,
    DeviceCloudWebhook,
    ServiceCharge,
    Subscription,
    SubscriptionChange,
    SubscriptionEvent,
    SubscriptionStatus,
)
from subscriptions.periods import LONGEST_PERIOD, subscription_billed_in, subscription_period_at
from tenancy.models import AuditLogEntry, Tenant


def subscription_list(
    *,
    tenant: Tenant,
    status: str | None = None,
    customer: str | None = None,
    plan: str | None = None,
    search: str | None = None,
) -> QuerySet[Subscription]:
    """The tenant's subscriptions; ``customer`` is an exact external ID, while ``search`` finds a
    part of the subscription's or the customer's external ID or of the customer's name."""
    qs = Subscription.objects.filter(tenant=tenant).select_related("customer", "plan")
    if status:
        qs = qs.filter(status=status)
    if customer:
        qs = qs.filter(customer__external_id=customer)
    if plan:
        qs = qs.filter(plan__code=plan)
    if search:
        qs = qs.filter(
            Q(external_id__icontains=search)
            | Q(customer__external_id__icontains=search)
            | Q(customer__name__icontains=search)
        )
    return qs.prefetch_related(Prefetch("devices", queryset=Device.objects.order_by("device_id")))


def subscription_get(*, tenant: Tenant, external_id: str) -> Subscription:
    subscription = (
        Subscription.objects.filter(tenant=tenant, external_id=external_id)
        .select_related("customer", "plan")
        .prefetch_related(
            Prefetch("devices", queryset=Device.objects.order_by("device_id")),
            Prefetch("events", queryset=SubscriptionEvent.objects.order_by("at", "id")),
        )
        .first()
    )
    if subscription is None:
        raise SubscriptionNotFound("No subscription with external_id %s." % external_id)
    return subscription


@dataclass(frozen=True)
class SubscriptionRows:
    subscription: dict[str, Any]
    devices: list[dict[str, Any]]
    events: list[dict[str, Any]]


def subscription_rows_get(
    *,
    tenant: Tenant,
    external_id: str,
    columns: Sequence[str],
    device_columns: Sequence[str],
    event_columns: Sequence[str],
) -> SubscriptionRows:
    """What ``subscription_get`` reads, as rows of the given columns (``values()`` names: a related
    field as ``customer__external_id``) for a response written from them: the subscription, its
    devices by device ID and its events in order. Three queries whatever the number of devices,
    and no model instance."""
    row = Subscription.objects.filter(tenant=tenant, external_id=external_id).values("id", *columns).first()
    if row is None:
        raise SubscriptionNotFound("No subscription with external_id %s." % external_id)
    devices = Device.objects.filter(subscription_id=row["id"]).order_by("device_id").values(*device_columns)
    events = SubscriptionEvent.objects.filter(subscription_id=row["id"]).order_by("at", "id").values(*event_columns)
    return SubscriptionRows(subscription=row, devices=list(devices), events=list(events))


def subscriptions_ended_billed_on(
    *, tenant: Tenant, billing_date: date, billing_days: Collection[int]
) -> list[Subscription]:
    """The subscriptions that have ended, of customers billed on one of ``billing_days``, whose
    period closes on ``billing_date`` (at local midnight in the customer's zone) and is the one
    during which they ended: the invoice of that date still bills their usage up to the end and the
    credits of the end (``subscription_billed_in``). Only those ended within ``LONGEST_PERIOD`` are
    read."""
    ended = (
        Subscription.objects.filter(
            tenant=tenant,
            customer__billing_day__in=list(billing_days),
            ended_at__gt=local_midnight(billing_date, "UTC") - LONGEST_PERIOD,
        )
        .exclude(status__in=SubscriptionStatus.LIVE)
        .select_related("customer", "plan")
    )
    billed = []
    for subscription in ended:
        closing = local_midnight(billing_date, subscription.customer.timezone)
        period = subscription_period_at(subscription, at=closing - timedelta(microseconds=1))
        if period.end == closing and subscription_billed_in(subscription, period):
            billed.append(subscription)
    return billed


def live_device_get(*, tenant: Tenant, device_id: str) -> Device | None:
    if not device_id:
        return None  # a blank id names no device (slots have one)
    return (
        Device.objects.filter(tenant=tenant, device_id=device_id, removed_at__isnull=True)
        .select_related("subscription__customer", "subscription__plan")
        .first()
    )


def webhook_list(*, tenant: Tenant, status: str | None = None) -> QuerySet[DeviceCloudWebhook]:
    qs = DeviceCloudWebhook.objects.filter(tenant=tenant)
    if status:
        qs = qs.filter(status=status)
    return qs


def webhook_get(*, tenant: Tenant, pk: str) -> DeviceCloudWebhook:
    try:
        webhook = DeviceCloudWebhook.objects.filter(tenant=tenant, pk=pk).first()
    except Exception:  # not a UUID
        webhook = None
    if webhook is None:
        raise WebhookNotFound("No such webhook.")
    return webhook


def subscription_status_counts(
    *, tenant: Tenant, search: str | None = None, customer: str | None = None
) -> dict[str, int]:
    """How many of the subscriptions ``subscription_list`` finds are in each status."""
    qs = subscription_list(tenant=tenant, search=search, customer=customer).prefetch_related(None)
    return dict(qs.order_by().values_list("status").annotate(n=Count("pk")))


def webhook_status_counts(*, tenant: Tenant) -> dict[str, int]:
    """How many of the tenant's device-cloud webhooks are in each status."""
    return dict(webhook_list(tenant=tenant).order_by().values_list("status").annotate(n=Count("pk")))


def service_charge_list(*, tenant: Tenant, subscription: Subscription) -> QuerySet[ServiceCharge]:
    """The charge ledger of a subscription, in the order its periods were charged."""
    return (
        ServiceCharge.objects.filter(tenant=tenant, subscription=subscription)
        .select_related("component__product", "device")
        .order_by("period_start", "created_at", "id")
    )


def subscription_change_list(
    *, tenant: Tenant, subscription: Subscription, status: str | None = None
) -> QuerySet[SubscriptionChange]:
    """The changes of a subscription, in the order they take effect."""
    qs = SubscriptionChange.objects.filter(tenant=tenant, subscription=subscription)
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("effective_at", "created_at")


def meter_ids_for_customer(*, tenant: Tenant, customer: Customer) -> list[uuid.UUID]:
    """The meters the customer's subscriptions bill, plan by plan (by code), in component order."""
    return list(
        PlanComponent.objects.filter(tenant=tenant, plan__subscriptions__customer=customer, meter__isnull=False)
        .order_by("plan__code", "position")
        .values_list("meter_id", flat=True)
    )


def active_devices_by_month(*, tenant: Tenant, months: Sequence[date]) -> list[tuple[date, int]]:
    """How many devices were active at the end of each of ``months`` (first days; the last instant
    of the month's last day in the tenant's time zone, as the MRR report takes it): activated by the
    device cloud by then, neither deactivated nor removed, on a subscription not ended by then. One
    query whatever the number of months and devices."""
    ends = {}
    for month in months:
        year, number = add_months(month.year, month.month, 1)
        ends[month] = local_midnight(date(year, number, 1), tenant.timezone) - timedelta(microseconds=1)
    if not ends:
        return []

    def active_at(at: datetime) -> Q:
        return (
            Q(activated_at__lte=at)
            & (Q(deactivated_at__isnull=True) | Q(deactivated_at__gt=at))
            & (Q(removed_at__isnull=True) | Q(removed_at__gt=at))
            & (Q(subscription__ended_at__isnull=True) | Q(subscription__ended_at__gt=at))
        )

    counts = Device.objects.filter(tenant=tenant, activated_at__isnull=False).aggregate(
        **{"m%d" % i: Count("pk", filter=active_at(at)) for i, at in enumerate(ends.values())}
    )
    return [(month, counts["m%d" % i]) for i, month in enumerate(ends)]


def subscription_list_for_customer(*, tenant: Tenant, customer: Customer, limit: int) -> list[Subscription]:
    """The first ``limit`` subscriptions of ``customer``: the live ones first, then the newest, each
    with its devices counted (``live_devices``: not removed; ``active_devices``: activated and not
    deactivated or removed). One query, whatever the number of devices."""
    live = Q(devices__removed_at__isnull=True)
    active = live & Q(devices__activated_at__isnull=False, devices__deactivated_at__isnull=True)
    return list(
        Subscription.objects.filter(tenant=tenant, customer=customer)
        .select_related("plan")
        .annotate(
            live_devices=Count("devices", filter=live),
            active_devices=Count("devices", filter=active),
            is_live=Case(When(status__in=SubscriptionStatus.LIVE, then=Value(0)), default=Value(1)),
        )
        .order_by("is_live", "-starts_at", "external_id")[:limit]
    )


def devices_first_of(
    *, tenant: Tenant, subscription_ids: Sequence[Any], per_subscription: int
) -> dict[Any, list[Device]]:
    """The first ``per_subscription`` devices (by device id, removed ones last) of each of
    ``subscription_ids``: one query with a window, however many devices a subscription has."""
    rank = Window(
        RowNumber(),
        partition_by=[F("subscription_id")],
        order_by=[F("removed_at").asc(nulls_first=True), F("device_id").asc(), F("added_at").asc()],
    )
    rows = (
        Device.objects.filter(tenant=tenant, subscription_id__in=list(subscription_ids))
        .annotate(rank=rank)
        .filter(rank__lte=per_subscription)
        .order_by("subscription_id", "rank")
    )
    first: dict[Any, list[Device]] = {pk: [] for pk in subscription_ids}
    for device in rows:
        first[device.subscription_id].append(device)
    return first


def customer_history(
    *, tenant: Tenant, customer: Customer, limit: int, audit: bool = True
) -> tuple[list[AuditLogEntry], list[SubscriptionEvent]]:
    """The latest ``limit`` audit entries of ``customer`` and of its subscriptions (none unless
    ``audit``), and the latest ``limit`` events of its subscriptions (their subscription loaded),
    newest first: two queries, for a timeline that merges them by time."""
    subscription_ids = Subscription.objects.filter(tenant=tenant, customer=customer)
    entries = (
        []
        if not audit
        else list(
            AuditLogEntry.objects.filter(tenant=tenant)
            .filter(
                Q(object_type="customer", object_id=customer.external_id)
                | Q(object_type="subscription", object_id__in=subscription_ids.values("external_id"))
            )
            .order_by("-at", "-id")[:limit]
        )
    )
    events = list(
        SubscriptionEvent.objects.filter(tenant=tenant, subscription__in=subscription_ids.values("pk"))
        .select_related("subscription")
        .order_by("-at", "-id")[:limit]
    )
    return entries, events


def device_search(*, tenant: Tenant, text: str) -> QuerySet[Device]:
    """The tenant's devices whose id contains ``text`` (the one that is ``text`` first, then the
    devices still on a subscription), with their subscription and its customer."""
    return (
        Device.objects.filter(tenant=tenant, device_id__icontains=text)
        .select_related("subscription__customer", "subscription__plan")
        .annotate(exact=Case(When(device_id__iexact=text, then=Value(0)), default=Value(1)))
        .order_by("exact", F("removed_at").desc(nulls_first=True), "device_id", "-added_at")
    )
