"""The back-office support pages: the queue and its filters, a case's conversation, answering,
assigning, resolving and reopening, a credit note issued from a case, and a new case opened by staff."""

from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.test import Client
from djmoney.money import Money

from support.models import AuthorType, SupportCase, SupportSettings
from support.services import case_open
from support.tests.factories import CUSTOMER_ACTOR, OPENED, customer_with_invoice
from tenancy.models import AuditLogEntry, Role, Tenant

pytestmark = pytest.mark.django_db


def _login(
    client: Client, make_staff: Any, tenant: Tenant, role: str = Role.SUPPORT_AGENT, email: str = "agent@acme.test"
) -> Any:
    user = make_staff(tenant, role, email)
    client.force_login(user)
    return user


def _case(tenant: Tenant, **changes: Any) -> SupportCase:
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


@time_machine.travel(datetime(2026, 6, 2, 9, 1, tzinfo=UTC), tick=False)
def test_the_queue_shows_open_cases_and_marks_overdue_ones(client: Client, make_staff: Any, tenant: Tenant) -> None:
    # given: a 24 h target; a case opened on 1 June 09:00 without answer (24 h 01 min ago) and one resolved
    SupportSettings.objects.create(tenant=tenant, first_response_hours=24)
    case = _case(tenant)
    done = case_open(
        customer=case.customer,
        subject="Old question",
        body="?",
        actor=CUSTOMER_ACTOR,
        author_type="customer",
        at=OPENED,
    )
    SupportCase.objects.filter(pk=done.pk).update(status="resolved")
    _login(client, make_staff, tenant)
    # when
    response = client.get("/app/support/")
    # then: the default queue hides resolved cases; the open one is overdue
    assert response.status_code == 200
    page = response.content.decode()
    assert "Line 1 is wrong" in page
    assert "Old question" not in page
    assert "Overdue" in page
    assert [c.pk for c in response.context["page"].object_list] == [case.pk]
    # filters: resolved only; overdue only; assigned to me (nobody yet)
    assert [c.pk for c in client.get("/app/support/?status=resolved").context["page"].object_list] == [done.pk]
    assert [c.pk for c in client.get("/app/support/?overdue=on").context["page"].object_list] == [case.pk]
    assert list(client.get("/app/support/?assignee=me").context["page"].object_list) == []
    # both were opened more than 1 day ago (24 h 01 min), neither more than 3 days ago
    assert {c.pk for c in client.get("/app/support/?age=1&status=all").context["page"].object_list} == {
        case.pk,
        done.pk,
    }
    assert list(client.get("/app/support/?age=3&status=all").context["page"].object_list) == []
    # a bad filter is said, not a 500
    assert client.get("/app/support/?status=closed&age=99").status_code == 200


