"""Invoice writes: generation for a billing date, finalization with a gapless number, void, credit
notes; and bill runs, chunked by customer across Celery workers."""

import logging
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F

from billing_platform.errors import FieldError
from billing_platform.money import allocate, round_minor
from billing_platform.periods import clamp_day, local_midnight
from catalog.models import ProductKind
from customers.models import Customer
from invoicing.composition import BillingContext, Composition, billing_context_load, compose
from invoicing.errors import InvalidCreditNote, InvalidInvoiceTransition
from invoicing.models import (
    BillRun,
    BillRunCustomer,
    BillRunStatus,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
    InvoiceTax,
    InvoicingSettings,
)
from subscriptions.models import ChargeKind, ChargeSource, ServiceCharge, SubscriptionStatus
from subscriptions.periods import subscription_period_at
from tenancy.actors import Actor
from tenancy.models import AuditLogEntry, Tenant
from tenancy.services import audit_entry, audit_record

logger = logging.getLogger(__name__)
ST = InvoiceStatus
ALLOWED = {ST.DRAFT: {ST.FINALIZED, ST.VOID}, ST.FINALIZED: {ST.PAID, ST.VOID}, ST.PAID: set(), ST.VOID: set()}


# --- generation -------------------------------------------------------------------------------------


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
        return _invoice_dated(customer, billing_date)


def _invoice_dated(customer: Customer, billing_date: date) -> Invoice | None:
    return (
        Invoice.objects.filter(customer=customer, issue_date=billing_date, kind=InvoiceKind.INVOICE)
        .exclude(status=ST.VOID)
        .first()
    )


def _invoice_create(
    *, customer: Customer, context: BillingContext, at: datetime, bill_run: BillRun | None
) -> Invoice | None:
    """Compose and write one invoice, inside the caller's transaction; ``None`` when there is nothing to bill."""
    composition = compose(customer=customer, billing_date=context.billing_date, context=context)
    if not composition.lines:
        return None
    [invoice] = _invoices_write([composition], bill_run=bill_run, at=at)
    return invoice


def _invoices_write(
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
            tax_total=sum((t.amount for t in c.taxes), Decimal(0)),
            total=c.total,
            amount_due=c.total,
            bill_run=bill_run,
        )
        for c in compositions
    ]
    Invoice.objects.bulk_create(invoices)
    InvoiceLine.objects.bulk_create(
        [
            InvoiceLine(
                tenant=invoice.tenant,
                invoice=invoice,
                position=i,
                type=x.type,
                product=x.product,
                description=x.description[:300],
                subscription=x.subscription,
                period_start=x.period_start,
                period_end=x.period_end,
                quantity=x.quantity,
                unit_amount=x.unit_amount,
                amount=x.amount,
                tax_category=x.tax_category,
                devices=x.devices,
                detail=_jsonable(x.detail),
                adjustment=x.adjustment,
            )
            for invoice, c in zip(invoices, compositions, strict=True)
            for i, x in enumerate(c.lines)
        ]
    )
    InvoiceTax.objects.bulk_create(
        [
            InvoiceTax(
                tenant=invoice.tenant,
                invoice=invoice,
                category=t.category,
                rate=t.rate,
                base=t.base,
                amount=t.amount,
            )
            for invoice, c in zip(invoices, compositions, strict=True)
            for t in c.taxes
        ]
    )
    _record_charges(compositions, at)
    if finalize_with is not None and invoices:
        # Numbers are taken last, so the sequence row stays locked only until the batch commits.
        year = invoices[0].issue_date.year
        last = _next_number(invoices[0].tenant_id, InvoiceKind.INVOICE, year, count=len(invoices))
        for sequence, invoice in enumerate(invoices, start=last - len(invoices) + 1):
            invoice.number = "%s-%d-%06d" % (finalize_with.invoice_prefix, year, sequence)
            invoice.number_year, invoice.number_sequence = year, sequence
            invoice.status, invoice.finalized_at = ST.FINALIZED, at
        Invoice.objects.bulk_update(
            invoices, ["number", "number_year", "number_sequence", "status", "finalized_at"], batch_size=len(invoices)
        )
        _finalized(invoices, actor=actor or Actor.system("bill run"), at=at)
    return invoices


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal | datetime | date):
        return str(value)
    return value


