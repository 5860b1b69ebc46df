"""Bill runs, numbering, lifecycle and credit notes."""

import threading
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.utils import timezone

from billing_platform.celery import app as celery_app
from catalog.services import plan_create, product_create, tax_rate_set
from customers.services import customer_create
from invoicing.errors import InvalidCreditNote, InvalidInvoiceTransition
from invoicing.models import BillRun, BillRunCustomer, Invoice, InvoiceLine
from invoicing.services import (
    bill_run_chunk,
    bill_run_plan,
    credit_note_create,
    customers_due,
    invoice_finalize,
    invoice_generate,
    invoice_void,
)
from subscriptions.models import ServiceCharge
from subscriptions.services import subscription_create
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


def build(tenant: Tenant, customers: int, *, countries: tuple[str, ...] = ("FR",)) -> list[Any]:
    """Customers on a plan of 10.00 per device per month (from subscription start), 2 devices each."""
    now = timezone.now()
    product_create(tenant=tenant, actor=ACTOR, at=now, code="platform", name="Platform", kind="service")
    plan = plan_create(
        tenant=tenant,
        actor=ACTOR,
        at=now,
        code="p",
        name="P",
        prices=[{"currency": "EUR"}],
        components=[
            {
                "product": "platform",
                "per_device": True,
                "starts_on": "subscription_start",
                "charge": {"model": "flat", "amount": "10.00"},
            }
        ],
    )
    tax_rate_set(tenant=tenant, actor=ACTOR, at=now, country="FR", tax_category="standard", rate="20")
    out = []
    for i in range(customers):
        country = countries[i % len(countries)]
        customer = customer_create(
            tenant=tenant,
            actor=ACTOR,
            at=now,
            external_id=f"c{i}",
            name=f"C{i}",
            email=f"c{i}@x.test",
            country=country,
            timezone="Europe/Paris",
            billing_day=1,
        )
        subscription_create(
            tenant=tenant,
            actor=ACTOR,
            at=now,
            external_id=f"s{i}",
            customer=customer,
            plan=plan,
            signed_at=datetime(2026, 3, 1, 9, tzinfo=PARIS),
            starts_on=date(2026, 3, 1),
            devices=[{"device_id": f"c{i}-d{j}"} for j in range(2)],
        )
        out.append(customer)
    return out


@pytest.mark.django_db
def test_a_customer_failure_is_recorded_and_does_not_stop_the_others(tenant: Tenant) -> None:
    # given: 3 customers, one in Germany where the tenant has no tax rate
    build(tenant, 3, countries=("FR", "DE", "FR"))
    run = BillRun.objects.create(tenant=tenant, billing_date=APRIL_1)
    # when
    for chunk in bill_run_plan(run=run, at=RUN_AT):
        bill_run_chunk(run_id=str(run.pk), customer_ids=chunk, at=RUN_AT)
    # then
    run.refresh_from_db()
    assert (run.status, run.total, run.done, run.failed, run.created) == ("completed_with_errors", 3, 2, 1, 2)
    failure = BillRunCustomer.objects.get(bill_run=run, outcome="failed")
    assert failure.customer.external_id == "c1"
    assert failure.error == "No tax rate for standard in DE."
    # April in advance: 2 x 10.00 = 20.00, VAT 4.00
    assert sorted(str(i.total) for i in Invoice.objects.all()) == ["24.0000", "24.0000"]


@pytest.mark.django_db
def test_an_interrupted_run_resumes_without_duplicates(tenant: Tenant) -> None:
    build(tenant, 5)
    run = BillRun.objects.create(tenant=tenant, billing_date=APRIL_1)
    [chunk] = bill_run_plan(run=run, at=RUN_AT)
    # a worker dies after two customers...
    bill_run_chunk(run_id=str(run.pk), customer_ids=chunk[:2], at=RUN_AT)
    # ...the chunk is retried whole, then a second run is started for the same date
    bill_run_chunk(run_id=str(run.pk), customer_ids=chunk, at=RUN_AT)
    second = BillRun.objects.create(tenant=tenant, billing_date=APRIL_1)
    for c in bill_run_plan(run=second, at=RUN_AT):
        bill_run_chunk(run_id=str(second.pk), customer_ids=c, at=RUN_AT)
    run.refresh_from_db()
    second.refresh_from_db()
    assert (run.done, run.created, second.done, second.created) == (5, 5, 5, 0)
    assert Invoice.objects.count() == 5
    assert InvoiceLine.objects.count() == 5
    # and each device's April fee is in the ledger once
    assert ServiceCharge.objects.filter(source="in_advance").count() == 10


