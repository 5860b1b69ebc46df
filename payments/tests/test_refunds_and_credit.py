"""Refunds, credit notes on paid invoices, voids, concurrent payments and the first charge."""

import threading
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from djmoney.money import Money

from customers.models import Customer
from invoicing.models import Invoice
from invoicing.services import credit_note_create, invoice_void
from payments.errors import RefundExceedsPayment
from payments.ledger import refund_record
from payments.models import BalanceTransaction, PaymentAllocation, PaymentSettings, Refund
from payments.refunds import payment_refund
from payments.tests.factories import ACTOR, AT, invoice_of, pay, payer
from tenancy.models import Tenant
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.usefixtures("charges", "reactivations")


def _state(invoice: Invoice) -> tuple[str, str, str]:
    invoice.refresh_from_db()
    return invoice.payment_status, str(invoice.amount_paid.amount), str(invoice.amount_due.amount)


def _balance(customer: Customer) -> Decimal:
    customer.refresh_from_db()
    return customer.balance


@pytest.mark.django_db
def test_partial_then_full_refund_and_an_over_refund_refused(tenant: Tenant) -> None:
    # given: 130.00 paid on an invoice of 120.00: 10.00 on the balance
    customer = payer(tenant)
    invoice = invoice_of(customer, "100.00", on=date(2026, 4, 1))
    payment = pay(customer, "130.00")
    assert _balance(customer) == Decimal("10.00")
    # when: 25.00 refunded: 10.00 from the balance first, then 15.00 from the invoice
    refund_record(payment=payment, amount=Money("25.00", "EUR"), reason="goodwill", actor=ACTOR, at=AT)
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == ("partially_refunded", Money("25.00", "EUR"))
    assert _balance(customer) == Decimal("0.00")  # 10.00 − 10.00
    assert _state(invoice) == ("partially_paid", "105.0000", "15.0000")  # 120.00 − 15.00; 120.00 − 105.00
    # then: more than the 130.00 − 25.00 = 105.00 left is refused, nothing written
    with pytest.raises(RefundExceedsPayment, match="At most 105.00 EUR: what the payment still holds."):
        refund_record(payment=payment, amount=Money("105.01", "EUR"), reason="", actor=ACTOR, at=AT)
    assert Refund.objects.count() == 1
    # the rest, 105.00, refunds it in full: the invoice is unpaid again
    payment_refund(payment=payment, amount=Money("105.00", "EUR"), reason="cancelled", actor=ACTOR, at=AT)
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == ("refunded", Money("130.00", "EUR"))
    assert _state(invoice) == ("unpaid", "0.0000", "120.0000")
    assert WebhookEvent.objects.filter(type="payment.refunded").count() == 2


@pytest.mark.django_db
def test_a_credit_note_on_a_paid_invoice_goes_to_the_balance(tenant: Tenant, reactivations: list[Any]) -> None:
    # given: an invoice of 120.00 paid in full
    customer = payer(tenant)
    invoice = invoice_of(customer, "100.00", on=date(2026, 4, 1))
    payment = pay(customer, "120.00")
    # when: a credit note for the whole invoice (120.00)
    note = credit_note_create(invoice=invoice, actor=ACTOR, at=AT, reason="Returned")
    assert note.total == Money("120.00", "EUR")
    # then: nothing was due, so 120.00 goes to the balance; paid 120.00 − 120.00 = 0.00, still "paid"
    assert _state(invoice) == ("paid", "0.0000", "0.0000")
    assert _balance(customer) == Decimal("120.00")
    [back] = PaymentAllocation.objects.filter(source="credit_note")
    assert (back.amount, back.credit_note_id, back.payment_id) == (Money("-120.00", "EUR"), note.pk, payment.pk)
    assert BalanceTransaction.objects.get(kind="credit_note").amount == Money("120.00", "EUR")
    assert reactivations == []  # no suspended subscription
    # and refunding the payment now takes it from the balance, not from the invoice
    refund_record(payment=payment, amount=Money("120.00", "EUR"), reason="", actor=ACTOR, at=AT)
    assert _balance(customer) == Decimal("0.00")
    assert _state(invoice) == ("paid", "0.0000", "0.0000")


@pytest.mark.django_db
def test_a_credit_note_beyond_what_was_due_is_refunded_when_the_tenant_says_so(tenant: Tenant) -> None:
    # given: refunds rather than balance; 100.00 paid on an invoice of 120.00 (20.00 due)
    PaymentSettings.objects.create(tenant=tenant, credit_destination="refund")
    customer = payer(tenant)
    invoice = invoice_of(customer, "100.00", on=date(2026, 4, 1))
    payment = pay(customer, "100.00")
    line = invoice.lines.get()
    # when: 50.00 net credited (+ 20 % = 60.00)
    credit_note_create(invoice=invoice, actor=ACTOR, at=AT, lines=[{"line": line.pk, "amount": "50.00"}])
    # then: 60.00 − 20.00 due = 40.00 refunded; paid 100.00 − 40.00 = 60.00; due 120 − 60 − 60 = 0
    [refund] = Refund.objects.all()
    assert (refund.amount, refund.payment_id) == (Money("40.00", "EUR"), payment.pk)
    assert _state(invoice) == ("paid", "60.0000", "0.0000")
    assert _balance(customer) == Decimal("0")
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == ("partially_refunded", Money("40.00", "EUR"))