def _record_charges(compositions: Sequence[Composition], at: datetime) -> None:
    """Service fees billed go to the subscription's charge ledger (so later changes credit at most
    what was charged), and pending change entries are marked invoiced. One insert for all the
    invoices; a fee already in the ledger for that period (a retried run) is left as it is."""
    pending = [pk for c in compositions for line in c.lines for pk in line.charge_ids]
    if pending:
        ServiceCharge.objects.filter(pk__in=pending).update(invoiced_at=at)
    lines = [
        (c.customer.currency, line)
        for c in compositions
        for line in c.lines
        if line.type == "service"
        and line.subscription is not None
        and not line.charge_ids
        and line.devices
        and line.period_start is not None
        and line.period_end is not None
    ]
    if not lines:
        return
    # The subscriptions come from the billing context, their plan's components and devices loaded.
    subscriptions = {line.subscription.pk: line.subscription for _, line in lines if line.subscription is not None}
    devices_of = {pk: rows for c in compositions for pk, rows in c.devices.items()}
    components = {
        (s.plan_id, c.product.code): c
        for s in subscriptions.values()
        for c in s.plan.components.all()
        if c.kind == ProductKind.SERVICE
    }
    # Live devices last (None removed_at sorts last), so they win over a removed device of the same id.
    devices = {
        (d.subscription_id, d.device_id): d.pk
        for pk in subscriptions
        for d in sorted(devices_of[pk], key=lambda d: (d.removed_at is None, d.removed_at or d.added_at))
    }
    rows = []
    for currency, line in lines:
        subscription = line.subscription
        assert subscription is not None
        assert line.period_start is not None
        assert line.period_end is not None
        component = components.get((subscription.plan_id, line.product))
        if component is None:
            continue
        shares = allocate(line.amount, [Decimal(1)] * len(line.devices), currency)
        source = ChargeSource.ACTIVATION if "days" in line.detail else ChargeSource.IN_ADVANCE
        # The ledger keys a fee by its whole service period; an activation proration covers part of it.
        whole = subscription_period_at(subscription, at=line.period_start)
        for device_id, share in zip(line.devices, shares, strict=True):
            rows.append(
                ServiceCharge(
                    tenant_id=subscription.tenant_id,
                    subscription=subscription,
                    component=component,
                    device_id=devices.get((subscription.pk, device_id)),
                    kind=ChargeKind.CHARGE,
                    source=source,
                    period_start=whole.start,
                    period_end=whole.end,
                    covered_start=line.period_start,
                    covered_end=line.period_end,
                    amount=share,
                    currency=currency,
                    invoiced_at=at,
                )
            )
    # ON CONFLICT DO NOTHING honours the partial unique index "charge once per period" (pitfall #1).
    ServiceCharge.objects.bulk_create(rows, ignore_conflicts=True)


# --- lifecycle ---------------------------------------------------------------------------------------


NEXT_NUMBER_SQL = """
INSERT INTO invoicing_invoicenumbersequence (tenant_id, series, year, last) VALUES (%(tenant)s, %(series)s, %(year)s,
    %(count)s)
ON CONFLICT (tenant_id, series, year) DO UPDATE SET last = invoicing_invoicenumbersequence.last + %(count)s
RETURNING last
"""


def _next_number(tenant_id: Any, series: str, year: int, *, count: int = 1) -> int:
    """The last of ``count`` consecutive numbers taken. Gapless: one statement takes them and locks
    the sequence row until the caller's transaction commits, so two finalizations never take the
    same number and a rolled-back one gives its numbers back."""
    with connection.cursor() as cursor:
        cursor.execute(NEXT_NUMBER_SQL, {"tenant": tenant_id, "series": series, "year": year, "count": count})
        (last,) = cursor.fetchone()
    return int(last)


def invoice_finalize(*, invoice: Invoice, actor: Actor, at: datetime) -> Invoice:
    settings, _ = InvoicingSettings.objects.get_or_create(tenant_id=invoice.tenant_id)
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        _check(invoice, ST.FINALIZED)
        _finalize_locked(invoice=invoice, settings=settings, actor=actor, at=at)
    return invoice