def test_answer_assign_resolve_and_reopen(
    client: Client, make_staff: Any, tenant: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    case = _case(tenant)
    agent = _login(client, make_staff, tenant)
    page = client.get(f"/app/support/{case.pk}/")
    assert page.status_code == 200
    assert "We had 3 devices in April, not 4." in page.content.decode()
    # when: an answer
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/app/support/{case.pk}/answer/", {"body": "We are checking."})
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == "waiting_on_customer"
    assert [m.to for m in mail.outbox] == [[case.customer.email]]
    # an empty answer is a form error
    response = client.post(f"/app/support/{case.pk}/answer/", {"body": "  "})
    assert response.status_code == 422
    assert response.context["answer_form"].errors["body"] == ["This field is required."]
    # assign to the agent, then resolve and reopen
    client.post(f"/app/support/{case.pk}/assign/", {"assignee": str(agent.pk)})
    client.post(f"/app/support/{case.pk}/status/", {"status": "resolved"})
    case.refresh_from_db()
    assert (case.assignee_id, case.status) == (agent.pk, "resolved")
    client.post(f"/app/support/{case.pk}/status/", {"status": "open"})
    case.refresh_from_db()
    assert (case.status, case.resolved_at) == ("open", None)
    # a move that does not exist is a message, not a 500
    response = client.post(f"/app/support/{case.pk}/status/", {"status": "closed"}, follow=True)
    assert response.status_code == 200


def test_another_tenants_case_is_404(client: Client, make_staff: Any, tenant: Tenant, other_tenant: Tenant) -> None:
    case = _case(other_tenant)
    _login(client, make_staff, tenant)
    assert client.get(f"/app/support/{case.pk}/").status_code == 404
    assert client.post(f"/app/support/{case.pk}/answer/", {"body": "Hello"}).status_code == 404
    assert client.get("/app/support/not-a-uuid/").status_code == 404
    assert case.messages.count() == 1


def test_a_credit_note_from_the_case(client: Client, make_staff: Any, tenant: Tenant) -> None:
    # given: a case about the invoice of 100.00 + 20 % VAT = 120.00, a finance admin
    case = _case(tenant)
    _login(client, make_staff, tenant, Role.FINANCE_ADMIN, "finance@acme.test")
    assert case.invoice is not None
    line_id = case.invoice.lines.get().pk
    assert "Issue a credit note" in client.get(f"/app/support/{case.pk}/").content.decode()
    # when: 50.00 of the line: 50.00 + 10.00 VAT = 60.00
    response = client.post(
        f"/app/support/{case.pk}/credit-notes/", {"mode": "partial", f"amount-{line_id}": "50.00", "reason": "Half"}
    )
    assert response.status_code == 302
    [link] = case.credit_note_links.all()
    assert link.credit_note.total == Money("60.00", "EUR")
    # more than what is left (50.00) goes back on the line
    response = client.post(
        f"/app/support/{case.pk}/credit-notes/", {"mode": "partial", f"amount-{line_id}": "50.01", "reason": "More"}
    )
    assert response.status_code == 422
    assert response.context["credit_rows"][0]["error"] == "Between 0.01 and 50.00."
    assert case.credit_note_links.count() == 1


def test_support_agents_do_not_issue_credit_notes(client: Client, make_staff: Any, tenant: Tenant) -> None:
    case = _case(tenant)
    _login(client, make_staff, tenant)
    assert "Issue a credit note" not in client.get(f"/app/support/{case.pk}/").content.decode()
    assert client.post(f"/app/support/{case.pk}/credit-notes/", {"mode": "full", "reason": "x"}).status_code == 403
    assert case.credit_note_links.count() == 0


def test_staff_open_a_case_about_an_invoice(
    client: Client, make_staff: Any, tenant: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    customer, invoice = customer_with_invoice(tenant)
    _login(client, make_staff, tenant)
    assert client.get("/app/support/new/").status_code == 200
    page = client.get(f"/app/support/new/?customer=dupont&invoice={invoice.pk}")
    assert page.context["form"].initial["invoice"] == str(invoice.pk)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/app/support/new/",
            {
                "customer": "dupont",
                "invoice": str(invoice.pk),
                "subject": "Your April invoice",
                "body": "A refund is on its way.",
            },
        )
    assert response.status_code == 302
    case = SupportCase.objects.get()
    assert (case.invoice_id, case.status, case.opened_by_type) == (invoice.pk, "waiting_on_customer", "staff")
    assert [m.to for m in mail.outbox] == [[customer.email]]
    assert AuditLogEntry.objects.filter(action="support_case.opened").count() == 1
    # a missing subject is a form error; an unknown customer asks again
    response = client.post("/app/support/new/", {"customer": "dupont", "subject": "", "body": "x"})
    assert response.status_code == 422
    assert client.get("/app/support/new/?customer=nobody").status_code == 404


def test_the_first_response_target_is_set_by_finance_admins(client: Client, make_staff: Any, tenant: Tenant) -> None:
    _login(client, make_staff, tenant, Role.FINANCE_ADMIN, "finance@acme.test")
    assert client.post("/app/support/target/", {"first_response_hours": "8"}).status_code == 302
    assert SupportSettings.objects.get(tenant=tenant).first_response_hours == 8
    client.post("/app/support/target/", {"first_response_hours": "721"})  # over 30 days: refused
    assert SupportSettings.objects.get(tenant=tenant).first_response_hours == 8
    entry = AuditLogEntry.objects.get(action="support_settings.updated")
    assert (entry.before, entry.after) == ({"first_response_hours": 24}, {"first_response_hours": 8})


def test_support_agents_do_not_set_the_target(client: Client, make_staff: Any, tenant: Tenant) -> None:
    _login(client, make_staff, tenant)
    assert client.post("/app/support/target/", {"first_response_hours": "8"}).status_code == 403
    assert not SupportSettings.objects.filter(tenant=tenant).exists()


def test_the_customer_page_lists_its_open_cases(client: Client, make_staff: Any, tenant: Tenant) -> None:
    case = _case(tenant)
    _login(client, make_staff, tenant)
    page = client.get("/app/customers/dupont/").content.decode()
    assert f"/app/support/{case.pk}/" in page
    assert "Line 1 is wrong" in page
