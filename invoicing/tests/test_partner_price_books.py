"""A bill run prices a partner's customers from the partner's price book, at no extra cost per customer."""

from collections.abc import Iterator
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from djmoney.money import Money

from billing_platform.celery import app as celery_app
from catalog.models import Plan
from catalog.services import price_version_create
from customers.models import Customer, Partner
from customers.services import customer_create
from invoicing.models import BillRun, BillRunCustomer, Invoice, InvoicingSettings
from invoicing.services import bill_run_chunk, bill_run_plan, invoice_generate
from subscriptions.services import subscription_create
from subscriptions.tests.factories import monthly_fee_customers
from tenancy.actors import Actor
from tenancy.models import Tenant

PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")
APRIL_1 = date(2026, 4, 1)
RUN_AT = datetime(2026, 4, 1, 6, 0, tzinfo=PARIS)


@pytest.fixture(autouse=True)
def eager() -> Iterator[None]:
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def wholesale(tenant: Tenant, amount: str = "8.00", **fields: str) -> None:
    """The "wholesale" book of plan ``p``: ``amount`` per device and month, every country."""
    price_version_create(
        tenant=tenant,
        actor=ACTOR,
        at=timezone.now(),
        plan=Plan.objects.get(tenant=tenant, code="p"),
        data={
            "currency": "EUR",
            "price_book": "wholesale",
            **fields,
            "components": [{"product": "platform", "charge": {"model": "flat", "amount": amount}}],
        },
    )


def sell_through(tenant: Tenant, customers: list[Customer], books: list[str]) -> None:
    """Customer i is brought by partner i % len(books), whose price book is books[i % len(books)]."""
    partners = [
        Partner.objects.create(tenant=tenant, code=f"p{i}", name=f"Partner {i}", currency="EUR", price_book=book)
        for i, book in enumerate(books)
    ]
    for i, c in enumerate(customers):
        Customer.objects.filter(pk=c.pk).update(partner=partners[i % len(partners)])


@pytest.mark.django_db
def test_a_partners_customer_is_invoiced_at_the_book_price(tenant: Tenant) -> None:
    # given: c0, c1, c2 on plan p, 10.00 per device, 2 devices each; c1 came through AlpNet, whose
    # price book "wholesale" prices p at 8.00
    c0, c1, c2 = monthly_fee_customers(tenant, 3)
    wholesale(tenant)
    sell_through(tenant, [c1], ["wholesale"])
    run = BillRun.objects.create(tenant=tenant, billing_date=APRIL_1)
    # when
    for chunk in bill_run_plan(run=run, at=RUN_AT):
        bill_run_chunk(run_id=str(run.pk), customer_ids=chunk, at=RUN_AT)
    # then: April in advance: c1 2 x 8.00 = 16.00 (VAT 20 %: 3.20), the others 2 x 10.00 = 20.00
    invoices = {i.customer.external_id: i for i in Invoice.objects.select_related("customer")}
    assert {k: v.net_total for k, v in invoices.items()} == {
        "c0": Money(20, "EUR"),
        "c1": Money(16, "EUR"),
        "c2": Money(20, "EUR"),
    }
    assert invoices["c1"].total == Money("19.20", "EUR")
    [line] = invoices["c1"].lines.all()
    assert (line.quantity, line.unit_amount, line.detail.get("source")) == (2, 8, "partner")


