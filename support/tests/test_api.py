"""The support cases API: open, list with filters, read, answer, assign, resolve, credit from a case."""

from typing import Any

import pytest
from django.core import mail
from rest_framework.test import APIClient

from customers.tests.factories import dupont
from support.models import SupportCase
from support.tests.factories import customer_with_invoice
from tenancy.models import Role, Tenant

pytestmark = pytest.mark.django_db


def _open(api: APIClient, **body: Any) -> Any:
    return api.post(
        "/api/v1/support_cases",
        {"customer": "dupont", "subject": "Line 1 is wrong", "body": "3 devices, not 4.", **body},
        format="json",
    )


def test_open_a_case_about_an_invoice_from_the_customer(
    api: APIClient, tenant: Tenant, make_staff: Any, django_capture_on_commit_callbacks: Any
) -> None:
    # given: Dupont's invoice, and Acme's support agent
    _, invoice = customer_with_invoice(tenant)
    make_staff(tenant, Role.SUPPORT_AGENT, "agent@acme.test")
    # when: the tenant relays its customer's question about the invoice, named by its number
    with django_capture_on_commit_callbacks(execute=True):
        response = _open(api, invoice=invoice.number, author_type="customer")
    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["customer"], body["invoice"], body["invoice_number"]) == ("dupont", str(invoice.pk), invoice.number)
    assert (body["status"], body["overdue"], body["message_count"], body["first_response_at"]) == (
        "open",
        False,
        1,
        None,
    )
    assert body["opened_by"]["type"] == "customer"
    assert [(m["author_type"], m["body"]) for m in body["messages"]] == [("customer", "3 devices, not 4.")]
    assert body["credit_notes"] == []
    assert [m.to for m in mail.outbox] == [["agent@acme.test"]]


