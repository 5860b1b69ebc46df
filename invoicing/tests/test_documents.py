"""Invoice documents: the EN 16931 CII XML, the Factur-X PDF, the HTML in the customer's language
and the invoice e-mail, on the Smart Fleet invoice of 1 April 2026 (specs/billing.md)."""

import io
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import facturx
import pypdfium2
import pytest
from django.core import mail
from lxml import etree
from pypdf import PdfReader

from billing_platform.money import round_minor
from catalog.vat import exemption_reason, rated_vat_category
from customers.models import Customer
from customers.tests.factories import dupont
from invoicing.documents import invoice_render_and_send
from invoicing.errors import InvalidInvoiceTransition
from invoicing.mail import invoice_send
from invoicing.models import Invoice, InvoiceKind, InvoiceLine, InvoiceStatus, InvoiceTax
from invoicing.pdf import invoice_cii_xml, invoice_facturx_pdf, invoice_html, invoice_pdf
from tenancy.actors import Actor
from tenancy.models import Tenant
from tenancy.services import tenant_seller_update

PARIS = ZoneInfo("Europe/Paris")
NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
}
SUMMATION = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation/"
NNBSP = "\u202f"  # Babel's thousands separator in fr_FR: 3 800


def paris(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=PARIS)


@pytest.fixture
def tenant(make_tenant: Callable[..., Tenant]) -> Tenant:
    """A tenant that has not filled in its seller identity: the documents leave out what it lacks
    (these documents are written straight to the database; finalizing one checks it first)."""
    return make_tenant("acme", name="Acme Telematics", seller=False)


@pytest.fixture
def customer(tenant: Tenant) -> Customer:
    return dupont(tenant, at=paris(2026, 3, 10, 9), tax_id="FR40303265045", billing_day=None)


def _invoice(
    customer: Customer, lines: list[dict[str, Any]], taxes: list[tuple[str, str, str, str]], **fields: Any
) -> Invoice:
    """An invoice written straight to the database: totals as the composition stores them."""
    signed = sum((Decimal(x["amount"]) * (-1 if x["type"] == "credit" else 1) for x in lines), Decimal(0))
    tax = sum((Decimal(t[3]) for t in taxes), Decimal(0))
    defaults: dict[str, Any] = {
        "kind": InvoiceKind.INVOICE,
        "status": InvoiceStatus.FINALIZED,
        "number": "INV-2026-000001",
        "number_year": 2026,
        "number_sequence": 1,
        "issue_date": date(2026, 4, 1),
        "currency": "EUR",
        "language": customer.language,
        "net_total": signed,
        "tax_total": tax,
        "total": signed + tax,
        "amount_due": signed + tax,
    }
    defaults.update(fields)
    invoice = Invoice.objects.create(tenant=customer.tenant, customer=customer, **defaults)
    for position, line in enumerate(lines):
        data = {"tax_category": "standard", "unit_amount": None, "devices": [], "detail": {}, **line}
        data["quantity"], data["amount"] = Decimal(data["quantity"]), Decimal(data["amount"])
        if data["unit_amount"] is not None:
            data["unit_amount"] = Decimal(data["unit_amount"])
        InvoiceLine.objects.create(tenant=customer.tenant, invoice=invoice, position=position, **data)
    for category, rate, base, amount in taxes:
        code = rated_vat_category(category)
        InvoiceTax.objects.create(
            tenant=customer.tenant,
            invoice=invoice,
            category=category,
            vat_category=code,
            exemption_reason=exemption_reason(code, language=invoice.language),
            rate=Decimal(rate),
            base=Decimal(base),
            amount=Decimal(amount),
        )
    return invoice


