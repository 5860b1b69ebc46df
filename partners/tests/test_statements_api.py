"""The statements API: shapes, filters, transitions, documents and 404s."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from customers.models import Partner
from partners.models import CommissionStatement
from partners.tests.factories import partner_client
from partners.tests.test_statements import APRIL, build, paris, partner_of, pay, service_invoice
from payments.tests.factories import payer
from tenancy.models import Tenant
from tests.openapi import assert_conforms

pytestmark = pytest.mark.django_db


@pytest.fixture
def april(tenant: Tenant) -> dict[str, Any]:
    customer = payer(tenant)
    partner_of(tenant, "alpnet", {"service": "20", "hardware": "5"}, customer)
    invoice = service_invoice(customer, "100.00")  # total 120.00
    pay(invoice, "60.00", paris(4, 10))
    return {"statement": build(tenant, APRIL)["alpnet"], "invoice": invoice}


def test_a_partners_statements_by_month(api: APIClient, april: dict[str, Any]) -> None:
    statement, invoice = april["statement"], april["invoice"]
    response = api.get("/api/v1/partners/alpnet/statements?month=2026-04")
    assert response.status_code == 200, response.content
    [body] = response.json()["results"]
    assert response.json()["next"] is None
    assert {k: v for k, v in body.items() if k != "built_at"} == {
        "id": str(statement.pk),
        "partner": "alpnet",
        "month": "2026-04",
        "status": "draft",
        "currency": "EUR",
        # 100.00 x 20 % x 60 / 120 = 10.00 on 50.00 collected
        "lines": [
            {
                "invoice": invoice.number,
                "customer": "dupont",
                "leg": "service",
                "net_collected": "50.00",
                "rate": "20",
                "amount": "10.00",
            }
        ],
        "total": "10.00",
        "approved_at": None,
        "approved_by": "",
        "paid_at": None,
        "paid_reference": "",
    }
    assert api.get("/api/v1/partners/alpnet/statements?month=2026-05").json()["results"] == []
    assert len(api.get("/api/v1/partners/alpnet/statements").json()["results"]) == 1
    assert api.get(f"/api/v1/partner_statements/{statement.pk}").json()["total"] == "10.00"


def test_bad_months_and_unknown_partners_or_statements(api: APIClient, april: dict[str, Any]) -> None:
    # years outside 2000-2999 too: 9999-12 would end in year 10000, 0001-01 start before the first date
    for month in ("2026-4", "April", "2026-13", "2026-04-01", "9999-12", "0001-01", "1999-12", "3000-01"):
        response = api.get(f"/api/v1/partners/alpnet/statements?month={month}")
        assert response.status_code == 422, month
        assert response.json()["errors"][0]["code"] == "invalid_month"
    response = api.get("/api/v1/partners/nobody/statements")
    assert (response.status_code, response.json()["code"]) == (404, "partner_not_found")
    for pk in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        for suffix in ("", "/pdf", "/csv"):
            response = api.get(f"/api/v1/partner_statements/{pk}{suffix}")
            assert (response.status_code, response.json()["code"]) == (404, "statement_not_found"), suffix
        assert api.post(f"/api/v1/partner_statements/{pk}/approve").status_code == 404


def test_approve_then_mark_paid(api: APIClient, april: dict[str, Any]) -> None:
    pk = april["statement"].pk
    response = api.post(f"/api/v1/partner_statements/{pk}/mark_paid", {"reference": "X"}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "statement_not_approved")
    response = api.post(f"/api/v1/partner_statements/{pk}/approve")
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["approved_by"] != "") == ("approved", True)
    response = api.post(f"/api/v1/partner_statements/{pk}/approve")
    assert (response.status_code, response.json()["code"]) == (409, "statement_not_draft")
    response = api.post(f"/api/v1/partner_statements/{pk}/mark_paid", {}, format="json")
    assert (response.status_code, response.json()["errors"][0]["field"]) == (422, "reference")
    response = api.post(f"/api/v1/partner_statements/{pk}/mark_paid", {"reference": "SEPA-0605"}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["paid_reference"]) == ("paid", "SEPA-0605")


def test_the_pdf_and_the_csv(api: APIClient, april: dict[str, Any]) -> None:
    pk, invoice = april["statement"].pk, april["invoice"]
    response = api.get(f"/api/v1/partner_statements/{pk}/pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert 'filename="commission-alpnet-2026-04-eur.pdf"' in response["Content-Disposition"]
    response = api.get(f"/api/v1/partner_statements/{pk}/csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response.content.decode() == (
        f"invoice,customer,leg,net_collected,rate,amount\n{invoice.number},dupont,service,50.00,20,10.00\n"
    )


def test_every_answer_conforms_to_the_published_schema(api: APIClient, april: dict[str, Any]) -> None:
    pk = april["statement"].pk
    assert_conforms(api.get("/api/v1/partners/alpnet/statements?month=2026-04"))
    assert_conforms(api.get("/api/v1/partners/alpnet/statements?month=bad"))
    assert_conforms(api.get("/api/v1/partners/nobody/statements"))
    assert_conforms(api.get(f"/api/v1/partner_statements/{pk}"))
    assert_conforms(api.get("/api/v1/partner_statements/nope"))
    assert_conforms(api.post(f"/api/v1/partner_statements/{pk}/mark_paid", {"reference": "X"}, format="json"))
    assert_conforms(api.post(f"/api/v1/partner_statements/{pk}/approve"))
    assert_conforms(api.post(f"/api/v1/partner_statements/{pk}/approve"))
    assert_conforms(api.post(f"/api/v1/partner_statements/{pk}/mark_paid", {"reference": ""}, format="json"))
    assert_conforms(api.post(f"/api/v1/partner_statements/{pk}/mark_paid", {"reference": "X"}, format="json"))


def test_a_partner_key_reads_its_own_statements_as_staff_do(
    api: APIClient, tenant: Tenant, april: dict[str, Any]
) -> None:
    statement, invoice = april["statement"], april["invoice"]
    alpnet = Partner.objects.get(tenant=tenant, code="alpnet")
    geosat = partner_of(tenant, "geosat", {"service": "10"})
    theirs = CommissionStatement.objects.create(
        tenant=tenant, partner=geosat, month=APRIL, currency="EUR", total=0, built_at=statement.built_at
    )
    key = partner_client(tenant, alpnet)

    listed = key.get("/api/v1/partner/statements?month=2026-04")
    assert listed.status_code == 200, listed.content
    staff = api.get("/api/v1/partners/alpnet/statements?month=2026-04").json()
    # AlpNet's April statement only (not Geo Sat's), exactly as the staff API answers it
    assert listed.json() == staff
    assert [(s["id"], s["total"]) for s in listed.json()["results"]] == [(str(statement.pk), "10.00")]
    assert_conforms(listed)
    assert key.get("/api/v1/partner/statements?month=2026-05").json()["results"] == []
    assert len(key.get("/api/v1/partner/statements").json()["results"]) == 1
    bad = key.get("/api/v1/partner/statements?month=9999-12")
    assert (bad.status_code, bad.json()["errors"][0]["code"]) == (422, "invalid_month")

    one = key.get(f"/api/v1/partner/statements/{statement.pk}")
    assert one.json() == api.get(f"/api/v1/partner_statements/{statement.pk}").json()
    assert_conforms(one)
    pdf = key.get(f"/api/v1/partner/statements/{statement.pk}/pdf")
    assert (pdf.status_code, pdf["Content-Type"]) == (200, "application/pdf")
    assert pdf.content.startswith(b"%PDF")
    csv = key.get(f"/api/v1/partner/statements/{statement.pk}/csv")
    # 50.00 net collected of the 100.00 (60.00 of 120.00 paid) x 20 % = 10.00
    assert csv.content.decode() == (
        f"invoice,customer,leg,net_collected,rate,amount\n{invoice.number},dupont,service,50.00,20,10.00\n"
    )
    # Geo Sat's statement: as unknown as an id that is none
    for suffix in ("", "/pdf", "/csv"):
        for pk in (theirs.pk, "00000000-0000-0000-0000-000000000000", "-" * 32):
            response = key.get(f"/api/v1/partner/statements/{pk}{suffix}")
            assert (response.status_code, response.json()["code"]) == (404, "statement_not_found"), (pk, suffix)
