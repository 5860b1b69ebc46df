"""One-time fees (pricing.md): a setup or activation fee is billed once per subscription, or once
per device with ``per_device: true``, on the first invoice dated after its trigger (the signature, or
the first activation), and never twice: not when a bill run is run again, not on the next invoices,
and, when its invoice is voided, exactly once more on the invoice made in its place. The database
refuses a fee billed twice (``one_time_fee_once``).

Through the public API, bill runs on Celery. Customer c1 in Paris, billing day 1; VAT 20 % on the
platform fee (standard) and 10 % on the setup fee (reduced)."""

from datetime import date
from typing import Any

import pytest
import time_machine
from django.test import Client
from rest_framework.test import APIClient

from customers.models import Customer
from invoicing.composition import billing_context_load
from invoicing.models import Invoice, InvoiceLine
from invoicing.pdf import invoice_html
from invoicing.services import invoice_generate
from invoicing.tests.billing_api import Capture, bill, eager_celery, get, ok, paris, post, projected, summary, taxes
from subscriptions.errors import OneTimeFeeAlreadyBilled
from subscriptions.models import ServiceCharge
from subscriptions.services import device_event_apply
from tenancy.actors import Actor
from tenancy.models import Tenant

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]
__all__ = ["eager_celery"]
CATALOG_AT = paris(2026, 10, 20, 9)
SIGNED_AT = paris(2026, 11, 1, 9)


def catalog(api: APIClient, *, fee: dict[str, Any], platform_starts_on: str = "subscription_start") -> None:
    """Products ``platform`` (service, standard rate) and ``setup`` (fee, reduced rate), VAT in
    France, plan ``tracker``: 10.00 per device and month, and the setup ``fee`` component."""
    for body in (
        {"code": "platform", "name": "Platform", "kind": "service"},
        {"code": "setup", "name": "Setup fee", "kind": "fee", "tax_category": "reduced"},
    ):
        post(api, CATALOG_AT, "products", body)
    post(api, CATALOG_AT, "tax_rates", {"country": "FR", "tax_category": "standard", "rate": "20"})
    post(api, CATALOG_AT, "tax_rates", {"country": "FR", "tax_category": "reduced", "rate": "10"})
    platform = {"product": "platform", "kind": "service", "per_device": True, "starts_on": platform_starts_on}
    post(
        api,
        CATALOG_AT,
        "plans",
        {
            "code": "tracker",
            "name": "Tracker",
            "components": [{**platform, "charge": {"model": "flat", "amount": "10.00"}}, {"product": "setup", **fee}],
            "prices": [{"currency": "EUR"}],
        },
    )
    customer = {"external_id": "c1", "name": "C1", "email": "c1@x.test", "currency": "EUR", "country": "FR"}
    post(api, CATALOG_AT, "customers", {**customer, "timezone": "Europe/Paris", "billing_day": 1})


def sign(api: APIClient, devices: tuple[str, ...] = ("d1", "d2")) -> None:
    """Subscription s1 of c1 to ``tracker``, signed on 1 November 2026 at 09:00 (Paris), from that day."""
    body = {
        "external_id": "s1",
        "customer": "c1",
        "plan": "tracker",
        "signed_at": SIGNED_AT.isoformat(),
        "devices": [{"device_id": d} for d in devices],
    }
    post(api, SIGNED_AT, "subscriptions", body)


def activate(tenant: Tenant, device: str, at: Any) -> None:
    with time_machine.travel(at, tick=False):
        device_event_apply(
            tenant=tenant, device_id=device, event_type="device.activated", occurred_at=at, actor=Actor.system("tests")
        )


def fee_rows(**filters: Any) -> list[tuple[str, str | None, bool]]:
    """The one-time fees of the ledger: (amount, device, released)."""
    return [
        (f"{c.amount:.2f}", c.device.device_id if c.device else None, c.released_at is not None)
        for c in ServiceCharge.objects.filter(source="one_time", **filters).select_related("device").order_by("id")
    ]


