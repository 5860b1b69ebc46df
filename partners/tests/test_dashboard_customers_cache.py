"""The customers' page from the cache shows what a fresh computation shows, after each kind of
change: a device added, a price changed, the clock passing a price's effective date, a payment
recorded, a new invoice; with Redis unreachable the page is computed afresh, never an error."""

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from djmoney.money import Money

from catalog.services import price_version_create
from catalog.tests.factories import platform_plan
from customers.models import Customer, Partner
from invoicing.models import Invoice, InvoiceStatus
from partners.models import PartnerUser
from partners.tests.dashboard import ACTOR, make_partner, make_partner_user, partner_client, partner_customer
from partners.tests.test_dashboard_customers import LIST_QUERIES, LIST_QUERIES_CACHED
from payments.ledger import payment_record
from subscriptions.models import Device, Subscription
from subscriptions.tests.factories import signed_subscription
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)


@pytest.fixture
def partner(tenant: Tenant) -> Partner:
    return make_partner(tenant)


@pytest.fixture
def user(partner: Partner) -> PartnerUser:
    return make_partner_user(partner, email="lea@alpnet.test", role="sales")


def _row(client: Client, external_id: str = "alpha") -> tuple[str, int]:
    """The customer's row and the number of queries the page took."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/partners/")
    assert response.status_code == 200
    return response.content.decode().split('data-customer="%s"' % external_id)[1].split("</tr>")[0], len(
        queries.captured_queries
    )


def _figures(row: str) -> list[str]:
    cells = row.split('<td class="num')[1:]
    return [c.split(">", 1)[1].split("</td>")[0] for c in cells]


def _fresh(client: Client, external_id: str = "alpha") -> list[str]:
    """The same figures on the customer's own page, which computes them afresh every time."""
    page = client.get("/partners/customers/%s/" % external_id).content.decode()
    return [page.split('data-figure="%s">' % f)[1].split("</dd>")[0] for f in ("active", "mrr", "due")]


def _invoice(tenant: Tenant, customer: Customer, due: str, number: str, day: int = 1) -> Invoice:
    return Invoice.objects.create(
        tenant=tenant,
        customer=customer,
        status=InvoiceStatus.FINALIZED,
        issue_date=date(2026, 6, day),
        currency="EUR",
        total=Money(due, "EUR"),
        amount_due=Money(due, "EUR"),
        number=number,
    )


def _alpha(tenant: Tenant, partner: Partner) -> tuple[Customer, Subscription]:
    """Alpha: 2 devices at 10.00 a month; owes 120.00."""
    alpha = partner_customer(tenant, partner, "alpha", "Alpha Logistique")
    plan = platform_plan(tenant, "fleet-10", "10.00", at=datetime(2026, 1, 1, tzinfo=UTC))
    sub = signed_subscription(tenant, customer=alpha, plan=plan, external_id="alpha-1", devices=("A1", "A2"))
    _invoice(tenant, alpha, "120.00", "INV-1")
    return alpha, sub


@time_machine.travel(NOW, tick=False)
def test_the_cached_page_follows_devices_payments_and_invoices(
    tenant: Tenant, partner: Partner, user: PartnerUser
) -> None:
    # given: the page computed once, then served from the cache
    alpha, sub = _alpha(tenant, partner)
    client = partner_client(user)
    first, queries = _row(client)
    assert queries == LIST_QUERIES
    # 2 devices; 2 x 10.00 = 20.00; due 120.00
    assert _figures(first) == ["2", "€20.00", "€120.00"]
    row, queries = _row(client)
    assert (row, queries) == (first, LIST_QUERIES_CACHED)

    # when: a device is added
    Device.objects.create(tenant=tenant, subscription=sub, device_id="A3", added_at=NOW - timedelta(days=1))
    row, queries = _row(client)
    # then: computed again: 3 devices, 3 x 10.00 = 30.00
    assert (_figures(row), queries) == (["3", "€30.00", "€120.00"], LIST_QUERIES)
    assert _fresh(client) == _figures(row)
    assert _row(client) == (row, LIST_QUERIES_CACHED)

    # when: a payment of 45.50 is recorded against the invoice (invoices are not watched: the
    # cached figures stay, the amount due is read afresh)
    payment_record(
        customer=alpha,
        amount=Money("45.50", "EUR"),
        method="bank_transfer",
        received_at=NOW,
        actor=ACTOR,
        at=NOW,
        invoice=Invoice.objects.get(number="INV-1"),
    )
    row, queries = _row(client)
    # then: 120.00 - 45.50 = 74.50 due, from the cached page
    assert (_figures(row), queries) == (["3", "€30.00", "€74.50"], LIST_QUERIES_CACHED)
    assert _fresh(client) == _figures(row)

    # when: a new invoice of 30.00 is finalized
    _invoice(tenant, alpha, "30.00", "INV-2", day=2)
    row, queries = _row(client)
    # then: 74.50 + 30.00 = 104.50
    assert (_figures(row), queries) == (["3", "€30.00", "€104.50"], LIST_QUERIES_CACHED)
    assert _fresh(client) == _figures(row)


