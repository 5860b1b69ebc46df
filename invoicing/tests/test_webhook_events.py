"""Invoicing's outbound webhook events, written in the transaction of their change:
invoice.finalized, invoice.voided, credit_note.created, bill_run.completed."""

import json
from datetime import UTC, date, datetime
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction

from customers.models import Customer
from invoicing.models import BillRun, Invoice, InvoiceKind, InvoicingSettings
from invoicing.services import (
    bill_run_chunk,
    bill_run_plan,
    credit_note_create,
    invoice_finalize,
    invoice_generate,
    invoice_void,
)
from subscriptions.tests.factories import monthly_fee_customers
from tenancy.actors import Actor
from tenancy.models import Tenant
from webhooks.models import WebhookDelivery, WebhookEvent
from webhooks.services import webhook_endpoint_create

PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")
APRIL_1 = date(2026, 4, 1)
RUN_AT = datetime(2026, 4, 1, 6, 0, tzinfo=PARIS)  # 04:00 UTC
FINALIZED_AT = datetime(2026, 4, 2, 9, 30, tzinfo=UTC)


def events(tenant: Tenant, event_type: str) -> list[dict[str, Any]]:
    rows = WebhookEvent.objects.filter(tenant=tenant, type=event_type).order_by("created_at", "body")
    return [json.loads(row.body) for row in rows]


def draft(customer: Customer) -> Invoice:
    invoice = invoice_generate(customer=customer, billing_date=APRIL_1, at=RUN_AT)
    assert invoice is not None
    return invoice


@pytest.mark.django_db
def test_finalizing_an_invoice_emits_invoice_finalized_with_its_numbers(tenant: Tenant) -> None:
    # given: c0's April draft, 2 devices x 10.00 = 20.00, VAT 20 % 4.00, total 24.00
    [customer] = monthly_fee_customers(tenant, 1)
    invoice = draft(customer)
    assert events(tenant, "invoice.finalized") == []  # a draft is not announced
    # when
    invoice_finalize(invoice=invoice, actor=ACTOR, at=FINALIZED_AT)
    # then
    [event] = events(tenant, "invoice.finalized")
    assert event == {
        "type": "invoice.finalized",
        "timestamp": "2026-04-02T09:30:00Z",
        "data": {
            "id": str(invoice.pk),
            "number": "INV-2026-000001",
            "status": "finalized",
            "customer": "c0",
            "subscriptions": ["s0"],
            "issue_date": "2026-04-01",
            "currency": "EUR",
            "net_total": "20.00",
            "tax_total": "4.00",
            "total": "24.00",
            "amount_due": "24.00",
            "amount_paid": "0.00",
            "payment_status": "unpaid",
            "due_date": "2026-05-01",  # 1 April + the tenant's 30 days
            "bill_run": None,
            "finalized_at": "2026-04-02T09:30:00Z",
        },
    }


@pytest.mark.django_db
def test_voiding_emits_invoice_voided_and_a_credit_note_emits_credit_note_created(tenant: Tenant) -> None:
    # given: two finalized invoices of 24.00
    c0, c1 = monthly_fee_customers(tenant, 2)
    voided, credited = draft(c0), draft(c1)
    invoice_finalize(invoice=voided, actor=ACTOR, at=FINALIZED_AT)
    invoice_finalize(invoice=credited, actor=ACTOR, at=FINALIZED_AT)
    # when: one is voided, the other credited in full
    at = datetime(2026, 4, 3, 10, 0, tzinfo=UTC)
    invoice_void(invoice=voided, actor=ACTOR, at=at, reason="Sent to the wrong customer")
    credit_note_create(invoice=credited, actor=ACTOR, at=at, reason="Goodwill")
    # then
    [void] = events(tenant, "invoice.voided")
    assert void["timestamp"] == "2026-04-03T10:00:00Z"
    assert {
        k: void["data"][k] for k in ("number", "status", "customer", "total", "amount_due", "voided_at", "reason")
    } == {
        "number": "INV-2026-000001",
        "status": "void",
        "customer": "c0",
        "total": "24.00",
        "amount_due": "0.00",  # nothing is due on a void invoice
        "voided_at": "2026-04-03T10:00:00Z",
        "reason": "Sent to the wrong customer",
    }
    note = Invoice.objects.get(kind=InvoiceKind.CREDIT_NOTE)
    [created] = events(tenant, "credit_note.created")
    assert created == {
        "type": "credit_note.created",
        "timestamp": "2026-04-03T10:00:00Z",
        "data": {
            "id": str(note.pk),
            "number": "CN-2026-000001",
            "customer": "c1",
            "subscriptions": ["s1"],
            "credited_invoice": {"id": str(credited.pk), "number": "INV-2026-000002"},
            "issue_date": "2026-04-03",
            "currency": "EUR",
            "net_total": "20.00",
            "tax_total": "4.00",
            "total": "24.00",
            "reason": "Goodwill",
            "finalized_at": "2026-04-03T10:00:00Z",
        },
    }
    # a credit note is not announced as an invoice
    assert sorted(e["data"]["number"] for e in events(tenant, "invoice.finalized")) == [
        "INV-2026-000001",
        "INV-2026-000002",
    ]


