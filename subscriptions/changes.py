"""Subscription changes mid-period: add or remove devices, change plan, cancel.

Proration is by calendar days in the customer's time zone (``billing_platform.periods``): the
unused part of an in-advance fee is credited and the new fee for the rest of the period charged,
both on the next invoice. Each side is prorated with its own period (a monthly plan's credit over
its month, a yearly plan's charge over its year: pitfall #4). A credit never exceeds what was
charged for that device, component and period, net of earlier credits (pitfall #5): the ledger is
``ServiceCharge``. Upgrades apply at once; downgrades and cancellations at period end unless an
``effective_at`` is given (cancellation: ``at_period_end: false``). ``preview`` computes the lines
and writes nothing.
"""

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.db import IntegrityError, transaction
from django.db.models import Sum

from billing_platform.errors import FieldError, InvalidInput
from billing_platform.money import allocate, round_minor
from billing_platform.periods import (
    Period,
    active_days,
    days_in,
    local_date,
    local_midnight,
)
from catalog.charge_models.base import Usage
from catalog.charge_models.pricing import price
from catalog.errors import NoPriceForCurrency
from catalog.models import INTERVAL_MONTHS, Interval, Plan, PlanComponent, ProductKind
from catalog.versions import component_prices_as_of, customer_price_book
from subscriptions.devices import device_billing_triggers, device_is_billable
from subscriptions.errors import DeviceInUse, DeviceNotFound, InvalidTransition
from subscriptions.events import devices_billing_started_emit
from subscriptions.ledger import LedgerEntry, charge_line_type, charge_signed_amount, service_charges_record
from subscriptions.models import (
    ChangeAction,
    ChangeStatus,
    ChargeKind,
    ChargeSource,
    Device,
    ServiceCharge,
    Subscription,
    SubscriptionChange,
    SubscriptionStatus,
)
from subscriptions.periods import subscription_period_at
from subscriptions.services import _record, check_device_fields, check_instant, subscription_transition
from tenancy.actors import Actor
from tenancy.models import Tenant
from tenancy.services import audit_record

S = SubscriptionStatus
logger = logging.getLogger(__name__)


@dataclass
class Entry:
    """One device's share of a change line (the ledger row it becomes)."""

    kind: str
    source: str
    component: PlanComponent
    device: Device | None
    period: Period
    covered: Period
    unit_amount: Decimal
    fraction: Decimal
    amount: Decimal = Decimal(0)
    description: str = ""


@dataclass(frozen=True)
class ChangeLine:
    kind: str  # ChargeKind
    source: str  # ChargeSource
    product: str
    description: str
    devices: tuple[str, ...]
    period_start: datetime
    period_end: datetime
    quantity: int
    unit_amount: Decimal
    fraction: Decimal
    amount: Decimal  # positive, a credit's included

    @property
    def type(self) -> str:
        """The type of the invoice line that will bill it: credit, service or fee."""
        return charge_line_type(kind=self.kind, source=self.source)

    @property
    def signed_amount(self) -> Decimal:
        return charge_signed_amount(self.kind, self.amount)


@dataclass
class ChangeResult:
    action: str
    status: str  # "applied" | "scheduled" | "preview"
    effective_at: datetime
    lines: list[ChangeLine] = field(default_factory=list)
    change: SubscriptionChange | None = None
    outcome: str = ""  # for a preview: "applied" or "scheduled", what applying it would do

    @property
    def total(self) -> Decimal:
        return sum((line.signed_amount for line in self.lines), Decimal(0))


# --- helpers ------------------------------------------------------------------------------------


def _service_components(plan: Plan) -> list[PlanComponent]:
    return [c for c in plan.components.select_related("product") if c.kind == ProductKind.SERVICE]