@time_machine.travel(NOW, tick=False)
def test_the_cached_page_follows_a_price_change_and_the_clock_reaching_it(
    tenant: Tenant, partner: Partner, user: PartnerUser
) -> None:
    # given: the page cached at 10.00 a device
    _, sub = _alpha(tenant, partner)
    client = partner_client(user)
    assert _figures(_row(client)[0]) == ["2", "€20.00", "€120.00"]
    assert _row(client)[1] == LIST_QUERIES_CACHED

    # when: the partner's price book sells the plan at 8.00 from now on
    partner.price_book = "alp"
    partner.save(update_fields=["price_book"])
    _book_price(tenant, sub.plan, "8.00")
    row, queries = _row(client)
    # then: 2 x 8.00 = 16.00
    assert (_figures(row), queries) == (["2", "€16.00", "€120.00"], LIST_QUERIES)
    assert _fresh(client) == _figures(row)

    # when: the book's price goes to 9.00 at 12:00 today
    later = NOW + timedelta(hours=3)
    _book_price(tenant, sub.plan, "9.00", effective_from=later)
    row, queries = _row(client)
    assert (_figures(row), queries) == (["2", "€16.00", "€120.00"], LIST_QUERIES)
    assert _fresh(client) == _figures(row)
    assert _row(client) == (row, LIST_QUERIES_CACHED)
    # then: a second before, the cached page; at the instant, computed again: 2 x 9.00 = 18.00
    with time_machine.travel(later - timedelta(seconds=1), tick=False):
        assert _row(client) == (row, LIST_QUERIES_CACHED)
        assert _fresh(client) == _figures(row)
    with time_machine.travel(later, tick=False):
        row, queries = _row(client)
        assert (_figures(row), queries) == (["2", "€18.00", "€120.00"], LIST_QUERIES)
        assert _fresh(client) == _figures(row)


def _book_price(tenant: Tenant, plan: Any, amount: str, *, effective_from: datetime | None = None) -> None:
    """The platform fee of ``plan`` in the price book ``alp``, from now or from ``effective_from``."""
    data: dict[str, Any] = {
        "currency": "EUR",
        "price_book": "alp",
        "components": [{"product": "platform", "charge": {"model": "flat", "amount": amount}}],
    }
    if effective_from is not None:
        data["effective_from"] = effective_from.isoformat()
    price_version_create(tenant=tenant, actor=ACTOR, at=NOW, plan=plan, data=data)


@time_machine.travel(NOW, tick=False)
def test_redis_unreachable_computes_the_page_afresh(
    tenant: Tenant, partner: Partner, user: PartnerUser, settings: Any
) -> None:
    # given: Redis refuses every connection (the product's own clients, with their timeouts and
    # retries, on a port nothing listens on)
    _alpha(tenant, partner)
    client = partner_client(user)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    # when / then: the same figures, computed each time
    for _ in range(2):
        row, queries = _row(client)
        assert (_figures(row), queries) == (["2", "€20.00", "€120.00"], LIST_QUERIES)


@time_machine.travel(NOW, tick=False)
def test_two_pages_are_cached_apart(tenant: Tenant, partner: Partner, user: PartnerUser) -> None:
    # given: 27 customers, 25 a page, each with one device at 10.00
    plan = platform_plan(tenant, "fleet-10", "10.00", at=datetime(2026, 1, 1, tzinfo=UTC))
    for n in range(27):
        c = partner_customer(tenant, partner, "c%02d" % n, "Customer %02d" % n)
        signed_subscription(tenant, customer=c, plan=plan, external_id="s%02d" % n, devices=("D%02d" % n,))
    client = partner_client(user)
    # when
    pages = [
        client.get("/partners/?page=%d" % n).content.decode().split("<tbody>")[1].split("</main>")[0]
        for n in (1, 2, 1, 2)
    ]
    # then: page 2 holds the last two, each page from the cache the second time
    assert pages[0] == pages[2]
    assert pages[1] == pages[3]
    assert 'data-customer="c24"' in pages[0]
    assert 'data-customer="c25"' not in pages[0]
    assert 'data-customer="c25"' in pages[1]
    assert 'data-customer="c26"' in pages[1]
    assert "Page 2 of 2" in pages[1]
    assert _figures(pages[1].split('data-customer="c26"')[1].split("</tr>")[0]) == ["1", "€10.00", "€0.00"]