SMART_FLEET_APRIL_LINES: list[dict[str, Any]] = [
    {
        "type": "hardware",
        "product": "eld-200",
        "description": "ELD-200 tracker",
        "qualifiers": {"instalment": 1, "of": 12},
        "quantity": "3",
        "unit_amount": "20.00",
        "amount": "60.00",
        "devices": ["A", "B", "C"],
        "detail": {"instalment": 1, "instalments": 12, "source": "plan"},
    },
    {
        "type": "service",
        "product": "fleet-platform",
        "description": "Fleet platform",
        "qualifiers": {"from": "2026-03-15", "to": "2026-04-01", "days": 17, "days_in_period": 31},
        "quantity": "1",
        "unit_amount": "25.00",
        "amount": "13.71",
        "period_start": paris(2026, 3, 15, 9),
        "period_end": paris(2026, 4, 1),
        "devices": ["A"],
        "detail": {"days": 17, "days_in_period": 31, "fraction": "0.548387096774"},
    },
    {
        "type": "service",
        "product": "fleet-platform",
        "description": "Fleet platform",
        "qualifiers": {"from": "2026-03-20", "to": "2026-04-01", "days": 12, "days_in_period": 31},
        "quantity": "1",
        "unit_amount": "25.00",
        "amount": "9.68",
        "period_start": paris(2026, 3, 20, 14),
        "period_end": paris(2026, 4, 1),
        "devices": ["B"],
        "detail": {"days": 12, "days_in_period": 31, "fraction": "0.387096774194"},
    },
    {
        "type": "service",
        "product": "fleet-platform",
        "description": "Fleet platform",
        "quantity": "2",
        "unit_amount": "25.00",
        "amount": "50.00",
        "period_start": paris(2026, 4, 1),
        "period_end": paris(2026, 5, 1),
        "devices": ["A", "B"],
        "detail": {"model": "flat", "source": "plan"},
    },
    {
        "type": "usage",
        "product": "data-overage",
        "description": "Data overage",
        "quantity": "1752",
        "amount": "17.52",
        "period_start": paris(2026, 3, 1),
        "period_end": paris(2026, 4, 1),
        "detail": {
            "meter": "data_mb",
            "metered_quantity": "3800",
            "allowance": "2048",
            "billable": "1752",
            "devices": 2,
            "included_per_device": "1024",
            "model": "graduated",
            "quantity": "1752",
            "tiers": [
                {
                    "tier": 1,
                    "from": "0",
                    "up_to": "10000",
                    "units": "1752",
                    "unit_amount": "0.010",
                    "flat_amount": "0",
                    "amount": "17.520",
                },
                {
                    "tier": 2,
                    "from": "10000",
                    "up_to": None,
                    "units": "0",
                    "unit_amount": "0.005",
                    "flat_amount": "0",
                    "amount": "0",
                },
            ],
            "amount": "17.520",
        },
    },
]
# 60.00 + 13.71 + 9.68 + 50.00 + 17.52 = 150.91; VAT 20 % of 150.91 = 30.182 -> 30.18; 181.09.
SMART_FLEET_APRIL_TAXES = [("standard", "20.0000", "150.91", "30.18")]


@pytest.fixture
def april_invoice(customer: Customer) -> Invoice:
    return _invoice(customer, SMART_FLEET_APRIL_LINES, SMART_FLEET_APRIL_TAXES)


def _parse(xml: bytes) -> Any:
    return etree.fromstring(xml)


def _text(root: Any, path: str) -> str:
    [value] = root.xpath(path + "/text()", namespaces=NS)
    return str(value)