def test_a_setup_fee_is_billed_once_on_the_first_invoice_after_the_signature(
    api: APIClient, django_capture_on_commit_callbacks: Capture
) -> None:
    # given: a setup fee of 15.00 per subscription, from the signature (the defaults)
    catalog(api, fee={"kind": "fee", "price": "15.00"})
    assert get(api, CATALOG_AT, "plans/tracker")["components"][1] == {
        "product": "setup",
        "kind": "fee",
        "position": 1,
        "per_device": False,
        "starts_on": "subscription_start",
    }
    sign(api)
    # the projected invoice of 1 December shows it from the signature on
    assert projected(api, paris(2026, 11, 20, 12)) == [
        ("service", "platform", "d1,d2", "20.00"),  # December in advance, 2 x 10.00
        ("fee", "setup", "", "15.00"),  # once for the subscription
    ]

    # when
    december = bill(api, paris(2026, 12, 1, 6), "2026-12-01", django_capture_on_commit_callbacks)

    # then: billed on the first invoice after the signature, taxed at its product's rate
    assert summary(december) == [
        ("service", "platform", "d1,d2", "20.00"),  # 2 x 10.00
        ("fee", "setup", "", "15.00"),  # 1 x 15.00
    ]
    [fee] = [line for line in december["lines"] if line["type"] == "fee"]
    assert (fee["description"], fee["quantity"], fee["unit_amount"], fee["tax_category"]) == (
        "Setup fee",
        "1",
        "15.00",
        "reduced",
    )
    # reduced 10 % x 15.00 = 1.50; standard 20 % x 20.00 = 4.00; 35.00 + 5.50 = 40.50
    assert sorted(taxes(december)) == [("reduced", "15.00", "1.50"), ("standard", "20.00", "4.00")]
    assert (december["net_total"], december["total"]) == ("35.00", "40.50")
    assert fee_rows() == [("15.00", None, False)]

    # a run of the same date again creates nothing; the next invoices and projections leave it out
    assert bill(api, paris(2026, 12, 1, 7), "2026-12-01", django_capture_on_commit_callbacks)["id"] == december["id"]
    assert projected(api, paris(2026, 12, 10, 12)) == [("service", "platform", "d1,d2", "20.00")]
    january = bill(api, paris(2027, 1, 1, 6), "2027-01-01", django_capture_on_commit_callbacks)
    assert summary(january) == [("service", "platform", "d1,d2", "20.00")]  # January in advance only
    assert fee_rows() == [("15.00", None, False)]


def test_a_voided_invoice_releases_its_fee_and_the_invoice_made_again_bills_it_once(
    api: APIClient, django_capture_on_commit_callbacks: Capture
) -> None:
    # given: the 1 December invoice billed the setup fee
    catalog(api, fee={"kind": "fee", "price": "15.00"})
    sign(api)
    first = bill(api, paris(2026, 12, 1, 6), "2026-12-01", django_capture_on_commit_callbacks)
    assert ("fee", "setup", "", "15.00") in summary(first)

    # when: it is voided, and the date billed again
    with time_machine.travel(paris(2026, 12, 2, 10), tick=False):
        voided = ok(api.post(f"/api/v1/invoices/{first['id']}/void", {"reason": "Wrong address"}, format="json"))
    assert voided["status"] == "void"
    assert fee_rows() == [("15.00", None, True)]  # released, kept
    again = bill(api, paris(2026, 12, 2, 11), "2026-12-01", django_capture_on_commit_callbacks)

    # then: the invoice made in its place bills it, once
    assert again["id"] != first["id"]
    assert summary(again) == [("service", "platform", "d1,d2", "20.00"), ("fee", "setup", "", "15.00")]
    assert fee_rows() == [("15.00", None, True), ("15.00", None, False)]
    # and no later run bills it again
    assert bill(api, paris(2026, 12, 2, 12), "2026-12-01", django_capture_on_commit_callbacks)["id"] == again["id"]
    january = bill(api, paris(2027, 1, 1, 6), "2027-01-01", django_capture_on_commit_callbacks)
    assert [line["type"] for line in january["lines"]] == ["service"]
    assert InvoiceLine.objects.filter(type="fee", invoice__status="draft").count() == 1