def _unit_fees(subscription: Subscription, plan: Plan, at: datetime) -> dict[Any, Decimal]:
    """Each service component's fee for one device (or one subscription) for a whole period."""
    customer = subscription.customer
    try:
        resolved = component_prices_as_of(
            plan=plan,
            currency=customer.currency,
            country=customer.country,
            at=at,
            customer_id=customer.pk,
            # The lock holds only on the plan it was sold with.
            locked=subscription if plan.pk == subscription.plan_id else None,
            price_book=customer_price_book(customer),
        )
    except NoPriceForCurrency as exc:
        raise InvalidInput(exc.detail, errors=[FieldError("plan", exc.code, exc.detail)]) from None
    fees = {}
    for r in resolved:
        if r.component.kind == ProductKind.SERVICE and r.charge is not None:
            fees[r.component.pk] = price(
                charge=r.charge, usage=Usage(quantity=Decimal(1)), currency=customer.currency
            ).precise_amount
    return fees


def _net_charged(
    subscription: Subscription, component: PlanComponent, device: Device | None, period: Period
) -> Decimal:
    rows = (
        ServiceCharge.objects.filter(
            subscription=subscription,
            component=component,
            period_start=period.start,
            device=device,
        )
        .values("kind")
        .annotate(total=Sum("amount"))
    )
    totals = {r["kind"]: r["total"] or Decimal(0) for r in rows}
    return totals.get(ChargeKind.CHARGE, Decimal(0)) - totals.get(ChargeKind.CREDIT, Decimal(0))


def _remaining(period: Period, at: datetime, tz: str) -> tuple[Period, Decimal]:
    """From the local day of ``at`` to the period end: the covered part and its fraction."""
    start = local_date(at, tz)
    covered = Period(max(period.start, _midnight(start, tz)), period.end)
    days = active_days(period, active_from=at, active_until=None, tz=tz)
    return covered, Decimal(days) / Decimal(days_in(period, tz))


def _midnight(day: Any, tz: str) -> datetime:
    return local_midnight(day, tz)


def _credits(
    subscription: Subscription, plan: Plan, devices: Sequence[Device], at: datetime, description: str
) -> list[Entry]:
    """Credit the unused part of each billable fee, never more than was charged for it."""
    tz, currency = subscription.customer.timezone, subscription.customer.currency
    period = subscription_period_at(subscription, at=at, plan=plan)
    fees = _unit_fees(subscription, plan, period.start)
    entries = []
    for component in _service_components(plan):
        targets: list[Device | None] = (
            [d for d in devices if device_is_billable(d, component, at)] if component.per_device else [None]
        )
        covered, fraction = _remaining(period, at, tz)
        for device in targets:
            owed = round_minor(fees.get(component.pk, Decimal(0)) * fraction, currency)
            amount = min(owed, max(_net_charged(subscription, component, device, period), Decimal(0)))
            if amount > 0:
                entries.append(
                    Entry(
                        ChargeKind.CREDIT,
                        ChargeSource.CHANGE,
                        component,
                        device,
                        period,
                        covered,
                        fees[component.pk],
                        fraction,
                        amount,
                        description,
                    )
                )
    return entries


def _charges(
    subscription: Subscription, plan: Plan, devices: Sequence[Device], at: datetime, description: str
) -> list[Entry]:
    """Charge the new fee from ``at`` to the end of the plan's own period (rounded per line later)."""
    tz = subscription.customer.timezone
    period = subscription_period_at(subscription, at=at, plan=plan)
    fees = _unit_fees(subscription, plan, period.start)
    covered, fraction = _remaining(period, at, tz)
    entries = []
    for component in _service_components(plan):
        if component.per_device:
            targets: list[Device | None] = [d for d in devices if device_is_billable(d, component, at)]
        else:
            targets = [None]
        for device in targets:
            entries.append(
                Entry(
                    ChargeKind.CHARGE,
                    ChargeSource.CHANGE,
                    component,
                    device,
                    period,
                    covered,
                    fees.get(component.pk, Decimal(0)),
                    fraction,
                    Decimal(0),
                    description,
                )
            )
    return entries


