"""The fees of a subscription's period: the lines an invoice bills, computed the same way for the
invoice (``invoicing.composition``) and for its projection, the current usage
(``invoicing.upcoming``). Each function takes the period it bills explicitly; the subscription's
periods come from ``subscriptions.periods`` and which devices pay from ``subscriptions.devices``.

- Usage, in arrears: the period's quantity (``usage.measure``) less the allowance, priced. The
  allowance is deducted in one place (``catalog.charge_models.apply_allowance``), from the period's
  whole quantity: computing the current usage twice never takes the free units off twice (pitfall
  #12). Prices are those in effect at the period's start, customer overrides applied, and each
  amount is rounded once by ``catalog.charge_models.pricing.price``.
- Hardware: the instalments due on the billing date that closes the period.
- Services: the first days of the fees that started during the period (a device's activation, the
  subscription's start, the end of its trial), prorated, and the next period's in-advance fees of
  the devices billable now.
- One-time fees: once per subscription or per device, on the first invoice after their trigger.
"""

from collections import defaultdict
from collections.abc import Sequence, Set
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from billing_platform.money import round_minor
from billing_platform.periods import Period, local_date
from catalog.charge_models.allowance import apply_allowance, not_negative
from catalog.charge_models.base import Usage, decimal_str
from catalog.charge_models.instalments import instalment_amounts
from catalog.charge_models.pricing import price
from catalog.models import BillOn, PlanComponent, ProductKind, StartsOn
from catalog.versions import ResolvedPrice
from invoicing.lines import DraftLine, LineType
from subscriptions.devices import device_is_billable
from subscriptions.models import ChargeSource, Subscription
from subscriptions.periods import subscription_end, subscription_period_at
from subscriptions.proration import DeviceActivity, activation_prorations
from usage.aggregation import AggregateRow, aggregate
from usage.measure import Measured, quantity_plain, usage_measure
from usage.selectors import RollupGroup
from usage.usage_context import DeviceRow


@dataclass(frozen=True)
class ComponentUsage:
    product: str
    meter: str
    aggregation: str
    pooled: bool
    quantity: Decimal  # the meter's aggregate over the period so far
    event_count: int
    allowance: Decimal  # included_per_device x devices active in the period (0 without one)
    billable_quantity: Decimal
    amount: Decimal  # rounded once to the currency's minor unit
    detail: dict[str, Any]
    precise_amount: Decimal  # before that rounding


@dataclass(frozen=True)
class DeviceUsage:
    """A component priced per device (``per_device_usage_amount``)."""

    amount: Decimal  # rounded once
    precise_amount: Decimal
    allowance: Decimal
    billable_quantity: Decimal
    per_device: list[dict[str, Any]]


# --- usage, in arrears ------------------------------------------------------------------------