def test_an_activation_fee_per_device_is_billed_after_each_device_is_activated(
    api: APIClient, tenant: Tenant, django_capture_on_commit_callbacks: Capture
) -> None:
    # given: 15.00 per device, on its activation; the platform fee also waits for the activation
    catalog(
        api,
        fee={"kind": "fee", "price": "15.00", "per_device": True, "starts_on": "activation"},
        platform_starts_on="activation",
    )
    sign(api, devices=("A", "B"))
    activate(tenant, "A", paris(2026, 11, 1, 9))  # the day of signature, from 09:00: 30 of 30 days

    # when / then: A's fee on the first invoice after its activation, B's none yet
    december = bill(api, paris(2026, 12, 1, 6), "2026-12-01", django_capture_on_commit_callbacks)
    assert summary(december) == [
        ("service", "platform", "A", "10.00"),  # 1-30 November, 10.00 x 30/30
        ("service", "platform", "A", "10.00"),  # December in advance
        ("fee", "setup", "A", "15.00"),  # 1 x 15.00
    ]
    # B is activated on 16 December: its fee on the 1 January invoice, A's not again
    activate(tenant, "B", paris(2026, 12, 16, 8))
    assert projected(api, paris(2026, 12, 20, 12))[-1] == ("fee", "setup", "B", "15.00")
    january = bill(api, paris(2027, 1, 1, 6), "2027-01-01", django_capture_on_commit_callbacks)
    assert summary(january) == [
        ("service", "platform", "B", "5.16"),  # 16-31 December, 10.00 x 16/31 = 5.161... -> 5.16
        ("service", "platform", "A,B", "20.00"),  # January in advance, 2 x 10.00
        ("fee", "setup", "B", "15.00"),
    ]
    assert fee_rows() == [("15.00", "A", False), ("15.00", "B", False)]


def test_an_invoice_that_would_bill_a_fee_billed_meanwhile_is_refused_by_the_database(
    api: APIClient, tenant: Tenant
) -> None:
    # given: the 1 January invoice composed from what was read before the 1 December one was written
    # (two runs racing, a stale worker): both bill the setup fee
    catalog(api, fee={"kind": "fee", "price": "15.00"})
    sign(api)
    customer = Customer.objects.get(tenant=tenant, external_id="c1")
    stale = billing_context_load(tenant=tenant, customers=[customer], billing_date=date(2027, 1, 1))
    december = invoice_generate(customer=customer, billing_date=date(2026, 12, 1), at=paris(2026, 12, 1, 6))
    assert december is not None
    assert december.lines.filter(type="fee").count() == 1

    # when / then: the second is not written, whatever the date
    with pytest.raises(OneTimeFeeAlreadyBilled, match="A one-time fee of this invoice was billed meanwhile."):
        invoice_generate(customer=customer, billing_date=date(2027, 1, 1), at=paris(2027, 1, 1, 6), context=stale)
    assert Invoice.objects.filter(issue_date=date(2027, 1, 1)).count() == 0
    assert fee_rows() == [("15.00", None, False)]
    # read afresh, the 1 January invoice leaves it out
    january = invoice_generate(customer=customer, billing_date=date(2027, 1, 1), at=paris(2027, 1, 1, 6))
    assert january is not None
    assert list(january.lines.values_list("type", flat=True)) == ["service"]