@pytest.mark.django_db
def test_an_auto_finalizing_bill_run_emits_each_invoice_and_its_completion(tenant: Tenant) -> None:
    # given: 3 customers due on 1 April, invoices finalized as the run writes them
    monthly_fee_customers(tenant, 3)
    InvoicingSettings.objects.create(tenant=tenant, auto_finalize=True)
    webhook_endpoint_create(tenant=tenant, actor=ACTOR, at=RUN_AT, url="https://erp.acme.test/in", events=["*"])
    run = BillRun.objects.create(tenant=tenant, billing_date=APRIL_1)
    # when
    for chunk in bill_run_plan(run=run, at=RUN_AT):
        bill_run_chunk(run_id=str(run.pk), customer_ids=chunk, at=RUN_AT)
    # then: 3 invoices of 24.00, then the run's completion, each with its delivery to the endpoint
    finalized = events(tenant, "invoice.finalized")
    assert sorted(e["data"]["customer"] for e in finalized) == ["c0", "c1", "c2"]
    assert sorted(e["data"]["number"] for e in finalized) == ["INV-2026-000001", "INV-2026-000002", "INV-2026-000003"]
    assert {(e["data"]["net_total"], e["data"]["tax_total"], e["data"]["total"]) for e in finalized} == {
        ("20.00", "4.00", "24.00")
    }
    assert {e["data"]["bill_run"] for e in finalized} == {str(run.pk)}
    [completed] = events(tenant, "bill_run.completed")
    assert completed == {
        "type": "bill_run.completed",
        "timestamp": "2026-04-01T04:00:00Z",
        "data": {
            "id": str(run.pk),
            "billing_date": "2026-04-01",
            "status": "completed",
            "customers": 3,
            "done": 3,
            "failed": 0,
            "invoices_created": 3,
            "started_at": "2026-04-01T04:00:00Z",
            "finished_at": "2026-04-01T04:00:00Z",
        },
    }
    assert WebhookDelivery.objects.filter(tenant=tenant).count() == 4


@pytest.mark.django_db(transaction=True)
def test_a_void_that_rolls_back_sends_nothing_and_a_committed_one_is_delivered_once_committed(tenant: Tenant) -> None:
    # given: a finalized invoice and the ERP's endpoint; Celery queueing recorded
    [customer] = monthly_fee_customers(tenant, 1)
    invoice = draft(customer)
    invoice_finalize(invoice=invoice, actor=ACTOR, at=FINALIZED_AT)
    webhook_endpoint_create(
        tenant=tenant, actor=ACTOR, at=FINALIZED_AT, url="https://erp.acme.test/in", events=["invoice.voided"]
    )
    with mock.patch("webhooks.tasks.webhook_deliveries_send_task.apply_async") as queued:
        # when: the void's transaction fails after the void was written
        def void_then_fail() -> None:
            with transaction.atomic():
                invoice_void(invoice=invoice, actor=ACTOR, at=FINALIZED_AT, reason="wrong")
                raise RuntimeError("the request failed later")

        with pytest.raises(RuntimeError, match="the request failed later"):
            void_then_fail()
        # then: the invoice is still finalized, and no event, delivery or task exists
        invoice.refresh_from_db()
        assert invoice.status == "finalized"
        assert (events(tenant, "invoice.voided"), WebhookDelivery.objects.count(), queued.call_count) == ([], 0, 0)

        # when: the void commits
        invoice_void(invoice=invoice, actor=ACTOR, at=FINALIZED_AT, reason="wrong")
    # then: its event, its delivery, and the delivery queued once committed
    [event] = WebhookEvent.objects.filter(type="invoice.voided")
    [delivery] = WebhookDelivery.objects.all()
    assert delivery.event_id == event.pk
    assert queued.call_args.kwargs["args"] == [[str(delivery.pk)]]
