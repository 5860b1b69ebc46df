"""A partner orders a subscription for its customer on a plan offered to partners, with device
slots, and binds device ids to the slots at shipment: the shop's order (order.created, the hardware
invoiced at signature) placed by the partner user."""

import re
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from catalog.models import Plan
from customers.models import Customer, Partner
from invoicing.models import Invoice, InvoiceStatus
from partners.models import PartnerUser
from partners.tests.dashboard import make_partner, make_partner_user, partner_client, partner_customer
from subscriptions.models import Device, Order
from subscriptions.tests.shop import shop_catalog
from tenancy.models import AuditLogEntry, Tenant

pytestmark = pytest.mark.django_db

ADDRESS = {"name": "Alpha, dépôt", "line1": "4 rue des Docks", "line2": "", "postal_code": "69009", "city": "Lyon"}


@pytest.fixture
def partner(tenant: Tenant) -> Partner:
    return make_partner(tenant)


@pytest.fixture
def user(partner: Partner) -> PartnerUser:
    return make_partner_user(partner, email="lea@alpnet.test", role="sales")


@pytest.fixture
def alpha(tenant: Tenant, partner: Partner) -> Customer:
    return partner_customer(tenant, partner, "alpha", "Alpha Logistique")


@pytest.fixture
def offered(tenant: Tenant) -> Plan:
    """fleet-shop: 240.00 per tracker billed at signature, 25.00 per device and month; VAT 20 %."""
    plan = shop_catalog(tenant, self_service=False)
    Plan.objects.filter(pk=plan.pk).update(partner_visible=True)
    return plan


def _order(client: Client, plan: str = "fleet-shop", quantity: str = "2") -> Any:
    page = client.get("/partners/customers/alpha/subscribe/").content.decode()
    key = re.search(r'name="request_key" value="([0-9a-f]{32})"', page)
    assert key is not None
    body = {"plan": plan, "quantity": quantity, "country": "FR", "request_key": key.group(1), **ADDRESS}
    return client.post("/partners/customers/alpha/subscribe/", body)


def test_ordering_2_devices_signs_a_subscription_with_2_slots_and_invoices_the_hardware(
    tenant: Tenant, alpha: Customer, offered: Plan, user: PartnerUser
) -> None:
    client = partner_client(user)
    page = client.get("/partners/customers/alpha/subscribe/")
    assert page.status_code == 200
    assert "Fleet (shop)" in page.content.decode()
    response = _order(client)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert response["Location"] == "/partners/customers/alpha/"
    order = Order.objects.get(tenant=tenant)
    assert (order.number, order.quantity, order.placed_by, order.shipping_city) == (
        "ORD-000001",
        2,
        "lea@alpnet.test",
        "Lyon",
    )
    # 2 x 240.00 = 480.00, VAT 20 % 96.00: 576.00, finalized at once
    invoice = Invoice.objects.get(order=order)
    assert (invoice.status, invoice.total.amount) == (InvoiceStatus.FINALIZED, Decimal("576.00"))
    assert Device.objects.filter(subscription=order.subscription, device_id="").count() == 2
    detail = client.get("/partners/customers/alpha/").content.decode()
    assert detail.count("Bind a device") == 2


def test_a_plan_not_offered_to_partners_cannot_be_ordered(
    tenant: Tenant, alpha: Customer, offered: Plan, user: PartnerUser
) -> None:
    Plan.objects.filter(pk=offered.pk).update(partner_visible=False)
    client = partner_client(user)
    assert (
        "No plan is offered to partners in EUR yet."
        in client.get("/partners/customers/alpha/subscribe/").content.decode()
    )
    body = {"plan": "fleet-shop", "quantity": "1", "country": "FR", **ADDRESS}
    assert client.post("/partners/customers/alpha/subscribe/", body).status_code == 400
    assert not Order.objects.exists()


def test_binding_a_device_to_a_slot(tenant: Tenant, alpha: Customer, offered: Plan, user: PartnerUser) -> None:
    client = partner_client(user)
    _order(client, quantity="1")
    order = Order.objects.get(tenant=tenant)
    slot = Device.objects.get(subscription=order.subscription)
    url = "/partners/subscriptions/ORD-000001/slots/%s/bind/" % slot.pk
    assert client.get(url).status_code == 200
    assert client.post(url, {"device_id": "  "}).status_code == 400
    response = client.post(url, {"device_id": "ELD-0001", "device_type": "eld-200", "region": ""})
    assert response.status_code == 302
    slot.refresh_from_db()
    assert (slot.device_id, slot.device_type) == ("ELD-0001", "eld-200")
    order.refresh_from_db()
    assert order.status == "fulfilled"
    bound = AuditLogEntry.objects.get(tenant=tenant, action="device.bound")
    assert bound.after is not None
    assert (bound.actor_type, bound.after["device_id"]) == ("partner_user", "ELD-0001")
    # a bound slot takes no other device
    assert client.get(url).status_code == 404