def _group(entries: list[Entry], currency: str) -> list[ChangeLine]:
    """One line per (type, product, service period, covered part, unit price). A charge line's
    amount is quantity x unit x fraction rounded once, shared among its devices so the ledger adds
    up; a credit line adds the (capped) credits of its devices."""
    groups: dict[tuple[Any, ...], list[Entry]] = defaultdict(list)
    for e in entries:
        key = (e.kind, e.component.pk, e.period.start, e.covered.start, e.unit_amount, e.description)
        groups[key].append(e)
    lines = []
    for (kind, _, _, _, unit, description), items in groups.items():
        first = items[0]
        if kind == ChargeKind.CHARGE and first.source == ChargeSource.CHANGE:
            total = round_minor(unit * first.fraction * len(items), currency)
            for e, share in zip(items, allocate(total, [Decimal(1)] * len(items), currency), strict=True):
                e.amount = share
        total = sum((e.amount for e in items), Decimal(0))
        if total == 0:
            continue
        lines.append(
            ChangeLine(
                kind=kind,
                source=first.source,
                product=first.component.product.code,
                description=description,
                devices=tuple(sorted(e.device.device_id for e in items if e.device is not None)),
                period_start=first.covered.start,
                period_end=first.covered.end,
                quantity=len(items),
                unit_amount=unit,
                fraction=first.fraction,
                amount=total,
            )
        )
    return lines


def _write_ledger(subscription: Subscription, change: SubscriptionChange, entries: Sequence[Entry]) -> None:
    service_charges_record(
        LedgerEntry(
            subscription=subscription,
            component=e.component,
            device_id=e.device.pk if e.device is not None else None,
            kind=e.kind,
            source=e.source,
            period=e.period,
            covered=e.covered,
            amount=e.amount,
            currency=subscription.customer.currency,
            description=e.description,
            change=change,
        )
        for e in entries
        if e.amount > 0
    )


def _live_devices(subscription: Subscription) -> list[Device]:
    return list(subscription.devices.filter(removed_at__isnull=True).order_by("device_id"))


def _monthly_fee_total(subscription: Subscription, plan: Plan, at: datetime) -> Decimal:
    """Per-device service fees normalised to a month, to tell an upgrade from a downgrade."""
    fees = _unit_fees(subscription, plan, at)
    return sum(fees.values(), Decimal(0)) / INTERVAL_MONTHS[Interval(plan.interval)]


# --- the change service ---------------------------------------------------------------------------


def subscription_change(
    *,
    subscription: Subscription,
    action: str,
    params: Mapping[str, Any],
    actor: Actor,
    at: datetime,
    effective_at: datetime | None = None,
    preview: bool = False,
) -> ChangeResult:
    if subscription.status in (S.CANCELLED, S.ENDED):
        raise InvalidTransition("The subscription is %s: it cannot be changed." % subscription.status)
    handler = {
        ChangeAction.ADD_DEVICES: _add_devices,
        ChangeAction.REMOVE_DEVICES: _remove_devices,
        ChangeAction.CHANGE_PLAN: _change_plan,
        ChangeAction.CANCEL: _cancel,
    }.get(action)  # type: ignore[call-overload]
    if handler is None:
        raise InvalidInput(
            "Unknown action.",
            errors=[FieldError("action", "invalid_choice", "One of: %s." % ", ".join(ChangeAction.values))],
        )
    if effective_at is not None:
        check_instant(effective_at, "effective_at")
        if effective_at < subscription.starts_at:
            raise InvalidInput(
                "A change cannot take effect before the subscription starts.",
                errors=[
                    FieldError(
                        "effective_at",
                        "before_start",
                        "The subscription starts on %s." % subscription.starts_at.isoformat(),
                    )
                ],
            )
    with transaction.atomic():
        locked = Subscription.objects.select_for_update().select_related("customer", "plan").get(pk=subscription.pk)
        result: ChangeResult = handler(locked, params, actor, at, effective_at, preview)
        if preview:
            transaction.set_rollback(True)
            # What would happen ("applied" at once or "scheduled"), and no row: nothing was written.
            result.outcome, result.status, result.change = result.status, "preview", None
    return result


