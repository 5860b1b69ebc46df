"""The tax rules on real invoices: the rate in force on the issue date, a finalized invoice that
never changes, a seller without a VAT number that cannot finalize a VAT-rated invoice (API and
auto-finalizing bill run; the back-office in ``backoffice/tests``), the Factur-X of an invoice
credited before its document was stored, and a seller outside the EU."""

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from djmoney.money import Money
from lxml import etree
from rest_framework.test import APIClient

from catalog.models import TAX_RATE_SINCE_ALWAYS
from catalog.services import tax_rate_set
from invoicing.documents import invoice_document
from invoicing.errors import FacturxNotAvailable
from invoicing.models import BillRun, BillRunCustomer, Invoice, InvoiceStatus, InvoicingSettings
from invoicing.pdf import invoice_cii_xml
from invoicing.services import bill_run_chunk, bill_run_plan, credit_note_create
from invoicing.tests.factories import ACTOR, AT, buyer, issue, line
from subscriptions.tests.factories import monthly_fee_customers
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db
NS = {
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
}


def _dupont(tenant: Tenant) -> Any:
    return buyer(
        tenant,
        "dupont",
        address={"address_line1": "8 avenue des Transporteurs", "postal_code": "94150", "city": "Rungis"},
    )


def test_an_invoice_takes_the_rate_in_force_on_its_issue_date_and_a_finalized_one_never_changes(
    tenant: Tenant,
) -> None:
    # given: 20 % until 30 June 2026, 21 % from 1 July 2026
    tax_rate_set(tenant=tenant, actor=ACTOR, at=AT, country="FR", tax_category="standard", rate="20")
    tax_rate_set(
        tenant=tenant, actor=ACTOR, at=AT, country="FR", tax_category="standard", rate="20", valid_to=date(2026, 6, 30)
    )
    tax_rate_set(
        tenant=tenant,
        actor=ACTOR,
        at=AT,
        country="FR",
        tax_category="standard",
        rate="21",
        valid_from=date(2026, 7, 1),
    )
    customer = _dupont(tenant)
    # when: 100.00 of service on 30 June and on 1 July
    june = issue(customer, [line("service", "fleet-platform", "100.00")], on=date(2026, 6, 30))
    july = issue(customer, [line("service", "fleet-platform", "100.00")], on=date(2026, 7, 1))
    # then: 100.00 x 20 % = 20.00 (total 120.00); 100.00 x 21 % = 21.00 (total 121.00)
    assert [(t.rate, t.amount) for t in june.taxes.all()] == [(Decimal("20.0000"), Decimal("20.0000"))]
    assert june.total == Money("120.00", "EUR")
    assert [(t.rate, t.amount) for t in july.taxes.all()] == [(Decimal("21.0000"), Decimal("21.0000"))]
    assert july.total == Money("121.00", "EUR")
    june_xml = invoice_cii_xml(june)

    # when: the June period's rate is corrected afterwards to 19.6 %
    tax_rate_set(
        tenant=tenant,
        actor=ACTOR,
        at=AT,
        country="FR",
        tax_category="standard",
        rate="19.6",
        valid_from=TAX_RATE_SINCE_ALWAYS,
        valid_to=date(2026, 6, 30),
    )
    # then: the finalized June invoice keeps its 20.00 and its document is unchanged
    june = Invoice.objects.get(pk=june.pk)
    assert (june.status, june.tax_total, june.total) == (
        InvoiceStatus.FINALIZED,
        Money("20.00", "EUR"),
        Money("120.00", "EUR"),
    )
    assert invoice_cii_xml(june) == june_xml
    # and a new invoice dated in June takes 19.6 %: 100.00 x 19.6 % = 19.60
    later = issue(customer, [line("service", "fleet-platform", "100.00")], on=date(2026, 6, 29))
    assert later.tax_total == Money("19.60", "EUR")


def test_a_seller_without_a_vat_number_cannot_finalize_a_vat_rated_invoice_through_the_api(
    tenant: Tenant, api: APIClient
) -> None:
    # given: a seller with its SIREN but no VAT number, and a 20 % draft
    tenant.vat_number = ""
    tenant.save(update_fields=["vat_number"])
    tax_rate_set(tenant=tenant, actor=ACTOR, at=AT, country="FR", tax_category="standard", rate="20")
    draft = issue(_dupont(tenant), [line("service", "fleet-platform", "100.00")], finalize=False)
    # when
    response = api.post(f"/api/v1/invoices/{draft.pk}/finalize", format="json")
    # then: 422, naming what is missing, and the draft stays a draft without a number
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "einvoice_incomplete"
    assert [(e["field"], e["code"]) for e in body["errors"]] == [("seller.vat_number", "required")]
    assert "even with a company registration number" in body["errors"][0]["message"]
    draft.refresh_from_db()
    assert (draft.status, draft.number) == (InvoiceStatus.DRAFT, "")