def usage_component_price(
    *,
    subscription: Subscription,
    resolved: ResolvedPrice,
    period: Period,
    rollups: Sequence[RollupGroup] | None,
    active: Sequence[DeviceRow],
    currency: str,
    measured: Measured | None = None,
    by_device: Sequence[AggregateRow] | None = None,
) -> ComponentUsage:
    """A usage component over ``period``: its quantity (``usage.measure``: from ``rollups`` when
    given, else from the raw events), the allowance of the ``active`` devices deducted once from the
    whole period's quantity, and the amount priced and rounded once. A matrix prices each group as
    metered; a per-device component gives each device its own allowance
    (``per_device_usage_amount``). ``measured`` and ``by_device`` are the period's raw measures when
    read already (a late-usage adjustment re-rates a whole period this way, with the same grouping
    as its original line)."""
    component = resolved.component
    meter = component.meter
    assert meter is not None
    assert resolved.charge is not None
    charge = resolved.charge
    matrix_dimensions = list(charge["dimensions"]) if charge.get("model") == "matrix" else None
    if measured is None:
        measured = usage_measure(
            subscription=subscription, meter=meter, period=period, rollups=rollups, matrix_dimensions=matrix_dimensions
        )
    included = component.included_per_device or Decimal(0)
    detail: dict[str, Any] = {
        "source": resolved.source,
        "devices": len(active),
        "included_per_device": decimal_str(quantity_plain(included)),
        "event_count": measured.event_count,
    }
    if matrix_dimensions is not None:
        # As the price calculator does: a matrix prices every group as metered, without allowance.
        allowance, billable = Decimal(0), not_negative(measured.quantity)
        usage = Usage(quantity=billable, event_count=measured.event_count, groups=measured.groups)
        priced = price(
            charge=charge,
            usage=usage,
            currency=currency,
            min_amount=resolved.min_amount,
            max_amount=resolved.max_amount,
        )
        amount, precise, detail = priced.amount, priced.precise_amount, {**priced.details, **detail}
    elif component.pooled:
        allowance = quantity_plain(included * len(active))
        billable, _ = apply_allowance(quantity=measured.quantity, included_per_device=included, devices=len(active))
        billable = quantity_plain(billable)
        priced = price(
            charge=charge,
            usage=Usage(quantity=billable, event_count=measured.event_count),
            currency=currency,
            min_amount=resolved.min_amount,
            max_amount=resolved.max_amount,
        )
        amount, precise, detail = priced.amount, priced.precise_amount, {**priced.details, **detail}
    else:
        devices_usage = per_device_usage_amount(
            subscription=subscription,
            resolved=resolved,
            period=period,
            active_ids={d.device_id for d in active},
            currency=currency,
            measured=by_device,
        )
        amount, precise = devices_usage.amount, devices_usage.precise_amount
        allowance, billable = devices_usage.allowance, devices_usage.billable_quantity
        detail = {**detail, "per_device": devices_usage.per_device}
    return ComponentUsage(
        product=component.product.code,
        meter=meter.code,
        aggregation=meter.aggregation,
        pooled=component.pooled,
        quantity=measured.quantity,
        event_count=measured.event_count,
        allowance=allowance,
        billable_quantity=billable,
        amount=amount,
        detail=detail,
        precise_amount=precise,
    )


def per_device_usage_amount(
    *,
    subscription: Subscription,
    resolved: ResolvedPrice,
    period: Period,
    active_ids: set[str],
    currency: str,
    measured: Sequence[AggregateRow] | None = None,
) -> DeviceUsage:
    """A component priced per device: each device's events (raw, rollups do not keep devices) get
    that device's allowance and their own charge; min/max apply to the component's total.
    ``measured`` are the period's quantities per device when already read (``aggregate_many`` with
    ``group_by_device``); else they are read here. Returns the amount (rounded once) and the
    unrounded one, the allowance, the billable quantity and the per-device detail."""
    component, charge = resolved.component, resolved.charge
    assert component.meter is not None
    assert charge is not None
    included = component.included_per_device or Decimal(0)
    precise, billable_total, rows = Decimal(0), Decimal(0), []
    if measured is None:
        measured = aggregate(
            subscription_ids=[subscription.pk], meter=component.meter, period=period, group_by_device=True
        )
    for row in measured:
        devices = 1 if row.device_id in active_ids else 0
        billable, _ = apply_allowance(quantity=row.quantity, included_per_device=included, devices=devices)
        priced = price(
            charge=charge,
            usage=Usage(quantity=quantity_plain(billable), event_count=row.event_count),
            currency=currency,
        )
        precise += priced.precise_amount
        billable_total += billable
        rows.append(
            {
                "device_id": row.device_id,
                "quantity": decimal_str(quantity_plain(row.quantity)),
                "billable_quantity": decimal_str(quantity_plain(billable)),
                "amount": decimal_str(priced.precise_amount),
            }
        )
    if resolved.min_amount is not None and precise < resolved.min_amount:
        precise = resolved.min_amount
    elif resolved.max_amount is not None and precise > resolved.max_amount:
        precise = resolved.max_amount
    allowance = quantity_plain(included * len(active_ids))
    return DeviceUsage(round_minor(precise, currency), precise, allowance, quantity_plain(billable_total), rows)


# --- hardware and services -----------------------------------------------------------------------