def _change_row(
    subscription: Subscription, action: str, status: str, effective_at: datetime, params: Mapping[str, Any]
) -> SubscriptionChange:
    return SubscriptionChange.objects.create(
        tenant_id=subscription.tenant_id,
        subscription=subscription,
        action=action,
        status=status,
        effective_at=effective_at,
        params=dict(params),
        applied_at=effective_at if status == ChangeStatus.APPLIED else None,
    )


def _finish(
    subscription: Subscription,
    action: str,
    effective_at: datetime,
    params: Mapping[str, Any],
    entries: list[Entry],
    actor: Actor,
    at: datetime,
    event_data: Mapping[str, Any],
) -> ChangeResult:
    lines = _group(entries, subscription.customer.currency)
    change = _change_row(subscription, action, ChangeStatus.APPLIED, effective_at, params)
    _write_ledger(subscription, change, entries)
    _record(
        subscription,
        type=f"subscription.{action}",
        at=effective_at,
        actor=actor,
        data={
            **event_data,
            "lines": [{"type": line.type, "product": line.product, "amount": str(line.amount)} for line in lines],
        },
    )
    audit_record(
        tenant=subscription.tenant,
        actor=actor,
        action=f"subscription.{action}",
        object_type="subscription",
        object_id=subscription.external_id,
        at=at,
        after=dict(event_data),
    )
    return ChangeResult(action, "applied", effective_at, lines, change)


def _add_devices(
    subscription: Subscription,
    params: Mapping[str, Any],
    actor: Actor,
    at: datetime,
    effective_at: datetime | None,
    preview: bool,
) -> ChangeResult:
    when = effective_at or at
    raw = params.get("devices") or []
    check_device_fields(raw)
    ids = [str(d.get("device_id", "")) for d in raw]
    if not ids or not all(ids) or len(set(ids)) != len(ids):
        raise InvalidInput(
            "List the devices to add, each once.",
            errors=[FieldError("devices", "invalid", "A list of distinct {device_id}.")],
        )
    taken = set(
        Device.objects.filter(tenant_id=subscription.tenant_id, device_id__in=ids, removed_at__isnull=True).values_list(
            "device_id", flat=True
        )
    )
    if taken:
        raise DeviceInUse("Device %s already belongs to a live subscription." % ", ".join(sorted(taken)))
    new = [
        Device(
            tenant_id=subscription.tenant_id,
            subscription=subscription,
            device_id=i,
            device_type=str(d.get("device_type") or ""),
            region=str(d.get("region") or ""),
            added_at=when,
        )
        for i, d in zip(ids, raw, strict=True)
    ]
    try:
        with transaction.atomic():
            Device.objects.bulk_create(new)
    except IntegrityError:  # added elsewhere at the same moment: the database is the referee
        raise DeviceInUse("One of these devices was just added to a live subscription.") from None
    # Devices whose plan bills them from their addition start being billed now (a preview rolls it back).
    devices_billing_started_emit(
        subscription, new, device_billing_triggers(subscription.plan.components.all()), at=when
    )
    # Fees that start on activation are charged when the device cloud activates the device.
    entries = _charges(subscription, subscription.plan, new, when, "Devices added")
    return _finish(subscription, ChangeAction.ADD_DEVICES, when, {"devices": ids}, entries, actor, at, {"devices": ids})


def _remove_devices(
    subscription: Subscription,
    params: Mapping[str, Any],
    actor: Actor,
    at: datetime,
    effective_at: datetime | None,
    preview: bool,
) -> ChangeResult:
    when = effective_at or at
    ids = [str(i) for i in params.get("device_ids") or []]
    devices = {d.device_id: d for d in _live_devices(subscription)}
    unknown = [i for i in ids if i not in devices]
    if not ids or unknown:
        raise DeviceNotFound(
            "Not a live device of this subscription: %s." % ", ".join(unknown)
            if unknown
            else "List the device_ids to remove.",
            errors=[
                FieldError(
                    "device_ids", "unknown_device", "Unknown: %s." % ", ".join(unknown) if unknown else "Required."
                )
            ],
        )
    targets = [devices[i] for i in ids]
    entries = _credits(subscription, subscription.plan, targets, when, "Devices removed")
    for device in targets:
        device.removed_at = when
        if device.deactivated_at is None:
            device.deactivated_at = when
        device.save(update_fields=["removed_at", "deactivated_at"])
    return _finish(
        subscription, ChangeAction.REMOVE_DEVICES, when, {"device_ids": ids}, entries, actor, at, {"device_ids": ids}
    )


