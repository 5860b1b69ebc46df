"""The finance dashboard (/app/), on the Smart Fleet scenario of analytics.md with time put on 20 May
2026 in Paris: fleet-platform 25.00 per device and month, A and B activated in March, C on 10 April,
B removed on 15 May; March's revenue run; data usage; two open invoices, two drafts, failed payments,
a suspended subscription and two bill runs. Each card's figure is checked by hand, then against the
rows of the list it links to; the charts' JSON; the CSV downloads; the query bound; who sees what."""

import csv
import io
import json
import os
import re
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from djmoney.money import Money

from customers.models import Customer
from customers.tests.factories import dupont as dupont_customer
from invoicing.models import BillRun, BillRunCustomer, BillRunStatus, Invoice, InvoiceKind, InvoiceStatus
from payments.models import Payment, PaymentMethod, PaymentStatus
from payments.tests.conftest import open_invoice
from revrec.models import Contract, ExchangeRate
from revrec.runs import recognition_run

# The revrec tests' fixtures: the Smart Fleet contract (A and B activated in March, SSPs set).
from revrec.tests.conftest import PARIS, fleet, fleet_contract  # noqa: F401
from subscriptions.changes import subscription_change
from subscriptions.models import Subscription, SubscriptionStatus
from subscriptions.tests.factories import ACTOR, signed_subscription, smart_fleet_activate
from tenancy.models import Role, Tenant
from tests.browser.conftest import CHROMIUM, assert_no_violation, browser, log_in, page  # noqa: F401 (the fixtures)
from usage.ingest import events_ingest
from usage.partitions import forget_known_partitions

pytestmark = pytest.mark.django_db

StaffMaker = Callable[..., Any]
TODAY = datetime(2026, 5, 20, 12, 0, tzinfo=PARIS)
D = Decimal


def paris(year: int, month: int, day: int, hour: int = 12) -> datetime:
    return datetime(year, month, day, hour, 0, tzinfo=PARIS)


@pytest.fixture(autouse=True)
def _fresh_partitions() -> Iterator[None]:
    forget_known_partitions()
    yield
    forget_known_partitions()


def _ingest(tenant: Tenant, events: list[tuple[str, datetime, int]]) -> None:
    received = max(at for _, at, _ in events) + timedelta(minutes=1)
    batch = [
        {
            "transaction_id": "u%d-%s" % (i, device),
            "code": "data_mb",
            "device_id": device,
            "timestamp": at.isoformat(),
            "properties": {"mb": mb},
        }
        for i, (device, at, mb) in enumerate(events)
    ]
    with time_machine.travel(received, tick=False):
        result = events_ingest(tenant=tenant, events=batch, received_at=received)
    assert [o.status for o in result.results] == ["accepted"] * len(batch), result.results


def _payment(customer: Customer, amount: str, received_at: datetime, status: str) -> Payment:
    return Payment.objects.create(
        tenant_id=customer.tenant_id,
        customer=customer,
        currency="EUR",
        amount=Money(amount, "EUR"),
        method=PaymentMethod.CARD,
        status=status,
        received_at=received_at,
    )