def instalment_due(*, subscription: Subscription, trigger: datetime, period: Period, instalments: int) -> int | None:
    """Which instalment (1..N) of hardware billed from ``trigger`` falls on the billing date that
    closes ``period`` (its end): instalment k is billed on the k-th billing date after the trigger."""
    due = period.end
    current = subscription_period_at(subscription, at=trigger)
    k = 1
    while current.end < due and k <= instalments:
        current = subscription_period_at(subscription, at=current.end)
        k += 1
    return k if current.end == due and k <= instalments else None


def hardware_fee_lines(
    *,
    subscription: Subscription,
    devices: Sequence[DeviceRow],
    prices: Sequence[ResolvedPrice],
    period: Period,
    currency: str,
) -> list[DraftLine]:
    """The hardware instalments due on the billing date that closes ``period``, one line per
    component and instalment number: a device's instalment k falls on the k-th billing date after
    its trigger (signature, shipment or activation), and the last one absorbs the rounding
    remainder (``catalog.charge_models.instalment_amounts``)."""
    lines = []
    due_by_day: dict[tuple[date, int], int | None] = {}
    for r in prices:
        c = r.component
        if c.kind != ProductKind.HARDWARE or r.price is None:
            continue
        by_instalment: dict[int, list[str]] = defaultdict(list)
        for device in devices:
            trigger = {
                BillOn.SIGNATURE: device.added_at,
                BillOn.SHIPMENT: device.shipped_at,
                BillOn.ACTIVATION: device.activated_at,
            }.get(BillOn(c.bill_on))
            k = None
            if trigger is not None:
                # Devices triggered on the same local day share their instalment: compute it once.
                day = (local_date(trigger, subscription.customer.timezone), c.instalments)
                if day not in due_by_day:
                    due_by_day[day] = instalment_due(
                        subscription=subscription, trigger=trigger, period=period, instalments=c.instalments
                    )
                k = due_by_day[day]
                # An order's invoice billed the first instalment at signature, at once: the billing
                # dates after it bill the next ones (2 of 12 on the first, and so on).
                if k is not None and c.bill_on == BillOn.SIGNATURE and device.hardware_invoiced_by is not None:
                    k = k + 1 if k < c.instalments else None
            if k is not None:
                by_instalment[k].append(device.device_id)
        amounts = instalment_amounts(r.price, c.instalments, currency)
        for k, ids in sorted(by_instalment.items()):
            amount_each = amounts[k - 1]
            lines.append(
                DraftLine(
                    type=LineType.HARDWARE,
                    product_code=c.product.code,
                    product_name=c.product.name,
                    qualifiers={"instalment": k, "of": c.instalments} if c.instalments > 1 else {},
                    quantity=Decimal(len(ids)),
                    unit_amount=amount_each,
                    amount=round_minor(amount_each * len(ids), currency),
                    precise_amount=amount_each * len(ids),
                    tax_category=c.product.tax_category,
                    detail={"instalment": k, "instalments": c.instalments, "source": r.source},
                    subscription=subscription,
                    # A slot (ordered, no device bound yet) is counted, and has no id to list.
                    devices=tuple(i for i in ids if i),
                )
            )
    return lines