def _change_plan(
    subscription: Subscription,
    params: Mapping[str, Any],
    actor: Actor,
    at: datetime,
    effective_at: datetime | None,
    preview: bool,
) -> ChangeResult:
    code = params.get("plan")
    new_plan = Plan.objects.filter(tenant_id=subscription.tenant_id, code=code).first()
    if new_plan is None:
        raise InvalidInput(
            "No plan with code %s." % code, errors=[FieldError("plan", "unknown_plan", "No plan with code %s." % code)]
        )
    if new_plan.pk == subscription.plan_id:
        raise InvalidInput(
            "The subscription is already on plan %s." % code,
            errors=[FieldError("plan", "same_plan", "Already on this plan.")],
        )
    old_plan = subscription.plan
    upgrade = _monthly_fee_total(subscription, new_plan, at) >= _monthly_fee_total(subscription, old_plan, at)
    if effective_at is None and not upgrade:
        # Downgrades wait for the end of the period already paid for.
        when = subscription_period_at(subscription, at=at, plan=old_plan).end
        change = _change_row(subscription, ChangeAction.CHANGE_PLAN, ChangeStatus.SCHEDULED, when, {"plan": code})
        _record(
            subscription,
            type="subscription.change_scheduled",
            at=at,
            actor=actor,
            data={"action": "change_plan", "plan": code, "effective_at": when.isoformat()},
        )
        return ChangeResult(ChangeAction.CHANGE_PLAN, "scheduled", when, [], change)
    when = effective_at or at
    devices = _live_devices(subscription)
    entries = _credits(subscription, old_plan, devices, when, "Unused %s" % old_plan.name)
    subscription.plan = new_plan
    subscription.save(update_fields=["plan", "updated_at"])
    entries += _charges(subscription, new_plan, devices, when, new_plan.name)
    return _finish(
        subscription,
        ChangeAction.CHANGE_PLAN,
        when,
        {"plan": code},
        entries,
        actor,
        at,
        {"from_plan": old_plan.code, "to_plan": code},
    )


def _cancel(
    subscription: Subscription,
    params: Mapping[str, Any],
    actor: Actor,
    at: datetime,
    effective_at: datetime | None,
    preview: bool,
) -> ChangeResult:
    at_period_end = params.get("at_period_end", effective_at is None)
    if at_period_end and subscription.cancel_at is not None:
        # Checked under the subscription's lock: a second request (a double click, a retried call)
        # must not schedule, nor charge the early-termination fee, twice.
        raise InvalidTransition("A cancellation is already scheduled for %s." % subscription.cancel_at.isoformat())
    if at_period_end:
        when = subscription_period_at(subscription, at=at).end
        subscription.cancel_at = when
        subscription.save(update_fields=["cancel_at", "updated_at"])
        change = _change_row(subscription, ChangeAction.CANCEL, ChangeStatus.SCHEDULED, when, {"at_period_end": True})
        # Leaving a commitment at a period's end still owes the committed periods after it: the fee
        # is charged now, on the next invoice, as an immediate cancellation charges it (the period
        # under way is billed in full, so there is nothing to credit).
        fee = _early_termination(subscription, _live_devices(subscription), at)
        _write_ledger(subscription, change, fee)
        lines = _group(fee, subscription.customer.currency)
        _record(
            subscription,
            type="subscription.change_scheduled",
            at=at,
            actor=actor,
            data={
                "action": "cancel",
                "effective_at": when.isoformat(),
                "lines": [{"type": line.type, "product": line.product, "amount": str(line.amount)} for line in lines],
            },
        )
        return ChangeResult(ChangeAction.CANCEL, "scheduled", when, lines, change)
    when = effective_at or at
    devices = _live_devices(subscription)
    entries = _credits(subscription, subscription.plan, devices, when, "Cancelled")
    # A cancellation scheduled earlier charged the fee already: ending now does not charge it again.
    if not subscription.charges.filter(source=ChargeSource.EARLY_TERMINATION).exists():
        entries += _early_termination(subscription, devices, when)
    result = _finish(subscription, ChangeAction.CANCEL, when, {"at_period_end": False}, entries, actor, at, {})
    subscription_transition(subscription=subscription, to_status=S.CANCELLED, actor=actor, at=when, reason="cancelled")
    subscription_transition(
        subscription=subscription, to_status=S.ENDED, actor=actor, at=when, reason="cancelled immediately"
    )
    return result