@pytest.fixture
def life(tenant: Tenant, fleet_contract: Contract) -> dict[str, Any]:  # noqa: F811 (the fixture)
    """The Smart Fleet's spring (see the module's docstring)."""
    subscription = fleet_contract.subscription
    dupont = subscription.customer
    # March's revenue run on 1 April, 06:00: A and B only (C is activated later)
    recognition_run(tenant_id=tenant.pk, month=date(2026, 3, 1), at=paris(2026, 4, 1, 6))
    smart_fleet_activate(tenant, ("C",))
    # data_mb: March A 800 + B 3000 = 3800 MB; April C 500 MB
    _ingest(tenant, [("A", paris(2026, 3, 16, 11), 800), ("B", paris(2026, 3, 25, 11), 3000)])
    _ingest(tenant, [("C", paris(2026, 4, 20, 11), 500)])
    removed_at = paris(2026, 5, 15, 10)
    with time_machine.travel(removed_at, tick=False):
        subscription_change(
            subscription=subscription, action="remove_devices", params={"device_ids": ["B"]}, actor=ACTOR, at=removed_at
        )
    # A second subscription whose device D never activates (no MRR), suspended by dunning.
    second = signed_subscription(
        tenant, customer=dupont, plan=subscription.plan, external_id="dupont-second", devices=("D",)
    )
    Subscription.objects.filter(pk=second.pk).update(status=SubscriptionStatus.SUSPENDED)
    # Open invoices: 181.09 due 15 April (35 days late on 20 May: 31-60), 90.00 due 31 May (not yet due)
    for number, issued, due, total in (
        ("F-2026-0001", date(2026, 4, 1), date(2026, 4, 15), "181.09"),
        ("F-2026-0002", date(2026, 5, 1), date(2026, 5, 31), "90.00"),
    ):
        open_invoice(subscription, number=number, issue_date=issued, due_date=due, total=total)
    # Two drafts waiting for review
    for day, amount in ((19, "75.00"), (20, "12.50")):
        Invoice.objects.create(
            tenant=tenant,
            customer=dupont,
            kind=InvoiceKind.INVOICE,
            status=InvoiceStatus.DRAFT,
            issue_date=date(2026, 5, day),
            currency="EUR",
            total=Money(amount, "EUR"),
            amount_due=Money(amount, "EUR"),
        )
    # Failed payments: 10 and 19 May count (since 21 April, 30 days); 1 April's does not; a success neither.
    _payment(dupont, "181.09", paris(2026, 4, 1), PaymentStatus.FAILED)
    _payment(dupont, "181.09", paris(2026, 5, 10), PaymentStatus.FAILED)
    _payment(dupont, "181.09", paris(2026, 5, 19), PaymentStatus.FAILED)
    _payment(dupont, "20.00", paris(2026, 5, 19), PaymentStatus.SUCCEEDED)
    # Bill runs: 1 April without failure, then 1 May with one customer failed
    with time_machine.travel(paris(2026, 4, 1, 1), tick=False):
        BillRun.objects.create(tenant=tenant, billing_date=date(2026, 4, 1), status=BillRunStatus.COMPLETED, total=1)
    with time_machine.travel(paris(2026, 5, 1, 1), tick=False):
        may = BillRun.objects.create(
            tenant=tenant,
            billing_date=date(2026, 5, 1),
            status=BillRunStatus.COMPLETED_WITH_ERRORS,
            total=1,
            failed=1,
        )
    BillRunCustomer.objects.create(
        tenant=tenant, bill_run=may, customer=dupont, outcome="failed", error="No tax rate for FR."
    )
    return {"fleet": subscription, "may_run": may}


@pytest.fixture(autouse=True)
def _on_20_may() -> Iterator[None]:
    with time_machine.travel(TODAY, tick=True):
        yield


def client_for(tenant: Tenant, make_staff: StaffMaker, role: str = Role.FINANCE_VIEWER) -> Client:
    client = Client()
    client.force_login(make_staff(tenant, role, "finance@acme.test"))
    return client


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#x27;", "'").strip()


def card(html: str, name: str) -> tuple[str, str]:
    """A card's link and its text."""
    found = re.search(r'<a class="tp-card" data-card="%s" href="([^"]+)">(.*?)</a>' % name, html, re.S)
    assert found, name
    return found.group(1).replace("&amp;", "&"), text(found.group(2))


def body_rows(html: str, table_class: str = "tp-table") -> int:
    """The data rows of the first table of ``table_class`` (an empty table's message row is not one)."""
    table = re.search(r'<table class="[^"]*\b%s\b[^"]*">.*?<tbody>(.*?)</tbody>' % table_class, html, re.S)
    assert table, table_class
    return len([row for row in re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S) if "colspan" not in row])


def charts(html: str) -> dict[str, Any]:
    found = re.search(r'<script id="dashboard-charts-data" type="application/json">(.*?)</script>', html, re.S)
    assert found
    data: dict[str, Any] = json.loads(found.group(1))
    return data


MONTHS = [
    "2025-06", "2025-07", "2025-08", "2025-09", "2025-10", "2025-11",
    "2025-12", "2026-01", "2026-02", "2026-03", "2026-04", "2026-05",
]  # fmt: skip
BEFORE = 9  # June 2025 to February 2026: nothing yet


