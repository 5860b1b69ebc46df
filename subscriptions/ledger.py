"""The charge ledger (``ServiceCharge``): what was charged or credited for a service period of a
subscription, per device, so that a change credits at most what was charged (pitfall #5).

``service_charges_record`` is the one writer of its rows: bill runs record the service fees they
invoice, changes their prorated charges and credits (which the next invoice bills).
"""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from billing_platform.periods import Period
from catalog.models import PlanComponent
from subscriptions.models import ChargeKind, ChargeSource, ServiceCharge, Subscription, SubscriptionChange


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


def charge_signed_amount(kind: str, amount: Decimal) -> Decimal:
    """An entry's effect on what the customer owes: amounts are positive for both kinds, and a
    credit subtracts (a 25.00 charge and a 12.10 credit leave 12.90)."""
    return -amount if kind == ChargeKind.CREDIT else amount


def charge_line_type(*, kind: str, source: str) -> str:
    """The type of the invoice line that bills a change's entries (one of
    ``invoicing.lines.LineType``'s values, which this app sits below): a credit is a ``credit``
    line, an early-termination charge a ``fee``, any other charge a ``service`` line. A change's
    lines are typed by it, and so are the lines of the invoice that bills them."""
    if kind == ChargeKind.CREDIT:
        return "credit"
    if source == ChargeSource.EARLY_TERMINATION:
        return "fee"
    return "service"


def service_charges_record(entries: Iterable[LedgerEntry]) -> None:
    """Write ``entries`` in one insert, inside the caller's transaction. An in-advance or activation
    fee already in the ledger for its period (a retried or repeated bill run) is left as it is: ON
    CONFLICT DO NOTHING honours the partial unique index "charge once per period" (pitfall #1)."""
    ServiceCharge.objects.bulk_create(
        [
            ServiceCharge(
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
            )
            for e in entries
        ],
        ignore_conflicts=True,
    )


def service_charges_invoiced(ids: Iterable[int], *, at: datetime) -> None:
    """Mark the change entries ``ids`` as billed by an invoice written at ``at``."""
    ids = list(ids)
    if ids:
        ServiceCharge.objects.filter(pk__in=ids).update(invoiced_at=at)
