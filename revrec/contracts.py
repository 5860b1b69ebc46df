"""A subscription's contract (specs/revrec.md): its fixed consideration, allocated by standalone
selling price to one performance obligation per contract line and device, kept in step with the
subscription's life by ``contracts_sync``.

- Prices are the plan's as of the signature (``catalog.versions.PriceBook``: the customer's
  overrides, a region book, a price-locked version), in the customer's currency.
- Fixed consideration: hardware prices + one-time fees + recurring fees x committed periods, per
  device. Usage is variable consideration: no obligation here, each usage period's amount belongs to
  that period.
- SSP per product and currency from ``catalog.models.ProductSsp``; a line's weight is
  SSP x devices x committed periods, and a line shared by several devices is split per device
  (``revrec.allocation``).
- Dates, in the customer's time zone: hardware is recognized on the day control passes (the
  tenant's ``hardware_control_transfer``: the device's shipment or activation), a per-device service
  ratably over the device's committed term from its activation, one-time fees on the day of the
  device's activation (a shared one: the subscription's first activation). A device not yet
  activated (or shipped) has no dates yet: its recognition waits.

``contracts_sync`` runs before every recognition run: it builds the contracts nobody asked for yet,
dates the obligations whose device was activated (or shipped) since, in one statement, and applies
the modifications made since (``revrec.modifications``). With nothing new it costs the same few
queries whatever the number of contracts.
"""

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Exists, OuterRef

from billing_platform.errors import DomainError
from billing_platform.money import round_minor
from catalog.charge_models.base import Usage
from catalog.charge_models.pricing import price
from catalog.models import INTERVAL_MONTHS, Interval, Plan, PlanComponent, ProductKind, ProductSsp, StartsOn
from catalog.versions import PriceBook, customer_price_book, customers_partners_load
from revrec.allocation import SspLine, device_shares, transaction_price_allocate
from revrec.errors import DevicesNotShipped, NoCommittedTerm, NoStandaloneSellingPrice
from revrec.models import (
    Contract,
    ControlTransfer,
    ObligationKind,
    Pattern,
    PerformanceObligation,
    RevrecSettings,
)
from revrec.schedules import committed_term_end, local_day
from subscriptions.models import Device, Subscription

logger = logging.getLogger(__name__)

# Subscriptions built per batch by a sync: one price book, one read of devices, two inserts each.
BUILD_BATCH = 1000


@dataclass(frozen=True)
class _Line:
    """A contract line before allocation: its product, unit price and SSP, and the devices sharing
    it (one obligation each; ``("",)`` for a line shared by the whole subscription)."""

    kind: str
    product_code: str
    unit_price: Decimal
    ssp: Decimal
    devices: tuple[str, ...]
    periods: int
    starts_on: str  # the component's: activation or subscription start (services)

    @property
    def per_device(self) -> bool:
        return self.devices != ("",)


def committed_periods(plan: Plan) -> int:
    """The plan's committed term in its own billing periods: 12 months of a monthly plan -> 12."""
    return plan.commitment_months // INTERVAL_MONTHS[Interval(plan.interval)]


def control_transfer_of(tenant_id: Any) -> str:
    setting = RevrecSettings.objects.filter(tenant_id=tenant_id).values_list("hardware_control_transfer", flat=True)
    return next(iter(setting), ControlTransfer.ACTIVATION)


def ssps_of(*, tenant_id: Any, currencies: Iterable[str]) -> dict[tuple[str, str], Decimal]:
    """The tenant's standalone selling prices by (currency, product code)."""
    return {
        (ssp.currency, ssp.product.code): ssp.amount.amount
        for ssp in ProductSsp.objects.filter(tenant_id=tenant_id, currency__in=set(currencies)).select_related(
            "product"
        )
    }