def test_the_cards_of_the_smart_fleet(tenant: Tenant, make_staff: StaffMaker, life: dict[str, Any]) -> None:
    # when
    response = client_for(tenant, make_staff).get("/app/")
    # then
    assert response.status_code == 200
    html = response.content.decode()
    # MRR at 31 May: A and C, 2 x 25.00 = 50.00; at 30 April 75.00 (A, B, C): May's change -25.00;
    # ARPD at 31 May: 50.00 / 2 devices = 25.00
    href, shown = card(html, "mrr")
    assert href == "/app/analytics/mrr/?start=2025-06&end=2026-05"
    assert shown == "MRR at the end of 2026-05 €50.00 -€25.00 this month ARPD €25.00"
    # Receivables: 181.09 + 90.00 = 271.09 in 2 invoices; overdue: 181.09 (due 15 April)
    href, shown = card(html, "receivables")
    assert (href, shown) == ("/app/receivables/", "Receivables €271.09 2 open invoices")
    href, shown = card(html, "overdue")
    assert (href, shown) == ("/app/billing/invoices/?payment=overdue", "Overdue €181.09 1 invoice past its due date")
    href, shown = card(html, "drafts")
    assert (href, shown) == (
        "/app/billing/invoices/?status=draft&kind=invoice",
        "Invoices waiting for review 2 drafts to check and finalize",
    )
    # 30 days back from 20 May, today included: from 21 April; 10 and 19 May
    href, shown = card(html, "failed-payments")
    assert (href, shown) == ("/app/payments/?status=failed&date_from=2026-04-21", "Failed payments 2 since 21 Apr 2026")
    href, shown = card(html, "suspended")
    assert (href, shown) == ("/app/subscriptions/?status=suspended", "Suspended subscriptions 1")
    href, shown = card(html, "bill-run")
    assert href == "/app/billing/runs/%s/" % life["may_run"].pk
    assert shown == "Last bill run, 1 May 2026 1 failure Completed with errors · 0 invoices created"
    assert "Missing exchange rates" not in html


def test_each_card_leads_to_a_list_of_as_many_rows(
    tenant: Tenant, make_staff: StaffMaker, life: dict[str, Any]
) -> None:
    client = client_for(tenant, make_staff)
    html = client.get("/app/").content.decode()
    for name, table, count in [
        ("drafts", "tp-invoices", 2),
        ("overdue", "tp-invoices", 1),
        ("failed-payments", "tp-table", 2),
        ("suspended", "tp-table", 1),
        ("bill-run", "tp-failures", 1),
    ]:
        href, _ = card(html, name)
        listing = client.get(href)
        assert listing.status_code == 200, href
        assert body_rows(listing.content.decode(), table) == count, name
    # The receivables page's total and the MRR page's month end are the cards' figures.
    receivables = text(client.get(card(html, "receivables")[0]).content.decode())
    assert "Receivables €271.09" in receivables
    mrr = text(client.get(card(html, "mrr")[0]).content.decode())
    assert "MRR at the end of 2026-05 €50.00" in mrr


def test_the_charts_data(tenant: Tenant, make_staff: StaffMaker, life: dict[str, Any]) -> None:
    data = charts(client_for(tenant, make_staff).get("/app/").content.decode())
    zeros = ["0"] * BEFORE
    # MRR: March new +50.00 (A, B); April expansion +25.00 (C); May contraction 25.00 (B removed)
    mrr = data["mrr"]
    assert mrr["labels"] == MONTHS
    assert mrr["series"]["new"] == [*zeros, "50.00", "0.00", "0.00"]
    assert mrr["series"]["expansion"] == [*zeros, "0.00", "25.00", "0.00"]
    assert mrr["series"]["contraction"] == [*zeros, "0.00", "0.00", "25.00"]
    assert mrr["series"]["churn"] == [*zeros, "0.00", "0.00", "0.00"]
    assert mrr["series"]["end"] == [*zeros, "50.00", "75.00", "50.00"]
    # Revenue of March's run (revrec.md): hardware A and B at activation 245.45 + 245.45 = 490.90;
    # service A 294.54 x 17/365 = 13.72 and B 294.54 x 12/365 = 9.68, 23.40. No other month has run.
    revenue = {d["label"]: d["data"] for d in data["revenue"]["datasets"]}
    assert list(revenue) == ["Hardware", "Service", "Usage", "Fees"]
    assert [D(v) for v in revenue["Hardware"]] == [D(0)] * BEFORE + [D("490.90"), D(0), D(0)]
    assert [D(v) for v in revenue["Service"]] == [D(0)] * BEFORE + [D("23.40"), D(0), D(0)]
    assert {D(v) for v in revenue["Usage"] + revenue["Fees"]} == {D(0)}
    # Aging on 20 May: 90.00 not yet due, 181.09 at 35 days (31-60)
    assert data["aging"]["labels"] == ["Not yet due", "1–30 days", "31–60 days", "61–90 days", "Over 90 days"]
    assert [D(v) for v in data["aging"]["data"]] == [D("90.00"), D(0), D("181.09"), D(0), D(0)]
    # Active devices at each month's end: March A, B; April A, B, C; May A, C (D never activated)
    assert data["devices"]["data"] == [0] * BEFORE + [2, 3, 2]
    # data_mb: March 800 + 3000 = 3800, April 500, May nothing
    [usage] = data["usage"]
    assert usage["label"] == "Data (MB) (data_mb)"
    assert [D(v) for v in usage["data"]] == [D(0)] * BEFORE + [D(3800), D(500), D(0)]