def _finalize_locked(*, invoice: Invoice, settings: InvoicingSettings, actor: Actor, at: datetime) -> None:
    """Number a draft the caller holds locked, record it, and render and send it once the
    transaction commits."""
    year = invoice.issue_date.year
    prefix = settings.invoice_prefix if invoice.kind == InvoiceKind.INVOICE else settings.credit_note_prefix
    sequence = _next_number(invoice.tenant_id, invoice.kind, year)
    invoice.number = "%s-%d-%06d" % (prefix, year, sequence)
    invoice.number_year, invoice.number_sequence = year, sequence
    invoice.status, invoice.finalized_at = ST.FINALIZED, at
    invoice.save(update_fields=["number", "number_year", "number_sequence", "status", "finalized_at"])
    _finalized([invoice], actor=actor, at=at)


def _finalized(invoices: Sequence[Invoice], *, actor: Actor, at: datetime) -> None:
    """The audit entries of invoices just finalized, and their rendering and sending once the
    transaction commits."""
    AuditLogEntry.objects.bulk_create(
        [
            audit_entry(
                tenant=invoice.tenant,
                actor=actor,
                action="invoice.finalized",
                object_type="invoice",
                object_id=invoice.number,
                at=at,
                after={"total": str(invoice.total), "currency": invoice.currency},
            )
            for invoice in invoices
        ]
    )
    from invoicing.tasks import invoice_render_task

    for pk in [str(invoice.pk) for invoice in invoices]:
        transaction.on_commit(partial(invoice_render_task.delay, pk))


def _check(invoice: Invoice, to: str) -> None:
    if to not in ALLOWED[InvoiceStatus(invoice.status)]:
        raise InvalidInvoiceTransition("A %s invoice cannot become %s." % (invoice.status, to))


def invoice_void(*, invoice: Invoice, actor: Actor, at: datetime, reason: str = "") -> Invoice:
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        _check(invoice, ST.VOID)
        if invoice.credit_notes.exclude(status=ST.VOID).exists():
            raise InvalidInvoiceTransition("An invoice with credit notes cannot be voided.")
        invoice.status, invoice.voided_at, invoice.amount_due = ST.VOID, at, Decimal(0)
        invoice.reason = reason[:300]
        invoice.save(update_fields=["status", "voided_at", "amount_due", "reason"])
        audit_record(
            tenant=invoice.tenant,
            actor=actor,
            action="invoice.voided",
            object_type="invoice",
            object_id=invoice.number or str(invoice.pk),
            at=at,
            after={"reason": reason},
        )
    return invoice


