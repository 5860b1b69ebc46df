"""An invoice's metadata: readable, and changed by PATCH at any status, since it is not part of the
legal document (the finalized invoice's number, lines and totals stay as they were)."""

import pytest
import time_machine
from rest_framework.test import APIClient

from invoicing.models import Invoice, InvoiceStatus
from invoicing.tests.test_lifecycle import RUN_AT, finalized_invoice
from tenancy.models import AuditLogEntry, Tenant

pytestmark = pytest.mark.django_db


@time_machine.travel(RUN_AT, tick=False)
def test_a_finalized_invoices_metadata_can_change(api: APIClient, tenant: Tenant) -> None:
    # given: finalized, 20.00 + 20 % VAT = 24.00
    invoice = finalized_invoice(tenant)
    assert invoice.status == InvoiceStatus.FINALIZED
    path = "/api/v1/invoices/%s" % invoice.pk
    assert api.get(path).json()["metadata"] == {}
    # when
    response = api.patch(path, {"metadata": {"erp_invoice": "F-2026-0412", "cost_center": "EU"}}, format="json")
    # then: the metadata changed, nothing of the document did
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["metadata"] == {"erp_invoice": "F-2026-0412", "cost_center": "EU"}
    assert (body["status"], body["number"], body["total"]) == ("finalized", invoice.number, "24.00")
    # a key given null is removed, the others kept
    response = api.patch(path, {"metadata": {"cost_center": None}}, format="json")
    assert response.json()["metadata"] == {"erp_invoice": "F-2026-0412"}
    stored = Invoice.objects.get(pk=invoice.pk)
    assert stored.metadata == {"erp_invoice": "F-2026-0412"}
    assert (stored.number, stored.total.amount) == (invoice.number, invoice.total.amount)
    assert AuditLogEntry.objects.filter(tenant=tenant, action="invoice.metadata_updated").count() == 2


@time_machine.travel(RUN_AT, tick=False)
def test_an_invoice_patch_takes_metadata_only(api: APIClient, tenant: Tenant) -> None:
    invoice = finalized_invoice(tenant)
    response = api.patch("/api/v1/invoices/%s" % invoice.pk, {"total": "0.00"}, format="json")
    assert response.status_code == 422
    assert {e["field"]: e["code"] for e in response.json()["errors"]} == {
        "total": "unknown_field",
        "metadata": "required",
    }
    response = api.patch("/api/v1/invoices/%s" % invoice.pk, {"metadata": {"k": "v" * 501}}, format="json")
    assert response.json()["errors"] == [
        {"field": "metadata.k", "code": "too_long", "message": "A value has at most 500 characters."}
    ]


def test_another_tenants_invoice_is_not_found(api: APIClient, other_tenant: Tenant) -> None:
    with time_machine.travel(RUN_AT, tick=False):
        invoice = finalized_invoice(other_tenant)
    response = api.patch("/api/v1/invoices/%s" % invoice.pk, {"metadata": {"k": "v"}}, format="json")
    assert response.status_code == 404
    assert Invoice.objects.get(pk=invoice.pk).metadata == {}