def plan_lines(
    *,
    subscription: Subscription,
    plan: Plan,
    at: datetime,
    book: PriceBook,
    ssps: Mapping[tuple[str, str], Decimal],
    device_ids: Sequence[str],
) -> list[_Line]:
    """The contract lines of ``plan`` for ``subscription`` and its devices ``device_ids``, priced as
    of ``at``. Raises ``NoCommittedTerm``, ``NoStandaloneSellingPrice`` or the catalog's
    ``NoPriceForCurrency``."""
    customer = subscription.customer
    currency = customer.currency
    if plan.commitment_months < 1:
        raise NoCommittedTerm(
            "Plan %s has no committed term: its recurring fees are no fixed consideration to allocate." % plan.code,
            extra={"plan": plan.code},
        )
    periods = committed_periods(plan)
    resolved = book.resolve(
        plan=plan,
        currency=currency,
        country=customer.country,
        at=at,
        customer_id=customer.pk,
        # The lock holds only on the plan it was sold with.
        locked=subscription if plan.pk == subscription.plan_id else None,
        price_book=customer_price_book(customer),
    )
    lines = []
    for r in resolved:
        c = r.component
        if c.kind == ProductKind.USAGE:
            continue
        if c.kind == ProductKind.SERVICE:
            if r.charge is None:
                continue
            unit = price(charge=r.charge, usage=Usage(quantity=Decimal(1)), currency=currency).precise_amount
            line_periods = periods
        else:
            if r.price is None:
                continue
            unit, line_periods = r.price, 1
        shared = c.kind != ProductKind.HARDWARE and not c.per_device
        code = c.product.code
        if (currency, code) not in ssps:
            raise NoStandaloneSellingPrice(
                "Product %s has no standalone selling price in %s." % (code, currency),
                extra={"product": code, "currency": currency},
            )
        lines.append(
            _Line(
                kind=c.kind,
                product_code=code,
                unit_price=unit,
                ssp=ssps[(currency, code)],
                devices=("",) if shared else tuple(device_ids),
                periods=line_periods,
                starts_on=c.starts_on,
            )
        )
    return lines


def _dates(
    *,
    line_kind: str,
    line_starts_on: str,
    device: Device | None,
    first_activation: datetime | None,
    subscription: Subscription,
    control_transfer: str,
    commitment_months: int,
) -> dict[str, date | None]:
    """The obligation's dates from what has happened so far (None where it has not yet)."""
    tz = subscription.customer.timezone
    if line_kind == ObligationKind.HARDWARE:
        assert device is not None
        at = device.shipped_at if control_transfer == ControlTransfer.SHIPMENT else device.activated_at
        return {"recognized_on": None if at is None else local_day(at, tz)}
    if line_kind == ObligationKind.FEE:
        at = first_activation if device is None else device.activated_at
        return {"recognized_on": None if at is None else local_day(at, tz)}
    if line_starts_on == StartsOn.SUBSCRIPTION_START:
        start_at: datetime | None = subscription.starts_at
    else:
        start_at = first_activation if device is None else device.activated_at
    if start_at is None:
        return {"starts_on": None, "ends_on": None}
    start = local_day(start_at, tz)
    return {"starts_on": start, "ends_on": committed_term_end(start, commitment_months)}


@dataclass
class _Built:
    contracts: list[Contract] = field(default_factory=list)
    obligations: list[PerformanceObligation] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def _contracts_build(
    subscriptions: Sequence[Subscription], *, at: datetime, control_transfer: str, raise_errors: bool
) -> _Built:
    """The contracts of ``subscriptions`` (loaded with their customer, plan and its components) and
    their obligations, in memory: one read of devices, one price book and one of SSPs for all. A
    subscription that cannot have a contract is counted in ``skipped`` by the error's code (or the
    error raised, with ``raise_errors``)."""
    built = _Built()
    if not subscriptions:
        return built
    tenant_id = subscriptions[0].tenant_id
    devices: dict[Any, list[Device]] = {s.pk: [] for s in subscriptions}
    for device in Device.objects.filter(subscription_id__in=list(devices), removed_at__isnull=True).order_by(
        "added_at", "device_id"
    ):
        devices[device.subscription_id].append(device)
    currencies = {s.customer.currency for s in subscriptions}
    customers_partners_load(s.customer for s in subscriptions)
    book = PriceBook.load(
        plan_ids={s.plan_id for s in subscriptions},
        currencies=currencies,
        customer_ids={s.customer_id for s in subscriptions},
    )
    ssps = ssps_of(tenant_id=tenant_id, currencies=currencies)
    for subscription in subscriptions:
        live = devices[subscription.pk]
        try:
            if any(not d.device_id for d in live):
                raise DevicesNotShipped(
                    "Subscription %s has devices ordered and not shipped yet." % subscription.external_id
                )
            lines = plan_lines(
                subscription=subscription,
                plan=subscription.plan,
                at=subscription.signed_at,
                book=book,
                ssps=ssps,
                device_ids=[d.device_id for d in live],
            )
            if not lines:
                raise NoStandaloneSellingPrice(
                    "Plan %s has no priced line to allocate to." % subscription.plan.code,
                    code="no_contract_line",
                    extra={"plan": subscription.plan.code},
                )
        except DomainError as error:
            if raise_errors:
                raise
            built.skipped[error.code] += 1
            logger.info("no contract for subscription %s: %s", subscription.pk, error.detail)
            continue
        _contract_add(built, subscription, live, lines, at=at, control_transfer=control_transfer)
    return built