def _assert_en16931_arithmetic(root: Any) -> None:
    """The EN 16931 calculation rules the XSD cannot check (BR-CO-10, -13, -14, -15, -16, BR-S-08)."""
    items = root.xpath("//ram:IncludedSupplyChainTradeLineItem", namespaces=NS)
    line_totals: list[Decimal] = []
    bases: dict[tuple[str, Decimal], Decimal] = defaultdict(Decimal)
    for item in items:
        total = Decimal(_text(item, ".//ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount"))
        quantity = Decimal(_text(item, ".//ram:BilledQuantity"))
        price = Decimal(_text(item, ".//ram:NetPriceProductTradePrice/ram:ChargeAmount"))
        assert price >= 0  # BR-27
        assert round_minor(quantity * price, "EUR") == total
        code = _text(item, ".//ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax/ram:CategoryCode")
        rate = Decimal(
            _text(item, ".//ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax/ram:RateApplicablePercent")
        )
        bases[(code, rate)] += total
        line_totals.append(total)
    line_total = Decimal(_text(root, SUMMATION + "ram:LineTotalAmount"))
    tax_basis = Decimal(_text(root, SUMMATION + "ram:TaxBasisTotalAmount"))
    tax_total = Decimal(_text(root, SUMMATION + "ram:TaxTotalAmount"))
    grand_total = Decimal(_text(root, SUMMATION + "ram:GrandTotalAmount"))
    prepaid = root.xpath(SUMMATION + "ram:TotalPrepaidAmount/text()", namespaces=NS)
    due = Decimal(_text(root, SUMMATION + "ram:DuePayableAmount"))
    assert sum(line_totals, Decimal(0)) == line_total
    assert tax_basis == line_total
    assert tax_basis + tax_total == grand_total
    assert grand_total - Decimal(prepaid[0] if prepaid else 0) == due
    breakdown_tax = Decimal(0)
    for tax in root.xpath("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax", namespaces=NS):
        code, rate = _text(tax, "ram:CategoryCode"), Decimal(_text(tax, "ram:RateApplicablePercent"))
        base, amount = Decimal(_text(tax, "ram:BasisAmount")), Decimal(_text(tax, "ram:CalculatedAmount"))
        assert base == bases.pop((code, rate))
        assert amount == round_minor(base * rate / 100, "EUR")
        if code == "E":
            assert rate == 0
            assert tax.xpath("ram:ExemptionReason/text()", namespaces=NS)
        breakdown_tax += amount
    assert not bases, "lines without a VAT breakdown: %s" % bases
    assert breakdown_tax == tax_total


# --- CII XML ---------------------------------------------------------------------------------------


def test_cii_xml_passes_the_en16931_xsd_with_the_smart_fleet_totals(april_invoice: Invoice) -> None:
    # when
    xml = invoice_cii_xml(april_invoice)
    # then: the Factur-X EN16931 XSD accepts it (it raises otherwise)
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931") is True
    root = _parse(xml)
    assert facturx.get_facturx_level(root) == "en16931"
    assert _text(root, "//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID") == "urn:cen.eu:en16931:2017"
    assert _text(root, "//rsm:ExchangedDocument/ram:ID") == "INV-2026-000001"
    assert _text(root, "//rsm:ExchangedDocument/ram:TypeCode") == "380"
    assert _text(root, "//rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString") == "20260401"
    # 60.00 + 13.71 + 9.68 + 50.00 + 17.52 = 150.91; + 30.18 VAT = 181.09
    line_totals = root.xpath(
        "//ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount/text()", namespaces=NS
    )
    assert line_totals == ["60.00", "13.71", "9.68", "50.00", "17.52"]
    assert _text(root, SUMMATION + "ram:LineTotalAmount") == "150.91"
    assert _text(root, SUMMATION + "ram:TaxBasisTotalAmount") == "150.91"
    assert _text(root, SUMMATION + "ram:TaxTotalAmount") == "30.18"
    assert root.xpath(SUMMATION + "ram:TaxTotalAmount/@currencyID", namespaces=NS) == ["EUR"]
    assert _text(root, SUMMATION + "ram:GrandTotalAmount") == "181.09"
    assert _text(root, SUMMATION + "ram:DuePayableAmount") == "181.09"
    [tax] = root.xpath("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax", namespaces=NS)
    assert (_text(tax, "ram:CategoryCode"), _text(tax, "ram:RateApplicablePercent")) == ("S", "20.00")
    assert (_text(tax, "ram:BasisAmount"), _text(tax, "ram:CalculatedAmount")) == ("150.91", "30.18")
    _assert_en16931_arithmetic(root)


