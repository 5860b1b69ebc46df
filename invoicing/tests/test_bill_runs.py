"""Bill runs, numbering, lifecycle and credit notes."""

import threading
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from djmoney.money import Money

from billing_platform.celery import app as celery_app
from catalog.services import price_version_create
from customers.models import Partner
from invoicing.errors import InvalidCreditNote, InvalidInvoiceTransition
from invoicing.models import BillRun, BillRunCustomer, Invoice, InvoiceLine, InvoicingSettings
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
from subscriptions.tests.factories import monthly_fee_customers
from tenancy.actors import Actor
from tenancy.models import AuditLogEntry, Tenant

PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")
APRIL_1 = date(2026, 4, 1)
RUN_AT = datetime(2026, 4, 1, 6, 0, tzinfo=PARIS)


@pytest.fixture(autouse=True)
def eager() -> Iterator[None]:
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.mark.django_db
def test_a_customer_failure_is_recorded_and_does_not_stop_the_others(tenant: Tenant) -> None:
    # given: 3 customers, one in Germany where the tenant has no tax rate
    monthly_fee_customers(tenant, 3, countries=("FR", "DE", "FR"))
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
    assert sorted(str(i.total.amount) for i in Invoice.objects.all()) == ["24.0000", "24.0000"]


@pytest.mark.django_db
def test_a_finished_run_planned_again_is_left_as_it_was(tenant: Tenant) -> None:
    # given: a run of 2 customers completed at 06:00
    monthly_fee_customers(tenant, 2)
    run = BillRun.objects.create(tenant=tenant, billing_date=APRIL_1)
    for chunk in bill_run_plan(run=run, at=RUN_AT):
        bill_run_chunk(run_id=str(run.pk), customer_ids=chunk, at=RUN_AT)
    # when: its task is delivered again an hour later
    later = datetime(2026, 4, 1, 7, 0, tzinfo=PARIS)
    chunks = bill_run_plan(run=run, at=later)
    # then: nothing to do, and the run still says what happened at 06:00
    run.refresh_from_db()
    assert chunks == []
    assert (run.status, run.total, run.done, run.created) == ("completed", 2, 2, 2)
    assert (run.started_at, run.finished_at) == (RUN_AT, RUN_AT)


@pytest.mark.django_db
def test_an_interrupted_run_resumes_without_duplicates(tenant: Tenant) -> None:
    monthly_fee_customers(tenant, 5)
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
    [customer] = monthly_fee_customers(tenant, 1)
    # 31 March 23:30 in Paris: not due yet for 1 April; 00:10 on 1 April: due
    assert customers_due(tenant=tenant, billing_date=APRIL_1, at=datetime(2026, 3, 31, 23, 30, tzinfo=PARIS)) == []
    assert customers_due(tenant=tenant, billing_date=APRIL_1, at=datetime(2026, 4, 1, 0, 10, tzinfo=PARIS)) == [
        customer.pk
    ]


@pytest.mark.django_db
def test_billing_day_31_is_due_on_30_april(tenant: Tenant) -> None:
    [customer] = monthly_fee_customers(tenant, 1)
    customer.billing_day = 31
    customer.save()
    assert customers_due(tenant=tenant, billing_date=date(2026, 4, 30), at=RUN_AT.replace(month=5)) == [customer.pk]
    assert customers_due(tenant=tenant, billing_date=date(2026, 4, 29), at=RUN_AT.replace(month=5)) == []


@pytest.mark.django_db
def test_lifecycle_finalize_void_and_credit_notes(tenant: Tenant) -> None:
    [customer] = monthly_fee_customers(tenant, 1)
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
    assert (note.kind, note.number, note.total) == ("credit_note", "CN-2026-000001", Money("6.00", "EUR"))
    invoice.refresh_from_db()
    assert invoice.amount_due == Money("18.00", "EUR")
    with pytest.raises(InvalidCreditNote, match="Between 0.01 and 15.00"):
        credit_note_create(invoice=invoice, actor=ACTOR, at=RUN_AT, lines=[{"line": line.pk, "amount": "15.01"}])
    full = credit_note_create(invoice=invoice, actor=ACTOR, at=RUN_AT)
    assert (full.number, full.net_total) == ("CN-2026-000002", Money("15.00", "EUR"))
    with pytest.raises(InvalidInvoiceTransition, match="credit notes cannot be voided"):
        invoice_void(invoice=invoice, actor=ACTOR, at=RUN_AT)


@pytest.mark.django_db(transaction=True)
def test_parallel_finalizations_never_duplicate_or_skip_a_number(tenant: Tenant, monkeypatch: Any) -> None:
    from invoicing import tasks

    monkeypatch.setattr(tasks.invoice_render_task, "delay", lambda *args, **kwargs: None)  # numbering only, no PDFs
    customers = monthly_fee_customers(tenant, 12)
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