def _early_termination(subscription: Subscription, devices: Sequence[Device], at: datetime) -> list[Entry]:
    """With ``early_termination: remaining_fees``: the service fees of the committed periods left
    after the current one, for the devices billed now."""
    plan = subscription.plan
    if plan.early_termination != "remaining_fees" or subscription.commitment_ends_at is None:
        return []
    period = subscription_period_at(subscription, at=at, plan=plan)
    periods_left = 0
    cursor = period
    while cursor.end < subscription.commitment_ends_at:
        cursor = subscription_period_at(subscription, at=cursor.end, plan=plan)
        periods_left += 1
    if periods_left == 0:
        return []
    fees = _unit_fees(subscription, plan, period.start)
    entries = []
    for component in _service_components(plan):
        count = len([d for d in devices if device_is_billable(d, component, at)]) if component.per_device else 1
        if count == 0:
            continue
        amount = round_minor(fees.get(component.pk, Decimal(0)) * count * periods_left, subscription.customer.currency)
        tail = Period(period.end, subscription.commitment_ends_at)
        entries.append(
            Entry(
                ChargeKind.CHARGE,
                ChargeSource.EARLY_TERMINATION,
                component,
                None,
                tail,
                tail,
                fees.get(component.pk, Decimal(0)),
                Decimal(periods_left),
                amount,
                "Early termination: %d committed periods left" % periods_left,
            )
        )
    return entries


def subscription_changes_apply_due(*, tenant: Tenant, at: datetime) -> int:
    """Apply the tenant's scheduled changes whose time has come (downgrades, cancellations at period
    end). Safe to run twice: each change is applied once, under a row lock."""
    applied = 0
    due = SubscriptionChange.objects.filter(
        tenant=tenant, status=ChangeStatus.SCHEDULED, effective_at__lte=at
    ).values_list("pk", flat=True)
    for pk in list(due):
        with transaction.atomic():
            change = SubscriptionChange.objects.select_for_update().filter(pk=pk, status=ChangeStatus.SCHEDULED).first()
            if change is None:
                continue
            subscription = (
                Subscription.objects.select_for_update()
                .select_related("customer", "plan")
                .get(pk=change.subscription_id)
            )
            actor = Actor.system("scheduled change")
            if change.action == ChangeAction.CHANGE_PLAN:
                new_plan = Plan.objects.get(tenant_id=subscription.tenant_id, code=change.params["plan"])
                old = subscription.plan.code
                subscription.plan = new_plan
                subscription.save(update_fields=["plan", "updated_at"])
                _record(
                    subscription,
                    type="subscription.change_plan",
                    at=change.effective_at,
                    actor=actor,
                    data={"from_plan": old, "to_plan": new_plan.code},
                )
            elif change.action == ChangeAction.CANCEL and subscription.status not in (S.CANCELLED, S.ENDED):
                subscription_transition(
                    subscription=subscription,
                    to_status=S.CANCELLED,
                    actor=actor,
                    at=change.effective_at,
                    reason="cancelled at period end",
                )
                subscription_transition(
                    subscription=subscription,
                    to_status=S.ENDED,
                    actor=actor,
                    at=change.effective_at,
                    reason="period ended",
                )
            change.status = ChangeStatus.APPLIED
            change.applied_at = at
            change.save(update_fields=["status", "applied_at"])
            applied += 1
    return applied


