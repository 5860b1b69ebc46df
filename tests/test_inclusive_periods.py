"""One rule for every period a person reads: it is stored half-open, [start, end), and shown with its
last day, the day before ``end``. A line billing November, [1 Nov, 1 Dec), reads "1–30 Nov 2026" in
its Period column; a fee's first days from 15 November read "15–30 Nov 2026" in its description and
in its Period column alike: on the back-office invoice page, in the PDF and in the Factur-X XML, in
French and in English. The API keeps its instants: ``period_end`` is the period's exclusive end,
the instant the next period starts (specs/billing.md: periods are [D, next D))."""

import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import translation
from lxml import etree
from rest_framework.test import APIClient

from customers.tests.factories import dupont
from invoicing.models import Invoice, InvoiceKind, InvoiceLine, InvoiceStatus, InvoiceTax
from invoicing.pdf import invoice_cii_xml, invoice_context
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
NS = {"ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"}


def paris(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=PARIS)


def december_invoice(tenant: Tenant, language: str) -> Invoice:
    """The invoice of 1 December 2026: Platform for November (2 devices x 10.00), and a third device's
    first days, 15 to 30 November: 16 of 30 days, 10.00 x 16/30 = 5.333... -> 5.33."""
    customer = dupont(tenant, language=language)
    invoice = Invoice.objects.create(
        tenant=tenant,
        customer=customer,
        kind=InvoiceKind.INVOICE,
        status=InvoiceStatus.FINALIZED,
        number="INV-2026-000001",
        number_year=2026,
        number_sequence=1,
        issue_date=date(2026, 12, 1),
        currency="EUR",
        language=language,
        # 20.00 + 5.33 = 25.33; VAT 20 % = 5.066 -> 5.07; 30.40
        net_total=Decimal("25.33"),
        tax_total=Decimal("5.07"),
        total=Decimal("30.40"),
        amount_due=Decimal("30.40"),
    )
    common = {"tenant": tenant, "invoice": invoice, "type": "service", "product": "platform", "description": "Platform"}
    InvoiceLine.objects.create(
        **common,
        position=0,
        period_start=paris(2026, 11, 1),
        period_end=paris(2026, 12, 1),
        quantity=Decimal(2),
        unit_amount=Decimal("10.00"),
        amount=Decimal("20.00"),
        tax_category="standard",
        devices=["d1", "d2"],
    )
    InvoiceLine.objects.create(
        **common,
        position=1,
        # as invoicing.fees writes a proration: local days, "to" exclusive as the period's end
        qualifiers={"from": "2026-11-15", "to": "2026-12-01", "days": 16, "days_in_period": 30},
        period_start=paris(2026, 11, 15),
        period_end=paris(2026, 12, 1),
        quantity=Decimal(1),
        unit_amount=Decimal("10.00"),
        amount=Decimal("5.33"),
        tax_category="standard",
        devices=["d3"],
    )
    InvoiceTax.objects.create(
        tenant=tenant,
        invoice=invoice,
        category="standard",
        rate=Decimal(20),
        base=Decimal("25.33"),
        amount=Decimal("5.07"),
    )
    return invoice


def page_text(client: Client, invoice: Invoice, language: str) -> str:
    body = client.get(f"/app/billing/invoices/{invoice.pk}/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


@pytest.mark.parametrize(
    ("language", "monthly", "first_days", "description"),
    [
        ("en", "1–30 Nov 2026", "15–30 Nov 2026", "Platform, 15–30 Nov 2026 (16/30)"),
        ("fr", "1–30 nov. 2026", "15–30 nov. 2026", "Platform, 15–30 nov. 2026 (16/30)"),
    ],
)
def test_the_back_office_shows_the_last_day_in_the_description_and_the_period_column(
    client: Client,
    tenant: Tenant,
    make_staff: Callable[..., Any],
    language: str,
    monthly: str,
    first_days: str,
    description: str,
) -> None:
    # given
    invoice = december_invoice(tenant, language)
    client.force_login(make_staff(tenant))
    # when
    body = page_text(client, invoice, language)
    # then: the description and its Period column end on the same day, 30 November
    assert f"Platform platform {monthly} 2 " in body
    assert f"{description} platform {first_days} 1 " in body
    assert "2026-12-01" not in body


@pytest.mark.parametrize(
    ("language", "monthly", "first_days", "name"),
    [
        ("en", "1–30 Nov 2026", "15–30 Nov 2026", "Platform, 15–30 Nov 2026 (16/30)"),
        ("fr", "1–30 nov. 2026", "15–30 nov. 2026", "Platform, 15–30 nov. 2026 (16/30)"),
    ],
)
def test_the_pdf_and_the_xml_show_the_same_last_day(
    tenant: Tenant, language: str, monthly: str, first_days: str, name: str
) -> None:
    invoice = december_invoice(tenant, language)
    with translation.override(language):
        [section] = invoice_context(invoice)["sections"]
    assert [row.period for row in section.rows] == [monthly, first_days]
    root = etree.fromstring(invoice_cii_xml(invoice))
    assert root.xpath("//ram:SpecifiedTradeProduct/ram:Name/text()", namespaces=NS) == ["Platform", name]
    # each line's period (BG-26) and the invoice's (BG-14) end on 30 November, inclusive
    line_ends = root.xpath(
        "//ram:IncludedSupplyChainTradeLineItem//ram:BillingSpecifiedPeriod/ram:EndDateTime/*/text()", namespaces=NS
    )
    assert line_ends == ["20261130", "20261130"]
    header_ends = root.xpath(
        "//ram:ApplicableHeaderTradeSettlement/ram:BillingSpecifiedPeriod/ram:EndDateTime/*/text()", namespaces=NS
    )
    assert header_ends == ["20261130"]


def test_the_api_describes_the_last_day_and_keeps_the_exclusive_end_instant(api: APIClient, tenant: Tenant) -> None:
    invoice = december_invoice(tenant, "fr")
    lines = api.get(f"/api/v1/invoices/{invoice.pk}").json()["lines"]
    # the description is in English, the API's language; period_end is 1 December 00:00 in Paris
    assert [(x["description"], x["period_start"], x["period_end"]) for x in lines] == [
        ("Platform", "2026-10-31T23:00:00Z", "2026-11-30T23:00:00Z"),
        ("Platform, 15–30 Nov 2026 (16/30)", "2026-11-14T23:00:00Z", "2026-11-30T23:00:00Z"),
    ]
