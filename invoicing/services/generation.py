"""Invoice generation: the invoice of a customer for a billing date, written as a draft with its
lines, taxes and charge-ledger entries (or numbered and finalized at once by an auto-finalizing
bill run). ``invoice_lines_write`` is the one writer of invoice lines, credit notes' included."""

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from billing_platform.money import allocate
from billing_platform.periods import local_midnight
from catalog.models import ProductKind
from catalog.taxes import TaxLine
from customers.models import Customer
from invoicing.composition import BillingContext, Composition, billing_context_load, compose
from invoicing.lines import DraftLine
from invoicing.models import BillRun, Invoice, InvoiceKind, InvoiceLine, InvoiceStatus, InvoiceTax, InvoicingSettings
from invoicing.services.lifecycle import invoices_finalize_locked
from subscriptions.ledger import (
    LedgerEntry,
    one_time_fees_record,
    service_charges_invoiced,
    service_charges_record,
)
from subscriptions.models import ChargeKind, ChargeSource
from subscriptions.periods import subscription_period_at
from tenancy.actors import Actor


def invoice_generate(
    *,
    customer: Customer,
    billing_date: date,
    at: datetime,
    bill_run: BillRun | None = None,
    context: BillingContext | None = None,
) -> Invoice | None:
    """The one invoice of ``customer`` dated ``billing_date``, created as a draft; ``None`` when there
    is nothing to bill. Idempotent: an existing invoice for that date is returned untouched (the
    database refuses a second one, so two workers cannot both create it). ``context`` is what
    ``billing_context_load`` read for a set of customers including this one (read here if not given)."""
    if context is None:
        context = billing_context_load(tenant=customer.tenant, customers=[customer], billing_date=billing_date)
    existing = context.existing.get(customer.pk)
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return _invoice_create(customer=customer, context=context, at=at, bill_run=bill_run)
    except IntegrityError:
        # Another worker created it first: use that one.
        return invoice_dated(customer, billing_date)


def invoice_dated(customer: Customer, billing_date: date) -> Invoice | None:
    """The customer's invoice (not void) dated ``billing_date``, if there is one."""
    return (
        Invoice.objects.filter(customer=customer, issue_date=billing_date, kind=InvoiceKind.INVOICE, order__isnull=True)
        .exclude(status=InvoiceStatus.VOID)
        .first()
    )


def _invoice_create(
    *, customer: Customer, context: BillingContext, at: datetime, bill_run: BillRun | None
) -> Invoice | None:
    """Compose and write one invoice, inside the caller's transaction; ``None`` when there is nothing to bill."""
    composition = compose(customer=customer, billing_date=context.billing_date, context=context)
    if not composition.lines:
        return None
    [invoice] = invoices_write([composition], bill_run=bill_run, at=at)
    return invoice


def invoices_write(
    compositions: Sequence[Composition],
    *,
    bill_run: BillRun | None,
    at: datetime,
    finalize_with: InvoicingSettings | None = None,
    actor: Actor | None = None,
) -> list[Invoice]:
    """Write the invoices of ``compositions`` (one customer each, all dated the same day), their lines,
    taxes and charge-ledger entries: one statement per table, whatever their number, inside the
    caller's transaction. With ``finalize_with``, they are numbered and finalized as written."""
    invoices = [
        Invoice(
            tenant=c.customer.tenant,
            customer=c.customer,
            issue_date=c.billing_date,
            currency=c.customer.currency,
            language=c.customer.language,
            net_total=c.net_total,
            tax_total=c.tax_total,
            total=c.total,
            amount_due=c.total,
            bill_run=bill_run,
        )
        for c in compositions
    ]
    Invoice.objects.bulk_create(invoices)
    invoice_lines_write({invoice: c.lines for invoice, c in zip(invoices, compositions, strict=True)})
    invoice_taxes_write({invoice: c.taxes for invoice, c in zip(invoices, compositions, strict=True)})
    _ledger_record(list(zip(invoices, compositions, strict=True)), at)
    if finalize_with is not None and invoices:
        # Numbers are taken last, so the sequence row stays locked only until the batch commits.
        invoices_finalize_locked(invoices, settings=finalize_with, actor=actor or Actor.system("bill run"), at=at)
    return invoices


def invoice_lines_write(lines: Mapping[Invoice, Sequence[DraftLine]]) -> None:
    """Write the lines of each invoice (``{invoice: its lines}``), numbered in order: one insert for
    all of them, inside the caller's transaction."""
    InvoiceLine.objects.bulk_create(
        [
            InvoiceLine(
                tenant=invoice.tenant,
                invoice=invoice,
                position=i,
                type=x.type,
                product=x.product_code,
                description=x.product_name[:300],
                qualifiers=_jsonable(x.qualifiers),
                subscription=x.subscription,
                period_start=x.period.start if x.period is not None else None,
                period_end=x.period.end if x.period is not None else None,
                quantity=x.quantity,
                unit_amount=x.unit_amount,
                amount=x.amount,
                precise_amount=_precise(x.precise_amount),
                tax_category=x.tax_category,
                vat_category=x.vat_category,
                devices=list(x.devices),
                detail=_jsonable(x.detail),
                adjustment=x.adjustment,
                source=x.source,
            )
            for invoice, invoice_lines in lines.items()
            for i, x in enumerate(invoice_lines)
        ]
    )


