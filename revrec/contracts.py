"""A subscription's contract (specs/revrec.md): its fixed consideration, allocated by standalone
selling price to one performance obligation per contract line and device.

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

Building a contract twice does not allocate again: it fills the dates of obligations whose
device has been activated (or shipped) since.
"""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import transaction

from billing_platform.money import round_minor
from catalog.charge_models.base import Usage
from catalog.charge_models.pricing import price
from catalog.models import INTERVAL_MONTHS, Interval, ProductKind, ProductSsp, StartsOn
from catalog.versions import PriceBook
from revrec.allocation import SspLine, device_shares, transaction_price_allocate
from revrec.errors import NoCommittedTerm, NoStandaloneSellingPrice
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


def _control_transfer(tenant_id: Any) -> str:
    setting = RevrecSettings.objects.filter(tenant_id=tenant_id).values_list("hardware_control_transfer", flat=True)
    return next(iter(setting), ControlTransfer.ACTIVATION)


def _lines(subscription: Subscription, devices: list[Device]) -> list[_Line]:
    customer, plan = subscription.customer, subscription.plan
    currency = customer.currency
    if plan.commitment_months < 1:
        raise NoCommittedTerm(
            "Plan %s has no committed term: its recurring fees are no fixed consideration to allocate." % plan.code,
            extra={"plan": plan.code},
        )
    periods = plan.commitment_months // INTERVAL_MONTHS[Interval(plan.interval)]
    book = PriceBook.load(plan_ids=[plan.pk], currencies=[currency], customer_ids=[customer.pk])
    resolved = book.resolve(
        plan=plan,
        currency=currency,
        country=customer.country,
        at=subscription.signed_at,
        customer_id=customer.pk,
        locked=subscription,
    )
    ssps = {
        ssp.product.code: ssp.amount.amount
        for ssp in ProductSsp.objects.filter(
            tenant_id=subscription.tenant_id,
            currency=currency,
            product_id__in=[r.component.product_id for r in resolved],
        ).select_related("product")
    }
    device_ids = tuple(d.device_id for d in devices)
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
        if code not in ssps:
            raise NoStandaloneSellingPrice(
                "Product %s has no standalone selling price in %s." % (code, currency),
                extra={"product": code, "currency": currency},
            )
        lines.append(
            _Line(
                kind=c.kind,
                product_code=code,
                unit_price=unit,
                ssp=ssps[code],
                devices=("",) if shared else device_ids,
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


@transaction.atomic
def contract_from_subscription(*, subscription: Subscription, at: datetime) -> Contract:
    """The subscription's contract, allocated and written with its obligations on first call; on
    later calls, the dates of obligations whose device was activated (or shipped) since."""
    subscription = (
        Subscription.objects.select_related("customer", "plan")
        .select_for_update(of=("self",))
        .get(pk=subscription.pk, tenant_id=subscription.tenant_id)
    )
    devices = list(subscription.devices.filter(removed_at__isnull=True).order_by("added_at", "device_id"))
    by_id = {d.device_id: d for d in devices}
    activations = [d.activated_at for d in devices if d.activated_at is not None]
    first_activation = min(activations, default=None)
    control_transfer = _control_transfer(subscription.tenant_id)
    commitment_months = subscription.plan.commitment_months

    contract = Contract.objects.filter(subscription=subscription).first()
    if contract is not None:
        changed = []
        for obligation in contract.obligations.all():
            if obligation.recognized_on is not None or obligation.starts_on is not None:
                continue
            device = by_id.get(obligation.device_id)
            if obligation.device_id and device is None:
                continue  # removed before it was activated
            dates = _dates(
                line_kind=obligation.kind,
                line_starts_on=StartsOn.ACTIVATION,
                device=device,
                first_activation=first_activation,
                subscription=subscription,
                control_transfer=control_transfer,
                commitment_months=commitment_months,
            )
            if any(value is not None for value in dates.values()):
                for field, value in dates.items():
                    setattr(obligation, field, value)
                changed.append(obligation)
        PerformanceObligation.objects.bulk_update(changed, ["starts_on", "ends_on", "recognized_on"])
        return contract

    currency = subscription.customer.currency
    lines = _lines(subscription, devices)
    transaction_price = round_minor(
        sum((line.unit_price * len(line.devices) * line.periods for line in lines), Decimal(0)), currency
    )
    allocated = transaction_price_allocate(
        transaction_price=transaction_price,
        lines=[SspLine(ssp=line.ssp, quantity=Decimal(len(line.devices)), periods=line.periods) for line in lines],
        currency=currency,
    )
    contract = Contract.objects.create(
        tenant_id=subscription.tenant_id,
        subscription=subscription,
        currency=currency,
        transaction_price=transaction_price,
        created_at=at,
    )
    obligations = []
    for line, amount in zip(lines, allocated, strict=True):
        shares = device_shares(amount, devices=len(line.devices), currency=currency)
        for device_id, share in zip(line.devices, shares, strict=True):
            ratable = line.kind == ObligationKind.SERVICE
            obligations.append(
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
    PerformanceObligation.objects.bulk_create(obligations)
    return contract
