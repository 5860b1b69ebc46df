"""Contract modifications, applied prospectively (specs/revrec.md): devices added mid-term, a change
of plan, a termination (the whole subscription ended before its committed end, or devices removed
from it). Each is found from the subscription's state, not from a feed of events, so that it is
applied once however often the sync runs, and recorded as a ``ContractModification``.

At a modification's day M (the customer's local day), every obligation of the contract is one of:

- **done**: a service term that ended by M, hardware or a fee recognized by M: never touched;
- **split**: a service running across M. Its row keeps what it recognizes up to M,
  round(allocated x elapsed days / term days) (or what runs already recognized, if more) and ends
  on M; what it does not keep goes back to the pool and, if the service goes on, a new row from M
  to the term's end receives its re-allocated share (its weight: SSP x committed periods x the
  part of the term left);
- **waiting**: a device not yet activated (or shipped), a term starting on or after M. Its whole
  allocation (less anything recognized) goes back to the pool and it receives its share in place.

Devices added and a plan change re-allocate the pool plus the new consideration over the remaining
obligations (waiting, the new rows of split ones, the new devices' or products' ones) by their SSP
weights, largest remainder to the cent. A termination stops the services at M: what they did not
recognize leaves the transaction price with them (the customer no longer owes it), and an early
termination fee, as billed (``subscriptions.changes``), is new consideration recognized that day.

Past months are never changed: the monthly run recognizes the difference to date in the open
period. The contract's transaction price always equals the sum of its obligations' allocations
(usage, variable consideration, apart).
"""

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import DecimalField, Sum, Value
from django.db.models.functions import Coalesce

from billing_platform.errors import DomainError, InvalidInput
from billing_platform.money import allocate, round_minor
from catalog.models import INTERVAL_MONTHS, Interval, Plan, StartsOn
from catalog.versions import PriceBook
from revrec.contracts import _dates, control_transfer_of, plan_lines, ssps_of
from revrec.errors import NoStandaloneSellingPrice
from revrec.models import (
    Contract,
    ContractModification,
    ModificationKind,
    ObligationKind,
    Pattern,
    PerformanceObligation,
)
from revrec.schedules import committed_term_end, local_day
from subscriptions.models import (
    ChangeAction,
    ChangeStatus,
    ChargeKind,
    ChargeSource,
    Device,
    ServiceCharge,
    Subscription,
    SubscriptionChange,
)

logger = logging.getLogger(__name__)

# The product code of the obligation an early termination fee makes.
EARLY_TERMINATION = "early-termination"


class ModificationNotApplicable(InvalidInput):
    """A modification that cannot be applied as it stands (a remaining consideration below zero, an
    obligation already recognized past the modification's day): reported by the sync, retried at
    the next one."""

    code = "modification_not_applicable"


# --- detection: which contracts have something to apply, in one query -------------------------------

# A contract on another plan than its subscription's (a contract with no plan recorded is taken to
# be on its subscription's); a live device added after the contract was
# made with no obligation yet (nor in an earlier modification, for a plan with no per-device line);
# a service still running (or waiting for its device) after the subscription ended, or after its
# device was removed (and not added back). Part of the sync's statement (``contracts_sync``).
PENDING_MODIFICATIONS = """
SELECT c.id FROM revrec_contract c JOIN subscriptions_subscription s ON s.id = c.subscription_id
WHERE c.tenant_id = %(tenant)s AND c.plan_id <> s.plan_id
UNION
SELECT c.id FROM revrec_contract c
JOIN subscriptions_device d
    ON d.subscription_id = c.subscription_id AND d.removed_at IS NULL AND d.added_at > c.created_at
WHERE c.tenant_id = %(tenant)s
    AND NOT EXISTS (
        SELECT 1 FROM revrec_performanceobligation o WHERE o.contract_id = c.id AND o.device_id = d.device_id
    )
    AND NOT EXISTS (
        SELECT 1 FROM revrec_contractmodification m
        WHERE m.contract_id = c.id AND m.kind = 'added_devices'
            AND m.details -> 'devices' @> jsonb_build_array(d.device_id)
    )
UNION
SELECT o.contract_id FROM revrec_performanceobligation o
JOIN revrec_contract c ON c.id = o.contract_id
JOIN subscriptions_subscription s ON s.id = c.subscription_id
JOIN customers_customer cu ON cu.id = s.customer_id
WHERE o.tenant_id = %(tenant)s AND o.kind = 'service' AND s.ended_at IS NOT NULL
    AND (o.starts_on IS NULL OR o.ends_on > (s.ended_at AT TIME ZONE cu.timezone)::date)
UNION
SELECT o.contract_id FROM revrec_performanceobligation o
JOIN revrec_contract c ON c.id = o.contract_id
JOIN subscriptions_subscription s ON s.id = c.subscription_id
JOIN customers_customer cu ON cu.id = s.customer_id
JOIN subscriptions_device d ON d.subscription_id = s.id AND d.device_id = o.device_id AND d.removed_at IS NOT NULL
WHERE o.tenant_id = %(tenant)s AND o.kind = 'service' AND o.device_id <> ''
    AND (o.starts_on IS NULL OR o.ends_on > (d.removed_at AT TIME ZONE cu.timezone)::date)
    AND NOT EXISTS (
        SELECT 1 FROM subscriptions_device live
        WHERE live.subscription_id = s.id AND live.device_id = o.device_id AND live.removed_at IS NULL
    )
"""