@pytest.mark.django_db
def test_a_chunk_of_partners_customers_costs_no_more_queries_per_customer(tenant: Tenant, make_tenant: object) -> None:
    # given: 12 customers brought by 3 partners (books "wholesale", "resale" with no version, none),
    # and 12 direct customers of another tenant
    customers = monthly_fee_customers(tenant, 12)
    wholesale(tenant)
    sell_through(tenant, customers, ["wholesale", "resale", ""])
    InvoicingSettings.objects.create(tenant=tenant)
    direct_tenant = make_tenant("direct")  # type: ignore[operator]
    direct = monthly_fee_customers(direct_tenant, 12)
    InvoicingSettings.objects.create(tenant=direct_tenant)

    def queries(on: Tenant, chunk: list[Customer]) -> int:
        run = BillRun.objects.create(tenant=on, billing_date=APRIL_1)
        with CaptureQueriesContext(connection) as captured:
            bill_run_chunk(run_id=str(run.pk), customer_ids=[str(c.pk) for c in chunk], at=RUN_AT)
        assert BillRunCustomer.objects.filter(bill_run=run, outcome="invoiced").count() == len(chunk)
        return len(captured.captured_queries)

    few, many = queries(tenant, customers[:3]), queries(tenant, customers[3:])
    # the same for 3 as for 9 customers, and at most one more than for direct customers (their partners)
    assert few == many
    assert few <= queries(direct_tenant, direct[:3]) + 1
    # 12 customers: wholesale ones (0, 3, 6, 9) at 2 x 8.00 = 16.00, the others 2 x 10.00 = 20.00
    nets = sorted(
        (i.customer.external_id, i.net_total.amount)
        for i in Invoice.objects.filter(tenant=tenant).select_related("customer")
    )
    assert [n for _, n in nets if n == 16] == [16] * 4
    assert {e for e, n in nets if n == 16} == {"c0", "c3", "c6", "c9"}


@pytest.mark.django_db
def test_a_price_locked_partners_customer_keeps_the_book_version_it_was_sold_at(tenant: Tenant) -> None:
    # given: plan p (10.00 by default), the wholesale book at 8.00, and two customers of AlpNet
    # (book wholesale) who signed on 1 March 2026, 2 devices each; "locked" with a price lock
    monthly_fee_customers(tenant, 1)
    wholesale(tenant)
    alpnet = Partner.objects.create(tenant=tenant, code="alpnet", name="AlpNet", currency="EUR", price_book="wholesale")
    plan = Plan.objects.get(tenant=tenant, code="p")
    subscriptions = {}
    for external_id, locked in (("locked", True), ("floating", False)):
        c = customer_create(
            tenant=tenant,
            actor=ACTOR,
            at=timezone.now(),
            external_id=external_id,
            name=external_id.title(),
            email=f"{external_id}@x.test",
            country="FR",
            timezone="Europe/Paris",
            billing_day=1,
            address_line1="1 rue de la Paix",
            postal_code="75002",
            city="Paris",
        )
        Customer.objects.filter(pk=c.pk).update(partner=alpnet)
        subscriptions[external_id] = subscription_create(
            tenant=tenant,
            actor=ACTOR,
            at=timezone.now(),
            external_id=f"s-{external_id}",
            customer=Customer.objects.get(pk=c.pk),
            plan=plan,
            signed_at=datetime(2026, 3, 1, 9, 0, tzinfo=PARIS),
            starts_on=date(2026, 3, 1),
            devices=[{"device_id": f"{external_id}-{i}"} for i in range(2)],
            price_locked=locked,
        )
    locked_version = subscriptions["locked"].locked_price_version
    assert locked_version is not None
    assert locked_version.price_book == "wholesale"
    # and the book down to 6.00 from 1 April
    wholesale(tenant, "6.00", effective_from="2026-04-01T00:00:00+02:00")
    # when: the 1 April invoices (April in advance)
    nets = {
        c.external_id: invoice_generate(customer=c, billing_date=APRIL_1, at=RUN_AT)
        for c in Customer.objects.filter(tenant=tenant, partner=alpnet)
    }
    # then: locked keeps the book's 8.00 it was sold at, 2 x 8.00 = 16.00; floating 2 x 6.00 = 12.00
    assert {k: v.net_total for k, v in nets.items() if v is not None} == {
        "locked": Money(16, "EUR"),
        "floating": Money(12, "EUR"),
    }