# The places of ``InvoiceLine.precise_amount``, as many as a unit price keeps.
_PRECISE_QUANTUM = Decimal(1).scaleb(-settings.UNIT_PRICE_DECIMAL_PLACES)


def _precise(value: Decimal | None) -> Decimal | None:
    """An unrounded amount as stored: 25.00 x 17/31 = 13.709677419354838... -> 13.7096774194."""
    return None if value is None else value.quantize(_PRECISE_QUANTUM, rounding=ROUND_HALF_UP)


def invoice_taxes_write(taxes: Mapping[Invoice, Sequence[TaxLine]]) -> None:
    """Write the tax lines of each invoice (``{invoice: its taxes}``): one insert for all of them."""
    InvoiceTax.objects.bulk_create(
        [
            InvoiceTax(
                tenant=invoice.tenant,
                invoice=invoice,
                category=t.category,
                vat_category=t.vat_category,
                exemption_reason_code=t.exemption_reason_code,
                exemption_reason=t.exemption_reason,
                rate=t.rate,
                base=t.base,
                amount=t.amount,
            )
            for invoice, invoice_taxes in taxes.items()
            for t in invoice_taxes
        ]
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal | datetime | date):
        return str(value)
    return value


# The fees a bill run records in the charge ledger as it invoices them; change lines are there already.
LEDGER_FEES = (ChargeSource.IN_ADVANCE, ChargeSource.ACTIVATION, ChargeSource.FIRST_PERIOD)


def _ledger_record(written: Sequence[tuple[Invoice, Composition]], at: datetime) -> None:
    """Service fees billed go to the subscription's charge ledger (so later changes credit at most
    what was charged), one-time fees too (so that no other invoice bills them again), and pending
    change entries are marked invoiced; each row keeps the invoice that billed it. One insert for
    all the invoices; a service fee already in the ledger for that period (a retried run) is left as
    it is, while a one-time fee billed meanwhile by another invoice refuses the whole write
    (``OneTimeFeeAlreadyBilled``)."""
    service_charges_invoiced({i.pk: [pk for line in c.lines for pk in line.charge_ids] for i, c in written}, at=at)
    lines = [
        (invoice, c, line)
        for invoice, c in written
        for line in c.lines
        if line.subscription is not None
        and (
            (line.source in LEDGER_FEES and line.devices and line.period is not None)
            or line.source == ChargeSource.ONE_TIME
        )
    ]
    if not lines:
        return
    # The subscriptions come from the billing context, their plan's components and devices loaded.
    subscriptions = {line.subscription.pk: line.subscription for _, _, line in lines if line.subscription is not None}
    devices_of = {pk: rows for _, c in written for pk, rows in c.devices.items()}
    components = {
        (s.plan_id, c.product.code, c.kind): c
        for s in subscriptions.values()
        for c in s.plan.components.all()
        if c.kind in (ProductKind.SERVICE, ProductKind.FEE)
    }
    # Live devices last (None removed_at sorts last), so they win over a removed device of the same id.
    devices = {
        (d.subscription_id, d.device_id): d.pk
        for pk in subscriptions
        for d in sorted(devices_of[pk], key=lambda d: (d.removed_at is None, d.removed_at or d.added_at))
    }
    entries: list[LedgerEntry] = []
    fees: list[LedgerEntry] = []
    for invoice, composition, line in lines:
        subscription = line.subscription
        assert subscription is not None
        assert line.source is not None
        currency = composition.customer.currency
        one_time = line.source == ChargeSource.ONE_TIME
        kind = ProductKind.FEE if one_time else ProductKind.SERVICE
        component = components.get((subscription.plan_id, line.product_code, kind))
        if component is None:
            continue
        if one_time:
            # A one-time fee has no service period: it is kept with the period its invoice closes.
            due = local_midnight(composition.billing_date, composition.customer.timezone)
            whole = covered = subscription_period_at(subscription, at=due - timedelta(microseconds=1))
        else:
            assert line.period is not None
            covered = line.period
            # The ledger keys a fee by its whole service period; a proration covers part of it.
            whole = subscription_period_at(subscription, at=covered.start)
        payers: list[uuid.UUID | None] = [devices.get((subscription.pk, d)) for d in line.devices] or [None]
        shares = allocate(line.amount, [Decimal(1)] * len(payers), currency)
        for device_pk, share in zip(payers, shares, strict=True):
            (fees if one_time else entries).append(
                LedgerEntry(
                    subscription=subscription,
                    component=component,
                    device_id=device_pk,
                    kind=ChargeKind.CHARGE,
                    source=line.source,
                    period=whole,
                    covered=covered,
                    amount=share,
                    currency=currency,
                    invoiced_at=at,
                    invoiced_by=invoice.pk,
                )
            )
    service_charges_record(entries)
    one_time_fees_record(fees)