def contracts_modify(
    *, tenant_id: Any, contract_ids: Iterable[Any], at: datetime
) -> tuple[dict[str, int], dict[str, int]]:
    """Apply every pending modification of the contracts ``contract_ids`` (``PENDING_MODIFICATIONS``
    finds them), each contract in its own savepoint: one that cannot be modified is logged and
    counted by the error's code, and the others go on. Returns (applied by kind, failed by code)."""
    applied: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for contract_id in sorted(contract_ids, key=str):
        try:
            with transaction.atomic():
                applied.update(m.kind for m in contract_modify(contract_id=contract_id, at=at))
        except DomainError as error:
            failed[error.code] += 1
            logger.warning("contract %s not modified: %s", contract_id, error.detail, extra={"tenant_id": tenant_id})
        except IntegrityError as error:  # a row the modification would add exists: a bug, not a reason to stop
            failed["integrity_error"] += 1
            logger.exception("contract %s not modified: %s", contract_id, error, extra={"tenant_id": tenant_id})
    return dict(applied), dict(failed)


# --- one contract ------------------------------------------------------------------------------------


@dataclass
class _Pending:
    day: date
    order: int  # same day: devices removed, plan changed, devices added, subscription ended
    kind: str
    devices: list[Device] = field(default_factory=list)
    plan: Plan | None = None
    whole: bool = False  # a termination of the whole subscription
    instant: datetime | None = None  # a plan change's: the new plan is priced as of then


@transaction.atomic
def contract_modify(*, contract_id: Any, at: datetime) -> list[ContractModification]:
    """Apply the contract's pending modifications in the order of their days, under a lock on the
    contract; those dated after ``at`` wait. Returns the modifications recorded."""
    contract = (
        Contract.objects.select_for_update(of=("self",))
        .select_related("subscription__customer", "subscription__plan", "plan")
        .get(pk=contract_id)
    )
    subscription = contract.subscription
    tz = subscription.customer.timezone
    today = local_day(at, tz)
    recorded = []
    for pending in sorted(_pending(contract, subscription, at), key=lambda p: (p.day, p.order)):
        if pending.day > today:
            continue
        rows = _rows(contract)
        if pending.kind == ModificationKind.ADDED_DEVICES:
            recorded.append(_devices_added(contract, subscription, rows, pending, at=at))
        elif pending.kind == ModificationKind.PLAN_CHANGE:
            assert pending.plan is not None
            recorded.append(_plan_changed(contract, subscription, rows, pending, at=at))
        else:
            recorded.append(_terminated(contract, subscription, rows, pending, at=at))
    return recorded