def service_fee_lines(
    *,
    subscription: Subscription,
    devices: Sequence[DeviceRow],
    period: Period,
    prices_now: Sequence[ResolvedPrice],
    prices_next: Sequence[ResolvedPrice],
    at: datetime,
    currency: str,
) -> list[DraftLine]:
    """The first days of the fees that started during ``period``, prorated (``first_days``); then the
    in-advance fees of the next period for the devices billable at ``at``, once the fee has started
    by the period's end (not before the subscription's start, nor during a trial)."""
    tz = subscription.customer.timezone
    lines: list[DraftLine] = []
    for r in prices_now:
        c = r.component
        if c.kind != ProductKind.SERVICE or r.charge is None:
            continue
        unit = price(charge=r.charge, usage=Usage(quantity=Decimal(1)), currency=currency).precise_amount
        started = first_days(subscription=subscription, component=c, devices=devices, period=period)
        # A fee that waits for the device cloud is an activation proration, as it always was; any
        # other is its first period's.
        source = ChargeSource.ACTIVATION if c.starts_on == StartsOn.ACTIVATION else ChargeSource.FIRST_PERIOD
        for p in activation_prorations(devices=started, period=period, unit_amount=unit, currency=currency, tz=tz):
            lines.append(
                DraftLine(
                    type=LineType.SERVICE,
                    product_code=c.product.code,
                    product_name=c.product.name,
                    # The local days of the proration, its end exclusive as the period's.
                    qualifiers={
                        "from": local_date(p.period_start, tz).isoformat(),
                        "to": local_date(p.period_end, tz).isoformat(),
                        "days": p.days,
                        "days_in_period": p.days_in_period,
                    },
                    quantity=Decimal(p.quantity),
                    unit_amount=unit,
                    amount=p.amount,
                    precise_amount=p.quantity * unit * p.fraction,
                    tax_category=c.product.tax_category,
                    detail={"days": p.days, "days_in_period": p.days_in_period, "fraction": str(p.fraction)},
                    subscription=subscription,
                    period=Period(p.period_start, p.period_end),
                    devices=p.devices if c.per_device else (),
                    source=source,
                )
            )
    end = subscription_end(subscription)
    if end is not None and end <= period.end:
        return lines  # cancelled, or not renewed: no period after the end is billed
    following = subscription_period_at(subscription, at=period.end)
    for r in prices_next:
        c = r.component
        if c.kind != ProductKind.SERVICE or r.charge is None:
            continue
        not_before = _fee_not_before(subscription, c)
        if not_before is not None and not_before > period.end:
            continue  # starts inside the next period: its first days are billed when it closes
        billable = [d.device_id for d in devices if device_is_billable(d, c, at)]
        if c.per_device:
            units = len(billable)
        else:
            units = 1 if billable or c.starts_on != StartsOn.ACTIVATION else 0
        if not units:
            continue
        priced = price(charge=r.charge, usage=Usage(quantity=Decimal(units)), currency=currency)
        lines.append(
            DraftLine(
                type=LineType.SERVICE,
                product_code=c.product.code,
                product_name=c.product.name,
                quantity=Decimal(units),
                unit_amount=priced.precise_amount / units,
                amount=priced.amount,
                precise_amount=priced.precise_amount,
                tax_category=c.product.tax_category,
                detail={**priced.details, "source": r.source},
                subscription=subscription,
                period=following,
                devices=tuple(billable) if c.per_device else (),
                source=ChargeSource.IN_ADVANCE,
            )
        )
    return lines


def _fee_not_before(subscription: Subscription, component: PlanComponent) -> datetime | None:
    """The instant before which a service fee bills nothing, whatever its devices: the end of the
    trial, and for a fee from the subscription's start, that start."""
    bounds = [b for b in (subscription.trial_ends_at,) if b is not None]
    if component.starts_on != StartsOn.ACTIVATION:
        bounds.append(subscription.starts_at)
    return max(bounds, default=None)


def _billed_in_advance(component: PlanComponent, base: datetime, trial_end: datetime | None, day: datetime) -> bool:
    """Was a fee from ``base`` (an activation, or the subscription's start) billed in advance by the
    invoice dated ``day`` (a local midnight)? Only if it had started by then: a device activated
    before that midnight (the invoice is composed as of the instant before), a subscription started
    by it, and the trial over."""
    started = base < day if component.starts_on == StartsOn.ACTIVATION else base <= day
    return started and (trial_end is None or trial_end <= day)


