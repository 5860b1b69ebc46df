"""Invoicing pages of the back-office (/app/billing/...) through Django's test client: bill runs and
their live progress, the invoices list and its filters, an invoice's detail with its lines grouped
by leg, the finalize, void and credit-note actions, the PDF route, tenant isolation and roles.

Runs are executed synchronously as invoicing/tests/test_bill_runs.py does (a ``BillRun`` row, then
``bill_run_plan`` and ``bill_run_chunk``). These tests are not transactional, so ``on_commit``
callbacks (the Celery tasks: a run's execution, an invoice's PDF and e-mail) do not run unless a
test captures them."""

import re
from collections.abc import Callable, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client
from djmoney.money import Money

from customers.models import Customer
from invoicing.models import BillRun, BillRunStatus, Invoice, InvoiceLine
from invoicing.services import bill_run_chunk, bill_run_plan, invoice_finalize
from subscriptions.tests.factories import monthly_fee_customers, smart_fleet_activate
from subscriptions.tests.factories import smart_fleet as smart_fleet_subscription
from tenancy.actors import Actor
from tenancy.models import AuditLogEntry, Role, Tenant
from usage.ingest import events_ingest
from usage.partitions import forget_known_partitions

pytestmark = pytest.mark.django_db

StaffMaker = Callable[..., Any]
PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")
APRIL_1 = date(2026, 4, 1)


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


RUN_AT = paris(2026, 4, 1, 6)


def html(response: Any) -> str:
    return response.content.decode()