def test_cii_xml_lines_carry_product_quantity_price_period_and_parties(april_invoice: Invoice) -> None:
    root = _parse(invoice_cii_xml(april_invoice))
    items = root.xpath("//ram:IncludedSupplyChainTradeLineItem", namespaces=NS)
    assert [_text(i, ".//ram:LineID") for i in items] == ["1", "2", "3", "4", "5"]
    assert [_text(i, ".//ram:SellerAssignedID") for i in items] == [
        "eld-200",
        "fleet-platform",
        "fleet-platform",
        "fleet-platform",
        "data-overage",
    ]
    assert [_text(i, ".//ram:BilledQuantity") for i in items] == ["3", "1", "1", "2", "1752"]
    assert {q.get("unitCode") for q in root.xpath("//ram:BilledQuantity", namespaces=NS)} == {"C62"}
    # 3 × 20.00; the prorated fee is 1 × 13.71 (25.00 × 17/31); usage 17.52 / 1752 MB = 0.01
    assert [_text(i, ".//ram:NetPriceProductTradePrice/ram:ChargeAmount") for i in items] == [
        "20.00",
        "13.71",
        "9.68",
        "25.00",
        "0.01",
    ]
    # A's prorated period, in Paris: 15 to 31 March (the period ends at 1 April 00:00, exclusive)
    assert _text(items[1], ".//ram:BillingSpecifiedPeriod/ram:StartDateTime/udt:DateTimeString") == "20260315"
    assert _text(items[1], ".//ram:BillingSpecifiedPeriod/ram:EndDateTime/udt:DateTimeString") == "20260331"
    assert _text(items[0], ".//ram:IncludedNote/ram:Content") == "Appareils\xa0: A, B, C"
    assert _text(root, "//ram:SellerTradeParty/ram:Name") == "Acme Telematics"
    assert _text(root, "//ram:SellerTradeParty/ram:PostalTradeAddress/ram:CountryID") == "FR"
    assert _text(root, "//ram:BuyerTradeParty/ram:Name") == "Transports Dupont"
    assert _text(root, "//ram:BuyerTradeParty/ram:PostalTradeAddress/ram:CountryID") == "FR"
    [vat_id] = root.xpath("//ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID", namespaces=NS)
    assert (vat_id.text, vat_id.get("schemeID")) == ("FR40303265045", "VA")
    assert _text(root, "//ram:InvoiceCurrencyCode") == "EUR"
    # payment terms: 30 days after the issue date
    assert _text(root, "//ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString") == "20260501"


def test_credit_lines_are_negative_and_exempt_lines_get_their_own_breakdown(customer: Customer) -> None:
    # given: 60.00 hardware (S 20 %), a 5.00 proration credit (S 20 %), a 12.00 exempt fee
    invoice = _invoice(
        customer,
        [
            {
                "type": "hardware",
                "product": "eld-200",
                "description": "ELD-200",
                "quantity": "3",
                "unit_amount": "20.00",
                "amount": "60.00",
            },
            {
                "type": "credit",
                "product": "fleet-platform",
                "description": "Unused service, device C",
                "quantity": "1",
                "unit_amount": "5.00",
                "amount": "5.00",
            },
            {
                "type": "fee",
                "product": "training",
                "description": "Driver training",
                "quantity": "1",
                "unit_amount": "12.00",
                "amount": "12.00",
                "tax_category": "exempt",
            },
        ],
        # standard: (60.00 − 5.00) × 20 % = 11.00; exempt: 0
        [("exempt", "0", "12.00", "0.00"), ("standard", "20.0000", "55.00", "11.00")],
    )
    # when
    xml = invoice_cii_xml(invoice)
    # then
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931") is True
    root = _parse(xml)
    credit = root.xpath("//ram:IncludedSupplyChainTradeLineItem", namespaces=NS)[1]
    assert _text(credit, ".//ram:BilledQuantity") == "-1"
    assert _text(credit, ".//ram:NetPriceProductTradePrice/ram:ChargeAmount") == "5.00"
    assert _text(credit, ".//ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount") == "-5.00"
    # 60.00 − 5.00 + 12.00 = 67.00; + 11.00 = 78.00
    assert _text(root, SUMMATION + "ram:LineTotalAmount") == "67.00"
    assert _text(root, SUMMATION + "ram:GrandTotalAmount") == "78.00"
    codes = root.xpath(
        "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:CategoryCode/text()", namespaces=NS
    )
    assert codes == ["E", "S"]
    assert root.xpath(
        "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:ExemptionReason/text()", namespaces=NS
    ) == ["Exonéré de TVA"]
    _assert_en16931_arithmetic(root)


