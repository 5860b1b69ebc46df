"""The portal's Shop (specs/portal.md, "Shop"): the plans offered for self-service and priced for
the customer, a form prefilled with the customer's address, a confirmation showing what is invoiced
now and each period, then the order with its invoice paid at once. Only admins and billing users
may buy. Transports Dupont (Paris, EUR, VAT 20 %) and plan ``fleet-shop``: ELD-200 at 240.00 per
device at signature, platform 25.00 per device and month from activation."""

import re
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from catalog.services import plan_create
from customers.models import PortalRole
from invoicing.models import Invoice, InvoiceStatus
from portal.shop import _after_order
from subscriptions.models import Device, Order
from subscriptions.tests.shop import ACTOR, CATALOG_AT, shop_catalog, shop_customer
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 3, 10, 10, 0, tzinfo=PARIS)
ORDER = {
    "plan": "fleet-shop",
    "quantity": "2",
    "name": "Transports Dupont, dépôt de Lyon",
    "line1": "4 rue des Docks",
    "line2": "",
    "postal_code": "69009",
    "city": "Lyon",
    "country": "FR",
}


def text(response: Any) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


@pytest.fixture
def shop(tenant: Tenant) -> Any:
    shop_catalog(tenant)
    # not offered in the shop: never shown
    shop_catalog(tenant, self_service=False, code="staff-only")
    # offered, but priced in USD only: Dupont pays in EUR, so it is not shown to Dupont
    usd = plan_create(
        tenant=tenant,
        actor=ACTOR,
        at=CATALOG_AT,
        code="us-fleet",
        name="US fleet",
        components=[{"product": "eld-200", "kind": "hardware", "price": "199.00"}],
        prices=[{"currency": "USD"}],
        self_service=True,
    )
    assert usd.self_service
    return shop_customer(tenant)


@pytest.fixture
def english(portal_client: Any, make_portal_user: Any) -> Any:
    """A portal client of ``customer`` whose user reads English (Dupont's own language is French)."""

    def make(customer: Any, role: str) -> Any:
        return portal_client(customer, user=make_portal_user(customer, role=role, language="en"))

    return make


@time_machine.travel(NOW, tick=False)
def test_the_shop_lists_the_self_service_plans_priced_for_the_customer(shop: Any, english: Any) -> None:
    client = english(shop, PortalRole.BILLING)
    response = client.get("/portal/shop/")
    body = text(response)
    assert response.status_code == 200
    assert "Fleet (shop)" in body
    assert "US fleet" not in body
    assert "staff-only" not in response.content.decode()
    # one device: 240.00 at signature, 25.00 a month from its activation
    assert "€240.00 per device" in body
    assert "€25.00 per device (monthly), from its activation" in body
    # the shipping address is the customer's own
    html = response.content.decode()
    assert 'value="%s"' % shop.address_line1 in html
    assert 'value="%s"' % shop.postal_code in html
    # the menu offers the shop to billing users
    assert 'href="/portal/shop/"' in html


@time_machine.travel(NOW, tick=False)
def test_viewers_cannot_buy(shop: Any, portal_client: Any) -> None:
    client = portal_client(shop, role=PortalRole.VIEWER)
    assert client.get("/portal/shop/").status_code == 403
    assert client.post("/portal/shop/", {**ORDER, "step": "confirm"}).status_code == 403
    assert not Order.objects.exists()


@time_machine.travel(NOW, tick=False)
def test_review_then_confirm_places_the_order_and_sends_to_the_invoice(shop: Any, english: Any) -> None:
    client = english(shop, PortalRole.ADMIN)
    # when: the order is reviewed
    review = client.post("/portal/shop/", {**ORDER, "step": "review"})
    body = text(review)
    # then: now 2 x 240.00 = 480.00 + VAT 20 % 96.00 = 576.00; each month 2 x 25.00 = 50.00
    assert review.status_code == 200
    assert "€480.00" in body
    assert "€96.00" in body
    assert "€576.00" in body
    assert "€50.00 excluding taxes" in body
    assert "4 rue des Docks" in body
    assert not Order.objects.exists()
    # when: confirmed
    response = client.post("/portal/shop/", {**ORDER, "step": "confirm"})
    # then: the order, its 2 slots and its invoice of 576.00, finalized; off to pay it
    order = Order.objects.get()
    assert (order.number, order.quantity, order.placed_by) == ("ORD-000001", 2, client.portal_user.email)
    assert (order.shipping_city, order.shipping_postal_code) == ("Lyon", "69009")
    assert Device.objects.filter(subscription=order.subscription, device_id="").count() == 2
    invoice = Invoice.objects.get(order=order)
    assert invoice.status == InvoiceStatus.FINALIZED
    assert invoice.total.amount == Decimal("576.00")
    assert response.status_code == 302
    assert response["Location"] == _after_order(invoice) == "/portal/invoices/%s/pay/" % invoice.pk
    # the pay page shows the invoice due now
    assert "576" in text(client.get(response["Location"]))
    # when: the same confirmation again (a double click): one order, one invoice, the same way out
    key = re.search(r'name="request_key" value="([0-9a-f]{32})"', review.content.decode())
    assert key is not None
    first = client.post("/portal/shop/", {**ORDER, "step": "confirm", "request_key": key.group(1)})
    again = client.post("/portal/shop/", {**ORDER, "step": "confirm", "request_key": key.group(1)})
    assert Order.objects.count() == 2  # the confirmation without a key above, and this one
    assert first["Location"] == again["Location"]
    assert Invoice.objects.filter(order__request_key=key.group(1)).count() == 1


@time_machine.travel(NOW, tick=False)
def test_bad_input_stays_on_the_form_and_orders_nothing(shop: Any, english: Any) -> None:
    client = english(shop, PortalRole.BILLING)
    too_few = client.post("/portal/shop/", {**ORDER, "quantity": "0", "step": "confirm"})
    assert too_few.status_code == 400
    assert "Ensure this value is greater than or equal to 1." in text(too_few)
    # the service's own check: a French postal code has 5 digits
    bad_code = client.post("/portal/shop/", {**ORDER, "postal_code": "6900", "step": "confirm"})
    assert bad_code.status_code == 400
    assert "A postal code in FR is 5 digits, e.g. 75008." in text(bad_code)
    # a plan not offered to this customer
    hidden = client.post("/portal/shop/", {**ORDER, "plan": "us-fleet", "step": "confirm"})
    assert hidden.status_code == 400
    assert not Order.objects.exists()
    assert not Invoice.objects.exists()


def test_after_the_order_the_customer_pays_the_invoice_or_sees_the_plan() -> None:
    # with no invoice: the plan page, or the portal's home while it has none
    assert _after_order(None) in ("/portal/plan/", "/portal/")


@time_machine.travel(NOW, tick=False)
def test_the_shop_speaks_the_customers_french(shop: Any, portal_client: Any) -> None:
    body = text(portal_client(shop, role=PortalRole.ADMIN).get("/portal/shop/"))
    assert "240,00 € par appareil" in body
    assert "Vérifier la commande" in body
