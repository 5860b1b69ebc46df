"""What the subscription pages show: local dates in the customer's time zone, human labels for
timeline entries, the charge ledger and the lines of a change with amounts in the currency's
decimals, the status tabs of the lists, and webhook bodies as indented JSON."""

import json
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from backoffice.formatting import choice_label, moment, money, money_of, period_days, query_string
from billing_platform.json_input import JsonTooDeep, json_load
from subscriptions.changes import ChangeLine
from subscriptions.ledger import charge_signed_amount
from subscriptions.models import (
    ChangeAction,
    ServiceCharge,
    Subscription,
    SubscriptionEvent,
    SubscriptionStatus,
)
from tenancy.models import ActorType

EVENT_LABELS = {
    "subscription.signed": gettext_lazy("Signed"),
    "subscription.status_changed": gettext_lazy("Status changed"),
    "subscription.add_devices": gettext_lazy("Devices added"),
    "subscription.remove_devices": gettext_lazy("Devices removed"),
    "subscription.change_plan": gettext_lazy("Plan changed"),
    "subscription.cancel": gettext_lazy("Cancelled"),
    "subscription.change_scheduled": gettext_lazy("Change scheduled"),
    "device.shipped": gettext_lazy("Device shipped"),
    "device.activated": gettext_lazy("Device activated"),
    "device.deactivated": gettext_lazy("Device deactivated"),
    "order.placed": gettext_lazy("Ordered in the shop"),
    "device.bound": gettext_lazy("Device bound to a slot"),
}
# Types of the lines of a change (subscriptions.changes.ChangeLine.type).
CHANGE_LINE_TYPES = {
    "credit": gettext_lazy("Credit"),
    "service": gettext_lazy("Charge"),
    "fee": gettext_lazy("Fee"),
}


def _instant(value: Any) -> datetime | None:
    """An ISO instant stored in an event's data."""
    instant = parse_datetime(value) if isinstance(value, str) else None
    return instant if instant and timezone.is_aware(instant) else None


def device_counts(subscription: Subscription) -> tuple[int, int]:
    """(active, total) of the devices on the subscription now: removed devices are not counted."""
    live = [d for d in subscription.devices.all() if d.removed_at is None]
    active = [d for d in live if d.activated_at is not None and d.deactivated_at is None]
    return len(active), len(live)


def status_tabs(
    counts: dict[str, int], choices: Iterable[tuple[str, Any]], q: str = "", customer: str = ""
) -> list[dict[str, Any]]:
    """The tabs above a list: all, then one per status with its count, each keeping the search and
    the customer the list is narrowed to."""
    tabs = [
        {"status": "", "label": _("All"), "count": sum(counts.values()), "query": query_string(q=q, customer=customer)}
    ]
    tabs += [
        {
            "status": value,
            "label": label,
            "count": counts.get(value, 0),
            "query": query_string(status=value, q=q, customer=customer),
        }
        for value, label in choices
    ]
    return tabs


def event_details(event: SubscriptionEvent, tz: str, currency: str) -> list[str]:
    """The data of a timeline entry as short sentences, its instants in ``tz`` and its amounts in
    ``currency``; unknown keys are left out."""
    data = event.data if isinstance(event.data, dict) else {}
    details: list[str] = []
    if data.get("plan") and event.type == "subscription.signed":
        details.append(_("Plan %(plan)s") % {"plan": data["plan"]})
    if data.get("from_plan") or data.get("to_plan"):
        details.append("%s → %s" % (data.get("from_plan", "?"), data.get("to_plan", "?")))
    for key in ("devices", "device_ids"):
        if isinstance(data.get(key), list) and data[key]:
            details.append(_("Devices: %(devices)s") % {"devices": ", ".join(str(d) for d in data[key])})
    if event.type == "subscription.change_scheduled":
        when = _instant(data.get("effective_at"))
        action = choice_label(ChangeAction, str(data.get("action", "")))
        if data.get("plan"):
            action = "%s (%s)" % (action, data["plan"])
        details.append(_("%(action)s on %(when)s") % {"action": action, "when": moment(when, tz) if when else "?"})
    for line in data.get("lines") or []:
        if isinstance(line, dict):
            details.append(
                "%s %s %s"
                % (
                    CHANGE_LINE_TYPES.get(str(line.get("type")), line.get("type", "")),
                    line.get("product", ""),
                    money(line.get("amount", ""), currency),
                )
            )
    if data.get("reason"):
        details.append(_("Reason: %(reason)s") % {"reason": data["reason"]})
    return details


def timeline(subscription: Subscription, tz: str) -> list[dict[str, Any]]:
    return [
        {
            "event": e,
            "label": EVENT_LABELS.get(e.type, e.type),
            "from_status": choice_label(SubscriptionStatus, e.from_status),
            "to_status": choice_label(SubscriptionStatus, e.to_status),
            "actor_type": choice_label(ActorType, e.actor_type),
            "details": event_details(e, tz, subscription.customer.currency),
        }
        for e in subscription.events.all()
    ]


def ledger(charges: Iterable[ServiceCharge], currency: str, tz: str) -> dict[str, Any]:
    """The charge ledger of a subscription: each charge signed (credits negative) with its local
    days, and the total not invoiced yet, in the customer's ``currency``."""
    rows, pending = [], Decimal(0)
    for charge in charges:
        signed = charge_signed_amount(charge.kind, charge.amount)
        if charge.invoiced_at is None:
            pending += signed
        rows.append(
            {
                "charge": charge,
                "period": period_days(charge.period_start, charge.period_end, tz),
                "covered": period_days(charge.covered_start, charge.covered_end, tz),
                "amount": money_of(signed, charge.currency),
            }
        )
    return {"rows": rows, "pending": money_of(pending, currency), "currency": currency}


def change_lines(lines: Iterable[ChangeLine], currency: str, tz: str) -> list[dict[str, Any]]:
    rows = []
    for line in lines:
        first, last = period_days(line.period_start, line.period_end, tz)
        days = None
        if line.type != "fee" and line.fraction > 0:
            # The days charged or credited out of the days of the whole service period.
            covered = (last - first).days + 1
            days = (covered, int((Decimal(covered) / line.fraction).to_integral_value()))
        rows.append(
            {
                "line": line,
                "type_label": CHANGE_LINE_TYPES.get(line.type, line.type),
                "first": first,
                "last": last,
                "days": days,
                "unit_amount": money_of(line.unit_amount, currency),
                "amount": money_of(line.signed_amount, currency),
            }
        )
    return rows


def pretty_body(body: str) -> str:
    """A webhook body as indented JSON, or as received when it is not JSON we read (too deep, too)."""
    try:
        return json.dumps(json_load(body), indent=2, ensure_ascii=False)
    except (ValueError, JsonTooDeep):
        return body
