"""An invoice's status changes: finalization with a gapless number, and void. Each checks the
transition against ``INVOICE_TRANSITIONS`` (``invoicing.policies``) on the row it holds locked."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from uuid import UUID

from django.db import OperationalError, transaction
from djmoney.money import Money

from billing_platform.errors import FieldError, invalid
from customers.models import Collection, Customer
from invoicing.einvoice import (
    einvoice_applies,
    einvoice_check,
    einvoice_missing,
    invoice_vat_categories,
    invoices_vat_categories,
)
from invoicing.errors import InvalidInvoiceTransition, InvoicePaymentInProgress
from invoicing.events import invoice_voided_emit, invoices_finalized_emit
from invoicing.models import BillRun, Invoice, InvoiceKind, InvoicePaymentStatus, InvoiceStatus, InvoicingSettings
from invoicing.policies import INVOICE_TRANSITIONS, TRANSITION_ACTIONS, invoice_actions
from invoicing.services.numbering import number_format, numbers_take
from invoicing.signals import credit_note_finalized, invoice_voided, invoices_finalized
from subscriptions.ledger import service_charges_release
from tenancy.actors import Actor
from tenancy.models import AuditLogEntry, Tenant
from tenancy.services import audit_entry, audit_record

ST = InvoiceStatus
# The stored reason's length (``Invoice.reason``): a longer one is refused, never cut.
REASON_MAX_LENGTH = 300
_ACTION_STATUS = {action: status for status, action in TRANSITION_ACTIONS.items()}
_FINALIZED_FIELDS = [
    "number",
    "number_year",
    "number_sequence",
    "status",
    "finalized_at",
    "due_date",
    "payment_status",
    "paid_at",
    "partner",
]

__all__ = [
    "BULK_CHUNK",
    "INVOICE_TRANSITIONS",
    "REASON_MAX_LENGTH",
    "DraftsFinalized",
    "bill_run_drafts_finalize",
    "invoice_action_check",
    "invoice_due_date",
    "invoice_finalize",
    "invoice_void",
    "invoices_drafts_finalize",
    "invoices_finalize_locked",
    "reason_check",
]


def invoice_action_check(invoice: Invoice, action: str) -> None:
    """Refuse ``action`` (``finalize``, ``void``, ``credit``...) unless ``invoice_actions`` allows it."""
    if action in invoice_actions(invoice):
        return
    if action == "credit":
        raise InvalidInvoiceTransition("Only a finalized or paid invoice can be credited.")
    raise InvalidInvoiceTransition("A %s invoice cannot become %s." % (invoice.status, _ACTION_STATUS[action]))


def reason_check(reason: str) -> None:
    """A void's or credit note's reason is printed and audited whole: a longer one is refused."""
    if len(reason) > REASON_MAX_LENGTH:
        raise invalid("reason", "too_long", "The reason has at most %d characters." % REASON_MAX_LENGTH)


def invoice_finalize(*, invoice: Invoice, actor: Actor, at: datetime) -> Invoice:
    settings, _ = InvoicingSettings.objects.get_or_create(tenant_id=invoice.tenant_id)
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().select_related("tenant", "customer").get(pk=invoice.pk)
        invoice_action_check(invoice, "finalize")
        # A finalized document is never changed: one that would not be a valid e-invoice is refused
        # now, naming what is missing.
        einvoice_check(tenant=invoice.tenant, customer=invoice.customer, vat_categories=invoice_vat_categories(invoice))
        invoices_finalize_locked([invoice], settings=settings, actor=actor, at=at)
    return invoice


@dataclass(frozen=True)
class DraftsFinalized:
    """What finalizing a run's drafts did: the invoices finalized (numbered, to be rendered and sent),
    and the drafts left as drafts because they would not be valid e-invoices, with what they lack."""

    finalized: list[Invoice] = field(default_factory=list)
    incomplete: list[tuple[Invoice, list[FieldError]]] = field(default_factory=list)
    # Of the invoices asked for (``invoices_drafts_finalize``), those that were not drafts of the
    # tenant when their turn came: finalized meanwhile (a second submit), voided, or unknown.
    skipped: int = 0
    # Drafts of a chunk the database refused to finalize (a deadlock with another finalization, a
    # lock timeout): rolled back, still drafts with no number, to finalize again.
    interrupted: list[UUID] = field(default_factory=list)


def bill_run_drafts_finalize(*, run: BillRun, actor: Actor, at: datetime) -> DraftsFinalized:
    """Finalize every draft invoice of ``run`` in one transaction, as ``invoice_finalize`` does one:
    the drafts are locked in one statement, checked as e-invoices together (one query for their
    lines' VAT categories), and those complete are numbered per series in one statement and
    finalized in one update; each is rendered and e-mailed once the transaction commits. A draft
    that would not be a valid e-invoice stays a draft and is reported with what it lacks."""
    settings, _ = InvoicingSettings.objects.get_or_create(tenant_id=run.tenant_id)
    with transaction.atomic():
        drafts = list(
            Invoice.objects.select_for_update(of=("self",))
            .select_related("tenant", "customer", "customer__tenant")
            .filter(tenant_id=run.tenant_id, bill_run=run, kind=InvoiceKind.INVOICE, status=ST.DRAFT)
            .order_by("pk")  # every finalization locks in the same order: never a deadlock between two
        )
        drafts.sort(key=lambda invoice: (invoice.created_at, invoice.pk))  # the numbering order
        result = DraftsFinalized()
        _drafts_finalize(drafts, result, settings=settings, actor=actor, at=at)
    return result


# How many drafts one transaction of ``invoices_drafts_finalize`` locks and numbers: 200 drafts take
# about 1.2 s (docs/invoicing.md), so a chunk never holds the tenant's number sequence for long.
BULK_CHUNK = 200


def invoices_drafts_finalize(
    *, tenant: Tenant, invoice_ids: Iterable[UUID], actor: Actor, at: datetime, chunk: int = BULK_CHUNK
) -> DraftsFinalized:
    """Finalize the drafts among ``invoice_ids`` (the back-office's selection), as
    ``bill_run_drafts_finalize`` does a run's: numbered in the order of their issue dates, then of
    their creation, by chunks of ``chunk`` drafts, one transaction each.

    A draft that would not be a valid e-invoice stays a draft and takes no number (numbers are taken
    only for the complete ones, in one statement per series). Ids of another tenant, of invoices no
    longer drafts or of credit notes are counted in ``skipped`` and left alone, so submitting the same
    selection twice finalizes nothing the second time."""
    wanted = set(invoice_ids)
    ordered = list(
        Invoice.objects.filter(tenant=tenant, pk__in=wanted, kind=InvoiceKind.INVOICE, status=ST.DRAFT)
        .order_by("issue_date", "created_at", "pk")
        .values_list("pk", flat=True)
    )
    settings, _ = InvoicingSettings.objects.get_or_create(tenant=tenant)
    result = DraftsFinalized()
    for start in range(0, len(ordered), chunk):
        ids = ordered[start : start + chunk]
        part = DraftsFinalized()
        try:
            with transaction.atomic():
                drafts = list(
                    Invoice.objects.select_for_update(of=("self",))
                    .select_related("tenant", "customer", "customer__tenant")
                    .filter(tenant=tenant, pk__in=ids, kind=InvoiceKind.INVOICE, status=ST.DRAFT)
                    .order_by("pk")  # every finalization locks in the same order: never a deadlock between two
                )
                drafts.sort(key=lambda invoice: (invoice.issue_date, invoice.created_at, invoice.pk))
                _drafts_finalize(drafts, part, settings=settings, actor=actor, at=at)
        except OperationalError:
            # The chunk is rolled back whole (its numbers given back): reported, the next chunks go on.
            result.interrupted.extend(ids)
            continue
        result.finalized.extend(part.finalized)
        result.incomplete.extend(part.incomplete)
    done = len(result.finalized) + len(result.incomplete) + len(result.interrupted)
    return DraftsFinalized(
        finalized=result.finalized,
        incomplete=result.incomplete,
        skipped=len(wanted) - done,
        interrupted=result.interrupted,
    )


def _drafts_finalize(
    drafts: list[Invoice], result: DraftsFinalized, *, settings: InvoicingSettings, actor: Actor, at: datetime
) -> None:
    """Check locked drafts as e-invoices together (one query for their lines' VAT categories) and
    number and finalize the complete ones; add each to ``result``."""
    if not drafts:
        return
    checked = einvoice_applies(drafts[0].tenant)
    categories = invoices_vat_categories(x.pk for x in drafts) if checked else {}
    complete = []
    for invoice in drafts:
        missing = (
            einvoice_missing(
                tenant=invoice.tenant, customer=invoice.customer, vat_categories=categories.get(invoice.pk, set())
            )
            if checked
            else []
        )
        if missing:
            result.incomplete.append((invoice, missing))
        else:
            complete.append(invoice)
    if complete:
        invoices_finalize_locked(complete, settings=settings, actor=actor, at=at)
        result.finalized.extend(complete)


def invoices_finalize_locked(
    invoices: Sequence[Invoice], *, settings: InvoicingSettings, actor: Actor, at: datetime
) -> None:
    """Number and finalize drafts the caller holds locked (or has just written), in its transaction,
    record them, and render and send them once it commits. Numbers follow the order of ``invoices``,
    taken in one statement per series and year."""
    series: dict[tuple[str, int], list[Invoice]] = {}
    for invoice in invoices:
        series.setdefault((invoice.kind, invoice.issue_date.year), []).append(invoice)
    for (kind, year), drafts in series.items():
        prefix = settings.invoice_prefix if kind == InvoiceKind.INVOICE else settings.credit_note_prefix
        numbers = numbers_take(tenant_id=drafts[0].tenant_id, series=kind, year=year, count=len(drafts))
        for invoice, sequence in zip(drafts, numbers, strict=True):
            invoice.number = number_format(prefix, year, sequence)
            invoice.number_year, invoice.number_sequence = year, sequence
            invoice.status, invoice.finalized_at = ST.FINALIZED, at
            if kind == InvoiceKind.INVOICE:
                # The partner that earns on it: the customer's now (the customer is at hand for the due date).
                invoice.partner_id = invoice.customer.partner_id
                invoice.due_date = invoice_due_date(invoice)
                if invoice.total.amount == 0:  # nothing to collect
                    invoice.payment_status, invoice.paid_at = InvoicePaymentStatus.PAID, at
    Invoice.objects.bulk_update(invoices, _FINALIZED_FIELDS, batch_size=len(invoices))
    _finalized(invoices, actor=actor, at=at)


def invoice_due_date(invoice: Invoice) -> date:
    """issue date + the customer's payment terms; without terms of its own, the tenant's, or none
    for a customer charged automatically (specs/payments.md)."""
    customer = invoice.customer
    days = customer.payment_terms_days
    if days is None:
        days = 0 if customer.collection == Collection.CHARGE_AUTOMATICALLY else customer.tenant.payment_terms_days
    return invoice.issue_date + timedelta(days=days)


def _finalized(invoices: Sequence[Invoice], *, actor: Actor, at: datetime) -> None:
    """The audit entries and webhook events of invoices just finalized, and their rendering and
    sending once the transaction commits."""
    AuditLogEntry.objects.bulk_create(
        [
            audit_entry(
                tenant=invoice.tenant,
                actor=actor,
                action="invoice.finalized",
                object_type="invoice",
                object_id=invoice.number,
                at=at,
                after={"total": str(invoice.total.amount), "currency": invoice.currency},
            )
            for invoice in invoices
        ]
    )
    # Integrators hear of them in the same transaction: finalized is sent once it commits, never otherwise.
    invoices_finalized_emit(invoices, at=at)
    # Payments settles them in this transaction (credit balance applied, first charge queued).
    finalized = [x for x in invoices if x.kind == InvoiceKind.INVOICE]
    if finalized:
        invoices_finalized.send(sender=Invoice, invoices=finalized, at=at)
    for note in invoices:
        if note.kind == InvoiceKind.CREDIT_NOTE and note.credited_invoice_id is not None:
            credit_note_finalized.send(sender=Invoice, note=note, invoice=note.credited_invoice, at=at)
    from invoicing.tasks import invoice_render_task

    for invoice in invoices:
        transaction.on_commit(partial(invoice_render_task.delay, str(invoice.pk), tenant_id=str(invoice.tenant_id)))


# Payment attempts whose outcome is not known yet (payments.models.OPEN_ATTEMPT_STATUSES; invoicing
# sits below payments and reads them through the reverse relation only).
OPEN_ATTEMPT_STATUSES = ("created", "processing", "unknown")


def invoice_void(*, invoice: Invoice, actor: Actor, at: datetime, reason: str = "") -> Invoice:
    reason_check(reason)
    with transaction.atomic():
        # The customer, then the invoice: the order payments lock them in (its balance may change).
        Customer.objects.select_for_update().only("id").get(pk=invoice.customer_id)
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        invoice_action_check(invoice, "void")
        if invoice.credit_notes.exclude(status=ST.VOID).exists():
            raise InvalidInvoiceTransition("An invoice with credit notes cannot be voided.")
        # A charge sent (or about to be) may still take the money: its outcome comes first.
        if invoice.payment_attempts.filter(status__in=OPEN_ATTEMPT_STATUSES).exists():
            raise InvoicePaymentInProgress(
                "A payment of this invoice is in progress: it cannot be voided until the payment "
                "succeeds or fails (try again in a few minutes)."
            )
        invoice.status, invoice.voided_at, invoice.amount_due = ST.VOID, at, Money(0, invoice.currency)
        invoice.reason = reason
        invoice.save(update_fields=["status", "voided_at", "amount_due", "reason"])
        # Its one-time fees and change entries are billed again by the invoice made in its place.
        service_charges_release(invoice_id=invoice.pk, at=at)
        invoice_voided.send(sender=Invoice, invoice=invoice, at=at)
        audit_record(
            tenant=invoice.tenant,
            actor=actor,
            action="invoice.voided",
            object_type="invoice",
            object_id=invoice.number or str(invoice.pk),
            at=at,
            after={"reason": reason},
        )
        invoice_voided_emit(invoice, at=at)
    return invoice