def subscription_ends_apply_due(*, tenant: Tenant, at: datetime) -> int:
    """End the tenant's subscriptions that do not renew (``auto_renew: false``) once their commitment is over
    at ``at`` (billing.md: they end, their devices stop billing). Each ends at its
    ``commitment_ends_at``, however late this runs: cancelled, then ended, on its timeline. When the
    commitment ends inside a period whose in-advance fee was billed, the part after the end is
    credited on the next invoice, as an immediate cancellation credits it; at a period's end there is
    nothing to credit, since no fee is billed for a period after the end (``subscription_end``).
    Safe to run twice, and beside another run: each subscription is ended once, under a row lock. One
    that cannot be ended (no price left to credit with, say) is logged and left for the next run, and
    the others are ended. Returns how many were ended."""
    due = Subscription.objects.filter(
        tenant=tenant,
        status__in=S.LIVE,
        auto_renew=False,
        commitment_ends_at__isnull=False,
        commitment_ends_at__lte=at,
    )
    ended = 0
    for pk in list(due.order_by("commitment_ends_at", "pk").values_list("pk", flat=True)):
        try:
            with transaction.atomic():
                subscription = (
                    due.select_for_update(skip_locked=True, of=("self",))
                    .select_related("customer", "plan", "tenant")
                    .filter(pk=pk)
                    .first()
                )
                if subscription is None:
                    continue  # ended meanwhile, or being ended by another run
                _end_not_renewed(subscription, at=at)
        except SoftTimeLimitExceeded:
            raise  # the time is up: the subscriptions not ended yet are ended by the next run
        except Exception as exc:  # one subscription's broken data must not keep the others running
            logger.warning("ending subscription %s at its commitment end failed: %s", pk, exc)
            continue
        ended += 1
    return ended


def _end_not_renewed(subscription: Subscription, *, at: datetime) -> None:
    actor = Actor.system("commitment ended")
    end = subscription.commitment_ends_at
    assert end is not None  # only subscriptions with a commitment are due
    entries = _credits(subscription, subscription.plan, _live_devices(subscription), end, "Not renewed")
    if entries:
        params = {"at_period_end": False}
        _finish(subscription, ChangeAction.CANCEL, end, params, entries, actor, at, {"reason": "not renewed"})
    for status, reason in ((S.CANCELLED, "not renewed"), (S.ENDED, "commitment ended")):
        subscription_transition(subscription=subscription, to_status=status, actor=actor, at=end, reason=reason)


def service_charge_record(
    *,
    subscription: Subscription,
    component: PlanComponent,
    device: Device | None,
    period: Period,
    amount: Decimal,
    source: str = ChargeSource.IN_ADVANCE,
    covered: Period | None = None,
    invoiced_at: datetime | None = None,
) -> ServiceCharge:
    """Record a fee billed for a service period (bill runs call this for every in-advance or activation
    fee they invoice), so that later changes credit at most what was charged."""
    service_charges_record(
        [
            LedgerEntry(
                subscription=subscription,
                component=component,
                device_id=device.pk if device is not None else None,
                kind=ChargeKind.CHARGE,
                source=source,
                period=period,
                covered=covered or period,
                amount=amount,
                currency=subscription.customer.currency,
                invoiced_at=invoiced_at,
            )
        ]
    )
    # The row written, or the one already charged for this period: a retried or repeated bill run
    # changes nothing (pitfall #1).
    return ServiceCharge.objects.filter(
        subscription=subscription, component=component, device=device, period_start=period.start, source=source
    ).latest("id")


__all__ = [
    "ChangeLine",
    "ChangeResult",
    "service_charge_record",
    "subscription_change",
    "subscription_changes_apply_due",
    "subscription_ends_apply_due",
]