@pytest.mark.django_db
def test_an_overpayment_is_refunded_when_the_tenant_says_so(tenant: Tenant) -> None:
    PaymentSettings.objects.create(tenant=tenant, credit_destination="refund")
    customer = payer(tenant)
    invoice = invoice_of(customer, "100.00", on=date(2026, 4, 1))
    payment = pay(customer, "125.00")
    # 125.00 − 120.00 = 5.00 refunded as an overpayment; nothing on the balance
    [refund] = Refund.objects.all()
    assert (refund.amount, refund.reason) == (Money("5.00", "EUR"), "overpayment")
    assert _state(invoice) == ("paid", "120.0000", "0.0000")
    assert _balance(customer) == Decimal("0")
    payment.refresh_from_db()
    assert payment.amount_refunded == Money("5.00", "EUR")


@pytest.mark.django_db
def test_a_voided_invoice_moves_its_payments_to_the_balance(tenant: Tenant) -> None:
    customer = payer(tenant)
    invoice = invoice_of(customer, "100.00", on=date(2026, 4, 1))
    pay(customer, "50.00", invoice=invoice)
    invoice_void(invoice=invoice, actor=ACTOR, at=AT, reason="Wrong customer")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("void", Money("0", "EUR"))
    assert _balance(customer) == Decimal("50.00")


@pytest.mark.django_db
def test_finalizing_for_a_customer_charged_automatically_queues_the_charge(tenant: Tenant, charges: list[Any]) -> None:
    customer = payer(tenant, external_id="fleet-auto")
    Customer.objects.filter(pk=customer.pk).update(collection="charge_automatically")
    customer.refresh_from_db()
    invoice = invoice_of(customer, "100.00", on=date(2026, 4, 1))
    assert charges == [{"ids": [invoice.pk], "tenant_id": tenant.pk, "trigger": "finalize"}]
    # a customer who is sent its invoices is not charged
    invoice_of(payer(tenant, external_id="by-transfer"), "100.00", on=date(2026, 4, 1))
    assert len(charges) == 1


@pytest.mark.django_db
def test_a_bill_run_finalizing_without_balances_reads_no_customer_twice(
    tenant: Tenant, django_assert_max_num_queries: Any
) -> None:
    from payments.receivers import balance_apply

    customer = payer(tenant)
    invoices = [invoice_of(customer, "10.00", on=date(2026, m, 1)) for m in (3, 4, 5)]
    with django_assert_max_num_queries(1):  # the one query for customers with a balance
        assert balance_apply(tenant_id=tenant.pk, invoices=invoices, at=AT) == []


@pytest.mark.django_db(transaction=True)
def test_two_payments_racing_on_one_invoice_never_pay_it_twice(tenant: Tenant, monkeypatch: Any) -> None:
    from invoicing import tasks

    monkeypatch.setattr(tasks.invoice_render_task, "delay", lambda *args, **kwargs: None)
    # given: an invoice of 120.00
    customer = payer(tenant)
    invoice = invoice_of(customer, "100.00", on=date(2026, 4, 1))
    errors: list[BaseException] = []

    def work() -> None:
        try:
            pay(customer, "100.00", invoice=invoice)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    # when: two payments of 100.00 naming it, at once
    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then: 100.00 + 20.00 allocated (120.00, never 200.00); the other 80.00 on the balance
    assert errors == []
    assert _state(invoice) == ("paid", "120.0000", "0.0000")
    assert sorted(str(a.amount.amount) for a in PaymentAllocation.objects.filter(invoice=invoice)) == [
        "100.0000",
        "20.0000",
    ]
    assert _balance(customer) == Decimal("80.00")  # 200.00 − 120.00
    assert WebhookEvent.objects.filter(type="invoice.paid").count() == 1


@pytest.mark.django_db
def test_a_written_off_invoice_named_by_a_payment_is_paid(tenant: Tenant) -> None:
    # given: two invoices of 120.00 (100.00 + 20 % VAT), the older written off by dunning
    customer = payer(tenant)
    written_off = invoice_of(customer, "100.00", on=date(2026, 2, 1))
    newer = invoice_of(customer, "100.00", on=date(2026, 4, 1))
    Invoice.objects.filter(pk=written_off.pk).update(payment_status="uncollectible")
    # when: the customer pays it late, naming it
    pay(customer, "120.00", invoice=written_off)
    # then: the money recovered settles it, not the newer invoice
    assert _state(written_off) == ("paid", "120.0000", "0.0000")
    assert _state(newer) == ("unpaid", "0.0000", "120.0000")
    # and a payment naming no invoice does not go to a written-off one: it pays the open one
    other = invoice_of(customer, "50.00", on=date(2026, 1, 1))  # 60.00, older than both
    Invoice.objects.filter(pk=other.pk).update(payment_status="uncollectible")
    pay(customer, "60.00")
    assert _state(other) == ("uncollectible", "0.0000", "60.0000")
    assert _state(newer) == ("partially_paid", "60.0000", "60.0000")