def test_answer_assign_and_resolve(api: APIClient, tenant: Tenant, make_staff: Any) -> None:
    customer_with_invoice(tenant)
    make_staff(tenant, Role.SUPPORT_AGENT, "agent@acme.test")
    case_id = _open(api, author_type="customer").json()["id"]
    # when: staff answer
    response = api.post(f"/api/v1/support_cases/{case_id}/messages", {"body": "Fixed."}, format="json")
    assert response.status_code == 201, response.content
    assert (response.json()["author_type"], response.json()["body"]) == ("staff", "Fixed.")
    case = api.get(f"/api/v1/support_cases/{case_id}").json()
    assert case["status"] == "waiting_on_customer"
    assert case["first_response_at"] is not None
    # assign and resolve in one PATCH
    response = api.patch(
        f"/api/v1/support_cases/{case_id}", {"assignee": "agent@acme.test", "status": "resolved"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert (response.json()["assignee"], response.json()["status"]) == ("agent@acme.test", "resolved")
    # a resolved case can only be reopened
    response = api.patch(f"/api/v1/support_cases/{case_id}", {"status": "waiting_on_customer"}, format="json")
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "support_case_transition_not_allowed"
    # unassign
    response = api.patch(f"/api/v1/support_cases/{case_id}", {"assignee": None}, format="json")
    assert response.json()["assignee"] is None


def test_list_filters(api: APIClient, tenant: Tenant, make_staff: Any) -> None:
    # given: 2 cases of Dupont (one resolved), 1 of Durand assigned to the agent
    customer_with_invoice(tenant)
    dupont(tenant, external_id="durand", name="Transports Durand", email="compta@durand.test")
    make_staff(tenant, Role.SUPPORT_AGENT, "agent@acme.test")
    first = _open(api).json()["id"]
    second = _open(api, subject="Second").json()["id"]
    third = _open(api, customer="durand", assignee="agent@acme.test").json()["id"]
    api.patch(f"/api/v1/support_cases/{first}", {"status": "resolved"}, format="json")

    def ids(query: str) -> list[str]:
        response = api.get("/api/v1/support_cases" + query)
        assert response.status_code == 200, response.content
        return [c["id"] for c in response.json()["results"]]

    assert ids("") == [third, second, first]  # newest first
    assert ids("?customer=dupont") == [second, first]
    assert ids("?status=resolved") == [first]
    assert ids("?assignee=agent@acme.test") == [third]
    assert ids("?assignee=none") == [second, first]
    assert ids("?overdue=false") == [third, second, first]
    assert ids("?limit=1") == [third]


@pytest.mark.parametrize(
    ("query", "field", "code"),
    [
        ("?status=closed", "status", "invalid"),
        ("?overdue=maybe", "overdue", "invalid"),
        ("?assignee=nobody@acme.test", "assignee", "not_a_member"),
    ],
)
def test_bad_filters_are_422(api: APIClient, query: str, field: str, code: str) -> None:
    response = api.get("/api/v1/support_cases" + query)
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [(field, code)]


def test_bad_input_names_every_field(api: APIClient, tenant: Tenant, other_tenant: Tenant) -> None:
    # given: an invoice of another tenant, named by its id
    _, foreign = customer_with_invoice(other_tenant)
    response = _open(api, customer="nobody", invoice=str(foreign.pk), assignee="x@acme.test")
    assert response.status_code == 422
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [
        ("customer", "unknown_customer"),
        ("invoice", "unknown_invoice"),
        ("assignee", "not_a_member"),
    ]
    assert SupportCase.objects.count() == 0


def test_an_empty_message_is_refused(api: APIClient, tenant: Tenant) -> None:
    customer_with_invoice(tenant)
    case_id = _open(api).json()["id"]
    response = api.post(f"/api/v1/support_cases/{case_id}/messages", {"body": "   "}, format="json")
    assert response.status_code == 422
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("body", "required")]


def test_a_credit_note_from_the_case(api: APIClient, tenant: Tenant) -> None:
    # given: a case about the invoice of 100.00 + 20 % = 120.00
    _, invoice = customer_with_invoice(tenant)
    case_id = _open(api, invoice=str(invoice.pk)).json()["id"]
    line_id = invoice.lines.get().pk
    # when: 25.00 of its line credited: 25.00 + 5.00 VAT = 30.00
    response = api.post(
        f"/api/v1/support_cases/{case_id}/credit_notes",
        {"lines": [{"line": line_id, "amount": "25.00"}], "reason": "Goodwill"},
        format="json",
    )
    assert response.status_code == 201, response.content
    note = response.json()
    assert (note["kind"], note["total"]) == ("credit_note", "30.00")
    # then: the case lists it
    [linked] = api.get(f"/api/v1/support_cases/{case_id}").json()["credit_notes"]
    assert (linked["id"], linked["number"], linked["total"]) == (note["id"], note["number"], "30.00")


def test_a_credit_note_from_a_case_without_invoice_is_409(api: APIClient, tenant: Tenant) -> None:
    customer_with_invoice(tenant)
    case_id = _open(api).json()["id"]
    response = api.post(f"/api/v1/support_cases/{case_id}/credit_notes", {"reason": "x"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "support_case_no_invoice"


def test_an_unknown_case_is_404(api: APIClient) -> None:
    for path in ("/api/v1/support_cases/not-a-uuid", "/api/v1/support_cases/00000000-0000-0000-0000-000000000000"):
        response = api.get(path)
        assert response.status_code == 404
        assert response.json()["code"] == "support_case_not_found"


def test_every_support_response_conforms_to_the_published_schema(
    api: APIClient, tenant: Tenant, make_staff: Any
) -> None:
    from tests.openapi import assert_conforms

    # given: a case about Dupont's invoice, relayed from the customer, with the agent assigned
    _, invoice = customer_with_invoice(tenant)
    make_staff(tenant, Role.SUPPORT_AGENT, "agent@acme.test")
    opened = _open(api, invoice=invoice.number, author_type="customer", assignee="agent@acme.test")
    case = assert_conforms(opened)
    path = f"/api/v1/support_cases/{case['id']}"
    # then: each operation, its successes and its errors
    assert_conforms(api.post(f"{path}/messages", {"body": "Fixed."}, format="json"))
    assert_conforms(api.get(path))
    assert_conforms(api.get("/api/v1/support_cases", {"status": "waiting_on_customer"}))
    assert_conforms(api.patch(path, {"status": "resolved", "assignee": None}, format="json"))
    assert_conforms(api.patch(path, {"status": "waiting_on_customer"}, format="json"))  # 409
    line_id = invoice.lines.get().pk
    assert_conforms(api.post(f"{path}/credit_notes", {"lines": [{"line": line_id, "amount": "1.00"}]}, format="json"))
    assert_conforms(api.get(path))
    assert_conforms(api.get("/api/v1/support_cases/00000000-0000-0000-0000-000000000000"))  # 404
    assert_conforms(_open(api, customer="nobody"))  # 422
