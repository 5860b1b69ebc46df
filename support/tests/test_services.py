"""Support cases: the status flow, the first response, overdue cases, credit notes issued from a case."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.utils import timezone
from djmoney.money import Money

from customers.tests.factories import dupont
from support.errors import InvalidSupportCase, SupportCaseNoInvoice, SupportCaseTransitionNotAllowed
from support.models import AuthorType, CaseStatus, SupportSettings
from support.selectors import case_credit_notes, case_get, case_list
from support.services import case_assign, case_credit_note_issue, case_open, case_status_set, message_add
from support.tests.factories import CUSTOMER_ACTOR, OPENED, STAFF_ACTOR, customer_with_invoice
from tenancy.actors import Actor
from tenancy.models import AuditLogEntry, Role, Tenant

pytestmark = pytest.mark.django_db


def _overdue(case: Any) -> bool:
    """The ``overdue`` the selectors annotate."""
    return bool(case.overdue)


def _open(tenant: Tenant, **changes: Any) -> Any:
    customer, invoice = customer_with_invoice(tenant)
    fields: dict[str, Any] = {
        "customer": customer,
        "subject": "Line 1 is wrong",
        "body": "We had 3 devices in April, not 4.",
        "actor": CUSTOMER_ACTOR,
        "author_type": AuthorType.CUSTOMER,
        "at": OPENED,
        "invoice": invoice,
    }
    fields.update(changes)
    return case_open(**fields)


def test_a_customer_case_is_open_until_staff_answer_then_waits_on_the_customer(tenant: Tenant) -> None:
    # given: a case the customer opened on 1 June 09:00
    case = _open(tenant)
    assert (case.status, case.first_response_at, case.opened_by_type) == ("open", None, "customer")
    [first] = case.messages.all()
    assert (first.author_type, first.author_label, first.at) == ("customer", "Marie Dupont", OPENED)
    # when: staff answer 2 h later, then again 1 h after
    answer_at = OPENED + timedelta(hours=2)
    message_add(case=case, body="Checking.", actor=STAFF_ACTOR, author_type=AuthorType.STAFF, at=answer_at)
    message_add(case=case, body="Fixed.", actor=STAFF_ACTOR, author_type="staff", at=answer_at + timedelta(hours=1))
    case.refresh_from_db()
    # then: the first answer is stamped once, at 11:00; the case waits on the customer
    assert (case.status, case.first_response_at) == ("waiting_on_customer", answer_at)
    # when: the customer writes back, the case is open again
    message_add(case=case, body="Thanks, still 4.", actor=CUSTOMER_ACTOR, author_type="customer", at=answer_at)
    case.refresh_from_db()
    assert (case.status, case.first_response_at) == ("open", answer_at)
    assert case.messages.count() == 4


def test_resolve_reopen_and_the_moves_refused(tenant: Tenant) -> None:
    case = _open(tenant)
    resolved_at = OPENED + timedelta(days=1)
    case = case_status_set(case=case, status=CaseStatus.RESOLVED, actor=STAFF_ACTOR, at=resolved_at)
    assert (case.status, case.resolved_at) == ("resolved", resolved_at)
    # a resolved case can only be reopened
    with pytest.raises(SupportCaseTransitionNotAllowed, match="A case resolved cannot become waiting_on_customer."):
        case_status_set(case=case, status="waiting_on_customer", actor=STAFF_ACTOR, at=resolved_at)
    with pytest.raises(InvalidSupportCase, match="One of open, waiting_on_customer, resolved."):
        case_status_set(case=case, status="closed", actor=STAFF_ACTOR, at=resolved_at)
    # a customer's message reopens it
    message_add(case=case, body="It happened again.", actor=CUSTOMER_ACTOR, author_type="customer", at=resolved_at)
    case.refresh_from_db()
    assert (case.status, case.resolved_at) == ("open", None)
    actions = list(AuditLogEntry.objects.filter(object_type="support_case").values_list("action", flat=True))
    assert sorted(actions) == sorted(["support_case.opened", "support_case.resolved", "support_case.message_added"])


def test_a_case_needs_a_subject_a_body_and_the_customers_own_invoice(tenant: Tenant) -> None:
    other = dupont(tenant, external_id="durand", name="Transports Durand")
    customer, invoice = customer_with_invoice(tenant)
    with pytest.raises(InvalidSupportCase) as caught:
        case_open(
            customer=other,
            subject="  ",
            body="",
            actor=CUSTOMER_ACTOR,
            author_type="customer",
            at=OPENED,
            invoice=invoice,
        )
    assert [(e.field, e.code) for e in caught.value.errors] == [
        ("subject", "required"),
        ("body", "required"),
        ("invoice", "not_the_customers"),
    ]
    assert customer.support_cases.count() == 0


@pytest.mark.parametrize(
    ("now", "overdue"),
    [
        (datetime(2026, 6, 2, 8, 59, tzinfo=UTC), False),  # 23 h 59 min after opening
        (datetime(2026, 6, 2, 9, 1, tzinfo=UTC), True),  # 24 h 01 min: past the 24 h target
    ],
)
def test_a_case_without_a_staff_answer_past_the_target_is_overdue(tenant: Tenant, now: datetime, overdue: bool) -> None:
    # given: target 24 h, a case opened on 1 June 2026 09:00 UTC, a second one answered at 10:00
    SupportSettings.objects.create(tenant=tenant, first_response_hours=24)
    late = _open(tenant)
    answered = case_open(
        customer=late.customer,
        subject="Other",
        body="?",
        actor=CUSTOMER_ACTOR,
        author_type="customer",
        at=OPENED,
    )
    message_add(case=answered, body="Done.", actor=STAFF_ACTOR, author_type="staff", at=OPENED + timedelta(hours=1))
    with time_machine.travel(now, tick=False):
        at = timezone.now()
        # then
        assert _overdue(case_get(tenant=tenant, pk=str(late.pk), at=at)) is overdue
        assert _overdue(case_get(tenant=tenant, pk=str(answered.pk), at=at)) is False
        assert [c.pk for c in case_list(tenant=tenant, at=at, overdue=True)] == ([late.pk] if overdue else [])


def test_a_shorter_target_makes_the_case_overdue_sooner(tenant: Tenant) -> None:
    # 4 h target: at 13:01, 4 h 01 min after opening, the case is overdue; resolved, it no longer is
    SupportSettings.objects.create(tenant=tenant, first_response_hours=4)
    case = _open(tenant)
    at = datetime(2026, 6, 1, 13, 1, tzinfo=UTC)
    assert _overdue(case_get(tenant=tenant, pk=str(case.pk), at=at)) is True
    case_status_set(case=case, status="resolved", actor=STAFF_ACTOR, at=at)
    assert _overdue(case_get(tenant=tenant, pk=str(case.pk), at=at)) is False


def test_assigning_to_a_team_member_only(tenant: Tenant, other_tenant: Tenant, make_staff: Any) -> None:
    case = _open(tenant)
    agent = make_staff(tenant, Role.SUPPORT_AGENT, "agent@acme.test")
    stranger = make_staff(other_tenant, Role.OWNER, "boss@globex.test")
    case = case_assign(case=case, assignee=agent, actor=STAFF_ACTOR, at=OPENED)
    assert case.assignee == agent
    with pytest.raises(InvalidSupportCase, match="Not a member of the team."):
        case_assign(case=case, assignee=stranger, actor=STAFF_ACTOR, at=OPENED)
    case = case_assign(case=case, assignee=None, actor=STAFF_ACTOR, at=OPENED)
    assert case.assignee is None
    [first, second] = AuditLogEntry.objects.filter(action="support_case.assigned").order_by("pk")
    assert (first.before, first.after) == ({"assignee": None}, {"assignee": "agent@acme.test"})
    assert (second.before, second.after) == ({"assignee": "agent@acme.test"}, {"assignee": None})


def test_a_credit_note_issued_from_the_case_is_linked_to_it(tenant: Tenant) -> None:
    # given: a case about the invoice of 100.00 + 20 % VAT = 120.00
    case = _open(tenant)
    invoice = case.invoice
    line_id = invoice.lines.get().pk
    # when: 10.00 of its line credited; 10.00 + 20 % = 12.00
    note = case_credit_note_issue(
        case=case, actor=STAFF_ACTOR, at=OPENED, lines=[{"line": line_id, "amount": "10.00"}], reason="One device less"
    )
    # then
    assert (note.kind, note.total, note.credited_invoice_id) == ("credit_note", Money("12.00", "EUR"), invoice.pk)
    assert case_credit_notes(case=case) == [note]
    invoice.refresh_from_db()
    assert invoice.amount_due == Money("108.00", "EUR")  # 120.00 − 12.00
    entry = AuditLogEntry.objects.get(action="support_case.credit_note_issued")
    assert entry.after == {"number": note.number, "amount": "12.00", "currency": "EUR"}


def test_no_credit_note_from_a_case_without_an_invoice(tenant: Tenant) -> None:
    case = _open(tenant, invoice=None)
    with pytest.raises(SupportCaseNoInvoice, match="This case is about no invoice"):
        case_credit_note_issue(case=case, actor=STAFF_ACTOR, at=OPENED, reason="x")


def test_emails_go_both_ways_once_committed(
    tenant: Tenant, make_staff: Any, django_capture_on_commit_callbacks: Any
) -> None:
    # given: Acme's support agent, no assignee yet
    agent = make_staff(tenant, Role.SUPPORT_AGENT, "agent@acme.test")
    make_staff(tenant, Role.OWNER, "owner@acme.test")
    # when: the customer opens a case
    with django_capture_on_commit_callbacks(execute=True):
        case = _open(tenant)
    # then: the support agent hears of it (not the owner)
    [to_staff] = mail.outbox
    assert to_staff.to == ["agent@acme.test"]
    assert to_staff.subject == "[Support] Transports Dupont: Line 1 is wrong"
    assert "We had 3 devices in April, not 4." in to_staff.body
    assert case.invoice.number in to_staff.body
    # when: staff answer, the customer gets it in French (Dupont's language)
    staff = Actor.user(agent)
    with django_capture_on_commit_callbacks(execute=True):
        message_add(case=case, body="Corrigé.", actor=staff, author_type="staff", at=OPENED)
    to_customer = mail.outbox[1]
    assert to_customer.to == [case.customer.email]
    assert to_customer.subject == "Acme Telematics a répondu : Line 1 is wrong"
    assert "Corrigé." in to_customer.body
    # when: assigned, the next customer message goes to the assignee only
    owner = make_staff(tenant, Role.OWNER, "boss@acme.test")
    case_assign(case=case, assignee=owner, actor=staff, at=OPENED)
    with django_capture_on_commit_callbacks(execute=True):
        message_add(case=case, body="Merci", actor=CUSTOMER_ACTOR, author_type="customer", at=OPENED)
    assert mail.outbox[2].to == ["boss@acme.test"]
    assert len(mail.outbox) == 3


def test_without_support_agents_the_billing_email_hears_of_new_cases(
    tenant: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        _open(tenant)
    assert [m.to for m in mail.outbox] == [["factures@acme.test"]]