def _contract_add(
    built: _Built,
    subscription: Subscription,
    devices: list[Device],
    lines: list[_Line],
    *,
    at: datetime,
    control_transfer: str,
) -> None:
    currency = subscription.customer.currency
    by_id = {d.device_id: d for d in devices}
    first_activation = min((d.activated_at for d in devices if d.activated_at is not None), default=None)
    commitment_months = subscription.plan.commitment_months
    transaction_price = round_minor(
        sum((line.unit_price * len(line.devices) * line.periods for line in lines), Decimal(0)), currency
    )
    allocated = transaction_price_allocate(
        transaction_price=transaction_price,
        lines=[SspLine(ssp=line.ssp, quantity=Decimal(len(line.devices)), periods=line.periods) for line in lines],
        currency=currency,
    )
    contract = Contract(
        tenant_id=subscription.tenant_id,
        subscription=subscription,
        plan_id=subscription.plan_id,
        currency=currency,
        transaction_price=transaction_price,
        created_at=at,
    )
    built.contracts.append(contract)
    for line, amount in zip(lines, allocated, strict=True):
        shares = device_shares(amount, devices=len(line.devices), currency=currency)
        for device_id, share in zip(line.devices, shares, strict=True):
            ratable = line.kind == ObligationKind.SERVICE
            built.obligations.append(
                PerformanceObligation(
                    tenant_id=subscription.tenant_id,
                    contract=contract,
                    kind=line.kind,
                    product_code=line.product_code,
                    device_id=device_id,
                    currency=currency,
                    allocated=share,
                    pattern=Pattern.RATABLE if ratable else Pattern.POINT_IN_TIME,
                    **_dates(
                        line_kind=line.kind,
                        line_starts_on=line.starts_on,
                        device=by_id.get(device_id),
                        first_activation=first_activation,
                        subscription=subscription,
                        control_transfer=control_transfer,
                        commitment_months=commitment_months,
                    ),
                )
            )


def _built_write(built: _Built) -> int:
    """Insert what ``_contracts_build`` made; a contract made meanwhile by another sync wins (its
    subscription is unique), and the obligations of ours are then dropped. Returns how many were
    inserted."""
    if not built.contracts:
        return 0
    Contract.objects.bulk_create(built.contracts, ignore_conflicts=True)
    inserted = set(Contract.objects.filter(pk__in=[c.pk for c in built.contracts]).values_list("pk", flat=True))
    PerformanceObligation.objects.bulk_create(
        [o for o in built.obligations if o.contract_id in inserted], batch_size=5000
    )
    return len(inserted)


