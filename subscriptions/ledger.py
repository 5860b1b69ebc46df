"""The charge ledger (``ServiceCharge``): what was charged or credited for a service period of a
subscription, per device, so that a change credits at most what was charged (pitfall #5).

``service_charges_record`` is the one writer of its rows: bill runs record the service fees they
invoice, changes their prorated charges and credits (which the next invoice bills).
``one_time_fees_record`` writes the one-time fees an invoice bills, and the database refuses a fee
billed twice; ``one_time_fees_billed`` reads which are, for the next invoice to leave them out.
``service_charges_release`` gives back what a voided invoice billed.
"""

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Case, UUIDField, Value, When

from billing_platform.periods import Period
from catalog.models import PlanComponent
from subscriptions.errors import OneTimeFeeAlreadyBilled
from subscriptions.models import ChargeKind, ChargeSource, Device, ServiceCharge, Subscription, SubscriptionChange


@dataclass(frozen=True, kw_only=True)
class LedgerEntry:
    """One row of the ledger, before it is written."""

    subscription: Subscription
    component: PlanComponent
    device_id: uuid.UUID | None  # the Device row; None for a fee that is not per device
    kind: str  # ChargeKind
    source: str  # ChargeSource
    period: Period  # the whole service period the fee is for
    covered: Period  # the part of it this entry covers (an activation proration covers the rest)
    amount: Decimal  # positive for both kinds: a credit is subtracted
    currency: str
    description: str = ""
    change: SubscriptionChange | None = None  # the change that made it, for a change's charge or credit
    invoiced_at: datetime | None = None
    invoiced_by: uuid.UUID | None = None  # the invoice that billed it


def charge_signed_amount(kind: str, amount: Decimal) -> Decimal:
    """An entry's effect on what the customer owes: amounts are positive for both kinds, and a
    credit subtracts (a 25.00 charge and a 12.10 credit leave 12.90)."""
    return -amount if kind == ChargeKind.CREDIT else amount


def charge_line_type(*, kind: str, source: str) -> str:
    """The type of the invoice line that bills a change's entries (one of
    ``invoicing.lines.LineType``'s values, which this app sits below): a credit is a ``credit``
    line, an early-termination charge or a one-time fee a ``fee``, any other charge a ``service``
    line. A change's lines are typed by it, and so are the lines of the invoice that bills them."""
    if kind == ChargeKind.CREDIT:
        return "credit"
    if source in (ChargeSource.EARLY_TERMINATION, ChargeSource.ONE_TIME):
        return "fee"
    return "service"


def _row(e: LedgerEntry) -> ServiceCharge:
    return ServiceCharge(
        tenant_id=e.subscription.tenant_id,
        subscription=e.subscription,
        component=e.component,
        device_id=e.device_id,
        kind=e.kind,
        source=e.source,
        period_start=e.period.start,
        period_end=e.period.end,
        covered_start=e.covered.start,
        covered_end=e.covered.end,
        amount=e.amount,
        currency=e.currency,
        description=e.description,
        change=e.change,
        invoiced_at=e.invoiced_at,
        invoiced_by=e.invoiced_by,
    )


def service_charges_record(entries: Iterable[LedgerEntry]) -> None:
    """Write ``entries`` in one insert, inside the caller's transaction. An in-advance, activation or
    first-period fee already in the ledger for its period (a retried or repeated bill run) is left as
    it is: ON CONFLICT DO NOTHING honours the partial unique index "charge once per period" (pitfall
    #1)."""
    ServiceCharge.objects.bulk_create([_row(e) for e in entries], ignore_conflicts=True)


def one_time_fees_record(entries: Iterable[LedgerEntry]) -> None:
    """Write the one-time fees an invoice bills, in one insert inside the caller's transaction. Unlike
    a period's fee, a conflict is not skipped: the invoice that bills a fee already billed (by an
    invoice of another date written meanwhile) must not be written, so ``OneTimeFeeAlreadyBilled``
    is raised and the caller's transaction rolls back. The next invoice is composed without it."""
    rows = [_row(e) for e in entries]
    if not rows:
        return
    try:
        with transaction.atomic():
            ServiceCharge.objects.bulk_create(rows)
    except IntegrityError as exc:
        if "one_time_fee_once" not in str(exc):
            raise
        raise OneTimeFeeAlreadyBilled("A one-time fee of this invoice was billed meanwhile.") from exc


def one_time_fees_billed(*, subscription_ids: Iterable[Any]) -> set[tuple[Any, Any, str | None]]:
    """The one-time fees of these subscriptions that an invoice (not voided) billed, as
    ``(subscription id, component id, the device's device_id or None)``: the next invoices leave
    them out. A device is known by its id, so one removed and added again is not billed twice."""
    ids = list(subscription_ids)
    if not ids:
        return set()
    return set(
        ServiceCharge.objects.filter(
            subscription_id__in=ids, source=ChargeSource.ONE_TIME, released_at__isnull=True
        ).values_list("subscription_id", "component_id", "device__device_id")
    )


def service_charges_invoiced(ids_by_invoice: Mapping[uuid.UUID, Iterable[int]], *, at: datetime) -> None:
    """Mark change entries as billed at ``at``, each by its invoice (``{invoice id: entry ids}``), in
    one statement."""
    owner = {pk: invoice_id for invoice_id, ids in ids_by_invoice.items() for pk in ids}
    if owner:
        ServiceCharge.objects.filter(pk__in=list(owner)).update(
            invoiced_at=at,
            invoiced_by=Case(
                *(When(pk=pk, then=Value(invoice_id)) for pk, invoice_id in owner.items()),
                output_field=UUIDField(),
            ),
        )


def service_charges_release(*, invoice_id: uuid.UUID, at: datetime) -> None:
    """What a voided invoice billed becomes billable again, for the invoice made in its place: its
    one-time fees are released (kept, with ``released_at``: the next invoice bills them once more,
    with a row of its own), and its change entries are pending again. The fees of its periods stay
    charged, as they are: the next invoice of that date bills them again from the subscription, and
    the ledger keeps the row it has (``service_charges_record``)."""
    # Hardware an order's invoice billed at signature is due again, on the next billing date.
    Device.objects.filter(hardware_invoiced_by=invoice_id).update(hardware_invoiced_by=None)
    billed = ServiceCharge.objects.filter(invoiced_by=invoice_id)
    billed.filter(source=ChargeSource.ONE_TIME, released_at__isnull=True).update(released_at=at)
    billed.filter(change__isnull=False).update(invoiced_at=None, invoiced_by=None)