def _pending(contract: Contract, subscription: Subscription, at: datetime) -> list[_Pending]:
    tz = subscription.customer.timezone
    devices = list(Device.objects.filter(subscription=subscription).order_by("added_at", "device_id"))
    live = {d.device_id: d for d in devices if d.removed_at is None}
    services = list(
        PerformanceObligation.objects.filter(contract=contract, kind=ObligationKind.SERVICE).values_list(
            "device_id", "starts_on", "ends_on"
        )
    )
    pending: list[_Pending] = []

    def running_after(device_id: str | None, day: date) -> bool:
        return any(
            (device_id is None or d == device_id) and (start is None or end is None or end > day)
            for d, start, end in services
        )

    removed: dict[date, list[Device]] = defaultdict(list)
    for device in devices:
        if device.removed_at is not None and device.device_id not in live:
            day = local_day(device.removed_at, tz)
            if running_after(device.device_id, day):
                removed[day].append(device)
    pending += [_Pending(day, 0, ModificationKind.TERMINATION, devices=ds) for day, ds in removed.items()]

    if contract.plan_id is not None and contract.plan_id != subscription.plan_id:
        change = (
            SubscriptionChange.objects.filter(
                subscription=subscription, action=ChangeAction.CHANGE_PLAN, status=ChangeStatus.APPLIED
            )
            .order_by("-effective_at")
            .values_list("effective_at", flat=True)
            .first()
        )
        instant = change or at
        pending.append(
            _Pending(local_day(instant, tz), 1, ModificationKind.PLAN_CHANGE, plan=subscription.plan, instant=instant)
        )

    with_rows = set(PerformanceObligation.objects.filter(contract=contract).values_list("device_id", flat=True))
    announced = {
        device_id
        for details in ContractModification.objects.filter(
            contract=contract, kind=ModificationKind.ADDED_DEVICES
        ).values_list("details", flat=True)
        for device_id in details.get("devices", ())
    }
    added: dict[date, list[Device]] = defaultdict(list)
    for device in live.values():
        if device.added_at > contract.created_at and device.device_id not in with_rows | announced:
            added[local_day(device.added_at, tz)].append(device)
    pending += [_Pending(day, 2, ModificationKind.ADDED_DEVICES, devices=ds) for day, ds in added.items()]

    if subscription.ended_at is not None:
        day = local_day(subscription.ended_at, tz)
        if running_after(None, day):
            pending.append(_Pending(day, 3, ModificationKind.TERMINATION, whole=True))
    return pending


def _rows(contract: Contract) -> list[PerformanceObligation]:
    """The contract's obligations (usage apart) with ``recognized``, what runs recognized of each."""
    zero = Value(Decimal(0), output_field=DecimalField())
    return list(
        PerformanceObligation.objects.filter(contract=contract)
        .exclude(kind=ObligationKind.USAGE)
        .annotate(recognized=Coalesce(Sum("entries__amount"), zero))
        .order_by("id")
    )


# --- the arithmetic --------------------------------------------------------------------------------


@dataclass
class _Plan:
    """What a modification does to the contract's obligations, before it is written."""

    kept: dict[int, Decimal] = field(default_factory=dict)  # split rows: what they keep, ending on M
    deleted: list[int] = field(default_factory=list)  # waiting rows that stop, with nothing recognized
    targets: list[tuple[PerformanceObligation, Decimal]] = field(default_factory=list)  # (row, weight)
    fixed: list[PerformanceObligation] = field(default_factory=list)  # new rows with their own amount
    pool: Decimal = Decimal(0)  # what goes back to be allocated again
    released: Decimal = Decimal(0)  # what stopping services leave unrecognized


def _state(row: PerformanceObligation, day: date) -> str:
    recognized: Decimal = row.recognized  # type: ignore[attr-defined]
    if row.pattern == Pattern.POINT_IN_TIME:
        delivered = row.recognized_on is not None and row.recognized_on <= day
        return "done" if delivered or recognized > 0 else "waiting"
    if row.starts_on is None or row.starts_on >= day:
        return "waiting"
    assert row.ends_on is not None
    return "done" if row.ends_on <= day else "split"


def _kept(row: PerformanceObligation, day: date) -> Decimal:
    """What a ratable row keeps when it ends on ``day``: round(allocated x elapsed / term) — 294.54
    over 15 Mar 2026 - 15 Mar 2027 (365 days) ending 1 June (78 days) keeps 62.94 — or what runs
    recognized already, if more."""
    assert row.starts_on is not None
    assert row.ends_on is not None
    allocated = row.allocated.amount
    elapsed, total = (day - row.starts_on).days, (row.ends_on - row.starts_on).days
    kept = round_minor(allocated * elapsed / total, row.currency)
    return max(kept, row.recognized)  # type: ignore[attr-defined]


def _left(row: PerformanceObligation, day: date) -> Decimal:
    """The part of a ratable row's term after ``day`` (1 for a term not started)."""
    if row.starts_on is None or row.ends_on is None or row.starts_on >= day:
        return Decimal(1)
    return Decimal((row.ends_on - day).days) / Decimal((row.ends_on - row.starts_on).days)


