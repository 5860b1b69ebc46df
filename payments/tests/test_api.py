"""The payments API: record, list, read, refund, balance movements; problem+json on bad input."""

from datetime import UTC, date, datetime

import pytest
from djmoney.money import Money
from rest_framework.test import APIClient

from payments.models import AttemptStatus, PaymentAttempt
from payments.tests.factories import invoice_of, payer
from tenancy.models import Tenant

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("charges", "reactivations")]

BODY = {"customer": "dupont", "currency": "EUR", "method": "bank_transfer", "received_at": "2026-06-23T10:00:00Z"}


def test_record_list_read_and_refund_a_payment(api: APIClient, tenant: Tenant) -> None:
    customer = payer(tenant)
    invoice = invoice_of(customer, "257.14", on=date(2026, 5, 1))  # 257.14 + 51.43 = 308.57
    # a transfer of 210.00 naming the invoice by number: 210.00 allocated, 98.57 still due
    created = api.post("/api/v1/payments", {**BODY, "amount": "210.00", "invoice": invoice.number}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["amount"], body["status"], body["customer"]) == ("210.00", "succeeded", "dupont")
    assert body["allocations"] == [{"invoice": invoice.number, "invoice_id": str(invoice.pk), "amount": "210.00"}]
    detail = api.get(f"/api/v1/invoices/{invoice.pk}").json()
    assert (detail["payment_status"], detail["amount_paid"], detail["amount_due"]) == (
        "partially_paid",
        "210.00",
        "98.57",  # 308.57 − 210.00
    )
    assert (detail["due_date"], detail["attempts"]) == ("2026-05-31", [])  # 1 May + 30 days
    # listed by customer and by invoice, and read by id
    assert [p["id"] for p in api.get("/api/v1/payments?customer=dupont").json()["results"]] == [body["id"]]
    assert [p["id"] for p in api.get(f"/api/v1/payments?invoice={invoice.pk}").json()["results"]] == [body["id"]]
    assert api.get("/api/v1/payments?customer=nobody").json()["results"] == []
    assert api.get(f"/api/v1/payments/{body['id']}").json()["amount"] == "210.00"
    # refunded 10.00: 200.00 left on the invoice
    refund = api.post(f"/api/v1/payments/{body['id']}/refunds", {"amount": "10.00", "reason": "fee"}, format="json")
    assert refund.status_code == 201, refund.json()
    assert (refund.json()["amount"], refund.json()["reason"]) == ("10.00", "fee")
    assert api.get(f"/api/v1/invoices/{invoice.pk}").json()["amount_due"] == "108.57"  # 308.57 − 200.00
    # more than the 200.00 it still holds: 422
    over = api.post(f"/api/v1/payments/{body['id']}/refunds", {"amount": "200.01"}, format="json")
    assert over.status_code == 422
    assert over["Content-Type"] == "application/problem+json"
    assert over.json()["code"] == "refund_exceeds_payment"


def test_an_overpayment_shows_on_the_customers_balance(api: APIClient, tenant: Tenant) -> None:
    customer = payer(tenant)
    invoice_of(customer, "100.00", on=date(2026, 4, 1))  # 120.00
    api.post("/api/v1/payments", {**BODY, "amount": "121.43"}, format="json")
    # 121.43 − 120.00 = 1.43
    assert api.get("/api/v1/customers/dupont").json()["balance"] == "1.43"
    [movement] = api.get("/api/v1/customers/dupont/balance_transactions").json()["results"]
    assert (movement["kind"], movement["amount"]) == ("overpayment", "1.43")


def test_bad_payments_are_problems(api: APIClient, tenant: Tenant) -> None:
    customer = payer(tenant)
    invoice_of(customer, "100.00", on=date(2026, 4, 1))
    wrong_currency = api.post("/api/v1/payments", {**BODY, "amount": "10.00", "currency": "USD"}, format="json")
    assert wrong_currency.status_code == 422
    assert wrong_currency["Content-Type"] == "application/problem+json"
    assert wrong_currency.json()["code"] == "payment_currency_mismatch"
    unknown = api.post(
        "/api/v1/payments", {**BODY, "amount": "10.00", "customer": "nobody", "invoice": "INV-X"}, format="json"
    )
    assert unknown.status_code == 422
    assert {(e["field"], e["code"]) for e in unknown.json()["errors"]} == {
        ("customer", "unknown_customer"),
        ("invoice", "unknown_invoice"),
    }
    negative = api.post("/api/v1/payments", {**BODY, "amount": "-1"}, format="json")
    assert negative.status_code == 422
    assert negative.json()["errors"][0]["field"] == "amount"
    assert api.get("/api/v1/payments/not-a-uuid").status_code == 404
    assert api.get("/api/v1/payments?colour=red").status_code == 400
    assert api.get("/api/v1/customers/nobody/balance_transactions").status_code == 404


def test_a_new_customer_takes_the_tenants_collection(api: APIClient, tenant: Tenant, customer_body: dict) -> None:
    tenant.default_collection = "charge_automatically"
    tenant.save(update_fields=["default_collection"])
    created = api.post("/api/v1/customers", customer_body, format="json").json()
    assert (created["collection"], created["payment_terms_days"], created["balance"]) == (
        "charge_automatically",
        None,
        "0.00",
    )
    patched = api.patch(
        "/api/v1/customers/dupont", {"collection": "send_invoice", "payment_terms_days": 45}, format="json"
    )
    assert (patched.json()["collection"], patched.json()["payment_terms_days"]) == ("send_invoice", 45)


def test_the_invoice_shows_its_attempts_as_payments_md_lists_them(api: APIClient, tenant: Tenant) -> None:
    invoice = invoice_of(payer(tenant), "100.00", on=date(2026, 6, 1))  # 120.00
    PaymentAttempt.objects.create(
        tenant=tenant,
        invoice=invoice,
        number=1,
        idempotency_key=f"attempt-{invoice.pk}-1",
        status=AttemptStatus.FAILED,
        currency="EUR",
        amount=Money("120.00", "EUR"),
        gateway_id="pi_declined_1",
        failure_code="card_declined",
        next_retry_at=datetime(2026, 6, 4, 6, 0, tzinfo=UTC),
    )
    [attempt] = api.get(f"/api/v1/invoices/{invoice.pk}").json()["attempts"]
    assert {k: v for k, v in attempt.items() if k != "created_at"} == {
        "invoice": str(invoice.pk),
        "number": 1,
        "idempotency_key": f"attempt-{invoice.pk}-1",
        "status": "failed",
        "amount": "120.00",
        "gateway_id": "pi_declined_1",
        "failure_code": "card_declined",
        "next_retry_at": "2026-06-04T06:00:00Z",
    }