def test_credit_note_has_type_code_381_and_references_the_credited_invoice(
    customer: Customer, april_invoice: Invoice
) -> None:
    # given: a credit note for April's 50.00 service line: 50.00 + 20 % = 60.00
    note = _invoice(
        customer,
        [
            {
                "type": "service",
                "product": "fleet-platform",
                "description": "Fleet platform",
                "quantity": "2",
                "unit_amount": "25.00",
                "amount": "50.00",
                "period_start": paris(2026, 4, 1),
                "period_end": paris(2026, 5, 1),
                "devices": ["A", "B"],
            }
        ],
        [("standard", "20.0000", "50.00", "10.00")],
        kind=InvoiceKind.CREDIT_NOTE,
        number="CN-2026-000001",
        issue_date=date(2026, 4, 3),
        credited_invoice=april_invoice,
        amount_due=Decimal(0),
        reason="Devices returned",
    )
    # when
    xml = invoice_cii_xml(note)
    # then
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931") is True
    root = _parse(xml)
    assert _text(root, "//rsm:ExchangedDocument/ram:TypeCode") == "381"
    assert _text(root, "//ram:InvoiceReferencedDocument/ram:IssuerAssignedID") == "INV-2026-000001"
    assert _text(root, "//ram:InvoiceReferencedDocument/ram:FormattedIssueDateTime/qdt:DateTimeString") == "20260401"
    assert _text(root, SUMMATION + "ram:GrandTotalAmount") == "60.00"
    assert _text(root, SUMMATION + "ram:DuePayableAmount") == "60.00"
    # BR-CO-25: an amount to pay needs a due date or terms; 3 April + 30 days = 3 May
    assert _text(root, "//ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString") == "20260503"
    assert _text(root, "//ram:SpecifiedTradePaymentTerms/ram:Description") == (
        "Imputé sur la facture INV-2026-000001, ou remboursé sous 30 jours à compter de la date d’émission, "
        "au plus tard le 3 mai 2026."
    )
    _assert_en16931_arithmetic(root)
    html = invoice_html(note)
    expected = ["Avoir", "CN-2026-000001", "INV-2026-000001", "1 avril 2026", "Motif\xa0: Devices returned"]
    assert [text for text in expected if text not in html] == []


def test_a_draft_has_no_factur_x_xml(customer: Customer) -> None:
    draft = _invoice(
        customer,
        SMART_FLEET_APRIL_LINES,
        SMART_FLEET_APRIL_TAXES,
        status=InvoiceStatus.DRAFT,
        number="",
        number_year=None,
        number_sequence=None,
    )
    with pytest.raises(InvalidInvoiceTransition, match="A draft has no number: finalize it"):
        invoice_cii_xml(draft)
    # but it prints, marked as a draft
    assert "Brouillon" in invoice_html(draft)


def test_stored_totals_that_disagree_with_the_lines_are_refused(customer: Customer) -> None:
    invoice = _invoice(customer, SMART_FLEET_APRIL_LINES, SMART_FLEET_APRIL_TAXES, total=Decimal("181.10"))
    with pytest.raises(ValueError, match="stored totals 150.91 / 181.10 differ from its lines and taxes"):
        invoice_cii_xml(invoice)


# --- the seller ------------------------------------------------------------------------------------

SELLER = {
    "legal_name": "Smart Fleet Telematics SAS",
    "vat_number": "FR74852379890",
    "legal_registration_id": "852379890",
    "legal_registration_scheme": "0002",
    "address_line1": "12 rue de la Boétie",
    "address_line2": "Bâtiment B",
    "postal_code": "75008",
    "city": "Paris",
    "country": "FR",
    "billing_email": "facturation@smartfleet.test",
}


def _with_seller(invoice: Invoice, **seller: str) -> Invoice:
    """The invoice read again after the tenant's seller identity was set through its service."""
    tenant_seller_update(tenant=invoice.tenant, actor=Actor.system("tests"), at=paris(2026, 3, 1), data=seller)
    return Invoice.objects.select_related("tenant", "customer").get(pk=invoice.pk)


def _children(element: Any) -> list[str]:
    return [etree.QName(child).localname for child in element]