def _successor(row: PerformanceObligation, day: date) -> PerformanceObligation:
    return PerformanceObligation(
        tenant_id=row.tenant_id,
        contract_id=row.contract_id,
        kind=row.kind,
        product_code=row.product_code,
        device_id=row.device_id,
        currency=row.currency,
        allocated=Decimal(0),
        pattern=row.pattern,
        starts_on=day,
        ends_on=row.ends_on,
    )


def _stop(plan: _Plan, row: PerformanceObligation, day: date) -> None:
    """A service that stops on ``day``: it keeps what it recognized up to then, the rest is released."""
    state = _state(row, day)
    if state == "split":
        kept = _kept(row, day)
        plan.kept[row.pk] = kept
        plan.released += row.allocated.amount - kept
    elif state == "waiting":
        if row.recognized > 0:  # type: ignore[attr-defined]
            raise ModificationNotApplicable(
                "Obligation %s was recognized after %s, the day it stops." % (row.pk, day.isoformat())
            )
        plan.deleted.append(row.pk)
        plan.released += row.allocated.amount


def _continue(
    plan: _Plan, row: PerformanceObligation, day: date, weight: Callable[[PerformanceObligation], Decimal]
) -> None:
    """A remaining obligation: its unrecognized part goes back to the pool and it (or, for a split
    service, its new row from ``day``) is weighted for the new allocation. ``weight`` gives
    its SSP weight over a whole term (SSP x committed periods; SSP for a point in time)."""
    state = _state(row, day)
    if state == "done":
        return
    weight_per_term = weight(row)
    if state == "split":
        kept = _kept(row, day)
        plan.kept[row.pk] = kept
        plan.pool += row.allocated.amount - kept
        plan.targets.append((_successor(row, day), weight_per_term * _left(row, day)))
    else:
        plan.pool += row.allocated.amount - row.recognized  # type: ignore[attr-defined]
        plan.targets.append((row, weight_per_term))


def _write(
    contract: Contract,
    plan: _Plan,
    *,
    kind: str,
    day: date,
    consideration: Decimal,
    details: dict[str, Any],
    at: datetime,
) -> ContractModification:
    """Allocate the pool plus the new consideration over the targets by weight, write the rows and
    the new transaction price, and record the modification."""
    currency = contract.currency
    total = plan.pool + consideration
    if total < 0:
        raise ModificationNotApplicable(
            "The remaining consideration of contract %s would be %s: below zero." % (contract.pk, total)
        )
    before = contract.transaction_price.amount
    after = before + consideration - plan.released + sum((r.allocated.amount for r in plan.fixed), Decimal(0))
    if plan.targets:
        shares = allocate(total, [w for _, w in plan.targets], currency)
    elif total != 0:
        raise ModificationNotApplicable("Contract %s has no obligation left to carry %s." % (contract.pk, total))
    else:
        shares = []
    ending = PerformanceObligation.objects.filter(pk__in=list(plan.kept)).order_by("pk")
    for row in ending:
        row.allocated = plan.kept[row.pk]
        row.ends_on = day
    PerformanceObligation.objects.bulk_update(list(ending), ["allocated", "ends_on"])
    PerformanceObligation.objects.filter(pk__in=plan.deleted).delete()
    in_place, new = [], list(plan.fixed)
    for (row, _), share in zip(plan.targets, shares, strict=True):
        if row.pk is None:
            row.allocated = share
            new.append(row)
        else:
            row.allocated = row.recognized + share  # type: ignore[attr-defined]
            in_place.append(row)
    PerformanceObligation.objects.bulk_update(in_place, ["allocated"])
    PerformanceObligation.objects.bulk_create(new)
    contract.transaction_price = after
    contract.save(update_fields=["transaction_price", "plan"])
    return ContractModification.objects.create(
        tenant_id=contract.tenant_id,
        contract=contract,
        kind=kind,
        effective_on=day,
        currency=currency,
        transaction_price_before=before,
        transaction_price_after=after,
        details=details,
        at=at,
    )


def _weights(
    contract: Contract, ssps: dict[tuple[str, str], Decimal], periods: Decimal
) -> Callable[[PerformanceObligation], Decimal]:
    def weight(row: PerformanceObligation) -> Decimal:
        ssp = ssps.get((contract.currency, row.product_code))
        if ssp is None:
            raise NoStandaloneSellingPrice(
                "Product %s has no standalone selling price in %s." % (row.product_code, contract.currency),
                extra={"product": row.product_code, "currency": contract.currency},
            )
        return ssp * periods if row.pattern == Pattern.RATABLE else ssp

    return weight