# The dates of obligations still waiting for their device, from what the devices did since: hardware
# when control passed (shipment or activation, per the tenant's setting), a per-device fee or service
# at the device's activation, a shared one at the subscription's first activation; days in the
# customer's time zone, a service's term its plan's committed months (PostgreSQL clamps 31 Jan +
# 1 month to 28 Feb, as ``committed_term_end`` does). Usage obligations are dated when made.
_DATE = """
due AS (
    SELECT o.id, o.pattern, p.commitment_months AS months,
        (CASE
            WHEN o.device_id = '' THEN fa.at
            WHEN o.kind = 'hardware' AND COALESCE(
                (SELECT r.hardware_control_transfer FROM revrec_revrecsettings r WHERE r.tenant_id = %(tenant)s),
                'activation'
            ) = 'shipment' THEN d.shipped_at
            ELSE d.activated_at
        END AT TIME ZONE cu.timezone)::date AS day
    FROM revrec_performanceobligation o
    JOIN revrec_contract c ON c.id = o.contract_id
    JOIN subscriptions_subscription s ON s.id = c.subscription_id
    JOIN customers_customer cu ON cu.id = s.customer_id
    JOIN catalog_plan p ON p.id = COALESCE(c.plan_id, s.plan_id)
    LEFT JOIN subscriptions_device d
        ON o.device_id <> '' AND d.subscription_id = s.id AND d.device_id = o.device_id AND d.removed_at IS NULL
    LEFT JOIN LATERAL (
        SELECT min(first.activated_at) AS at FROM subscriptions_device first
        WHERE first.subscription_id = s.id AND first.removed_at IS NULL
    ) fa ON o.device_id = ''
    WHERE o.tenant_id = %(tenant)s AND o.starts_on IS NULL AND o.recognized_on IS NULL AND o.kind <> 'usage'
        AND (%(contract)s::uuid IS NULL OR o.contract_id = %(contract)s::uuid)
),
dated AS (
    UPDATE revrec_performanceobligation o SET
        recognized_on = CASE WHEN due.pattern = 'point_in_time' THEN due.day END,
        starts_on = CASE WHEN due.pattern = 'ratable' THEN due.day END,
        ends_on = CASE WHEN due.pattern = 'ratable' THEN (due.day + make_interval(months => due.months))::date END
    FROM due
    WHERE o.id = due.id AND due.day IS NOT NULL AND (due.pattern = 'point_in_time' OR due.months > 0)
    RETURNING o.id
)"""

_DATE_OBLIGATIONS = "WITH " + _DATE + " SELECT count(*) FROM dated"

# The sync's one statement when nothing is new: date what waits, count the subscriptions without a
# contract (those that can have one, and those that cannot, by reason), and find the contracts with
# a modification to apply (``revrec.modifications.PENDING_MODIFICATIONS``; it reads the obligations
# as they were before this statement dated some, which only widens what it finds).
_SYNC = (
    "WITH "
    + _DATE
    + """,
unbuilt AS (
    SELECT p.commitment_months >= 1 AS committed,
        EXISTS (
            SELECT 1 FROM catalog_plancomponent pc
            WHERE pc.plan_id = s.plan_id AND pc.kind <> 'usage' AND NOT EXISTS (
                SELECT 1 FROM catalog_productssp ssp
                WHERE ssp.product_id = pc.product_id AND ssp.currency = cu.currency
            )
        ) AS missing_ssp
    FROM subscriptions_subscription s
    JOIN catalog_plan p ON p.id = s.plan_id
    JOIN customers_customer cu ON cu.id = s.customer_id
    WHERE s.tenant_id = %(tenant)s AND NOT EXISTS (SELECT 1 FROM revrec_contract c WHERE c.subscription_id = s.id)
)
SELECT
    (SELECT count(*) FROM dated),
    (SELECT count(*) FROM unbuilt WHERE committed AND NOT missing_ssp),
    (SELECT count(*) FROM unbuilt WHERE NOT committed),
    (SELECT count(*) FROM unbuilt WHERE committed AND missing_ssp),
    ARRAY(%(pending)s)
"""
)


def obligations_date(*, tenant_id: Any, contract_id: Any = None) -> int:
    """Date the tenant's obligations (or one contract's) whose device was activated (or shipped)
    since, in one statement; returns how many were dated."""
    with connection.cursor() as cursor:
        cursor.execute(
            _DATE_OBLIGATIONS, {"tenant": tenant_id, "contract": None if contract_id is None else str(contract_id)}
        )
        return int(cursor.fetchone()[0])


def _subscriptions_for_build() -> Any:
    return Subscription.objects.select_related("customer", "plan").prefetch_related("plan__components__product")


