"""Writes of support cases: open a case, add a message, assign it, resolve or reopen it, and issue a
credit note from it. Each writes in one transaction with its audit-log entry; the e-mail of a new
message goes out once that transaction commits (``support.mail``).

Who writes: ``actor`` is the ``tenancy.actors.Actor`` of the request (a staff user, an API key, a
portal user) and ``author_type`` says which side of the conversation it speaks for, staff or the
customer: the portal passes ``AuthorType.CUSTOMER``, the back-office and the API ``AuthorType.STAFF``
(the API may relay a customer's message too).
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import transaction

from billing_platform.errors import FieldError
from billing_platform.money import round_minor
from billing_platform.validation import refused_character, without_refused_characters
from customers.models import Customer
from invoicing.models import Invoice, InvoiceKind
from invoicing.services.credit_notes import credit_note_create
from support.errors import InvalidSupportCase, SupportCaseNoInvoice, SupportCaseTransitionNotAllowed
from support.mail import message_notify_on_commit
from support.models import (
    FIRST_RESPONSE_HOURS_MAX,
    AuthorType,
    CaseStatus,
    SupportCase,
    SupportCaseCreditNote,
    SupportMessage,
    SupportSettings,
)
from support.selectors import is_staff_member
from tenancy.actors import Actor
from tenancy.models import Tenant
from tenancy.services import audit_record

SUBJECT_MAX = 200
BODY_MAX = 10_000

# The moves staff make by hand (``case_status_set``); messages move a case too (``message_add``).
TRANSITIONS: dict[str, set[str]] = {
    CaseStatus.OPEN: {CaseStatus.WAITING_ON_CUSTOMER, CaseStatus.RESOLVED},
    CaseStatus.WAITING_ON_CUSTOMER: {CaseStatus.OPEN, CaseStatus.RESOLVED},
    CaseStatus.RESOLVED: {CaseStatus.OPEN},
}


def _text(value: str) -> str:
    return without_refused_characters(value or "").strip()


def _body_check(body: str, errors: list[FieldError]) -> str:
    body = (body or "").replace("\r\n", "\n").strip()
    refused = refused_character(body, multiline=True)
    if refused is not None:
        errors.append(FieldError("body", "invalid_character", refused))
    elif not body:
        errors.append(FieldError("body", "required", "Write a message."))
    elif len(body) > BODY_MAX:
        errors.append(FieldError("body", "too_long", "At most 10000 characters."))
    return body


def _raise(errors: list[FieldError]) -> None:
    if errors:
        raise InvalidSupportCase("; ".join(e.message for e in errors), errors=errors)


def case_open(
    *,
    customer: Customer,
    subject: str,
    body: str,
    actor: Actor,
    author_type: str,
    at: datetime,
    invoice: Invoice | None = None,
    assignee: Any = None,
) -> SupportCase:
    """A new case of ``customer`` with its first message (``body``), about ``invoice`` (one of the
    customer's invoices) when given. Opened by the customer it is ``open``; opened by staff, the first
    message is a staff answer (``message_add``'s rule) and the case waits on the customer."""
    tenant = customer.tenant
    errors: list[FieldError] = []
    subject = _text(subject)
    if not subject:
        errors.append(FieldError("subject", "required", "Give the case a subject."))
    elif len(subject) > SUBJECT_MAX:
        errors.append(FieldError("subject", "too_long", "At most 200 characters."))
    body = _body_check(body, errors)
    if invoice is not None and (invoice.customer_id != customer.pk or invoice.tenant_id != customer.tenant_id):
        errors.append(FieldError("invoice", "not_the_customers", "Not an invoice of this customer."))
    if assignee is not None and not is_staff_member(tenant=tenant, user=assignee):
        errors.append(FieldError("assignee", "not_a_member", "Not a member of the team."))
    if author_type not in AuthorType.values:
        errors.append(FieldError("author_type", "invalid", "staff or customer."))
    _raise(errors)
    with transaction.atomic():
        case = SupportCase.objects.create(
            tenant=tenant,
            customer=customer,
            subject=subject,
            invoice=invoice,
            assignee=assignee,
            status=CaseStatus.OPEN,
            opened_by_type=author_type,
            opened_by_id=actor.id[:64],
            opened_by_label=actor.label[:255],
            created_at=at,
            last_message_at=at,
        )
        audit_record(
            tenant=tenant,
            actor=actor,
            action="support_case.opened",
            object_type="support_case",
            object_id=str(case.pk),
            at=at,
            after={
                "subject": subject,
                "customer": customer.external_id,
                "invoice": invoice.number if invoice is not None else None,
                "opened_by": author_type,
            },
        )
        _message_write(case=case, body=body, actor=actor, author_type=author_type, at=at)
    return case


def message_add(*, case: SupportCase, body: str, actor: Actor, author_type: str, at: datetime) -> SupportMessage:
    """Add a message to the conversation and e-mail the other side once it is saved.

    A staff answer stamps ``first_response_at`` the first time and leaves the case waiting on the
    customer; a customer's message puts it back ``open``. Either reopens a resolved case."""
    errors: list[FieldError] = []
    body = _body_check(body, errors)
    if author_type not in AuthorType.values:
        errors.append(FieldError("author_type", "invalid", "staff or customer."))
    _raise(errors)
    with transaction.atomic():
        case = SupportCase.objects.select_for_update().get(pk=case.pk)
        message = _message_write(case=case, body=body, actor=actor, author_type=author_type, at=at)
        audit_record(
            tenant=case.tenant,
            actor=actor,
            action="support_case.message_added",
            object_type="support_case",
            object_id=str(case.pk),
            at=at,
            after={"subject": case.subject, "author": author_type, "status": case.status},
        )
    return message


def _message_write(*, case: SupportCase, body: str, actor: Actor, author_type: str, at: datetime) -> SupportMessage:
    """The message, the case's status and stamps after it, and its e-mail scheduled (the case is
    locked or new)."""
    message = SupportMessage.objects.create(
        tenant_id=case.tenant_id,
        case=case,
        author_type=author_type,
        author_id=actor.id[:64],
        author_label=actor.label[:255],
        body=body,
        at=at,
    )
    fields = ["status", "last_message_at", "resolved_at"]
    if author_type == AuthorType.STAFF:
        case.status = CaseStatus.WAITING_ON_CUSTOMER
        if case.first_response_at is None:
            case.first_response_at = at
            fields.append("first_response_at")
    else:
        case.status = CaseStatus.OPEN
    case.last_message_at = max(case.last_message_at, at)
    case.resolved_at = None
    case.save(update_fields=fields)
    message_notify_on_commit(case=case, message=message)
    return message


def case_assign(*, case: SupportCase, assignee: Any, actor: Actor, at: datetime) -> SupportCase:
    """Give the case to a member of the team (``None``: to nobody)."""
    if assignee is not None and not is_staff_member(tenant=case.tenant, user=assignee):
        _raise([FieldError("assignee", "not_a_member", "Not a member of the team.")])
    with transaction.atomic():
        case = SupportCase.objects.select_for_update(of=("self",)).select_related("assignee").get(pk=case.pk)
        before = case.assignee.email if case.assignee is not None else None
        after = assignee.email if assignee is not None else None
        if case.assignee_id == (assignee.pk if assignee is not None else None):
            return case
        case.assignee = assignee
        case.save(update_fields=["assignee"])
        audit_record(
            tenant=case.tenant,
            actor=actor,
            action="support_case.assigned",
            object_type="support_case",
            object_id=str(case.pk),
            at=at,
            before={"assignee": before},
            after={"assignee": after},
        )
    return case


def case_status_set(*, case: SupportCase, status: str, actor: Actor, at: datetime) -> SupportCase:
    """Resolve a case, reopen a resolved one, or mark it open or waiting on the customer. Setting the
    status it has changes nothing; a move ``TRANSITIONS`` does not list is refused (409)."""
    if status not in CaseStatus.values:
        _raise([FieldError("status", "invalid", "One of open, waiting_on_customer, resolved.")])
    with transaction.atomic():
        case = SupportCase.objects.select_for_update().get(pk=case.pk)
        if case.status == status:
            return case
        if status not in TRANSITIONS[case.status]:
            raise SupportCaseTransitionNotAllowed(
                "A case %s cannot become %s." % (case.status, status),
                extra={"current_status": case.status},
            )
        before = case.status
        case.status = status
        case.resolved_at = at if status == CaseStatus.RESOLVED else None
        case.save(update_fields=["status", "resolved_at"])
        audit_record(
            tenant=case.tenant,
            actor=actor,
            action="support_case.resolved" if status == CaseStatus.RESOLVED else "support_case.status_changed",
            object_type="support_case",
            object_id=str(case.pk),
            at=at,
            before={"status": before},
            after={"status": status},
        )
    return case


def case_credit_note_issue(
    *,
    case: SupportCase,
    actor: Actor,
    at: datetime,
    lines: Sequence[dict[str, Any]] | None = None,
    reason: str = "",
) -> Invoice:
    """A credit note on the case's invoice (in full, or ``lines`` as ``credit_note_create`` takes
    them), linked to the case, in the same transaction: a note refused leaves no link."""
    if case.invoice_id is None:
        raise SupportCaseNoInvoice("This case is about no invoice: there is nothing to credit from it.")
    with transaction.atomic():
        invoice = Invoice.objects.select_related("customer", "tenant").get(pk=case.invoice_id)
        note = credit_note_create(invoice=invoice, actor=actor, at=at, lines=lines, reason=reason)
        assert note.kind == InvoiceKind.CREDIT_NOTE
        SupportCaseCreditNote.objects.create(tenant_id=case.tenant_id, case=case, credit_note=note, created_at=at)
        audit_record(
            tenant=case.tenant,
            actor=actor,
            action="support_case.credit_note_issued",
            object_type="support_case",
            object_id=str(case.pk),
            at=at,
            after={
                "number": note.number,
                "amount": str(round_minor(note.total.amount, note.currency)),
                "currency": note.currency,
            },
        )
    return note


def support_settings_set(*, tenant: Tenant, first_response_hours: int, actor: Actor, at: datetime) -> SupportSettings:
    """Set the tenant's first-response target, 1 to 720 hours."""
    if not 1 <= first_response_hours <= FIRST_RESPONSE_HOURS_MAX:
        _raise([FieldError("first_response_hours", "out_of_range", "Between 1 and 720 hours.")])
    with transaction.atomic():
        row, _ = SupportSettings.objects.select_for_update().get_or_create(tenant=tenant)
        before = row.first_response_hours
        row.first_response_hours = first_response_hours
        row.save(update_fields=["first_response_hours"])
        audit_record(
            tenant=tenant,
            actor=actor,
            action="support_settings.updated",
            object_type="support_settings",
            object_id=str(tenant.pk),
            at=at,
            before={"first_response_hours": before},
            after={"first_response_hours": first_response_hours},
        )
    return row