def test_the_fee_line_is_on_the_invoice_document_and_its_back_office_page(
    api: APIClient,
    tenant: Tenant,
    client: Client,
    make_staff: Any,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    catalog(api, fee={"kind": "fee", "price": "15.00"})
    sign(api)
    december = bill(api, paris(2026, 12, 1, 6), "2026-12-01", django_capture_on_commit_callbacks)
    invoice = Invoice.objects.get(pk=december["id"])

    # the document (in the customer's language, English here) lists it with the fees and credits
    html = invoice_html(invoice)
    assert "Fees, credits and adjustments" in html
    assert "Setup fee" in html
    assert "€15.00" in html
    # the back-office page: the Fees and credits leg, with its subtotal
    client.force_login(make_staff(tenant))
    page = client.get(f"/app/billing/invoices/{invoice.pk}/").content.decode()
    assert "Fees and credits" in page
    assert "Setup fee" in page
    assert "15.00" in page


def test_a_voided_invoice_gives_back_the_change_charges_it_billed(
    api: APIClient, django_capture_on_commit_callbacks: Capture
) -> None:
    # given: d3 added on 16 December: 16-31 December, 10.00 x 16/31 = 5.161... -> 5.16, billed on 1 January
    catalog(api, fee={"kind": "fee", "price": "15.00"})
    sign(api)
    bill(api, paris(2026, 12, 1, 6), "2026-12-01", django_capture_on_commit_callbacks)
    post(
        api,
        paris(2026, 12, 16, 10),
        "subscriptions/s1/changes",
        {"action": "add_devices", "devices": [{"device_id": "d3"}]},
    )
    first = bill(api, paris(2027, 1, 1, 6), "2027-01-01", django_capture_on_commit_callbacks)
    change_line = ("service", "platform", "d3", "5.16")
    assert change_line in summary(first)

    # when: that invoice is voided and the date billed again
    with time_machine.travel(paris(2027, 1, 2, 10), tick=False):
        ok(api.post(f"/api/v1/invoices/{first['id']}/void", {"reason": "Wrong address"}, format="json"))
    again = bill(api, paris(2027, 1, 2, 11), "2027-01-01", django_capture_on_commit_callbacks)

    # then: the change's charge is billed by the invoice made in its place, once
    assert summary(first) == [("service", "platform", "d1,d2,d3", "30.00"), change_line]  # January: 3 x 10.00
    assert summary(again) == summary(first)
    february = bill(api, paris(2027, 2, 1, 6), "2027-02-01", django_capture_on_commit_callbacks)
    assert summary(february) == [("service", "platform", "d1,d2,d3", "30.00")]


def test_a_fee_per_device_is_billed_once_per_device_even_if_it_leaves_and_comes_back(
    api: APIClient, django_capture_on_commit_callbacks: Capture
) -> None:
    # given: 15.00 per device from the signature (from its addition for a device added later)
    catalog(api, fee={"kind": "fee", "price": "15.00", "per_device": True})
    sign(api)
    december = bill(api, paris(2026, 12, 1, 6), "2026-12-01", django_capture_on_commit_callbacks)
    assert ("fee", "setup", "d1,d2", "30.00") in summary(december)  # 2 x 15.00

    # when: d2 is removed on 5 December and added again on 10 December, with a new device d3
    post(api, paris(2026, 12, 5, 10), "subscriptions/s1/changes", {"action": "remove_devices", "device_ids": ["d2"]})
    devices = [{"device_id": "d2"}, {"device_id": "d3"}]
    post(api, paris(2026, 12, 10, 10), "subscriptions/s1/changes", {"action": "add_devices", "devices": devices})
    january = bill(api, paris(2027, 1, 1, 6), "2027-01-01", django_capture_on_commit_callbacks)

    # then: d3 pays its fee; d2 has paid its own already
    assert [line for line in summary(january) if line[0] == "fee"] == [("fee", "setup", "d3", "15.00")]
    assert fee_rows() == [("15.00", "d1", False), ("15.00", "d2", False), ("15.00", "d3", False)]