def test_the_api_names_every_missing_field_of_seller_and_buyer(tenant: Tenant, api: APIClient) -> None:
    tenant.legal_name, tenant.city, tenant.billing_email = "", "", ""
    tenant.save()
    tax_rate_set(tenant=tenant, actor=ACTOR, at=AT, country="FR", tax_category="standard", rate="20")
    customer = buyer(tenant, "nowhere", address={"address_line1": "", "postal_code": "", "city": ""})
    draft = issue(customer, [line("service", "fleet-platform", "100.00")], finalize=False)
    body = api.post(f"/api/v1/invoices/{draft.pk}/finalize", format="json").json()
    assert [e["field"] for e in body["errors"]] == [
        "seller.legal_name",
        "seller.city",
        "seller.billing_email",
        "buyer.address_line1",
        "buyer.city",
    ]


@pytest.mark.django_db(transaction=True)
def test_an_auto_finalizing_bill_run_fails_the_customers_of_a_seller_without_a_vat_number(
    tenant: Tenant, monkeypatch: Any
) -> None:
    from invoicing import tasks

    monkeypatch.setattr(tasks.invoice_render_task, "delay", lambda pk: None)
    # given: auto-finalize, no VAT number, two customers at 20 %
    tenant.vat_number = ""
    tenant.save(update_fields=["vat_number"])
    InvoicingSettings.objects.create(tenant=tenant, auto_finalize=True)
    monthly_fee_customers(tenant, 2)
    run = BillRun.objects.create(tenant=tenant, billing_date=date(2026, 4, 1))
    # when
    for chunk in bill_run_plan(run=run, at=AT):
        bill_run_chunk(run_id=str(run.pk), customer_ids=chunk, at=AT)
    # then: both failed with the reason, and no invoice (nor number) was made
    run.refresh_from_db()
    assert (run.done, run.failed, run.created, run.status) == (0, 2, 0, "completed_with_errors")
    errors = set(BillRunCustomer.objects.filter(bill_run=run).values_list("outcome", "error"))
    assert errors == {("failed", "Not a valid EN 16931 e-invoice yet, missing: seller.vat_number.")}
    assert not Invoice.objects.filter(tenant=tenant).exists()


def test_an_invoice_credited_before_its_document_was_stored_renders_as_finalized(tenant: Tenant) -> None:
    # given: a 120.00 invoice (100.00 + 20 %), credited 60.00 before its PDF was rendered and stored
    tax_rate_set(tenant=tenant, actor=ACTOR, at=AT, country="FR", tax_category="standard", rate="20")
    invoice = issue(_dupont(tenant), [line("service", "fleet-platform", "100.00")])
    [credited_line] = invoice.lines.all()
    credit_note_create(invoice=invoice, actor=ACTOR, at=AT, lines=[{"line": credited_line.pk, "amount": "50.00"}])
    invoice.refresh_from_db()
    assert (invoice.pdf, invoice.amount_due) == (None, Money("60.00", "EUR"))
    # when: its Factur-X is asked for
    body, _ = invoice_document(invoice, kind="facturx")
    # then: the document as finalized, 120.00 due, no prepayment
    import facturx

    _, xml = facturx.get_xml_from_pdf(body, check_xsd=True)
    root = etree.fromstring(xml)
    summation = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation/"
    assert root.xpath(summation + "ram:DuePayableAmount/text()", namespaces=NS) == ["120.00"]
    assert root.xpath(summation + "ram:TotalPrepaidAmount", namespaces=NS) == []


def test_a_seller_outside_the_eu_has_no_factur_x_until_it_turns_it_on(tenant: Tenant) -> None:
    # given: a US seller, its customer in California at 7.25 % sales tax
    tenant.country, tenant.vat_number = "US", ""
    tenant.save(update_fields=["country", "vat_number"])
    tax_rate_set(tenant=tenant, actor=ACTOR, at=AT, country="US", tax_category="standard", rate="7.25")
    customer = buyer(tenant, "pacific", country="US", currency="USD", timezone="America/Los_Angeles", language="en")
    invoice = issue(customer, [line("service", "fleet-platform", "100.00")])
    # then: the buyer's rate as before (100.00 x 7.25 % = 7.25), finalized without a VAT number,
    # and no Factur-X: a problem naming why
    assert [(t.vat_category, t.amount) for t in invoice.taxes.all()] == [("S", Decimal("7.2500"))]
    with pytest.raises(FacturxNotAvailable, match="outside the EU and has not turned Factur-X on"):
        invoice_document(invoice, kind="facturx")
    pdf, name = invoice_document(invoice, kind="pdf")
    assert (pdf[:4], name) == (b"%PDF", "INV-2026-000001.pdf")
    # when it turns Factur-X on, its next draft is checked as an e-invoice (the VAT number is missing)
    InvoicingSettings.objects.update_or_create(tenant=tenant, defaults={"facturx_outside_eu": True})
    with pytest.raises(Exception, match="missing: seller.vat_number"):
        issue(customer, [line("service", "fleet-platform", "100.00")], on=date(2026, 5, 1))
