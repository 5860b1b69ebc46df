"""The overview's figures read by hand-written statements agree with the rules the other portal
pages apply row by row: the active devices with ``device_status`` over the devices page's rows, the
next due invoice with the first of ``customer_open_invoices`` (the invoices page's open ones)."""

from datetime import UTC, date, datetime

import pytest

from customers.models import Customer, PortalRole
from payments.tests.factories import invoice_of, pay, payer
from portal.access import PortalContext
from portal.devices import active_device_count, customer_devices, device_status
from portal.invoices import customer_next_due, customer_open_invoices
from subscriptions.models import Device, Subscription
from subscriptions.tests.factories import smart_fleet, smart_fleet_activate
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db


def portal_of(customer: Customer) -> PortalContext:
    return PortalContext(tenant=customer.tenant, customer=customer, user=None, role=PortalRole.ADMIN, return_url="")


def counted_both_ways(portal: PortalContext) -> tuple[int, int]:
    by_rows = sum(device_status(d) == "active" for d in customer_devices(portal))
    return active_device_count(portal), by_rows


def test_active_devices_agree_with_each_devices_status(tenant: Tenant) -> None:
    # given: Smart Fleet, whose platform fee starts on activation: A, B and C bound, none activated
    subscription = smart_fleet(tenant)
    portal = portal_of(subscription.customer)
    assert counted_both_ways(portal) == (0, 0)
    # when: A and B are activated: 2
    smart_fleet_activate(tenant, devices=("A", "B"))
    assert counted_both_ways(portal) == (2, 2)
    # B deactivated, C activated then unbound (a slot again): only A
    at = datetime(2026, 4, 2, 9, tzinfo=UTC)
    Device.objects.filter(subscription=subscription, device_id="B").update(deactivated_at=at)
    Device.objects.filter(subscription=subscription, device_id="C").update(activated_at=at, device_id="")
    assert counted_both_ways(portal) == (1, 1)
    # the plan's fee no longer waits for activation: every bound, live device counts (A, and B stays
    # deactivated; the slot never counts)
    subscription.plan.components.update(starts_on="subscription_start")
    Device.objects.filter(subscription=subscription, device_id="A").update(activated_at=None)
    assert counted_both_ways(portal) == (1, 1)
    # A removed: none; the subscription ended: none either
    Device.objects.filter(subscription=subscription, device_id="A").update(removed_at=at)
    assert counted_both_ways(portal) == (0, 0)
    Device.objects.filter(subscription=subscription, device_id="A").update(removed_at=None)
    assert counted_both_ways(portal) == (1, 1)
    Subscription.objects.filter(pk=subscription.pk).update(status="ended")
    assert counted_both_ways(portal) == (0, 0)


def next_due_both_ways(portal: PortalContext) -> tuple[tuple[str, date | None] | None, tuple[str, date | None] | None]:
    found = customer_next_due(portal)
    first = customer_open_invoices(portal).first()
    return (
        (found.number, found.due_date) if found else None,
        (first.number, first.due_date) if first else None,
    )


def test_the_next_due_invoice_is_the_first_open_one(tenant: Tenant) -> None:
    customer = payer(tenant)
    portal = portal_of(customer)
    assert next_due_both_ways(portal) == (None, None)
    # given: a draft (never shown), then invoices of 100 + 20 % VAT issued on 1 April and 1 February
    # (due 30 days later: 1 May and 3 March)
    invoice_of(customer, "100.00", on=date(2026, 3, 1), finalize=False)
    april = invoice_of(customer, "100.00", on=date(2026, 4, 1))
    february = invoice_of(customer, "100.00", on=date(2026, 2, 1))
    assert next_due_both_ways(portal) == ((february.number, date(2026, 3, 3)),) * 2
    # when: February's is paid in part (50 of 120): still the first due
    pay(customer, "50.00", invoice=february)
    assert next_due_both_ways(portal) == ((february.number, date(2026, 3, 3)),) * 2
    # paid in full (70 more): April's is next
    pay(customer, "70.00", invoice=february)
    assert next_due_both_ways(portal) == ((april.number, date(2026, 5, 1)),) * 2
    # April's paid: nothing is due
    pay(customer, "120.00", invoice=april)
    assert next_due_both_ways(portal) == (None, None)