@transaction.atomic
def contract_from_subscription(*, subscription: Subscription, at: datetime) -> Contract:
    """The subscription's contract, allocated and written with its obligations on first call; on
    later calls, the dates of obligations whose device was activated (or shipped) since."""
    locked = (
        _subscriptions_for_build()
        .select_for_update(of=("self",))
        .get(pk=subscription.pk, tenant_id=subscription.tenant_id)
    )
    control_transfer = control_transfer_of(locked.tenant_id)
    contract = Contract.objects.filter(subscription=locked).first()
    if contract is not None:
        obligations_date(tenant_id=locked.tenant_id, contract_id=contract.pk)
        return contract
    built = _contracts_build([locked], at=at, control_transfer=control_transfer, raise_errors=True)
    _built_write(built)
    return Contract.objects.get(subscription=locked)


@dataclass(frozen=True)
class SyncReport:
    """What a sync did: contracts built, subscriptions left without one (how many, by the reason's
    code: ``no_committed_term``, ``no_standalone_selling_price``, ``no_price_for_currency``...),
    obligations dated, modifications applied (by kind) and contracts whose modification failed."""

    built: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    dated: int = 0
    modifications: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)


def contracts_sync(*, tenant_id: Any, at: datetime) -> SyncReport:
    """Bring the tenant's contracts in step with its subscriptions as of ``at``: (a) build the
    contract of every subscription that has none (one that cannot have one is skipped and counted
    by reason, never blocking the others), (b) date the obligations whose device was activated (or
    shipped) since, set-based, and (c) apply the modifications made since (devices added, a plan
    changed, a termination: ``revrec.modifications``).

    With nothing new this is one statement, whatever the number of contracts."""
    from revrec.modifications import PENDING_MODIFICATIONS, contracts_modify  # they build on this module

    sql = _SYNC.replace("%(pending)s", PENDING_MODIFICATIONS)
    with connection.cursor() as cursor:
        cursor.execute(sql, {"tenant": tenant_id, "contract": None})
        dated, buildable, no_term, no_ssp, pending = cursor.fetchone()
    skipped: Counter[str] = Counter(no_committed_term=no_term, no_standalone_selling_price=no_ssp)
    built = 0
    if buildable:
        built, failed_builds = _contracts_sync_build(tenant_id=tenant_id, at=at)
        skipped.update(failed_builds)
        # A subscription that ended before its contract was made is terminated right away.
        with connection.cursor() as cursor:
            cursor.execute(sql, {"tenant": tenant_id, "contract": None})
            pending = cursor.fetchone()[4]
    applied, failed = contracts_modify(tenant_id=tenant_id, contract_ids=pending, at=at) if pending else ({}, {})
    if applied:
        dated += obligations_date(tenant_id=tenant_id)
    return SyncReport(built=built, skipped=dict(+skipped), dated=dated, modifications=applied, failed=failed)


def _contracts_sync_build(*, tenant_id: Any, at: datetime) -> tuple[int, Counter[str]]:
    """Build, by batches, the contracts of the tenant's subscriptions that can have one (committed,
    with an SSP for every product); returns how many were built and the others' reasons."""
    control_transfer = control_transfer_of(tenant_id)
    missing_ssp = Exists(
        PlanComponent.objects.filter(plan_id=OuterRef("plan_id"))
        .exclude(kind=ProductKind.USAGE)
        .filter(
            ~Exists(
                ProductSsp.objects.filter(
                    product_id=OuterRef("product_id"), currency=OuterRef(OuterRef("customer__currency"))
                )
            )
        )
    )
    buildable = (
        _subscriptions_for_build()
        .filter(~Exists(Contract.objects.filter(subscription=OuterRef("pk"))), tenant_id=tenant_id)
        .filter(~missing_ssp, plan__commitment_months__gte=1)
        .order_by("pk")
    )
    skipped: Counter[str] = Counter()
    built = 0
    last: Any = None
    while True:
        batch = list((buildable if last is None else buildable.filter(pk__gt=last))[:BUILD_BATCH])
        if not batch:
            break
        last = batch[-1].pk
        with transaction.atomic():
            made = _contracts_build(batch, at=at, control_transfer=control_transfer, raise_errors=False)
            built += _built_write(made)
        skipped.update(made.skipped)
    return built, skipped