@pytest.fixture
def rendered(monkeypatch: Any) -> list[str]:
    """Invoices queued for rendering and sending (numbering only here, no PDFs)."""
    from invoicing import tasks

    queued: list[str] = []
    monkeypatch.setattr(tasks.invoice_render_task, "delay", lambda invoice_id, *, tenant_id: queued.append(invoice_id))
    return queued


@pytest.mark.django_db(transaction=True)
def test_auto_finalize_numbers_a_batch_in_order_and_skips_the_failed_customer(
    tenant: Tenant, rendered: list[str]
) -> None:
    # given: auto-finalize, 5 customers, the third in Germany where the tenant has no tax rate
    InvoicingSettings.objects.create(tenant=tenant, auto_finalize=True)
    monthly_fee_customers(tenant, 5, countries=("FR", "FR", "DE", "FR", "FR"))
    run = BillRun.objects.create(tenant=tenant, billing_date=APRIL_1)
    # when
    for chunk in bill_run_plan(run=run, at=RUN_AT):
        bill_run_chunk(run_id=str(run.pk), customer_ids=chunk, at=RUN_AT)
    # then: four invoices numbered 1 to 4 without a gap, each audited once and queued once for sending
    run.refresh_from_db()
    assert (run.done, run.failed, run.created) == (4, 1, 4)
    invoices = Invoice.objects.order_by("number_sequence")
    assert [(i.number, i.status) for i in invoices] == [(f"INV-2026-00000{n}", "finalized") for n in range(1, 5)]
    assert sorted(rendered) == sorted(str(i.pk) for i in invoices)
    assert AuditLogEntry.objects.filter(action="invoice.finalized").count() == 4