def test_cii_xml_seller_has_vat_id_registration_contact_and_address_in_schema_order(april_invoice: Invoice) -> None:
    # given
    invoice = _with_seller(april_invoice, **SELLER)
    # when
    xml = invoice_cii_xml(invoice)
    # then: the XSD accepts it, and the seller is complete (BR-S-02: a standard-rated line needs BT-31)
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931") is True
    root = _parse(xml)
    [seller] = root.xpath("//ram:SellerTradeParty", namespaces=NS)
    assert _children(seller) == [
        "Name",
        "SpecifiedLegalOrganization",
        "DefinedTradeContact",
        "PostalTradeAddress",
        "URIUniversalCommunication",
        "SpecifiedTaxRegistration",
    ]
    assert _text(seller, "ram:Name") == "Smart Fleet Telematics SAS"
    [registration] = seller.xpath("ram:SpecifiedLegalOrganization/ram:ID", namespaces=NS)
    assert (registration.text, registration.get("schemeID")) == ("852379890", "0002")
    # the tenant's name, which differs from its legal name, is the trading name (BT-28)
    assert _text(seller, "ram:SpecifiedLegalOrganization/ram:TradingBusinessName") == "Acme Telematics"
    assert _text(seller, "ram:DefinedTradeContact/ram:EmailURIUniversalCommunication/ram:URIID") == (
        "facturation@smartfleet.test"
    )
    [address] = seller.xpath("ram:PostalTradeAddress", namespaces=NS)
    assert _children(address) == ["PostcodeCode", "LineOne", "LineTwo", "CityName", "CountryID"]
    assert [child.text for child in address] == ["75008", "12 rue de la Boétie", "Bâtiment B", "Paris", "FR"]
    [vat_id] = seller.xpath("ram:SpecifiedTaxRegistration/ram:ID", namespaces=NS)
    assert (vat_id.text, vat_id.get("schemeID")) == ("FR74852379890", "VA")
    # the buyer is unchanged
    [buyer_vat] = root.xpath("//ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID", namespaces=NS)
    assert buyer_vat.text == "FR40303265045"
    _assert_en16931_arithmetic(root)


def test_cii_xml_seller_without_identity_keeps_name_and_settings_country(april_invoice: Invoice) -> None:
    # given: nothing filled in (the tenant as created)
    root = _parse(invoice_cii_xml(april_invoice))
    [seller] = root.xpath("//ram:SellerTradeParty", namespaces=NS)
    # then: no empty identifiers (they would break the schema), the country from settings
    assert _children(seller) == ["Name", "PostalTradeAddress"]
    assert _text(seller, "ram:Name") == "Acme Telematics"
    assert _children(seller.xpath("ram:PostalTradeAddress", namespaces=NS)[0]) == ["CountryID"]
    assert _text(seller, "ram:PostalTradeAddress/ram:CountryID") == "FR"


def test_cii_xml_seller_partial_identity_passes_the_xsd(april_invoice: Invoice, settings: Any) -> None:
    # given: a registration number without a known register, a city and a country; no VAT number
    settings.TRIPOD = {**getattr(settings, "TRIPOD", {}), "SELLER_COUNTRY": "DE"}
    invoice = _with_seller(april_invoice, legal_registration_id="HRB-12345", address_line1="Hauptstr. 1", city="Köln")
    # when
    xml = invoice_cii_xml(invoice)
    # then
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931") is True
    [seller] = _parse(xml).xpath("//ram:SellerTradeParty", namespaces=NS)
    assert _children(seller) == ["Name", "SpecifiedLegalOrganization", "PostalTradeAddress"]
    [registration] = seller.xpath("ram:SpecifiedLegalOrganization/ram:ID", namespaces=NS)
    assert (registration.text, registration.get("schemeID")) == ("HRB-12345", None)
    # no own country yet: the settings' one
    assert [c.text for c in seller.xpath("ram:PostalTradeAddress/*", namespaces=NS)] == ["Hauptstr. 1", "Köln", "DE"]
    # the tenant's own country wins over the settings
    invoice = _with_seller(invoice, country="at")
    assert (
        _text(_parse(invoice_cii_xml(invoice)), "//ram:SellerTradeParty/ram:PostalTradeAddress/ram:CountryID") == "AT"
    )


def test_french_html_shows_the_sellers_legal_name_address_vat_number_and_registration(
    april_invoice: Invoice,
) -> None:
    html = invoice_html(_with_seller(april_invoice, **SELLER))
    expected = [
        '<p class="name">Smart Fleet Telematics SAS</p>',
        "<p>12 rue de la Boétie</p>",
        "<p>Bâtiment B</p>",
        "<p>75008 Paris</p>",
        "<p>France</p>",
        "<p>N° TVA\xa0: FR74852379890</p>",
        "<p>SIREN\xa0: 852379890</p>",
        "facturation@smartfleet.test",
        '<div class="brand">Acme Telematics</div>',
    ]
    assert [text for text in expected if text not in html] == []