def _term_periods(plan: Plan, months: int) -> Decimal:
    """A term of ``months`` in ``plan``'s billing periods: 12 months of a quarterly plan -> 4."""
    return Decimal(months) / INTERVAL_MONTHS[Interval(plan.interval)]


# --- the three kinds ----------------------------------------------------------------------------------


def _devices_added(
    contract: Contract,
    subscription: Subscription,
    rows: Sequence[PerformanceObligation],
    pending: _Pending,
    *,
    at: datetime,
) -> ContractModification:
    """Devices added on M: each commits the plan's months from its own activation; the new
    consideration is their hardware prices + per-device fees x committed periods, at the prices in
    effect when they were added."""
    assert contract.plan is not None
    day, devices, plan_ = pending.day, pending.devices, contract.plan
    currency = contract.currency
    book = PriceBook.load(plan_ids=[plan_.pk], currencies=[currency], customer_ids=[subscription.customer_id])
    ssps = ssps_of(tenant_id=contract.tenant_id, currencies=[currency])
    lines = [
        line
        for line in plan_lines(
            subscription=subscription,
            plan=plan_,
            at=min(d.added_at for d in devices),
            book=book,
            ssps=ssps,
            device_ids=[d.device_id for d in devices],
        )
        if line.per_device
    ]
    consideration = round_minor(
        sum((line.unit_price * len(line.devices) * line.periods for line in lines), Decimal(0)), currency
    )
    weight = _weights(contract, ssps, _term_periods(plan_, plan_.commitment_months))
    plan = _Plan()
    for row in rows:
        _continue(plan, row, day, weight)
    control_transfer = control_transfer_of(contract.tenant_id)
    by_id = {d.device_id: d for d in devices}
    for line in lines:
        for device_id in line.devices:
            dates = _dates(
                line_kind=line.kind,
                line_starts_on=StartsOn.ACTIVATION,
                device=by_id[device_id],
                first_activation=None,
                subscription=subscription,
                control_transfer=control_transfer,
                commitment_months=plan_.commitment_months,
            )
            if line.kind == ObligationKind.SERVICE and line.starts_on == StartsOn.SUBSCRIPTION_START:
                # A fee billed from the subscription's start bills an added device from its addition.
                dates = {"starts_on": day, "ends_on": committed_term_end(day, plan_.commitment_months)}
            row = PerformanceObligation(
                tenant_id=contract.tenant_id,
                contract=contract,
                kind=line.kind,
                product_code=line.product_code,
                device_id=device_id,
                currency=currency,
                allocated=Decimal(0),
                pattern=Pattern.RATABLE if line.kind == ObligationKind.SERVICE else Pattern.POINT_IN_TIME,
                **dates,
            )
            plan.targets.append((row, line.ssp * line.periods))
    return _write(
        contract,
        plan,
        kind=ModificationKind.ADDED_DEVICES,
        day=day,
        consideration=consideration,
        details={"devices": sorted(by_id), "consideration": str(consideration)},
        at=at,
    )


