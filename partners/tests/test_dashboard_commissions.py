"""The partner's commissions: a bar per month over 12 months with the figures in a table, the
current month accrued so far, and each statement's PDF and CSV; another partner's statement is not
found."""

import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.test import Client
from djmoney.money import Money

from catalog.models import Plan
from customers.models import Customer, Partner
from invoicing.models import Invoice
from partners.models import PartnerUser
from partners.statements import statements_build
from partners.tests.dashboard import ACTOR, make_partner, make_partner_user, partner_client, partner_customer
from payments.ledger import payment_record
from subscriptions.tests.shop import shop_catalog
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db

ORDERED = datetime(2026, 5, 10, 8, 0, tzinfo=UTC)
PAID = datetime(2026, 5, 12, 8, 0, tzinfo=UTC)
JUNE = datetime(2026, 6, 15, 8, 0, tzinfo=UTC)
ADDRESS = {"name": "Alpha", "line1": "4 rue des Docks", "line2": "", "postal_code": "69009", "city": "Lyon"}


@pytest.fixture
def partner(tenant: Tenant) -> Partner:
    return make_partner(tenant)  # hardware 5 %, service 20 %, usage 10 %


@pytest.fixture
def user(partner: Partner) -> PartnerUser:
    return make_partner_user(partner, email="lea@alpnet.test", role="sales")


def _order_and_pay(tenant: Tenant, partner: Partner, user: PartnerUser) -> Invoice:
    """2 trackers at 240.00 ordered on 10 May (net 480.00, total 576.00), paid in full on 12 May."""
    plan = shop_catalog(tenant, self_service=False)
    Plan.objects.filter(pk=plan.pk).update(partner_visible=True)
    alpha: Customer = partner_customer(tenant, partner, "alpha", "Alpha Logistique")
    client = partner_client(user)
    with time_machine.travel(ORDERED, tick=False):
        body = {"plan": "fleet-shop", "quantity": "2", "country": "FR", **ADDRESS}
        assert client.post("/partners/customers/alpha/subscribe/", body).status_code == 302
    invoice = Invoice.objects.get(tenant=tenant, customer=alpha)
    assert invoice.total.amount == Decimal("576.00")
    with time_machine.travel(PAID, tick=False):
        payment_record(
            customer=alpha,
            amount=Money("576.00", "EUR"),
            method="bank_transfer",
            received_at=PAID,
            actor=ACTOR,
            at=PAID,
            invoice=invoice,
        )
    return invoice


def _chart(page: str) -> dict[str, object]:
    found = re.search(r'<script id="portal-chart-data" type="application/json">(.*?)</script>', page, re.S)
    assert found is not None
    data: dict[str, object] = json.loads(found.group(1))
    return data


def test_the_month_so_far_then_its_statement_with_its_documents(
    tenant: Tenant, partner: Partner, user: PartnerUser
) -> None:
    _order_and_pay(tenant, partner, user)
    client = partner_client(user)
    # in May: 480.00 x 5 % = 24.00 accrued so far
    with time_machine.travel(datetime(2026, 5, 20, 8, 0, tzinfo=UTC), tick=False):
        page = client.get("/partners/commissions/").content.decode()
    row = page.split('data-month="2026-05"')[1].split("</tr>")[0]
    assert "So far this month" in row
    assert "€24.00" in row
    chart = _chart(page)
    assert chart["labels"][0] == "Jun 2025"  # type: ignore[index]
    assert chart["labels"][-1] == "May 2026"  # type: ignore[index]
    assert chart["datasets"] == [{"label": "Commission (EUR)", "data": [0.0] * 11 + [24.0]}]
    assert "No statement yet." in page
    # in June, once May's statement is built: a draft of 24.00 with its documents
    with time_machine.travel(JUNE, tick=False):
        [statement] = statements_build(tenant=tenant, month=date(2026, 5, 1), actor=ACTOR, at=JUNE)
        page = client.get("/partners/commissions/").content.decode()
        assert statement.total == Decimal("24.00")
        row = page.split('data-month="2026-05"')[1].split("</tr>")[0]
        assert "Draft" in row
        assert "€24.00" in row
        assert _chart(page)["datasets"] == [{"label": "Commission (EUR)", "data": [0.0] * 10 + [24.0, 0.0]}]
        pdf = client.get("/partners/statements/%s/pdf" % statement.pk)
        csv = client.get("/partners/statements/%s/csv" % statement.pk)
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")
    assert pdf["Content-Disposition"] == 'attachment; filename="commission-alpnet-2026-05-eur.pdf"'
    lines = csv.content.decode().splitlines()
    assert lines[0] == "invoice,customer,leg,net_collected,rate,amount"
    assert lines[1].endswith(",alpha,hardware,480.00,5,24.00")
    # another partner of the tenant gets a 404 for this statement
    other = make_partner_user(make_partner(tenant, code="rival", name="Rival"), email="x@rival.test")
    assert partner_client(other).get("/partners/statements/%s/pdf" % statement.pk).status_code == 404
    assert Client().get("/partners/commissions/").status_code == 302