def test_english_html_names_a_registration_without_register_and_hides_what_is_blank(april_invoice: Invoice) -> None:
    Invoice.objects.filter(pk=april_invoice.pk).update(language="en")
    html = invoice_html(_with_seller(april_invoice, legal_registration_id="HRB-12345", country="DE"))
    assert "<p>Registration number: HRB-12345</p>" in html
    assert "<p>Germany</p>" in html
    assert "VAT number" not in html.split("Bill to")[0]  # the seller has none; the buyer's is printed
    assert '<p class="muted">Acme Telematics</p>' not in html  # no legal name: no separate trading name


def test_facturx_pdf_with_a_complete_seller_passes_the_xsd(april_invoice: Invoice) -> None:
    invoice = _with_seller(april_invoice, **SELLER)
    pdf = invoice_facturx_pdf(invoice)
    filename, xml = facturx.get_facturx_xml_from_pdf(pdf, check_xsd=True)
    assert filename == "factur-x.xml"
    assert b"FR74852379890" in xml


# --- PDF and Factur-X -------------------------------------------------------------------------------


def test_facturx_pdf_embeds_the_xml_that_can_be_read_back(april_invoice: Invoice) -> None:
    # when
    pdf = invoice_facturx_pdf(april_invoice)
    # then
    assert pdf.startswith(b"%PDF-")
    filename, xml = facturx.get_facturx_xml_from_pdf(pdf, check_xsd=True)
    assert filename == "factur-x.xml"
    assert xml == invoice_cii_xml(april_invoice)
    # the XMP metadata declares PDF/A-3B and the Factur-X EN 16931 profile
    catalog: Any = PdfReader(io.BytesIO(pdf)).trailer["/Root"]
    xmp = catalog["/Metadata"].get_object().get_data().decode()
    for declared in (
        "<pdfaid:part>3</pdfaid:part>",
        "<pdfaid:conformance>B</pdfaid:conformance>",
        "<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>",
    ):
        assert declared in xmp


def test_page_one_renders_to_a_non_trivial_png(april_invoice: Invoice) -> None:
    # when: page one rendered by PDFium (a wheel, no system tool) at 50 dpi
    document = pypdfium2.PdfDocument(invoice_pdf(april_invoice))
    image = document[0].render(scale=50 / 72).to_pil().convert("L")
    # then: an A4 page at 50 dpi (413 × 585 px) with real ink on it
    assert (abs(image.width - 413), abs(image.height - 585)) <= (2, 2)
    histogram = image.histogram()
    inked = sum(histogram[:200]) / (image.width * image.height)
    assert 0.02 < inked < 0.5, inked
    assert len(image.getcolors(maxcolors=256) or []) > 20  # text and shading, not a flat page


# --- HTML -------------------------------------------------------------------------------------------


def test_french_html_shows_the_three_legs_devices_usage_and_totals(april_invoice: Invoice) -> None:
    html = invoice_html(april_invoice)
    expected = [
        '<html lang="fr">',
        "Facture",
        "INV-2026-000001",
        "1 avril 2026",
        # the three legs, then the device lists of each line
        "Matériel",
        "Services",
        "Consommation",
        "Appareils\xa0: A, B, C</div>",
        "Appareil\xa0: A</div>",
        "Appareils\xa0: A, B</div>",
        "Échéance 1 sur 12",
        "Au prorata\xa0: 17 jours sur 31",
        "15–31 mars 2026",
        # usage: metered 3 800, allowance 2 048 (1 024 per device, 2 devices), billable 1 752, tier 0.01 €
        f"3{NNBSP}800",
        f"2{NNBSP}048",
        f"1{NNBSP}024 par appareil, 2 appareils",
        f"1{NNBSP}752",
        "Compteur\xa0: data_mb",
        "0,01\xa0€",
        # taxes and totals
        "20\xa0%",
        "150,91\xa0€",
        "30,18\xa0€",
        "181,09\xa0€",
        "Transports Dupont",
        "N° TVA\xa0: FR40303265045",
        "Acme Telematics",
    ]
    missing = [text for text in expected if text not in html]
    assert missing == []
    assert "instalment" not in html  # the English qualifiers of the composition are not shown