def _plan_changed(
    contract: Contract,
    subscription: Subscription,
    rows: Sequence[PerformanceObligation],
    pending: _Pending,
    *,
    at: datetime,
) -> ContractModification:
    """The subscription moved to another plan on M: its services go on at the new plan's fees until
    the end of each device's committed term. The new consideration is, over the part of each term
    left, the new fees less the old ones (a downgrade's is negative); a service the new plan drops
    stops on M, one it adds starts on M. Hardware is not sold again."""
    old, new = contract.plan, pending.plan
    assert old is not None
    assert new is not None
    day, currency = pending.day, contract.currency
    book = PriceBook.load(plan_ids=[old.pk, new.pk], currencies=[currency], customer_ids=[subscription.customer_id])
    ssps = ssps_of(tenant_id=contract.tenant_id, currencies=[currency])
    live = list(subscription.devices.filter(removed_at__isnull=True).order_by("added_at", "device_id"))
    device_ids = [d.device_id for d in live]
    old_lines = plan_lines(
        subscription=subscription, plan=old, at=subscription.signed_at, book=book, ssps=ssps, device_ids=device_ids
    )
    new_lines = plan_lines(
        subscription=subscription,
        plan=new,
        at=max(pending.instant or at, subscription.signed_at),
        book=book,
        ssps=ssps,
        device_ids=device_ids,
    )
    old_services = {line.product_code: line for line in old_lines if line.kind == ObligationKind.SERVICE}
    new_services = {line.product_code: line for line in new_lines if line.kind == ObligationKind.SERVICE}
    months = old.commitment_months  # the committed terms running keep their end
    old_periods, new_periods = _term_periods(old, months), _term_periods(new, months)
    weight_old = _weights(contract, ssps, old_periods)
    weight_new = _weights(contract, ssps, new_periods)
    plan = _Plan()
    consideration = Decimal(0)
    terms: dict[str, PerformanceObligation] = {}  # a running service row per device, for added products
    for row in rows:
        if row.kind != ObligationKind.SERVICE:
            _continue(plan, row, day, weight_old)
            continue
        if _state(row, day) == "done":
            continue
        left = _left(row, day)
        terms.setdefault(row.device_id, row)
        old_line = old_services.get(row.product_code)
        if old_line is not None:
            consideration -= old_line.unit_price * old_periods * left
        new_line = new_services.get(row.product_code)
        if new_line is None:
            _stop(plan, row, day)
            # What stops is replaced by the new plan's fees, not lost: it is re-allocated.
            plan.pool += plan.released
            plan.released = Decimal(0)
        else:
            consideration += new_line.unit_price * new_periods * left
            _continue(plan, row, day, weight_new)
    for code, line in new_services.items():
        if code in old_services:
            continue
        for device_id in line.devices:
            term = terms.get(device_id) or next(iter(terms.values()), None)
            if term is None:
                continue  # every committed term is over: nothing left to sell
            row = PerformanceObligation(
                tenant_id=contract.tenant_id,
                contract=contract,
                kind=ObligationKind.SERVICE,
                product_code=code,
                device_id=device_id,
                currency=currency,
                allocated=Decimal(0),
                pattern=Pattern.RATABLE,
                starts_on=None if term.starts_on is None else max(term.starts_on, day),
                ends_on=term.ends_on,
            )
            left = _left(term, day)
            consideration += line.unit_price * new_periods * left
            plan.targets.append((row, line.ssp * new_periods * left))
    consideration = round_minor(consideration, currency)
    contract.plan = new
    return _write(
        contract,
        plan,
        kind=ModificationKind.PLAN_CHANGE,
        day=day,
        consideration=consideration,
        details={"from_plan": old.code, "to_plan": new.code, "consideration": str(consideration)},
        at=at,
    )


def _terminated(
    contract: Contract,
    subscription: Subscription,
    rows: Sequence[PerformanceObligation],
    pending: _Pending,
    *,
    at: datetime,
) -> ContractModification:
    """Services stop on M (every one when the subscription ended, the removed devices' otherwise);
    the part they did not recognize leaves the transaction price. A subscription ended early with an
    early termination fee has it as new consideration, a one-time obligation recognized on M."""
    day = pending.day
    stopping = None if pending.whole else {d.device_id for d in pending.devices}
    plan = _Plan()
    for row in rows:
        if row.kind == ObligationKind.SERVICE and (stopping is None or row.device_id in stopping):
            _stop(plan, row, day)
    fee = Decimal(0)
    if pending.whole:
        fee = ServiceCharge.objects.filter(
            subscription=subscription, kind=ChargeKind.CHARGE, source=ChargeSource.EARLY_TERMINATION
        ).aggregate(total=Coalesce(Sum("amount"), Value(Decimal(0), output_field=DecimalField())))["total"]
        fee = round_minor(fee, contract.currency)
    if fee > 0:
        plan.fixed.append(
            PerformanceObligation(
                tenant_id=contract.tenant_id,
                contract=contract,
                kind=ObligationKind.FEE,
                product_code=EARLY_TERMINATION,
                device_id="",
                currency=contract.currency,
                allocated=fee,
                pattern=Pattern.POINT_IN_TIME,
                recognized_on=day,
            )
        )
    details: dict[str, Any] = {
        "devices": "all" if stopping is None else sorted(stopping),
        "released": str(round_minor(plan.released, contract.currency)),
        "fee": str(fee),
    }
    return _write(
        contract, plan, kind=ModificationKind.TERMINATION, day=day, consideration=Decimal(0), details=details, at=at
    )