def credit_note_create(
    *, invoice: Invoice, actor: Actor, at: datetime, lines: Sequence[dict[str, Any]] | None = None, reason: str = ""
) -> Invoice:
    """A credit note for a finalized invoice: in full (``lines`` None) or for some lines and amounts
    (``[{"line": id, "amount": "10.00"}]``), never more than what is left to credit on a line."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.kind != InvoiceKind.INVOICE or invoice.status not in (ST.FINALIZED, ST.PAID):
            raise InvalidInvoiceTransition("Only a finalized or paid invoice can be credited.")
        invoice_lines = {line.pk: line for line in invoice.lines.all()}
        credited = _credited_per_line(invoice)
        wanted: list[tuple[InvoiceLine, Decimal]] = []
        errors: list[FieldError] = []
        if lines is None:
            wanted = [(line, line.amount - credited.get(line.pk, Decimal(0))) for line in invoice_lines.values()]
            wanted = [(line, amount) for line, amount in wanted if amount != 0]
        else:
            for i, item in enumerate(lines):
                line = invoice_lines.get(item.get("line"))  # type: ignore[arg-type]
                if line is None:
                    errors.append(FieldError(f"lines[{i}].line", "unknown_line", "Not a line of this invoice."))
                    continue
                try:
                    amount = round_minor(Decimal(str(item.get("amount", line.amount))), invoice.currency)
                except Exception:
                    errors.append(FieldError(f"lines[{i}].amount", "invalid", "A decimal amount."))
                    continue
                left = line.amount - credited.get(line.pk, Decimal(0))
                if amount <= 0 or amount > left:
                    errors.append(
                        FieldError(
                            f"lines[{i}].amount",
                            "out_of_range",
                            "Between 0.01 and %s." % round_minor(left, invoice.currency),
                        )
                    )
                    continue
                wanted.append((line, amount))
        if errors or not wanted:
            raise InvalidCreditNote("Nothing left to credit." if not errors else errors[0].message, errors=errors)
        note = Invoice.objects.create(
            tenant=invoice.tenant,
            customer=invoice.customer,
            kind=InvoiceKind.CREDIT_NOTE,
            issue_date=at.date(),
            currency=invoice.currency,
            language=invoice.language,
            credited_invoice=invoice,
            reason=reason[:300],
        )
        InvoiceLine.objects.bulk_create(
            [
                InvoiceLine(
                    tenant=invoice.tenant,
                    invoice=note,
                    position=i,
                    type=line.type,
                    product=line.product,
                    description=line.description,
                    subscription=line.subscription,
                    period_start=line.period_start,
                    period_end=line.period_end,
                    quantity=line.quantity,
                    unit_amount=line.unit_amount,
                    amount=amount,
                    tax_category=line.tax_category,
                    devices=line.devices,
                    detail={"credited_line": line.pk},
                )
                for i, (line, amount) in enumerate(wanted)
            ]
        )
        rates = {t.category: t.rate for t in invoice.taxes.all()}
        bases: dict[str, Decimal] = {}
        for line, amount in wanted:
            signed = -amount if line.type == "credit" else amount
            bases[line.tax_category] = bases.get(line.tax_category, Decimal(0)) + signed
        taxes = [
            InvoiceTax(
                tenant=invoice.tenant,
                invoice=note,
                category=c,
                rate=rates.get(c, Decimal(0)),
                base=b,
                amount=round_minor(b * rates.get(c, Decimal(0)) / 100, invoice.currency),
            )
            for c, b in sorted(bases.items())
        ]
        InvoiceTax.objects.bulk_create(taxes)
        net = sum(bases.values(), Decimal(0))
        tax = sum((t.amount for t in taxes), Decimal(0))
        note.net_total, note.tax_total, note.total = net, tax, net + tax
        note.save(update_fields=["net_total", "tax_total", "total"])
        invoice.amount_due = max(invoice.amount_due - note.total, Decimal(0))
        invoice.save(update_fields=["amount_due"])
    return invoice_finalize(invoice=note, actor=actor, at=at)


def _credited_per_line(invoice: Invoice) -> dict[int, Decimal]:
    credited: dict[int, Decimal] = {}
    for line in InvoiceLine.objects.filter(invoice__credited_invoice=invoice).exclude(invoice__status=ST.VOID):
        key = int(line.detail.get("credited_line", 0))
        credited[key] = credited.get(key, Decimal(0)) + line.amount
    return credited


# --- bill runs ---------------------------------------------------------------------------------------

CHUNK_SIZE = 200


def customers_due(*, tenant: Tenant, billing_date: date, at: datetime) -> list[Any]:
    """Customers whose billing day falls on ``billing_date`` (clamped in short months), who have a live
    subscription, and whose local midnight of that date has passed at ``at``."""
    days = [billing_date.day]
    if clamp_day(billing_date.year, billing_date.month, 31) == billing_date:
        days += list(range(billing_date.day + 1, 32))  # 29, 30, 31 fall on the 28th of February
    candidates = (
        Customer.objects.filter(tenant=tenant, billing_day__in=days, subscriptions__status__in=SubscriptionStatus.LIVE)
        .distinct()
        .values_list("pk", "timezone")
    )
    return [pk for pk, tz in candidates if local_midnight(billing_date, tz) <= at]


def bill_run_create(*, tenant: Tenant, billing_date: date, actor: Actor, at: datetime) -> BillRun:
    with transaction.atomic():
        run = BillRun.objects.create(tenant=tenant, billing_date=billing_date)
        audit_record(
            tenant=tenant,
            actor=actor,
            action="bill_run.started",
            object_type="bill_run",
            object_id=str(run.pk),
            at=at,
            after={"billing_date": billing_date.isoformat()},
        )
        from invoicing.tasks import bill_run_execute_task

        pk = str(run.pk)
        transaction.on_commit(lambda: bill_run_execute_task.delay(pk))
    return run


def bill_run_plan(*, run: BillRun, at: datetime) -> list[list[str]]:
    """Find the customers due, set the total, and split them into chunks for the workers."""
    ids = [str(pk) for pk in customers_due(tenant=run.tenant, billing_date=run.billing_date, at=at)]
    BillRun.objects.filter(pk=run.pk).update(status=BillRunStatus.RUNNING, total=len(ids), started_at=at)
    if not ids:
        _maybe_finish(run.pk, at)
    return [ids[i : i + CHUNK_SIZE] for i in range(0, len(ids), CHUNK_SIZE)]


WRITE_BATCH = 50


def bill_run_chunk(*, run_id: str, customer_ids: Sequence[str], at: datetime) -> None:
    """Invoice a chunk of customers. What composing their invoices reads is loaded once for the
    chunk. Customers are then written by batches of ``WRITE_BATCH``, each in one transaction: the
    invoices, lines, taxes, ledger entries, outcome rows and the run's counters of the batch commit
    together (one statement per table), so a worker killed mid-chunk leaves nothing half done and a
    retry redoes only what did not commit. One customer's failure is recorded with its reason and
    does not stop the others; a customer already handled by this run (a retried chunk) is skipped."""
    run = BillRun.objects.select_related("tenant").get(pk=run_id)
    settings, _ = InvoicingSettings.objects.get_or_create(tenant=run.tenant)
    handled = set(
        BillRunCustomer.objects.filter(bill_run=run, customer_id__in=customer_ids).values_list("customer_id", flat=True)
    )
    customers = list(
        Customer.objects.filter(tenant=run.tenant, pk__in=customer_ids).exclude(pk__in=handled).order_by("pk")
    )
    for customer in customers:
        customer.tenant = run.tenant
    try:
        context = billing_context_load(tenant=run.tenant, customers=customers, billing_date=run.billing_date)
    except Exception as exc:  # one customer's data broke the chunk's reads: read and bill them one by one
        logger.warning("bill run %s: chunk of %d read one customer at a time: %s", run.pk, len(customers), exc)
        for customer in customers:
            try:
                alone = billing_context_load(tenant=run.tenant, customers=[customer], billing_date=run.billing_date)
            except Exception as exc:
                error = _failure(run, customer, exc)
                try:
                    with transaction.atomic():
                        _record_outcomes(run, [(customer, "failed", None, error)])
                except IntegrityError:
                    pass  # recorded by a concurrent retry of this chunk
                continue
            _bill_one(run=run, customer=customer, context=alone, settings=settings, at=at)
        _maybe_finish(run.pk, at)
        return
    for i in range(0, len(customers), WRITE_BATCH):
        batch = customers[i : i + WRITE_BATCH]
        try:
            with transaction.atomic():
                _bill_batch(run=run, customers=batch, context=context, settings=settings, at=at)
        except Exception as exc:  # e.g. another worker invoiced one of them meanwhile: one at a time
            logger.info("bill run %s: batch of %d written one customer at a time: %s", run.pk, len(batch), exc)
            for customer in batch:
                _bill_one(run=run, customer=customer, context=context, settings=settings, at=at)
    _maybe_finish(run.pk, at)


def _failure(run: BillRun, customer: Customer, exc: Exception) -> str:
    logger.warning("bill run %s: customer %s failed: %s", run.pk, customer.pk, exc)
    return str(getattr(exc, "detail", None) or str(exc) or exc.__class__.__name__)


def _bill_batch(
    *, run: BillRun, customers: Sequence[Customer], context: BillingContext, settings: InvoicingSettings, at: datetime
) -> None:
    """Compose every customer of the batch (a failure is that customer's outcome), then write them
    all, in the caller's transaction."""
    outcomes: list[tuple[Customer, str, Invoice | None, str]] = []
    compositions: list[Composition] = []
    for customer in customers:
        existing = context.existing.get(customer.pk)
        if existing is not None:
            outcomes.append((customer, "existing", existing, ""))
            continue
        try:
            composition = compose(customer=customer, billing_date=run.billing_date, context=context)
        except Exception as exc:  # a customer's failure is data for the run, not a crash of it
            outcomes.append((customer, "failed", None, _failure(run, customer, exc)))
            continue
        if composition.lines:
            compositions.append(composition)
        else:
            outcomes.append((customer, "nothing", None, ""))
    invoices = _invoices_write(
        compositions, bill_run=run, at=at, finalize_with=settings if settings.auto_finalize else None
    )
    outcomes += [(invoice.customer, "invoiced", invoice, "") for invoice in invoices]
    _record_outcomes(run, outcomes)


def _bill_one(
    *, run: BillRun, customer: Customer, context: BillingContext, settings: InvoicingSettings, at: datetime
) -> None:
    """One customer in its own transaction: the fallback when its batch could not be written whole."""
    try:
        with transaction.atomic():
            invoice = context.existing.get(customer.pk)
            outcome = "existing"
            if invoice is None:
                invoice = _invoice_create(customer=customer, context=context, at=at, bill_run=run)
                outcome = "nothing" if invoice is None else "invoiced"
                if invoice is not None and settings.auto_finalize:
                    _finalize_locked(invoice=invoice, settings=settings, actor=Actor.system("bill run"), at=at)
            _record_outcomes(run, [(customer, outcome, invoice, "")])
    except IntegrityError:
        # Another worker invoiced this customer first, or a concurrent retry of this chunk recorded
        # it: record what is there, unless the outcome already is.
        with transaction.atomic():
            if not BillRunCustomer.objects.filter(bill_run=run, customer=customer).exists():
                invoice = _invoice_dated(customer, run.billing_date)
                _record_outcomes(run, [(customer, "nothing" if invoice is None else "existing", invoice, "")])
    except Exception as exc:
        error = _failure(run, customer, exc)
        try:
            with transaction.atomic():
                _record_outcomes(run, [(customer, "failed", None, error)])
        except IntegrityError:
            pass  # recorded by a concurrent retry of this chunk


def _record_outcomes(run: BillRun, outcomes: Sequence[tuple[Customer, str, Invoice | None, str]]) -> None:
    """The customers' outcome rows and the run's counters, in the caller's transaction (a row is
    unique per run and customer, so a customer is never counted twice)."""
    if not outcomes:
        return
    BillRunCustomer.objects.bulk_create(
        [
            BillRunCustomer(
                tenant=run.tenant, bill_run=run, customer=customer, outcome=outcome, invoice=invoice, error=error[:2000]
            )
            for customer, outcome, invoice, error in outcomes
        ]
    )
    failed = sum(1 for _, outcome, _, _ in outcomes if outcome == "failed")
    BillRun.objects.filter(pk=run.pk).update(
        done=F("done") + (len(outcomes) - failed),
        failed=F("failed") + failed,
        created=F("created") + sum(1 for _, outcome, _, _ in outcomes if outcome == "invoiced"),
    )


def _maybe_finish(run_id: Any, at: datetime) -> None:
    with transaction.atomic():
        run = BillRun.objects.select_for_update().get(pk=run_id)
        if run.status in (BillRunStatus.COMPLETED, BillRunStatus.COMPLETED_WITH_ERRORS):
            return
        if run.done + run.failed >= run.total:
            run.status = BillRunStatus.COMPLETED_WITH_ERRORS if run.failed else BillRunStatus.COMPLETED
            run.finished_at = at
            run.save(update_fields=["status", "finished_at"])


def bill_runs_for_every_tenant(*, at: datetime) -> int:
    """The schedule: for today's and yesterday's dates (UTC), a run in every tenant that has customers
    due and not yet invoiced. Local midnights decide who is due, so east and west of UTC are billed on
    their own billing day, once (pitfall #1)."""
    started = 0
    for tenant in Tenant.objects.all():
        for billing_date in sorted({at.date(), (at - timedelta(days=1)).date()}):
            due = customers_due(tenant=tenant, billing_date=billing_date, at=at)
            invoiced = (
                Invoice.objects.filter(
                    tenant=tenant, kind=InvoiceKind.INVOICE, issue_date=billing_date, customer_id__in=due
                )
                .exclude(status=ST.VOID)
                .count()
            )
            if due and invoiced < len(due):
                bill_run_create(tenant=tenant, billing_date=billing_date, actor=Actor.system("schedule"), at=at)
                started += 1
    return started