def test_english_html_uses_english_words_and_locale(april_invoice: Invoice) -> None:
    Invoice.objects.filter(pk=april_invoice.pk).update(language="en")
    april_invoice.refresh_from_db()
    html = invoice_html(april_invoice)
    expected = ['<html lang="en">', "Invoice", "1 April 2026", "€181.09", "3,800", "Instalment 1 of 12", "Hardware"]
    assert [text for text in expected if text not in html] == []


# --- e-mail -----------------------------------------------------------------------------------------


def test_invoice_send_mails_the_factur_x_pdf_in_the_customers_language(
    april_invoice: Invoice, mailoutbox: list[Any], settings: Any
) -> None:
    # given
    settings.DEFAULT_FROM_EMAIL = "billing@acme.test"
    april_invoice.pdf = invoice_facturx_pdf(april_invoice)
    april_invoice.save(update_fields=["pdf"])
    # when
    sent = invoice_send(invoice=april_invoice)
    # then
    assert sent is True
    [message] = mailoutbox
    assert message.to == ["compta@dupont.test"]
    assert message.from_email == "billing@acme.test"
    assert message.subject == "Facture INV-2026-000001 de Acme Telematics"
    assert "181,09\xa0€ TTC" in message.body
    assert "Montant à payer\xa0: 181,09\xa0€, avant le 1 mai 2026." in message.body
    [(name, content, mimetype)] = message.attachments
    assert (name, mimetype) == ("INV-2026-000001.pdf", "application/pdf")
    assert content == bytes(april_invoice.pdf)
    assert facturx.get_facturx_xml_from_pdf(content, check_xsd=True)[0] == "factur-x.xml"


def test_invoice_send_refuses_a_draft_and_skips_a_voided_invoice(customer: Customer, mailoutbox: list[Any]) -> None:
    draft = _invoice(
        customer,
        SMART_FLEET_APRIL_LINES,
        SMART_FLEET_APRIL_TAXES,
        status=InvoiceStatus.DRAFT,
        number="",
        number_year=None,
        number_sequence=None,
    )
    with pytest.raises(InvalidInvoiceTransition, match="Only a finalized invoice or credit note can be e-mailed"):
        invoice_send(invoice=draft)
    draft.status = InvoiceStatus.VOID
    assert invoice_send(invoice=draft) is False
    assert mailoutbox == []


def test_render_and_send_stores_the_pdf_once_and_mails_it(april_invoice: Invoice, mailoutbox: list[Any]) -> None:
    invoice_render_and_send(invoice=april_invoice)
    april_invoice.refresh_from_db()
    assert april_invoice.pdf
    assert len(mail.outbox) == 1
    assert mail.outbox[0].attachments[0][0] == "INV-2026-000001.pdf"


def test_a_retried_render_task_never_mails_the_invoice_twice(april_invoice: Invoice, mailoutbox: list[Any]) -> None:
    assert invoice_render_and_send(invoice=april_invoice) is True
    assert invoice_render_and_send(invoice=april_invoice) is False
    april_invoice.refresh_from_db()
    assert april_invoice.sent_at is not None
    assert len(mail.outbox) == 1


def test_a_failed_send_is_released_so_the_retry_sends_it(
    april_invoice: Invoice, mailoutbox: list[Any], monkeypatch: Any
) -> None:
    from invoicing import mail as invoice_mail

    real_send = invoice_mail.invoice_send

    def broken(**kwargs: Any) -> bool:
        raise ConnectionError("SMTP server unavailable")

    monkeypatch.setattr(invoice_mail, "invoice_send", broken)
    with pytest.raises(ConnectionError, match="SMTP server unavailable"):
        invoice_render_and_send(invoice=april_invoice)
    april_invoice.refresh_from_db()
    assert april_invoice.sent_at is None
    monkeypatch.setattr(invoice_mail, "invoice_send", real_send)
    assert invoice_render_and_send(invoice=april_invoice) is True
    assert len(mail.outbox) == 1
