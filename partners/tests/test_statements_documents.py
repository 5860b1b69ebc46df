"""A statement's PDF (in the partner's language) and CSV."""

from decimal import Decimal

import pytest

from customers.tests.factories import dupont
from partners.documents import statement_csv, statement_filename, statement_html, statement_pdf
from partners.tests.test_statements import APRIL, build, paris, partner_of, pay, service_invoice
from payments.tests.factories import payer
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db


def test_the_csv_has_one_row_per_line_and_the_pdf_is_in_the_partners_language(tenant: Tenant) -> None:
    first = payer(tenant)
    second = dupont(tenant, external_id="martin", name="Martin SA")
    partner = partner_of(tenant, "alpnet", {"service": "20", "hardware": "5"}, first, second)
    a = service_invoice(first, "100.00")  # total 120.00
    b = service_invoice(second, "33.33")  # total 40.00 (6.666 of VAT -> 6.67)
    pay(a, "120.00", paris(4, 10))
    pay(b, "10.00", paris(4, 12))
    statement = build(tenant, APRIL)["alpnet"]
    # a: 100.00 x 20 % = 20.00; b: 33.33 x 10 / 40.00 = 8.3325 -> 8.33 collected,
    # 33.33 x 20 % x 10 / 40.00 = 1.6665 -> 1.67
    assert statement.total == Decimal("21.67")
    assert statement_csv(statement) == (
        "invoice,customer,leg,net_collected,rate,amount\n"
        f"{a.number},dupont,service,100.00,20,20.00\n"
        f"{b.number},martin,service,8.33,20,1.67\n"
    )
    assert statement_filename(statement, "csv") == "commission-alpnet-2026-04-eur.csv"

    pdf = statement_pdf(statement)
    assert pdf.startswith(b"%PDF")
    assert "Commission statement" in statement_html(statement)
    assert "April 2026" in statement_html(statement)
    partner.language = "fr"
    partner.save(update_fields=["language"])
    statement.partner.refresh_from_db()
    html = statement_html(statement)
    assert "Relevé de commissions" in html
    assert "Avril 2026" in html
    assert "21,67\xa0€" in html or "21,67\u202f€" in html
    assert "Brouillon" in html  # a draft says so
