"""A shop order's invoice (portal.md, "Shop"): the hardware due at signature, and the setup fees of
the signature, invoiced and finalized at once; the bill runs bill service and usage as usual, and
never those lines again. Transports Dupont (Paris, billing day 1, VAT 20 %) orders plan
``fleet-shop`` (subscriptions.tests.shop) on 10 March 2026, 10:00 Paris."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from invoicing.models import Invoice, InvoiceStatus
from invoicing.services import invoice_generate
from invoicing.services.lifecycle import invoice_void
from invoicing.services.orders import order_place_and_invoice
from subscriptions.models import Device, ServiceCharge
from subscriptions.orders import slot_bind
from subscriptions.services import device_event_apply
from subscriptions.tests.shop import ACTOR, ADDRESS, shop_catalog, shop_customer
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
ORDERED_AT = datetime(2026, 3, 10, 10, 0, tzinfo=PARIS)
APRIL_1 = date(2026, 4, 1)
MAY_1 = date(2026, 5, 1)


def lines(invoice: Invoice) -> list[tuple[str, str, Decimal, Decimal]]:
    return [(x.type, x.product, x.quantity, x.amount) for x in invoice.lines.order_by("position")]


def order(tenant: Tenant, quantity: int = 2, **catalog: object):  # type: ignore[no-untyped-def]
    plan = shop_catalog(tenant, **catalog)  # type: ignore[arg-type]
    customer = shop_customer(tenant)
    with time_machine.travel(ORDERED_AT, tick=False):
        return order_place_and_invoice(
            customer=customer, plan=plan, quantity=quantity, shipping_address=ADDRESS, actor=ACTOR, at=ORDERED_AT
        )


def bill(tenant: Tenant, customer: object, billing_date: date) -> Invoice | None:
    at = datetime(billing_date.year, billing_date.month, billing_date.day, 6, 0, tzinfo=PARIS)
    with time_machine.travel(at, tick=False):
        return invoice_generate(customer=customer, billing_date=billing_date, at=at)  # type: ignore[arg-type]


def test_hardware_paid_at_once_is_invoiced_at_the_order_and_never_by_the_bill_run(tenant: Tenant) -> None:
    # given/when: 2 slots of the ELD-200 at 240.00, paid at once
    placed, invoice = order(tenant, quantity=2)
    # then: 2 x 240.00 = 480.00, VAT 20 % 96.00, total 576.00, finalized, dated the order's day
    assert invoice is not None
    invoice.refresh_from_db()
    assert invoice.order_id == placed.pk
    assert invoice.status == InvoiceStatus.FINALIZED
    assert invoice.number
    assert invoice.issue_date == date(2026, 3, 10)
    assert lines(invoice) == [("hardware", "eld-200", Decimal(2), Decimal("480.00"))]
    assert (invoice.net_total.amount, invoice.tax_total.amount, invoice.total.amount) == (
        Decimal("480.00"),
        Decimal("96.00"),
        Decimal("576.00"),
    )
    [line] = invoice.lines.all()
    assert line.devices == []  # slots: no device ids yet
    assert set(
        Device.objects.filter(subscription=placed.subscription).values_list("hardware_invoiced_by", flat=True)
    ) == {invoice.pk}
    # when: the bill run of 1 April, nothing shipped nor active
    # then: no hardware again, no service for slots: nothing to invoice
    assert bill(tenant, placed.customer, APRIL_1) is None


def test_instalments_first_one_at_the_order_then_the_second_on_the_first_billing_date(tenant: Tenant) -> None:
    # given/when: 240.00 in 12 instalments of 20.00, 2 slots
    placed, invoice = order(tenant, quantity=2, instalments=12)
    # then: instalment 1 of 12 now: 2 x 20.00 = 40.00, VAT 8.00, total 48.00
    assert invoice is not None
    assert lines(invoice) == [("hardware", "eld-200", Decimal(2), Decimal("40.00"))]
    assert invoice.total.amount == Decimal("48.00")
    assert invoice.lines.get().qualifiers == {"instalment": 1, "of": 12}
    # when: 1 April and 1 May
    april = bill(tenant, placed.customer, APRIL_1)
    may = bill(tenant, placed.customer, MAY_1)
    # then: instalment 2 of 12 on 1 April, 3 of 12 on 1 May, 2 x 20.00 each
    assert april is not None
    assert may is not None
    assert lines(april) == [("hardware", "eld-200", Decimal(2), Decimal("40.00"))]
    assert april.lines.get().qualifiers == {"instalment": 2, "of": 12}
    assert may.lines.get().qualifiers == {"instalment": 3, "of": 12}


def test_binding_then_activation_then_the_next_invoice_prorates_service_from_activation(tenant: Tenant) -> None:
    # given: 2 slots ordered 10 March, hardware invoiced at once (480.00)
    placed, _ = order(tenant, quantity=2)
    slots = list(Device.objects.filter(subscription=placed.subscription).order_by("pk"))
    # when: slot 1 shipped as "A" on 12 March, activated 15 March 09:00 Paris; slot 2 not shipped
    shipped = datetime(2026, 3, 12, 16, 0, tzinfo=PARIS)
    slot_bind(
        tenant=tenant,
        subscription=placed.subscription,
        slot_id=slots[0].pk,
        device_id="A",
        device_type="eld",
        shipped_at=shipped,
        actor=ACTOR,
        at=shipped,
    )
    device_event_apply(
        tenant=tenant,
        device_id="A",
        event_type="device.activated",
        occurred_at=datetime(2026, 3, 15, 9, 0, tzinfo=PARIS),
        actor=ACTOR,
    )
    invoice = bill(tenant, placed.customer, APRIL_1)
    # then: service of A from 15 to 31 March, 25.00 x 17/31 = 13.709... -> 13.71, and April in
    # advance 25.00; no hardware (billed at the order); nothing for the slot still open.
    # net 38.71, VAT 7.742 -> 7.74, total 46.45
    assert invoice is not None
    assert sorted(lines(invoice)) == [
        ("service", "fleet-platform", Decimal(1), Decimal("13.71")),
        ("service", "fleet-platform", Decimal(1), Decimal("25.00")),
    ]
    assert (invoice.net_total.amount, invoice.tax_total.amount, invoice.total.amount) == (
        Decimal("38.71"),
        Decimal("7.74"),
        Decimal("46.45"),
    )
    assert all(x.devices == ["A"] for x in invoice.lines.all())


def test_setup_fee_per_device_is_invoiced_at_the_order_once(tenant: Tenant) -> None:
    # given/when: a setup fee of 30.00 per device, 3 slots
    placed, invoice = order(tenant, quantity=3, setup_fee="30.00", setup_per_device=True)
    # then: hardware 3 x 240.00 = 720.00 and setup 3 x 30.00 = 90.00: net 810.00, VAT 162.00, total 972.00
    assert invoice is not None
    assert lines(invoice) == [
        ("hardware", "eld-200", Decimal(3), Decimal("720.00")),
        ("fee", "setup", Decimal(3), Decimal("90.00")),
    ]
    assert invoice.total.amount == Decimal("972.00")
    # one ledger row per slot, 30.00 each
    assert (
        sorted(ServiceCharge.objects.filter(invoiced_by=invoice.pk).values_list("amount", flat=True))
        == [Decimal("30.00")] * 3
    )
    # when: a slot gets its device, activated; the bill run of 1 April
    slot = Device.objects.filter(subscription=placed.subscription).order_by("pk").first()
    assert slot is not None
    at = datetime(2026, 3, 20, 14, 0, tzinfo=PARIS)
    slot_bind(tenant=tenant, subscription=placed.subscription, slot_id=slot.pk, device_id="A", actor=ACTOR, at=at)
    device_event_apply(tenant=tenant, device_id="A", event_type="device.activated", occurred_at=at, actor=ACTOR)
    invoice = bill(tenant, placed.customer, APRIL_1)
    # then: no setup, no hardware; A's service 20-31 March 25.00 x 12/31 = 9.677... -> 9.68 and April 25.00
    assert invoice is not None
    assert sorted(lines(invoice)) == [
        ("service", "fleet-platform", Decimal(1), Decimal("9.68")),
        ("service", "fleet-platform", Decimal(1), Decimal("25.00")),
    ]


def test_the_order_invoice_shares_its_day_with_the_billing_dates_invoice(tenant: Tenant) -> None:
    # given: an order placed on 1 April 10:00 Paris, the customer's billing day
    plan = shop_catalog(tenant)
    customer = shop_customer(tenant)
    at = datetime(2026, 4, 1, 10, 0, tzinfo=PARIS)
    with time_machine.travel(at, tick=False):
        _, invoice = order_place_and_invoice(
            customer=customer, plan=plan, quantity=1, shipping_address=ADDRESS, actor=ACTOR, at=at
        )
    # then: it is dated 1 April, and is not the 1 April invoice the bill run makes or finds
    assert invoice is not None
    assert invoice.issue_date == APRIL_1
    assert invoice.total.amount == Decimal("288.00")  # 240.00 + VAT 48.00
    assert bill(tenant, customer, APRIL_1) is None  # nothing else was due on 1 April


def test_voiding_the_order_invoice_gives_the_hardware_back_to_the_bill_run(tenant: Tenant) -> None:
    # given: 1 slot invoiced at once (240.00), that invoice voided
    placed, invoice = order(tenant, quantity=1)
    assert invoice is not None
    with time_machine.travel(ORDERED_AT, tick=False):
        invoice_void(invoice=invoice, actor=ACTOR, at=ORDERED_AT, reason="ordered by mistake")
    # when: the bill run of 1 April
    april = bill(tenant, placed.customer, APRIL_1)
    # then: the hardware is billed there, 240.00, once
    assert april is not None
    assert lines(april) == [("hardware", "eld-200", Decimal(1), Decimal("240.00"))]


def test_the_same_request_places_one_order_and_one_invoice(tenant: Tenant) -> None:
    plan = shop_catalog(tenant)
    customer = shop_customer(tenant)
    with time_machine.travel(ORDERED_AT, tick=False):
        placed = [
            order_place_and_invoice(
                customer=customer,
                plan=plan,
                quantity=1,
                shipping_address=ADDRESS,
                actor=ACTOR,
                at=ORDERED_AT,
                request_key="3f2a" * 8,
            )
            for _ in range(2)
        ]
    (first, first_invoice), (second, second_invoice) = placed
    assert first.pk == second.pk
    assert first_invoice is not None
    assert second_invoice is not None
    assert first_invoice.pk == second_invoice.pk
    assert Invoice.objects.filter(order__isnull=False).count() == 1
    assert Device.objects.filter(subscription__customer=customer).count() == 1