def text(response: Any) -> str:
    """The page's visible text with tags removed and whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html(response))).replace("&#x27;", "'")


def logged_in(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


def follow(client: Client, response: Any) -> str:
    """The text of the page a POST redirected to, with the messages it left."""
    assert response.status_code == 302, html(response)
    return text(client.get(response["Location"]))


@pytest.fixture(autouse=True)
def partitions() -> Iterator[None]:
    forget_known_partitions()
    yield
    forget_known_partitions()


# --- data -------------------------------------------------------------------------------------------


def run_bill_run(tenant: Tenant, billing_date: date = APRIL_1, at: datetime = RUN_AT) -> BillRun:
    """A bill run executed synchronously, as its Celery tasks would."""
    with time_machine.travel(at, tick=False):
        run = BillRun.objects.create(tenant=tenant, billing_date=billing_date)
        for chunk in bill_run_plan(run=run, at=at):
            bill_run_chunk(run_id=str(run.pk), customer_ids=chunk, at=at)
    run.refresh_from_db()
    return run


def the_invoice(tenant: Tenant, customer: str = "c0", billing_date: date = APRIL_1) -> Invoice:
    return Invoice.objects.get(tenant=tenant, customer__external_id=customer, issue_date=billing_date, kind="invoice")


def smart_fleet(tenant: Tenant) -> Customer:
    """The Smart Fleet scenario of billing.md through the services: hardware in 12 instalments,
    a per-device fee from activation, pooled usage with graduated tiers; A, B, C activated on
    15 March, 20 March and 10 April; March usage A 800 MB, B 3000 MB; April A 5000, B 7000, C 2000."""
    customer = smart_fleet_subscription(tenant, names={"eld-200": "ELD-200"}).customer
    smart_fleet_activate(tenant)
    send_usage(tenant, paris(2026, 3, 31, 12), ("a-1", "A", paris(2026, 3, 16, 11), 800))
    send_usage(tenant, paris(2026, 3, 31, 12), ("b-1", "B", paris(2026, 3, 25, 11), 3000))
    return customer


def send_usage(tenant: Tenant, received: datetime, *events: tuple[str, str, datetime, int]) -> None:
    with time_machine.travel(received, tick=False):
        result = events_ingest(
            tenant=tenant,
            received_at=received,
            events=[
                {
                    "transaction_id": tid,
                    "code": "data_mb",
                    "device_id": device,
                    "timestamp": ts.isoformat(),
                    "properties": {"mb": mb},
                }
                for tid, device, ts, mb in events
            ],
        )
    assert result.count("accepted") == len(events)


# --- invoices list and detail -----------------------------------------------------------------------


def test_list_and_detail_show_a_generated_invoice_with_its_lines_by_leg(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    monthly_fee_customers(tenant)
    run_bill_run(tenant)
    invoice = the_invoice(tenant)
    logged_in(client, make_staff(tenant))

    listing = client.get("/app/billing/invoices/")
    detail = client.get(f"/app/billing/invoices/{invoice.pk}/")

    assert listing.status_code == 200
    assert "<h1>Invoices</h1>" in html(listing)
    assert "Draft Customer 0 c0 1 Apr 2026 Draft — €20.00 €4.00 €24.00 €24.00" in text(listing), text(listing)
    assert f'href="/app/billing/invoices/{invoice.pk}/"' in html(listing)
    assert detail.status_code == 200
    body = text(detail)
    assert "Invoice Draft Draft" in body
    assert "Customer Customer 0 c0 Issue date 1 Apr 2026 Currency EUR" in body
    assert "Net €20.00 Tax €4.00 Total €24.00 Amount due €24.00" in body
    # one leg, Service: April in advance for both devices
    assert re.findall(r'<h2 class="tp-section tp-leg">([^<]+)</h2>', html(detail)) == ["Service"]
    assert "Platform platform 1–30 Apr 2026 2 €10.00 Standard rate €20.00" in body
    assert "Devices: c0-d0, c0-d1" in body
    assert "Subtotal Service €20.00" in body
    assert "Standard rate standard S 20% €20.00 €4.00" in body
    assert "No credit note." in body
    # an owner may finalize or void a draft; a draft cannot be credited yet
    assert f'action="/app/billing/invoices/{invoice.pk}/finalize/"' in html(detail)
    assert f'action="/app/billing/invoices/{invoice.pk}/void/"' in html(detail)
    assert "/credit-notes/" not in html(detail)


def test_a_seller_without_a_vat_number_is_warned_and_cannot_finalize_a_vat_rated_draft(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    # given: a seller with its SIREN but no VAT number, and a 20 % draft
    tenant.vat_number = ""
    tenant.save(update_fields=["vat_number"])
    monthly_fee_customers(tenant)
    run_bill_run(tenant)
    invoice = the_invoice(tenant)
    logged_in(client, make_staff(tenant))
    warning = (
        "This draft cannot be finalized yet: it would not be a valid e-invoice (EN 16931). Missing: your VAT number."
    )
    assert warning in text(client.get(f"/app/billing/invoices/{invoice.pk}/"))

    # when: finalize is pressed anyway
    page = follow(client, client.post(f"/app/billing/invoices/{invoice.pk}/finalize/"))

    # then: refused, naming the field, and the draft stays a draft
    assert "Not finalized: it would not be a valid e-invoice (EN 16931). Missing: your VAT number." in page
    invoice.refresh_from_db()
    assert (invoice.status, invoice.number) == ("draft", "")

    # in French too
    page = follow(client, client.post(f"/app/billing/invoices/{invoice.pk}/finalize/", HTTP_ACCEPT_LANGUAGE="fr"))
    assert (
        # (``text`` reads the non-breaking spaces before the colons as spaces)
        "Non finalisée : ce ne serait pas une facture électronique valide (EN 16931). "
        "Manque : votre numéro de TVA." in page
    )

    # once the VAT number is given, the warning goes and the draft can be finalized
    tenant.vat_number = "FR74852379890"
    tenant.save(update_fields=["vat_number"])
    assert "cannot be finalized yet" not in text(
        client.get(f"/app/billing/invoices/{invoice.pk}/", HTTP_ACCEPT_LANGUAGE="en")
    )


def test_smart_fleet_invoices_show_every_leg_with_the_spec_amounts(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    smart_fleet(tenant)
    run_bill_run(tenant, APRIL_1, paris(2026, 4, 1, 0, 30))
    april = the_invoice(tenant, "dupont")
    logged_in(client, make_staff(tenant))

    page = client.get(f"/app/billing/invoices/{april.pk}/")

    body = text(page)
    assert re.findall(r'<h2 class="tp-section tp-leg">([^<]+)</h2>', html(page)) == ["Hardware", "Service", "Usage"]
    assert "ELD-200, instalment 1/12 eld-200 — 3 €20.00 Standard rate €60.00" in body
    assert "Instalment 1 of 12" in body
    assert "Subtotal Hardware €60.00" in body
    # the description and the Period column show the same last day, 31 March (the period ends on
    # 1 April 00:00, exclusive)
    assert "Fleet platform, 15–31 Mar 2026 (17/31) fleet-platform 15–31 Mar 2026 1 €25.00 Standard rate €13.71" in body
    assert "Prorated: 17 of 31 days" in body
    assert "Fleet platform, 20–31 Mar 2026 (12/31) fleet-platform 20–31 Mar 2026 1 €25.00 Standard rate €9.68" in body
    assert "Fleet platform fleet-platform 1–30 Apr 2026 2 €25.00 Standard rate €50.00" in body
    assert "Subtotal Service €73.39" in body
    # usage: 3800 MB metered, 2 x 1024 included, 1752 billable in the first tier
    assert "Data overage data-overage 1–31 Mar 2026 1,752 — Standard rate €17.52" in body
    assert "Meter data_mb · 3,800 metered · allowance 2,048 (1,024 × 2 devices) · 1,752 billable · 2 events" in body
    assert "1 0 – 10,000 1,752 €0.01 — €17.52"  # a unit price at least with the currency's places in body
    assert "2 above 10,000 0 €0.005 — €0.00" in body
    assert "Subtotal Usage €17.52" in body
    assert "Net €150.91 Tax €30.18 Total €181.09 Amount due €181.09" in body
    assert "Standard rate standard S 20% €150.91 €30.18" in body

    # April's usage, and 100 MB of March that arrive late: an adjustment on the May invoice
    send_usage(
        tenant,
        paris(2026, 4, 30, 12),
        ("a-2", "A", paris(2026, 4, 1, 0, 30), 5000),
        ("b-2", "B", paris(2026, 4, 18, 9), 7000),
        ("c-2", "C", paris(2026, 4, 20, 9), 2000),
        ("a-late", "A", paris(2026, 3, 30, 9), 100),
    )
    run_bill_run(tenant, date(2026, 5, 1), paris(2026, 5, 1, 0, 30))
    may = the_invoice(tenant, "dupont", date(2026, 5, 1))

    body = text(client.get(f"/app/billing/invoices/{may.pk}/"))

    assert "ELD-200, instalment 2/12 eld-200 — 3 €20.00 Standard rate €60.00" in body
    assert "Fleet platform, 10–30 Apr 2026 (21/30) fleet-platform 10–30 Apr 2026 1 €25.00 Standard rate €17.50" in body
    assert "Fleet platform fleet-platform 1–31 May 2026 3 €25.00 Standard rate €75.00" in body
    assert "Data overage data-overage 1–30 Apr 2026 10,928 — Standard rate €104.64" in body
    assert "1 0 – 10,000 10,000 €0.01 — €100.00" in body
    assert "2 above 10,000 928 €0.005 — €4.64" in body
    # March measured again: 3900 - 2048 = 1852 x 0.010 = 18.52, 17.52 billed then: 1.00
    assert "Data overage (late usage) data-overage 1–31 Mar 2026 100 — Standard rate €1.00" in body
    assert "3,900 metered now, 3,800 when it was invoiced: 100 arrived late." in body
    assert "€17.52 were billed then." in body
    assert "Subtotal Adjustments €1.00" in body
    assert "Net €258.14 Tax €51.63 Total €309.77" in body


def test_invoice_filters_and_the_htmx_rows(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    monthly_fee_customers(tenant, 2)
    run_bill_run(tenant)
    finalized = invoice_finalize(invoice=the_invoice(tenant, "c1"), actor=ACTOR, at=RUN_AT)
    logged_in(client, make_staff(tenant))

    def numbers(query: str, **headers: str) -> list[str]:
        response = client.get("/app/billing/invoices/" + query, headers=headers)
        assert response.status_code == 200
        return re.findall(r"<td>(Customer \d)", html(response))

    assert sorted(numbers("")) == ["Customer 0", "Customer 1"]
    assert numbers("?status=finalized") == ["Customer 1"]
    assert numbers("?status=draft") == ["Customer 0"]
    assert numbers("?q=c0") == ["Customer 0"]
    assert numbers("?q=customer 1") == ["Customer 1"]
    assert numbers(f"?q={finalized.number}") == ["Customer 1"]
    assert numbers("?kind=credit_note") == []
    assert sorted(numbers("?date_from=2026-04-01&date_to=2026-04-01")) == ["Customer 0", "Customer 1"]
    assert numbers("?date_from=2026-04-02") == []
    assert numbers("?date_to=2026-03-31") == []
    # a bad filter is said, and left out
    bad = client.get("/app/billing/invoices/?date_from=01/04/2026&status=nope")
    assert "Check the filters:" in text(bad)
    assert "Enter a valid date." in text(bad)
    assert len(re.findall(r"<td>(Customer \d)", html(bad))) == 2
    assert "The last day is before the first day." in text(
        client.get("/app/billing/invoices/?date_from=2026-04-02&date_to=2026-04-01")
    )
    # HTMX gets the rows alone; a history restore gets the page
    rows = client.get("/app/billing/invoices/?status=draft", headers={"HX-Request": "true"})
    assert "<html" not in html(rows)
    assert "Customer 0" in html(rows)
    assert "Customer 1" not in html(rows)
    restore = client.get("/app/billing/invoices/", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in html(restore)
    assert numbers("?status=draft", **{"HX-Request": "true"}) == ["Customer 0"]
    assert "INV-2026-000001" in text(client.get("/app/billing/invoices/?status=finalized"))


# --- bill runs --------------------------------------------------------------------------------------


def test_launching_a_bill_run_queues_its_task_and_opens_its_page(
    client: Client, tenant: Tenant, make_staff: StaffMaker, django_capture_on_commit_callbacks: Any
) -> None:
    monthly_fee_customers(tenant)
    logged_in(client, make_staff(tenant, role=Role.FINANCE_ADMIN, email="admin@acme.test"))

    page = client.get("/app/billing/runs/")
    assert page.status_code == 200
    assert 'action="/app/billing/runs/new/"' in html(page)
    assert "No bill run yet." in text(page)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post("/app/billing/runs/new/", {"billing_date": "2026-04-01"})

    run = BillRun.objects.get(tenant=tenant)
    assert response.status_code == 302
    assert response["Location"] == f"/app/billing/runs/{run.pk}/"
    assert len(callbacks) == 1  # bill_run_execute_task, queued once the run is committed
    assert (run.billing_date, run.status) == (APRIL_1, "pending")
    assert AuditLogEntry.objects.get(tenant=tenant, action="bill_run.started").actor_label == "admin@acme.test"
    detail = follow(client, response)
    assert "Bill run for 1 Apr 2026 started." in detail
    assert "Bill run of 1 Apr 2026" in detail
    assert "Pending Waiting for a worker" in detail
    listing = text(client.get("/app/billing/runs/"))
    assert "1 Apr 2026 Pending — 0 0 — queued —" in listing  # no invoice yet: no total

    for bad, message in (
        ({"billing_date": ""}, "This field is required."),
        ({"billing_date": "01/04/2026"}, "Enter a valid date."),
        ({"billing_date": "1900-04-01"}, "Use a year between 1971 and 2999."),
    ):
        refused = client.post("/app/billing/runs/new/", bad)
        assert refused.status_code == 200
        assert "The bill run was not started:" in text(refused)
        assert message in text(refused)
    assert BillRun.objects.filter(tenant=tenant).count() == 1


def test_a_bill_run_for_a_date_still_to_come_is_refused_with_a_form_error_in_english_and_french(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    # given: 23:30 on 31 March in Paris, the tenant's time zone (21:30 UTC)
    monthly_fee_customers(tenant)
    logged_in(client, make_staff(tenant, role=Role.FINANCE_ADMIN))
    with time_machine.travel(datetime(2026, 3, 31, 21, 30, tzinfo=ZoneInfo("UTC")), tick=False):
        # when
        english = client.post("/app/billing/runs/new/", {"billing_date": "2026-04-01"})
        french = client.post("/app/billing/runs/new/", {"billing_date": "2026-04-01"}, HTTP_ACCEPT_LANGUAGE="fr")
    # then: the form says why, and no run is stored
    assert english.status_code == 200
    assert (
        "The bill run was not started: Billing date : "
        "The billing date 1 Apr 2026 has not arrived yet: it is 31 Mar 2026 in Europe/Paris."
    ) in text(english)
    assert french.status_code == 200
    assert (
        "La tournée de facturation n'a pas été lancée : Date de facturation : "
        "La date de facturation 1 avr. 2026 n'est pas encore arrivée : nous sommes le 31 mars 2026 dans le fuseau "
        "Europe/Paris."
    ) in text(french)
    assert not BillRun.objects.filter(tenant=tenant).exists()


def test_the_run_detail_polls_its_progress_until_the_run_completes(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    [customer] = monthly_fee_customers(tenant)
    logged_in(client, make_staff(tenant))
    run = BillRun.objects.create(tenant=tenant, billing_date=APRIL_1)
    progress = f"/app/billing/runs/{run.pk}/progress/"

    pending = client.get(f"/app/billing/runs/{run.pk}/")
    assert pending.status_code == 200
    assert f'hx-get="{progress}" hx-trigger="every 1s"' in html(pending)
    assert f'href="/app/billing/invoices/?run={run.pk}"' in html(pending)

    chunks = bill_run_plan(run=run, at=RUN_AT)
    running = client.get(progress, headers={"HX-Request": "true"})
    assert running.status_code == 200
    assert "<html" not in html(running)
    assert 'hx-trigger="every 1s"' in html(running)
    assert "Running" in text(running)
    assert "Customers billed 0 / 1" in text(running)

    for chunk in chunks:
        bill_run_chunk(run_id=str(run.pk), customer_ids=chunk, at=RUN_AT)
    done = client.get(progress, headers={"HX-Request": "true"})
    body = text(done)
    assert "<html" not in html(done)
    assert "hx-trigger" not in html(done)  # the panel comes back without its trigger: polling stops
    assert "Completed" in body
    assert "Customers billed 1 / 1 Failed 0 Invoices created 1" in body
    assert "1 invoice" in body
    assert "Invoiced 1 Already invoiced 0 Nothing to bill 0 Failed 0" in body
    assert "hx-trigger" not in html(client.get(f"/app/billing/runs/{run.pk}/"))
    listing = text(client.get("/app/billing/runs/"))
    assert "1 Apr 2026 Completed 1 / 1 0 1 €24.00 1 Apr 2026, 06:00:00 CEST 1 Apr 2026, 06:00:00 CEST" in listing
    invoices = client.get(f"/app/billing/invoices/?run={run.pk}")
    assert "Invoices of the bill run of 1 Apr 2026." in text(invoices)
    assert "Customer 0" in text(invoices)
    assert customer.name in text(invoices)


def test_a_customer_failure_is_listed_with_its_reason(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    monthly_fee_customers(tenant, 3, countries=("FR", "DE", "FR"))
    run = run_bill_run(tenant)
    logged_in(client, make_staff(tenant))

    body = text(client.get(f"/app/billing/runs/{run.pk}/"))

    assert "Completed with errors" in body
    assert "Customers billed 2 / 3 Failed 1 Invoices created 2" in body
    assert "Failures" in body
    assert "Customer 1 c1 No tax rate for standard in DE." in body
    assert "Invoiced 2 Already invoiced 0 Nothing to bill 0 Failed 1" in body
    assert "1 Apr 2026 Completed with errors 2 / 3 1 2" in text(client.get("/app/billing/runs/"))
    # a second run for the same date makes nothing twice: its page links the invoices it found
    second = run_bill_run(tenant)
    body = text(client.get(f"/app/billing/runs/{second.pk}/"))
    assert "Customers billed 2 / 3 Failed 1 Invoices created 0" in body
    assert "Invoiced 0 Already invoiced 2 Nothing to bill 0 Failed 1" in body
    assert "2 invoices" in body
    found = text(client.get(f"/app/billing/invoices/?run={second.pk}"))
    assert "Customer 0" in found
    assert "Customer 2" in found


# --- actions ----------------------------------------------------------------------------------------


def test_finalize_through_the_page_assigns_the_first_number(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    monthly_fee_customers(tenant)
    run_bill_run(tenant)
    invoice = the_invoice(tenant)
    logged_in(client, make_staff(tenant, role=Role.FINANCE_ADMIN, email="admin@acme.test"))

    response = client.post(f"/app/billing/invoices/{invoice.pk}/finalize/")

    invoice.refresh_from_db()
    assert (invoice.status, invoice.number) == ("finalized", "INV-2026-000001")
    page = follow(client, response)
    assert "Invoice INV-2026-000001 finalized: its PDF is rendered and e-mailed to c0@x.test." in page
    assert "Invoice INV-2026-000001 Finalized" in page
    assert AuditLogEntry.objects.get(tenant=tenant, action="invoice.finalized").actor_label == "admin@acme.test"
    # finalizing twice is an error message, never a 500
    again = client.post(f"/app/billing/invoices/{invoice.pk}/finalize/")
    assert "A finalized invoice cannot become finalized." in follow(client, again)
    assert Invoice.objects.get(pk=invoice.pk).number == "INV-2026-000001"
    listing = text(client.get("/app/billing/invoices/"))
    assert "INV-2026-000001 Customer 0 c0 1 Apr 2026 Finalized Unpaid Overdue €20.00 €4.00 €24.00 €24.00" in listing


def test_credit_notes_through_the_page(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    monthly_fee_customers(tenant)
    run_bill_run(tenant)
    invoice = invoice_finalize(invoice=the_invoice(tenant), actor=ACTOR, at=RUN_AT)
    [line] = invoice.lines.all()
    credit = f"/app/billing/invoices/{invoice.pk}/credit-notes/"
    logged_in(client, make_staff(tenant))

    page = client.get(f"/app/billing/invoices/{invoice.pk}/")
    assert f'action="{credit}#credit-note"' in html(page)
    assert f'name="amount-{line.pk}"' in html(page)

    # a partial credit of 5.00 on the 20.00 line: VAT 1.00, total 6.00
    response = client.post(credit, {"mode": "partial", f"amount-{line.pk}": "5,00", "reason": "Two days offline"})

    note = Invoice.objects.get(tenant=tenant, kind="credit_note")
    assert (note.number, note.status, note.net_total, note.tax_total, note.total) == (
        "CN-2026-000001",
        "finalized",
        Money("5.00", "EUR"),
        Money("1.00", "EUR"),
        Money("6.00", "EUR"),
    )
    assert note.reason == "Two days offline"
    invoice.refresh_from_db()
    assert invoice.amount_due == Money("18.00", "EUR")
    body = follow(client, response)
    assert "Credit note CN-2026-000001 created: €6.00." in body
    assert "Amount due €18.00" in body
    assert re.search(r"CN-2026-000001 \d{1,2} [A-Z][a-z]{2} 2026 Finalized", body)
    assert "Finalized Two days offline €5.00 €6.00" in body
    assert "Platform platform €20.00 €5.00 €15.00" in body  # credited 5.00, 15.00 left
    note_page = text(client.get(f"/app/billing/invoices/{note.pk}/"))
    assert "Credit note CN-2026-000001 Finalized" in note_page
    assert "Credits INV-2026-000001" in note_page
    assert "Net €5.00 Tax €1.00 Total €6.00" in note_page

    # never more than what is left on the line; errors are messages, never a 500
    for data, message in (
        ({"mode": "partial", f"amount-{line.pk}": "15.01"}, "Between 0.01 and 15.00."),
        ({"mode": "partial", f"amount-{line.pk}": "abc"}, "A decimal amount."),
        ({"mode": "partial", f"amount-{line.pk}": "0"}, "Between 0.01 and 15.00."),
        ({"mode": "partial", "amount-999999": "1.00"}, "Not a line of this invoice."),
        ({"mode": "partial", f"amount-{line.pk}": ""}, "Enter the amount to credit on at least one line"),
    ):
        refused = client.post(credit, data)
        assert refused.status_code == 200
        assert message in text(refused), message
    assert Invoice.objects.filter(kind="credit_note").count() == 1

    # the rest in full, then nothing is left to credit and the invoice cannot be voided
    full = client.post(credit, {"mode": "full", f"amount-{line.pk}": "1.00"})
    assert "Credit note CN-2026-000002 created: €18.00." in follow(client, full)
    assert Invoice.objects.get(number="CN-2026-000002").net_total == Money("15.00", "EUR")
    assert "Nothing left to credit." in text(client.post(credit, {"mode": "full"}))
    detail = client.get(f"/app/billing/invoices/{invoice.pk}/")
    assert f'action="{credit}#credit-note"' not in html(detail)
    assert "/void/" not in html(detail)
    voided = client.post(f"/app/billing/invoices/{invoice.pk}/void/", {"reason": "mistake"})
    assert "An invoice with credit notes cannot be voided." in follow(client, voided)
    assert Invoice.objects.get(pk=invoice.pk).status == "finalized"


def test_a_credit_note_error_on_line_2_is_shown_on_line_2_with_what_was_typed(
    client: Client, tenant: Tenant, make_staff: StaffMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the Smart Fleet April invoice, finalized; its second line is 13.71 (25.00 x 17/31)
    smart_fleet(tenant)
    run_bill_run(tenant, APRIL_1, paris(2026, 4, 1, 0, 30))
    invoice = invoice_finalize(invoice=the_invoice(tenant, "dupont"), actor=ACTOR, at=RUN_AT)
    logged_in(client, make_staff(tenant))
    page = html(client.get(f"/app/billing/invoices/{invoice.pk}/"))
    ids = [int(pk) for pk in re.findall(r'name="amount-(\d+)"', page)]
    first, second = ids[0], ids[1]
    assert InvoiceLine.objects.get(pk=second).amount == Decimal("13.71")  # nothing credited yet: 13.71 left

    # when: 1,00 on line 1 (fine), 999.00 on line 2 (more than is left), and a reason too long; the
    # lines are checked without making a credit note, even one undone (its settlement could refund
    # a card payment through the gateway, which no rollback takes back)
    import backoffice.invoicing.views as views

    def never(**kwargs: object) -> None:
        raise AssertionError("credit_note_create called while the reason is refused")

    monkeypatch.setattr(views, "credit_note_create", never)
    response = client.post(
        f"/app/billing/invoices/{invoice.pk}/credit-notes/",
        {"mode": "partial", f"amount-{first}": "1,00", f"amount-{second}": "999.00", "reason": "x" * 301},
    )

    # then: one response with both errors, each where it belongs, and the amounts typed kept
    assert response.status_code == 200
    body = html(response)
    assert f'<small id="credit-amount-{second}_error" class="tp-error">Between 0.01 and 13.71.</small>' in body
    assert f'id="credit-amount-{first}_error"' not in body
    assert f'name="amount-{first}" id="credit-amount-{first}"' in body
    assert 'value="1,00" aria-' not in body  # line 1 has no error...
    assert 'value="1,00">' in body  # ...and keeps what was typed
    assert 'value="999.00" aria-invalid="true" aria-describedby="credit-amount-%d_error"' % second in body
    assert '<small id="credit-reason_error" class="tp-error">The reason is longer than 300 characters.</small>' in body
    assert f'href="#credit-amount-{second}"' in body  # the summary links to the line
    assert Invoice.objects.filter(kind="credit_note").count() == 0


def test_void_through_the_page_needs_a_reason(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    monthly_fee_customers(tenant)
    run_bill_run(tenant)
    invoice = the_invoice(tenant)
    void = f"/app/billing/invoices/{invoice.pk}/void/"
    logged_in(client, make_staff(tenant))

    assert "Give the reason for voiding the invoice." in follow(client, client.post(void, {"reason": " "}))
    assert Invoice.objects.get(pk=invoice.pk).status == "draft"
    response = client.post(void, {"reason": "Wrong customer"})

    invoice.refresh_from_db()
    assert (invoice.status, invoice.reason, invoice.amount_due) == ("void", "Wrong customer", Money(0, "EUR"))
    page = follow(client, response)
    assert "Invoice draft voided." in page
    assert "Invoice Draft Void" in page
    assert "Reason Wrong customer" in page
    assert "Amount due €0.00" in page
    assert "A void invoice cannot become void." in follow(client, client.post(void, {"reason": "again"}))
    assert "A void invoice cannot become finalized." in follow(
        client, client.post(f"/app/billing/invoices/{invoice.pk}/finalize/")
    )


def test_the_pdf_route_returns_the_invoice_pdf_inline(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    pytest.importorskip("invoicing.pdf")
    monthly_fee_customers(tenant)
    run_bill_run(tenant)
    invoice = the_invoice(tenant)
    logged_in(client, make_staff(tenant))

    assert f'src="/app/billing/invoices/{invoice.pk}/pdf/"' in html(client.get(f"/app/billing/invoices/{invoice.pk}/"))
    response = client.get(f"/app/billing/invoices/{invoice.pk}/pdf/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'inline; filename="draft-{invoice.pk}.pdf"'
    assert response.content.startswith(b"%PDF")
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    # Chrome's PDF viewer needs inline styles and an <embed>: the PDF has its own policy, which
    # only keeps it out of other sites' frames (the page that frames it keeps the site's policy)
    assert response["Content-Security-Policy"] == "frame-ancestors 'self'"
    page = client.get(f"/app/billing/invoices/{invoice.pk}/")
    assert "frame-ancestors 'none'" in page["Content-Security-Policy"]


def test_a_stored_pdf_is_returned_as_it_is(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    monthly_fee_customers(tenant)
    run_bill_run(tenant)
    invoice = invoice_finalize(invoice=the_invoice(tenant), actor=ACTOR, at=RUN_AT)
    Invoice.objects.filter(pk=invoice.pk).update(pdf=b"%PDF-1.7 stored")
    logged_in(client, make_staff(tenant))

    response = client.get(f"/app/billing/invoices/{invoice.pk}/pdf/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'inline; filename="INV-2026-000001.pdf"'
    assert response.content == b"%PDF-1.7 stored"
    assert f'src="/app/billing/invoices/{invoice.pk}/pdf/"' in html(client.get(f"/app/billing/invoices/{invoice.pk}/"))


# --- isolation and roles ----------------------------------------------------------------------------


def test_another_tenants_invoices_and_runs_are_not_found(
    client: Client, tenant: Tenant, other_tenant: Tenant, make_staff: StaffMaker
) -> None:
    monthly_fee_customers(other_tenant)
    run = run_bill_run(other_tenant)
    invoice = the_invoice(other_tenant)
    logged_in(client, make_staff(tenant))

    base = f"/app/billing/invoices/{invoice.pk}/"
    assert client.get(base).status_code == 404
    assert client.get(base + "pdf/").status_code == 404
    assert client.post(base + "finalize/").status_code == 404
    assert client.post(base + "void/", {"reason": "x"}).status_code == 404
    assert client.post(base + "credit-notes/", {"mode": "full"}).status_code == 404
    assert client.get(f"/app/billing/runs/{run.pk}/").status_code == 404
    assert client.get(f"/app/billing/runs/{run.pk}/progress/").status_code == 404
    assert client.get(f"/app/billing/invoices/?run={run.pk}").status_code == 404
    assert client.get("/app/billing/invoices/not-a-uuid/").status_code == 404
    assert client.get("/app/billing/runs/not-a-uuid/").status_code == 404
    assert "Customer 0" not in html(client.get("/app/billing/invoices/"))
    assert "2026-04-01" not in html(client.get("/app/billing/runs/"))
    invoice.refresh_from_db()
    assert (invoice.status, invoice.number) == ("draft", "")


def test_finance_viewer_reads_but_cannot_launch_finalize_void_or_credit(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    monthly_fee_customers(tenant, 2)
    run = run_bill_run(tenant)
    draft = the_invoice(tenant, "c0")
    final = invoice_finalize(invoice=the_invoice(tenant, "c1"), actor=ACTOR, at=RUN_AT)
    [line] = final.lines.all()
    logged_in(client, make_staff(tenant, role=Role.FINANCE_VIEWER, email="viewer@acme.test"))

    assert client.post("/app/billing/runs/new/", {"billing_date": "2026-04-01"}).status_code == 403
    assert client.post(f"/app/billing/invoices/{draft.pk}/finalize/").status_code == 403
    assert client.post(f"/app/billing/invoices/{draft.pk}/void/", {"reason": "x"}).status_code == 403
    assert client.post(f"/app/billing/invoices/{final.pk}/credit-notes/", {"mode": "full"}).status_code == 403
    assert (
        client.post(
            f"/app/billing/invoices/{final.pk}/credit-notes/", {"mode": "partial", f"amount-{line.pk}": "5.00"}
        ).status_code
        == 403
    )
    assert BillRun.objects.filter(tenant=tenant).count() == 1
    assert Invoice.objects.get(pk=draft.pk).status == "draft"
    assert not Invoice.objects.filter(kind="credit_note").exists()

    for path in (
        "/app/billing/runs/",
        f"/app/billing/runs/{run.pk}/",
        "/app/billing/invoices/",
        f"/app/billing/invoices/{draft.pk}/",
        f"/app/billing/invoices/{final.pk}/",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        body = html(response)
        for action in ("/runs/new/", "/finalize/", "/void/", "/credit-notes/"):
            assert action not in body, (path, action)


def test_support_agent_reads_invoices(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    monthly_fee_customers(tenant)
    run_bill_run(tenant)
    invoice = the_invoice(tenant)
    logged_in(client, make_staff(tenant, role=Role.SUPPORT_AGENT, email="support@acme.test"))

    assert client.get(f"/app/billing/invoices/{invoice.pk}/").status_code == 200
    assert client.post(f"/app/billing/invoices/{invoice.pk}/finalize/").status_code == 403


def test_anonymous_is_sent_to_login(client: Client) -> None:
    for path in ("/app/billing/invoices/", "/app/billing/runs/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"] == f"/app/login/?next={path}"


def test_get_is_not_allowed_on_actions(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    monthly_fee_customers(tenant)
    run_bill_run(tenant)
    invoice = the_invoice(tenant)
    logged_in(client, make_staff(tenant))

    for action in ("finalize", "void", "credit-notes"):
        assert client.get(f"/app/billing/invoices/{invoice.pk}/{action}/").status_code == 405
    assert client.get("/app/billing/runs/new/").status_code == 405
    assert InvoiceLine.objects.filter(invoice__kind="credit_note").count() == 0


# --- navigation and French --------------------------------------------------------------------------


def test_sidebar_lists_bill_runs_and_invoices_in_billing(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    logged_in(client, make_staff(tenant))

    runs = html(client.get("/app/billing/runs/"))
    invoices = html(client.get("/app/billing/invoices/"))

    assert runs.index("<h6>Billing</h6>") < runs.index(">Bill runs</a>") < runs.index("<h6>Usage</h6>")
    assert runs.index(">Bill runs</a>") < runs.index(">Invoices</a>") < runs.index("<h6>Usage</h6>")
    assert '<a href="/app/billing/runs/" aria-current="page">Bill runs</a>' in runs
    assert '<a href="/app/billing/invoices/" >Invoices</a>' in runs
    assert '<a href="/app/billing/invoices/" aria-current="page">Invoices</a>' in invoices


def test_invoice_pages_in_french(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    monthly_fee_customers(tenant)
    run = run_bill_run(tenant)
    invoice = the_invoice(tenant)
    logged_in(client, make_staff(tenant))

    listing = text(client.get("/app/billing/invoices/", HTTP_ACCEPT_LANGUAGE="fr"))
    detail = text(client.get(f"/app/billing/invoices/{invoice.pk}/", HTTP_ACCEPT_LANGUAGE="fr"))
    runs = text(client.get(f"/app/billing/runs/{run.pk}/", HTTP_ACCEPT_LANGUAGE="fr"))

    assert "Factures" in listing
    assert "20,00 € 4,00 € 24,00 € 24,00 €" in listing
    assert "Sous-total Service 20,00 €" in detail
    # the period's last day, in French: [1 Apr, 1 May) is 1–30 April
    assert "Platform platform 1–30 avr. 2026 2 10,00 € Taux normal 20,00 €" in detail
    assert "Taux normal standard S 20 % 20,00 € 4,00 €" in detail
    assert "Finaliser la facture" in detail
    assert "Tournée de facturation du 1 avr. 2026" in runs
    assert BillRunStatus.COMPLETED == run.status
