"""The portal's devices: each device of the customer's subscriptions with its status, type, region,
activation date and its usage in the subscription's open period.

The usage of a page of devices is read at once, whatever the number of devices: the period's
quantities grouped by device (``usage.aggregation.aggregate_many``, one statement per kind of
aggregation, as invoicing reads a per-device component), for every subscription and meter of the
page."""

from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.core.paginator import Paginator
from django.db import connection
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from billing_platform.formatting import period_days
from billing_platform.periods import Period
from catalog.models import Meter, ProductKind, StartsOn
from catalog.selectors import meter_list
from portal.access import PortalContext, current_portal, portal_view
from subscriptions.devices import plan_needs_activation
from subscriptions.models import Device, Subscription, SubscriptionStatus
from subscriptions.periods import subscription_period_at
from subscriptions.selectors import meter_ids_for_customer
from usage.aggregation import aggregate_many

PAGE_SIZE = 50

STATUS_LABELS = {
    "active": pgettext_lazy("device status", "Active"),
    "deactivated": pgettext_lazy("device status", "Deactivated"),
    "shipped": _("Shipped, not activated yet"),
    "waiting": _("Not activated yet"),
    "slot": _("Ordered, not shipped yet"),
}


def device_status(device: Device) -> str:
    """Active as the subscriptions count it (``devices_active_in``): once activated by the device
    cloud or, on a plan whose fees do not wait for activation, once added; until deactivated."""
    if device.deactivated_at is not None:
        return "deactivated"
    if not device.device_id:
        return "slot"  # ordered in the shop: no device bound yet, never active
    if device.activated_at is not None or not plan_needs_activation(device.subscription.plan.components.all()):
        return "active"
    if device.shipped_at is not None:
        return "shipped"
    return "waiting"


def customer_devices(portal: PortalContext) -> QuerySet[Device]:
    """The devices of the customer's live subscriptions (removed ones left out), by device id."""
    return (
        Device.objects.filter(
            tenant=portal.tenant,
            subscription__customer=portal.customer,
            subscription__status__in=SubscriptionStatus.LIVE,
            removed_at__isnull=True,
        )
        .select_related("subscription__plan")
        .prefetch_related("subscription__plan__components")
        .order_by("device_id", "added_at", "pk")
    )


# The rule of ``device_status`` == "active" over ``customer_devices``, as one statement: bound, not
# removed nor deactivated, in a live subscription of the customer, and activated unless no service
# fee of the plan starts on activation (``plan_needs_activation``). Hand-written: the overview reads
# it on every visit. portal/tests/test_overview_figures.py checks it against ``device_status``.
_ACTIVE_DEVICES_SQL = f"""
SELECT count(*) FROM subscriptions_device d
JOIN subscriptions_subscription s ON s.id = d.subscription_id
WHERE d.tenant_id = %(tenant)s AND s.tenant_id = %(tenant)s AND s.customer_id = %(customer)s
  AND s.status = ANY(%(live)s) AND d.removed_at IS NULL AND d.deactivated_at IS NULL AND d.device_id <> ''
  AND (d.activated_at IS NOT NULL OR NOT EXISTS (
      SELECT 1 FROM catalog_plancomponent c
      WHERE c.plan_id = s.plan_id AND c.kind = '{ProductKind.SERVICE.value}'
        AND c.starts_on = '{StartsOn.ACTIVATION.value}'))
"""


def active_device_count(portal: PortalContext) -> int:
    """The devices ``device_status`` calls active, counted by the database in one statement."""
    params: dict[str, Any] = {
        "tenant": portal.tenant.pk,
        "customer": portal.customer.pk,
        "live": [str(s) for s in SubscriptionStatus.LIVE],
    }
    with connection.cursor() as cursor:
        cursor.execute(_ACTIVE_DEVICES_SQL, params)
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def devices_usage(
    devices: list[Device], meters: list[Meter], *, at: Any
) -> tuple[dict[tuple[Any, str], dict[Any, Decimal]], dict[Any, Period]]:
    """Each device's quantity per meter in its subscription's period open at ``at``, keyed by
    (subscription id, device id), and the period of each subscription: one read per distinct period
    (the subscriptions of a customer share their billing day, so usually one)."""
    subscriptions: dict[Any, Subscription] = {d.subscription_id: d.subscription for d in devices}
    periods = {pk: subscription_period_at(s, at=at) for pk, s in subscriptions.items()}
    by_period: dict[Period, list[Any]] = defaultdict(list)
    for pk, period in periods.items():
        by_period[period].append(pk)
    quantities: dict[tuple[Any, str], dict[Any, Decimal]] = defaultdict(dict)
    if not meters:
        return quantities, periods
    for period, subscription_ids in by_period.items():
        grouped = aggregate_many(subscription_ids=subscription_ids, meters=meters, period=period, group_by_device=True)
        for (subscription_id, meter_id), rows in grouped.items():
            for row in rows:
                quantities[(subscription_id, row.device_id)][meter_id] = row.quantity
    return quantities, periods


@portal_view()
def devices(request: HttpRequest) -> HttpResponse:
    portal = current_portal(request)
    tenant, customer = portal.tenant, portal.customer
    page = Paginator(customer_devices(portal), PAGE_SIZE).get_page(request.GET.get("page"))
    shown = list(page.object_list)
    meter_ids = list(dict.fromkeys(meter_ids_for_customer(tenant=tenant, customer=customer)))
    meters = sorted(meter_list(tenant=tenant).filter(pk__in=meter_ids), key=lambda m: meter_ids.index(m.pk))
    quantities, periods = devices_usage(shown, meters, at=timezone.now())
    table: list[dict[str, Any]] = []
    for device in shown:
        measured = quantities.get((device.subscription_id, device.device_id), {})
        status = device_status(device)
        table.append(
            {
                "device": device,
                "status": status,
                "status_label": STATUS_LABELS[status],
                "usage": [measured.get(m.pk, Decimal(0)) for m in meters],
            }
        )
    first_periods = sorted(set(periods.values()), key=lambda p: p.start)
    context = {
        "page": page,
        "rows": table,
        "meters": meters,
        "period": period_days(first_periods[0].start, first_periods[0].end, customer.timezone)
        if len(first_periods) == 1
        else None,
        "tz_name": customer.timezone,
    }
    return render(request, "portal/devices/list.html", context)