@pytest.mark.django_db
def test_customers_due_are_found_in_their_own_time_zone(tenant: Tenant) -> None:
    [customer] = build(tenant, 1)
    # 31 March 23:30 in Paris: not due yet for 1 April; 00:10 on 1 April: due
    assert customers_due(tenant=tenant, billing_date=APRIL_1, at=datetime(2026, 3, 31, 23, 30, tzinfo=PARIS)) == []
    assert customers_due(tenant=tenant, billing_date=APRIL_1, at=datetime(2026, 4, 1, 0, 10, tzinfo=PARIS)) == [
        customer.pk
    ]


@pytest.mark.django_db
def test_billing_day_31_is_due_on_30_april(tenant: Tenant) -> None:
    [customer] = build(tenant, 1)
    customer.billing_day = 31
    customer.save()
    assert customers_due(tenant=tenant, billing_date=date(2026, 4, 30), at=RUN_AT.replace(month=5)) == [customer.pk]
    assert customers_due(tenant=tenant, billing_date=date(2026, 4, 29), at=RUN_AT.replace(month=5)) == []


@pytest.mark.django_db
def test_lifecycle_finalize_void_and_credit_notes(tenant: Tenant) -> None:
    [customer] = build(tenant, 1)
    invoice = invoice_generate(customer=customer, billing_date=APRIL_1, at=RUN_AT)
    assert invoice is not None
    invoice_finalize(invoice=invoice, actor=ACTOR, at=RUN_AT)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.number) == ("finalized", "INV-2026-000001")
    with pytest.raises(InvalidInvoiceTransition, match="A finalized invoice cannot become finalized."):
        invoice_finalize(invoice=invoice, actor=ACTOR, at=RUN_AT)
    [line] = invoice.lines.all()
    # partial credit of 5.00 on the 20.00 line: VAT 1.00, total 6.00
    note = credit_note_create(invoice=invoice, actor=ACTOR, at=RUN_AT, lines=[{"line": line.pk, "amount": "5.00"}])
    assert (note.kind, note.number, note.total) == ("credit_note", "CN-2026-000001", Decimal("6.00"))
    invoice.refresh_from_db()
    assert invoice.amount_due == Decimal("18.00")
    with pytest.raises(InvalidCreditNote, match="Between 0.01 and 15.00"):
        credit_note_create(invoice=invoice, actor=ACTOR, at=RUN_AT, lines=[{"line": line.pk, "amount": "15.01"}])
    full = credit_note_create(invoice=invoice, actor=ACTOR, at=RUN_AT)
    assert (full.number, full.net_total) == ("CN-2026-000002", Decimal("15.00"))
    with pytest.raises(InvalidInvoiceTransition, match="credit notes cannot be voided"):
        invoice_void(invoice=invoice, actor=ACTOR, at=RUN_AT)


@pytest.mark.django_db(transaction=True)
def test_parallel_finalizations_never_duplicate_or_skip_a_number(tenant: Tenant, monkeypatch: Any) -> None:
    from invoicing import tasks

    monkeypatch.setattr(tasks.invoice_render_task, "delay", lambda *args: None)  # numbering only, no PDFs
    customers = build(tenant, 12)
    invoices = [invoice_generate(customer=c, billing_date=APRIL_1, at=RUN_AT) for c in customers]
    errors: list[BaseException] = []

    def finalize(batch: list[Any]) -> None:
        try:
            for invoice in batch:
                invoice_finalize(invoice=invoice, actor=ACTOR, at=RUN_AT)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=finalize, args=(invoices[i::3],)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    numbers = sorted(n or 0 for n in Invoice.objects.values_list("number_sequence", flat=True))
    assert numbers == list(range(1, 13))