def test_the_charts_download_as_csv(tenant: Tenant, make_staff: StaffMaker, life: dict[str, Any]) -> None:
    client = client_for(tenant, make_staff)

    def rows(name: str) -> list[list[str]]:
        response: Any = client.get("/app/", {"export": name})
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))

    mrr = rows("mrr")
    assert mrr[0] == [
        "month", "currency", "start", "new", "expansion", "contraction", "churn", "reactivation", "end",
        "missing_rates", "arpd",
    ]  # fmt: skip
    # ARPD at 30 April (analytics.md): 75.00 / 3 = 25.00; at 31 May: 50.00 / 2 = 25.00
    assert mrr[-2:] == [
        ["2026-04", "EUR", "50.00", "0.00", "25.00", "0.00", "0.00", "0.00", "75.00", "", "25.00"],
        ["2026-05", "EUR", "75.00", "0.00", "0.00", "25.00", "0.00", "0.00", "50.00", "", "25.00"],
    ]
    assert rows("revenue")[10][:3] == ["2026-03", "EUR", "490.90"]
    assert rows("aging")[3] == ["2026-05-20", "EUR", "days_31_60", "181.09"]
    assert rows("devices")[-3:] == [["2026-03", "2"], ["2026-04", "3"], ["2026-05", "2"]]
    assert rows("usage")[10:12] == [["data_mb", "2026-03", "3800"], ["data_mb", "2026-04", "500"]]
    assert client.get("/app/", {"export": "nothing"}).status_code == 404