def first_days(
    *, subscription: Subscription, component: PlanComponent, devices: Sequence[DeviceRow], period: Period
) -> list[DeviceActivity]:
    """Who starts paying a service fee during ``period`` without the invoice of its start having
    billed the period in advance, and from when: the days the invoice that closes ``period`` bills,
    prorated (billing.md: proration by calendar days in the customer's zone).

    A fee starts at the device's activation (``starts_on: activation``) or at the subscription's
    start, for the devices it was signed with (a device added later is charged by its change); never
    before the trial ends. Per device, or once for the subscription for a fee that is not per device
    (from its first activation, when it waits for one). Signed on 15 November (Paris, billing day
    1), 30.00 per device: the 1 December invoice bills 15-30 November, 16/30 x 30.00 = 16.00, with
    December in advance; with a trial to 24 November, 24-30 November, 7/30 x 30.00 = 7.00."""
    trial_end = subscription.trial_ends_at
    activation = component.starts_on == StartsOn.ACTIVATION
    if component.per_device:
        bases = [
            (
                d.device_id,
                d.activated_at
                if activation
                else (subscription.starts_at if d.added_at <= subscription.signed_at else None),
                d.deactivated_at or d.removed_at,
            )
            for d in devices
            if d.device_id  # a slot starts paying once a device is bound to it
        ]
    else:
        first = min((d.activated_at for d in devices if d.activated_at is not None), default=None)
        bases = [("", first if activation else subscription.starts_at, None)]
    started = []
    for device_id, base, until in bases:
        if base is None:
            continue
        start = max(base, trial_end) if trial_end is not None else base
        if start in period and not _billed_in_advance(component, base, trial_end, period.start):
            started.append(DeviceActivity(device_id, start, until))
    return started


def one_time_fee_lines(
    *,
    subscription: Subscription,
    devices: Sequence[DeviceRow],
    prices: Sequence[ResolvedPrice],
    at: datetime,
    billed: Set[tuple[Any, Any, Any]],
    currency: str,
) -> list[DraftLine]:
    """The one-time fees (setup, activation fee) triggered by ``at`` that no invoice has billed yet
    (``billed``: ``subscriptions.ledger.one_time_fees_billed``), one line per fee: billed once, on
    the first invoice dated after its trigger (pricing.md). The trigger is the signature (``starts_on:
    subscription_start``; for a fee per device, the device joining the subscription) or the
    activation (each device's, or the subscription's first). A fee of 15.00 per device, A and B
    activated: 2 x 15.00 = 30.00."""
    lines = []
    for r in prices:
        c = r.component
        if c.kind != ProductKind.FEE or r.price is None:
            continue
        activation = c.starts_on == StartsOn.ACTIVATION
        if c.per_device:
            due = tuple(
                d.device_id
                for d in _one_per_device_id(devices)
                if _triggered(d.activated_at if activation else d.added_at, at)
                and (subscription.pk, c.pk, d.device_id) not in billed
            )
            quantity = len(due)
        else:
            due = ()
            first = min((d.activated_at for d in devices if d.activated_at is not None), default=None)
            trigger = first if activation else subscription.signed_at
            quantity = 1 if _triggered(trigger, at) and (subscription.pk, c.pk, None) not in billed else 0
        if not quantity:
            continue
        lines.append(
            DraftLine(
                type=LineType.FEE,
                product_code=c.product.code,
                product_name=c.product.name,
                quantity=Decimal(quantity),
                unit_amount=r.price,
                amount=round_minor(r.price * quantity, currency),
                precise_amount=r.price * quantity,
                tax_category=c.product.tax_category,
                detail={"source": r.source, "starts_on": c.starts_on, "per_device": c.per_device},
                subscription=subscription,
                devices=due,
                source=ChargeSource.ONE_TIME,
            )
        )
    return lines


def _triggered(trigger: datetime | None, at: datetime) -> bool:
    return trigger is not None and trigger <= at


def _one_per_device_id(devices: Sequence[DeviceRow]) -> list[DeviceRow]:
    """One row per device id, the live one over a removed one: a device removed from the
    subscription and added again is the same device, and pays its fee once."""
    rows = {d.device_id: d for d in sorted(devices, key=lambda d: (d.removed_at is None, d.removed_at or d.added_at))}
    return sorted(rows.values(), key=lambda d: d.device_id)


def usage_fee_line(
    *, subscription: Subscription, component: PlanComponent, usage: ComponentUsage, period: Period
) -> DraftLine:
    """The in-arrears usage line of ``period`` for one component, from its priced usage."""
    return DraftLine(
        type=LineType.USAGE,
        product_code=component.product.code,
        product_name=component.product.name,
        quantity=usage.billable_quantity,
        unit_amount=None,
        amount=usage.amount,
        precise_amount=usage.precise_amount,
        tax_category=component.product.tax_category,
        detail={"meter": usage.meter, "metered_quantity": decimal_str(usage.quantity), **usage.detail},
        subscription=subscription,
        period=period,
    )
