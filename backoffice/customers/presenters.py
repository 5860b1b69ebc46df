"""What the customer page shows: its subscriptions with their devices and MRR, its usage this period
and the projected invoice, its invoices with their payment status, and one timeline merging the
audit entries of the customer and its subscriptions with the subscriptions' events. Amounts are
``Money`` in the customer's currency; instants are printed in the customer's time zone."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils.translation import get_language, gettext_lazy
from djmoney.money import Money

from backoffice.formatting import choice_label, period_days
from backoffice.subscriptions.presenters import EVENT_LABELS, event_details
from billing_platform.money import round_minor
from invoicing.lines import LineType, line_description
from invoicing.upcoming import CurrentUsage
from subscriptions.models import Device, Subscription, SubscriptionEvent, SubscriptionStatus
from tenancy.models import ActorType, AuditLogEntry

# A device's state now, from its instants (the subscription page shows them all).
DEVICE_STATES = {
    "removed": gettext_lazy("Removed"),
    "deactivated": gettext_lazy("Deactivated"),
    "active": gettext_lazy("Active"),
    "shipped": gettext_lazy("Shipped"),
    "waiting": gettext_lazy("Not activated yet"),
}
# Badge colours of the subscription pages (tp-st-*), per device state.
DEVICE_BADGES = {
    "removed": "ended",
    "deactivated": "cancelled",
    "active": "active",
    "shipped": "pending_activation",
    "waiting": "pending_activation",
}
# The audit actions of a customer and its subscriptions in words; a change's action
# (``subscription.<action>``) reads as its event does; any other shows its code.
AUDIT_LABELS = {
    "customer.created": gettext_lazy("Customer created"),
    "customer.updated": gettext_lazy("Customer updated"),
    "subscription.created": gettext_lazy("Subscription created"),
    "subscription.updated": gettext_lazy("Subscription updated"),
}
LINE_TYPES = {
    LineType.HARDWARE: gettext_lazy("Hardware"),
    LineType.SERVICE: gettext_lazy("Service"),
    LineType.USAGE: gettext_lazy("Usage"),
    LineType.FEE: gettext_lazy("Fee"),
    LineType.CREDIT: gettext_lazy("Credit"),
}


def device_state(device: Device) -> str:
    if device.removed_at is not None:
        return "removed"
    if device.deactivated_at is not None:
        return "deactivated"
    if device.activated_at is not None:
        return "active"
    return "shipped" if device.shipped_at is not None else "waiting"


def subscription_rows(
    subscriptions: Sequence[Subscription],
    devices: Mapping[Any, Sequence[Device]],
    mrr: Mapping[Any, Money],
) -> list[dict[str, Any]]:
    """Each subscription with its device counts (annotated by the selector), its first devices and
    their state, and its MRR now (None when it bills no period now: not live)."""
    rows = []
    for s in subscriptions:
        shown = []
        for d in devices.get(s.pk, []):
            state = device_state(d)
            shown.append({"device": d, "state": state, "label": DEVICE_STATES[state], "badge": DEVICE_BADGES[state]})
        live: int = getattr(s, "live_devices", 0)
        rows.append(
            {
                "subscription": s,
                "live_devices": live,
                "active_devices": getattr(s, "active_devices", 0),
                "devices": shown,
                "more_devices": max(0, live - sum(1 for row in shown if row["state"] != "removed")),
                "mrr": mrr.get(s.pk),
            }
        )
    return rows


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # "audit" or "event"
    label: str
    subject: str  # the customer, or a subscription's external ID
    details: list[str]
    who: str
    actor_type: str
    from_status: str = ""
    to_status: str = ""
    from_label: str = ""
    to_label: str = ""
    device_id: str = ""


def timeline(
    entries: Sequence[AuditLogEntry], events: Sequence[SubscriptionEvent], *, tz: str, currency: str, limit: int
) -> list[TimelineEntry]:
    """The audit entries and the subscription events merged by time, newest first, at most ``limit``.
    An audit entry says what was done to which object; its fields before and after are in the audit
    table below the timeline."""
    # At one instant, the audit entry (the action) is listed above the events it caused.
    merged: list[tuple[datetime, int, int, TimelineEntry]] = []
    for e in entries:
        merged.append(
            (
                e.at,
                1,
                e.pk,
                TimelineEntry(
                    at=e.at,
                    kind="audit",
                    label=str(AUDIT_LABELS.get(e.action) or EVENT_LABELS.get(e.action) or e.action),
                    subject=e.object_id if e.object_type == "subscription" else "",
                    details=[],
                    who=e.actor_label,
                    actor_type=choice_label(ActorType, e.actor_type),
                ),
            )
        )
    for ev in events:
        merged.append(
            (
                ev.at,
                0,
                ev.pk,
                TimelineEntry(
                    at=ev.at,
                    kind="event",
                    label=str(EVENT_LABELS.get(ev.type, ev.type)),
                    subject=ev.subscription.external_id,
                    details=event_details(ev, tz, currency),
                    who=ev.actor_label,
                    actor_type=choice_label(ActorType, ev.actor_type),
                    from_status=ev.from_status,
                    to_status=ev.to_status,
                    from_label=choice_label(SubscriptionStatus, ev.from_status),
                    to_label=choice_label(SubscriptionStatus, ev.to_status),
                    device_id=ev.device_id,
                ),
            )
        )
    merged.sort(key=lambda item: item[:3], reverse=True)
    return [entry for *_, entry in merged[:limit]]


def usage_panel(usage: CurrentUsage, *, tz: str) -> dict[str, Any]:
    """Usage this period per subscription and meter, and the projected invoice's lines (signed),
    taxes and totals, in the reader's language."""
    currency = usage.currency
    subscriptions = [
        {
            "subscription": s.subscription,
            "plan": s.plan,
            "period": period_days(s.period.start, s.period.end, tz),
            "active_devices": s.active_devices,
            "components": [
                {
                    "product": c.product,
                    "meter": c.meter,
                    "quantity": c.quantity,
                    "allowance": c.allowance,
                    "billable": c.billable_quantity,
                    "events": c.event_count,
                    "amount": Money(c.amount, currency),
                }
                for c in s.components
            ],
        }
        for s in usage.subscriptions
    ]
    language = get_language()
    lines = [
        {
            "type": LINE_TYPES.get(line.type, line.type),
            "description": line_description(line.product_name, line.qualifiers, language=language),
            "subscription": line.subscription.external_id if line.subscription is not None else "",
            "quantity": line.quantity,
            "amount": Money(line.signed_amount, currency),
        }
        for line in usage.projected.lines
    ]
    taxes = [
        {"rate": t.rate, "base": Money(t.base, currency), "amount": Money(t.amount, currency)}
        for t in usage.projected.taxes
    ]
    return {
        "subscriptions": subscriptions,
        "lines": lines,
        "taxes": taxes,
        "net": usage.projected.net_total,
        "total": usage.projected.total,
        "warnings": usage.projected.warnings,
    }


def mrr_money(amount: Decimal, currency: str) -> Money:
    """A subscription's MRR (unrounded) as shown: rounded once to the currency's minor unit."""
    return Money(round_minor(amount, currency), currency)