def test_a_bounded_number_of_queries(
    tenant: Tenant, make_staff: StaffMaker, life: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    client = client_for(tenant, make_staff)
    client.get("/app/")  # the session, once
    # The request's own (session, user, membership, tenant), MRR (7), rates (1), receivables (3),
    # revenue (2), the counts (4), the last run (1), devices (1), usage (2), the audit rows (1) and
    # the template's lookups.
    with CaptureQueriesContext(connection) as before, django_assert_max_num_queries(32):
        assert client.get("/app/").status_code == 200
    # given: three more customers, each with a subscription, an open invoice and a failed payment
    plan = life["fleet"].plan
    for i in range(3):
        customer = dupont_customer(tenant, external_id="more-%d" % i, name="More %d" % i)
        subscription = signed_subscription(
            tenant, customer=customer, plan=plan, external_id="more-%d-fleet" % i, devices=("M%d" % i,)
        )
        number = "F-M-%d" % i
        open_invoice(subscription, number=number, issue_date=date(2026, 5, 2), due_date=date(2026, 5, 9), total="10")
        _payment(customer, "10.00", paris(2026, 5, 12), PaymentStatus.FAILED)
    # then: as many queries as before
    with CaptureQueriesContext(connection) as after:
        response = client.get("/app/")
    assert len(after.captured_queries) == len(before.captured_queries)
    # and the cards count them: 2 + 3 failed payments; 1 + 3 overdue invoices
    assert card(response.content.decode(), "failed-payments")[1].startswith("Failed payments 5")
    assert card(response.content.decode(), "overdue")[1] == "Overdue €211.09 4 invoices past their due date"


def test_a_missing_rate_is_flagged_never_taken_as_1(
    tenant: Tenant, make_staff: StaffMaker, life: dict[str, Any]
) -> None:
    # given: a customer billed in USD with an open invoice of 100.00, and no USD rate for May
    acme = dupont_customer(tenant, external_id="acme-us", name="Acme US", currency="USD")
    Invoice.objects.create(
        tenant=tenant,
        customer=acme,
        kind=InvoiceKind.INVOICE,
        status=InvoiceStatus.FINALIZED,
        number="F-2026-0003",
        issue_date=date(2026, 5, 1),
        due_date=date(2026, 5, 31),
        currency="USD",
        total=Money("100.00", "USD"),
        amount_due=Money("100.00", "USD"),
        finalized_at=paris(2026, 5, 1, 6),
    )
    client = client_for(tenant, make_staff)
    # when
    html = client.get("/app/").content.decode()
    # then: the receivables are not added up; the USD and EUR amounts are shown apart
    _, shown = card(html, "receivables")
    assert shown == "Receivables rate missing 3 open invoices €271.09 · US$100.00"
    assert "Missing exchange rates" in html
    assert "?month=2026-05&amp;currency=USD" in html
    assert charts(html)["aging"]["data"][0] is None
    # with May's rate, 1 USD = 0.90 EUR: 271.09 + 100.00 x 0.90 = 361.09
    ExchangeRate.objects.create(tenant=tenant, month=date(2026, 5, 1), currency="USD", rate=D("0.90"), entered_at=TODAY)
    _, shown = card(client.get("/app/").content.decode(), "receivables")
    assert shown.startswith("Receivables €361.09 3 open invoices")


def test_a_support_agent_sees_the_work_without_the_money(
    tenant: Tenant, make_staff: StaffMaker, life: dict[str, Any]
) -> None:
    client = client_for(tenant, make_staff, Role.SUPPORT_AGENT)
    response = client.get("/app/")
    assert response.status_code == 200
    html = response.content.decode()
    for name in ("drafts", "suspended", "bill-run"):
        card(html, name)
    for name in ("mrr", "receivables", "overdue", "failed-payments"):
        assert 'data-card="%s"' % name not in html
    assert "€" not in text(html)
    assert set(charts(html)) == {"devices", "usage"}
    assert "Recent changes" not in html
    assert client.get("/app/", {"export": "mrr"}).status_code == 404
    assert client.get("/app/", {"export": "devices"}).status_code == 200


def test_another_tenants_figures_never_show(
    tenant: Tenant, make_tenant: Callable[..., Tenant], make_staff: StaffMaker, life: dict[str, Any]
) -> None:
    # given: another tenant with its own draft, open invoice, failed payment and bill run
    other = make_tenant("initech", name="Initech")
    stranger = dupont_customer(other)
    Invoice.objects.create(
        tenant=other, customer=stranger, kind=InvoiceKind.INVOICE, status=InvoiceStatus.DRAFT,
        issue_date=date(2026, 5, 20), currency="EUR", total=Money("5.00", "EUR"),
    )  # fmt: skip
    Invoice.objects.create(
        tenant=other, customer=stranger, kind=InvoiceKind.INVOICE, status=InvoiceStatus.FINALIZED,
        number="I-1", issue_date=date(2026, 4, 1), due_date=date(2026, 4, 2), currency="EUR",
        total=Money("999.00", "EUR"), amount_due=Money("999.00", "EUR"), finalized_at=paris(2026, 4, 1, 6),
    )  # fmt: skip
    _payment(stranger, "999.00", paris(2026, 5, 19), PaymentStatus.FAILED)
    BillRun.objects.create(tenant=other, billing_date=date(2026, 5, 20), status=BillRunStatus.FAILED, failed=9)
    # when
    html = client_for(tenant, make_staff).get("/app/").content.decode()
    # then: this tenant's figures, as in test_the_cards_of_the_smart_fleet
    assert card(html, "drafts")[1].startswith("Invoices waiting for review 2 ")
    assert card(html, "receivables")[1] == "Receivables €271.09 2 open invoices"
    assert card(html, "failed-payments")[1].startswith("Failed payments 2 ")
    assert card(html, "bill-run")[0] == "/app/billing/runs/%s/" % life["may_run"].pk


def test_an_empty_tenant_and_french(tenant: Tenant, make_staff: StaffMaker) -> None:
    client = client_for(tenant, make_staff, Role.OWNER)
    client.post("/i18n/setlang/", {"language": "fr", "next": "/app/"})
    response = client.get("/app/")
    assert response.status_code == 200
    french = text(response.content.decode())
    assert "Tableau de bord" in french
    assert "Factures à vérifier" in french
    assert "Aucune tournée de facturation pour l'instant" in french
    assert "Les douze derniers mois" in french


# --- in a browser -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (.ci/run installs it)")
@pytest.mark.parametrize("width", [390, 1366])
def test_the_dashboard_in_a_browser(live_server: Any, page: Any, width: int) -> None:  # noqa: F811 (the fixture)
    # given: the demo tenant, its owner logged in
    call_command("seed_demo", stdout=io.StringIO())
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, live_server.url)
    # then: every chart drawn by static/dashboard.js under the Content-Security-Policy
    page.wait_for_function(
        "() => window.Chart && [...document.querySelectorAll('canvas[data-dashboard-chart]')]"
        ".every(c => window.Chart.getChart(c))",
        timeout=10000,
    )
    assert page.locator("canvas[data-dashboard-chart]").count() >= 5
    # the page never scrolls sideways; the cards are links the keyboard reaches
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.locator("a.tp-card").first.focus()
    assert page.evaluate("document.activeElement.classList.contains('tp-card')")
    assert_no_violation(page)