@pytest.mark.django_db(transaction=True)
def test_two_bill_runs_finalizing_in_parallel_share_one_gapless_sequence(tenant: Tenant, rendered: list[str]) -> None:
    InvoicingSettings.objects.create(tenant=tenant, auto_finalize=True)
    customers = monthly_fee_customers(tenant, 12)
    runs = [BillRun.objects.create(tenant=tenant, billing_date=APRIL_1, total=6) for _ in range(2)]
    errors: list[BaseException] = []

    def work(run: BillRun, ids: list[str]) -> None:
        try:
            for i in range(0, len(ids), 2):  # several small chunks, interleaved with the other run's
                bill_run_chunk(run_id=str(run.pk), customer_ids=ids[i : i + 2], at=RUN_AT)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    ids = [str(c.pk) for c in customers]
    threads = [threading.Thread(target=work, args=(runs[k], ids[k::2])) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    numbers = sorted(n or 0 for n in Invoice.objects.values_list("number_sequence", flat=True))
    assert numbers == list(range(1, 13))
    assert len(rendered) == 12


@pytest.mark.django_db
def test_a_batch_that_cannot_be_written_whole_is_written_one_customer_at_a_time(
    tenant: Tenant, monkeypatch: Any
) -> None:
    from invoicing.services import bill_runs as services

    customers = monthly_fee_customers(tenant, 3)
    load = services.billing_context_load

    def load_then_race(**kwargs: Any) -> Any:
        context = load(**kwargs)
        # another worker invoices c1 after this chunk read that c1 had no invoice yet
        invoice_generate(
            customer=customers[1],
            billing_date=APRIL_1,
            at=RUN_AT,
            context=load(tenant=tenant, customers=[customers[1]], billing_date=APRIL_1),
        )
        return context

    monkeypatch.setattr(services, "billing_context_load", load_then_race)
    run = BillRun.objects.create(tenant=tenant, billing_date=APRIL_1)
    bill_run_chunk(run_id=str(run.pk), customer_ids=[str(c.pk) for c in customers], at=RUN_AT)
    run.refresh_from_db()
    assert (run.done, run.failed, run.created) == (3, 0, 2)
    outcomes = dict(BillRunCustomer.objects.values_list("customer__external_id", "outcome"))
    assert outcomes == {"c0": "invoiced", "c1": "existing", "c2": "invoiced"}
    assert Invoice.objects.count() == 3
    assert InvoiceLine.objects.count() == 3
    assert ServiceCharge.objects.filter(source="in_advance").count() == 6


@pytest.mark.django_db
def test_a_finalized_invoice_keeps_the_partner_its_customer_had_and_costs_no_query_per_invoice(
    tenant: Tenant,
) -> None:
    customers = monthly_fee_customers(tenant, 12)
    partner = Partner.objects.create(tenant=tenant, code="alpnet", name="AlpNet", currency="EUR")
    for customer in customers[::2]:  # every other customer sold by AlpNet
        customer.partner = partner
        customer.save(update_fields=["partner"])
    InvoicingSettings.objects.create(tenant=tenant, auto_finalize=True)

    def queries(ids: list[str]) -> int:
        run = BillRun.objects.create(tenant=tenant, billing_date=APRIL_1)
        with CaptureQueriesContext(connection) as captured:
            bill_run_chunk(run_id=str(run.pk), customer_ids=ids, at=RUN_AT)
        return len(captured.captured_queries)

    assert queries([str(c.pk) for c in customers[:3]]) == queries([str(c.pk) for c in customers[3:]])
    invoices = {i.customer_id: i for i in Invoice.objects.filter(tenant=tenant)}
    assert len(invoices) == 12
    assert {i.status for i in invoices.values()} == {"finalized"}
    assert [invoices[c.pk].partner_id for c in customers] == [partner.pk, None] * 6
    # The customer moved to direct later: its invoice stays AlpNet's.
    customers[0].partner = None
    customers[0].save(update_fields=["partner"])
    assert Invoice.objects.get(customer=customers[0]).partner_id == partner.pk


@pytest.mark.django_db
def test_a_chunk_costs_the_same_queries_for_3_customers_as_for_9(tenant: Tenant) -> None:
    customers = monthly_fee_customers(tenant, 12)
    InvoicingSettings.objects.create(tenant=tenant)

    def queries(ids: list[str]) -> int:
        run = BillRun.objects.create(tenant=tenant, billing_date=APRIL_1)
        with CaptureQueriesContext(connection) as captured:
            bill_run_chunk(run_id=str(run.pk), customer_ids=ids, at=RUN_AT)
        assert BillRunCustomer.objects.filter(bill_run=run, outcome="invoiced").count() == len(ids)
        return len(captured.captured_queries)

    few = queries([str(c.pk) for c in customers[:3]])
    many = queries([str(c.pk) for c in customers[3:]])
    assert few == many
    # what loading the chunk and writing its one batch cost, whatever the number of customers (the
    # run completes with this chunk: one more statement writes its bill_run.completed event)
    assert few <= 28


@pytest.mark.django_db
def test_a_price_locked_subscription_keeps_its_version_until_its_commitment_ends(tenant: Tenant) -> None:
    # given: two customers on 10.00 per device; c1's subscription is price-locked with a commitment to 1 May
    locked, floating = monthly_fee_customers(tenant, 2)
    subscription = locked.subscriptions.get()
    subscription.price_locked = True
    subscription.locked_price_version = subscription.plan.price_versions.get()
    subscription.commitment_ends_at = datetime(2026, 5, 1, tzinfo=PARIS)
    subscription.save()
    # and a new price of 12.00 from 1 April
    price_version_create(
        tenant=tenant,
        actor=ACTOR,
        at=RUN_AT,
        plan=subscription.plan,
        data={
            "currency": "EUR",
            "effective_from": "2026-04-01T00:00:00+02:00",
            "components": [{"product": "platform", "charge": {"model": "flat", "amount": "12.00"}}],
        },
    )
    # when / then: April in advance, 2 devices: the locked one 2 x 10.00, the other 2 x 12.00
    april = {c.external_id: invoice_generate(customer=c, billing_date=APRIL_1, at=RUN_AT) for c in (locked, floating)}
    assert {k: v.net_total for k, v in april.items() if v is not None} == {
        "c0": Money(20, "EUR"),
        "c1": Money(24, "EUR"),
    }
    [line] = april["c0"].lines.all()  # type: ignore[union-attr]
    assert line.detail["source"] == "locked"
    # May, once the commitment has ended, the locked subscription pays the new price too
    may = invoice_generate(customer=locked, billing_date=date(2026, 5, 1), at=datetime(2026, 5, 1, 6, tzinfo=PARIS))
    assert may is not None
    assert may.net_total == Money(24, "EUR")


@pytest.mark.django_db
def test_a_customer_whose_data_breaks_the_chunk_reads_fails_alone(tenant: Tenant, monkeypatch: Any) -> None:
    from invoicing.services import bill_runs as services

    customers = monthly_fee_customers(tenant, 3)
    load = services.billing_context_load

    def load_failing_on_c1(**kwargs: Any) -> Any:
        if any(c.external_id == "c1" for c in kwargs["customers"]):
            raise ValueError("corrupt subscription data")
        return load(**kwargs)

    monkeypatch.setattr(services, "billing_context_load", load_failing_on_c1)
    run = BillRun.objects.create(tenant=tenant, billing_date=APRIL_1, total=3)
    bill_run_chunk(run_id=str(run.pk), customer_ids=[str(c.pk) for c in customers], at=RUN_AT)
    run.refresh_from_db()
    assert (run.status, run.done, run.failed, run.created) == ("completed_with_errors", 2, 1, 2)
    failure = BillRunCustomer.objects.get(bill_run=run, outcome="failed")
    assert (failure.customer.external_id, failure.error) == ("c1", "corrupt subscription data")
    assert Invoice.objects.count() == 2
