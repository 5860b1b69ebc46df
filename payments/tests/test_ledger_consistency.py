"""The ledger under races and late facts: a credit note and a payment at the same moment, a refund
and an overpayment on one customer, refunds made at Stripe, payments on invoices voided meanwhile,
a customer's currency, a failed Stripe event."""

import threading
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from djmoney.money import Money

from customers.errors import CustomerCurrencyLocked
from customers.models import Customer
from customers.services import customer_update
from invoicing.errors import InvoicePaymentInProgress
from invoicing.models import Invoice, InvoiceStatus
from invoicing.services import credit_note_create, invoice_void
from payments import ledger, receivers
from payments.errors import RefundNotPossible
from payments.ledger import refund_record
from payments.models import BalanceTransaction, GatewayEvent, Payment, PaymentAllocation, PaymentAttempt
from payments.stripe_webhooks import gateway_event_apply
from payments.tests.factories import ACTOR, AT, invoice_of, pay, payer
from tenancy.models import AuditLogEntry, Tenant

pytestmark = pytest.mark.usefixtures("charges", "reactivations")


def _state(invoice: Invoice) -> tuple[str, str, str]:
    invoice.refresh_from_db()
    return invoice.payment_status, str(invoice.amount_paid.amount), str(invoice.amount_due.amount)


def _balance(customer: Customer) -> Decimal:
    customer.refresh_from_db()
    return customer.balance


def _no_rendering(monkeypatch: Any) -> None:
    from invoicing import tasks

    monkeypatch.setattr(tasks.invoice_render_task, "delay", lambda *args, **kwargs: None)


@pytest.mark.django_db(transaction=True)
def test_a_credit_note_and_a_payment_at_the_same_moment_lose_nothing(tenant: Tenant, monkeypatch: Any) -> None:
    _no_rendering(monkeypatch)
    # given: an invoice of 120.00 unpaid (100.00 + 20 % VAT)
    customer = payer(tenant)
    invoice = invoice_of(customer, "100.00", on=date(2026, 4, 1))
    [line] = invoice.lines.all()
    # The credit note reads the invoice, then pauses before it settles it until the payment has
    # committed (or 3 s, when the payment waits for the note's locks): the widest race window.
    note_read, payment_done = threading.Event(), threading.Event()
    settle = receivers.invoices_settle

    def settle_late(ids: Any, *, at: Any) -> Any:
        if threading.current_thread().name == "note":
            note_read.set()
            payment_done.wait(timeout=3)
        return settle(ids, at=at)

    monkeypatch.setattr(receivers, "invoices_settle", settle_late)

    def note() -> None:
        credit_note_create(invoice=invoice, actor=ACTOR, at=AT, lines=[{"line": line.pk, "amount": "50.00"}])

    def payment() -> None:
        note_read.wait(timeout=10)
        try:
            pay(customer, "120.00")
        finally:
            payment_done.set()

    errors: list[BaseException] = []
    threads = [threading.Thread(target=_guarded(w, errors), name=n) for n, w in (("note", note), ("payment", payment))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # when both are done: a credit note of 50.00 + 10.00 VAT = 60.00 and a transfer of 120.00
    # then: the invoice is paid whatever the order. 120.00 − 60.00 credited = 60.00 owed, paid by the
    # transfer; the other 60.00 is on the balance (60.00 + 60.00 = 120.00 received).
    assert errors == []
    assert _state(invoice) == ("paid", "60.0000", "0.0000")
    assert _balance(customer) == Decimal("60.00")
    assert sum(b.amount.amount for b in BalanceTransaction.objects.filter(customer=customer)) == Decimal("60.00")


def _guarded(work: Callable[[], Any], errors: list[BaseException]) -> Callable[[], None]:
    def run() -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)
        finally:
            connection.close()

    return run


@pytest.mark.django_db(transaction=True)
def test_a_refund_and_an_overpayment_racing_on_one_customer_both_complete(tenant: Tenant, monkeypatch: Any) -> None:
    _no_rendering(monkeypatch)
    # given: an invoice of 120.00 paid by a transfer of 120.00
    customer = payer(tenant)
    invoice = invoice_of(customer, "100.00", on=date(2026, 4, 1))
    first = pay(customer, "120.00", invoice=invoice)
    # Each thread stops once, after its first locks, until the other has taken its own (or 3 s):
    # two paths locking the customer and the invoice in opposite orders would deadlock here.
    barrier = threading.Barrier(2, timeout=3)
    paused: set[str] = set()

    def pausing(real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            me = threading.current_thread().name
            if me not in paused:
                paused.add(me)
                try:
                    barrier.wait()
                except threading.BrokenBarrierError:
                    pass
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(ledger, "payment_invoice_shares", pausing(ledger.payment_invoice_shares))
    monkeypatch.setattr(ledger, "invoices_settle", pausing(ledger.invoices_settle))
    errors: list[BaseException] = []

    def refund() -> None:
        refund_record(payment=first, amount=Money("120.00", "EUR"), reason="cancelled", actor=ACTOR, at=AT)

    def overpay() -> None:
        pay(customer, "50.00", invoice=invoice)

    threads = [
        threading.Thread(target=_guarded(w, errors), name=n) for n, w in (("refund", refund), ("overpay", overpay))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then: both done, no deadlock; 120.00 + 50.00 received − 120.00 refunded = 50.00 held, on the
    # invoice or the balance depending on which went first
    assert errors == []
    first.refresh_from_db()
    assert first.status == "refunded"
    status, paid, due = _state(invoice)
    assert Decimal(paid) + _balance(customer) == Decimal("50.00")
    assert Decimal(due) == Decimal("120.00") - Decimal(paid)
    assert status == ("partially_paid" if Decimal(paid) else "unpaid")


@pytest.mark.django_db
def test_a_refund_made_at_stripe_takes_back_the_balance_applied_to_the_next_invoice(tenant: Tenant) -> None:
    # given: a card payment of 210.00 on an invoice of 208.57 (173.81 + 34.76 VAT): 1.43 on the balance
    customer = payer(tenant)
    first = invoice_of(customer, "173.81", on=date(2026, 4, 1))
    payment = pay(customer, "210.00", invoice=first, method="card", gateway="stripe", gateway_id="pi_210")
    assert _balance(customer) == Decimal("1.43")  # 210.00 − 208.57
    # and the 1.43 applied to the next invoice (120.00) when it is finalized: 118.57 due
    second = invoice_of(customer, "100.00", on=date(2026, 5, 1))
    assert _state(second) == ("partially_paid", "1.4300", "118.5700")
    assert _balance(customer) == Decimal("0.00")
    # a refund asked for here is refused: 1.43 is no longer where the payment put it
    with pytest.raises(RefundNotPossible):
        refund_record(payment=payment, amount=Money("210.00", "EUR"), reason="", actor=ACTOR, at=AT)
    # when: the customer was refunded 210.00 in Stripe's dashboard (its charge.refunded event)
    event = GatewayEvent.objects.create(
        tenant=tenant,
        gateway="stripe",
        event_id="evt_refunded",
        type="charge.refunded",
        payload={
            "id": "evt_refunded",
            "type": "charge.refunded",
            "data": {
                "object": {
                    "id": "ch_210",
                    "payment_intent": "pi_210",
                    "refunds": {"data": [{"id": "re_210", "amount": 21000, "currency": "eur", "status": "succeeded"}]},
                }
            },
        },
    )
    gateway_event_apply(event_pk=event.pk, at=AT)
    # then: nothing refused; both invoices are due again, 208.57 and 1.43 more (120.00)
    event.refresh_from_db()
    assert (event.processed_at, event.error) == (AT, "")
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == ("refunded", Money("210.00", "EUR"))
    assert _state(first) == ("unpaid", "0.0000", "208.5700")
    assert _state(second) == ("unpaid", "0.0000", "120.0000")
    # the balance is unchanged (+1.43 taken back from the invoice, −1.43 refunded) and the payment's
    # share on it is spent: +1.43 overpayment − 1.43 refunded
    assert _balance(customer) == Decimal("0.00")
    assert sum(b.amount.amount for b in BalanceTransaction.objects.filter(payment=payment)) == Decimal("0.00")
    [review] = AuditLogEntry.objects.filter(action="payment.refund_taken_back")
    assert review.after is not None
    assert review.after["review"] is True
    assert review.after["taken_back_from_invoices"] == {str(second.pk): "1.43"}
    assert review.after["balance_debited"] == "0.00"


@pytest.mark.django_db
def test_a_refund_made_at_stripe_with_nothing_left_to_take_back_makes_the_balance_negative(tenant: Tenant) -> None:
    # given: 130.00 paid on an invoice of 120.00: 10.00 on the balance, then paid back to the
    # customer outside the ledger's payments (an adjustment of −10.00)
    customer = payer(tenant)
    invoice = invoice_of(customer, "100.00", on=date(2026, 4, 1))
    payment = pay(customer, "130.00", invoice=invoice, gateway="stripe", gateway_id="pi_130")
    ledger.customer_balance_move(
        customer_id=customer.pk,
        tenant_id=tenant.pk,
        currency="EUR",
        amount=Decimal("-10.00"),
        kind="adjustment",
        description="Paid back by cheque",
    )
    assert _balance(customer) == Decimal("0.00")
    # when: 130.00 refunded at Stripe
    refund_record(payment=payment, amount=Money("130.00", "EUR"), reason="dashboard", actor=ACTOR, at=AT, fact=True)
    # then: 120.00 taken back from the invoice; the 10.00 left nowhere: the balance is −10.00
    assert _state(invoice) == ("unpaid", "0.0000", "120.0000")
    assert _balance(customer) == Decimal("-10.00")
    [review] = AuditLogEntry.objects.filter(action="payment.refund_taken_back")
    assert review.after is not None
    assert (review.after["taken_back_from_invoices"], review.after["balance_debited"]) == ({}, "10.00")


@pytest.mark.django_db
def test_a_payment_on_an_invoice_voided_meanwhile_goes_to_the_other_open_invoices(tenant: Tenant) -> None:
    # given: two invoices of 120.00; the first voided while a card payment of 120.00 was on its way
    customer = payer(tenant)
    voided = invoice_of(customer, "100.00", on=date(2026, 4, 1))
    second = invoice_of(customer, "50.00", on=date(2026, 5, 1))  # 60.00
    invoice_void(invoice=voided, actor=ACTOR, at=AT, reason="Wrong customer")
    # when: the payment naming it succeeds
    payment = pay(customer, "120.00", invoice=voided, method="card", gateway="stripe", gateway_id="pi_late")
    # then: recorded; 60.00 to the other open invoice, the other 60.00 to the balance
    assert Payment.objects.filter(pk=payment.pk, status="succeeded").exists()
    assert _state(second) == ("paid", "60.0000", "0.0000")
    assert _balance(customer) == Decimal("60.00")  # 120.00 − 60.00
    assert not PaymentAllocation.objects.filter(invoice=voided).exists()
    voided.refresh_from_db()
    assert voided.status == InvoiceStatus.VOID


@pytest.mark.django_db
def test_an_invoice_with_a_payment_in_flight_cannot_be_voided(tenant: Tenant) -> None:
    # given: an invoice being charged (its attempt sent to Stripe, outcome not known yet)
    customer = payer(tenant)
    invoice = invoice_of(customer, "100.00", on=date(2026, 4, 1))
    attempt = PaymentAttempt.objects.create(
        tenant=tenant,
        invoice=invoice,
        number=1,
        idempotency_key="k1",
        status="processing",
        currency="EUR",
        amount=Money("120.00", "EUR"),
    )
    # when / then: voiding it is refused (409), nothing changes
    with pytest.raises(InvoicePaymentInProgress, match="in progress") as refused:
        invoice_void(invoice=invoice, actor=ACTOR, at=AT, reason="Wrong customer")
    assert refused.value.status == 409
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.FINALIZED
    # once the attempt failed, it can be voided
    PaymentAttempt.objects.filter(pk=attempt.pk).update(status="failed")
    assert invoice_void(invoice=invoice, actor=ACTOR, at=AT, reason="Wrong customer").status == InvoiceStatus.VOID


@pytest.mark.django_db
def test_a_customer_owing_in_euros_cannot_switch_to_dollars(tenant: Tenant) -> None:
    # given: a EUR customer with an open invoice of 120.00
    customer = payer(tenant)
    invoice = invoice_of(customer, "100.00", on=date(2026, 4, 1))
    # when / then: switching to USD is refused (409) while it is open
    with pytest.raises(CustomerCurrencyLocked, match="from EUR to USD while the customer has open invoices") as no:
        customer_update(
            tenant=tenant, actor=ACTOR, at=timezone.now(), external_id=customer.external_id, changes={"currency": "usd"}
        )
    assert no.value.status == 409
    # paid with 150.00: nothing open, but 30.00 on the balance, still in EUR
    pay(customer, "150.00", invoice=invoice)
    with pytest.raises(CustomerCurrencyLocked, match="a credit balance of 30.00 EUR"):
        customer_update(
            tenant=tenant, actor=ACTOR, at=timezone.now(), external_id=customer.external_id, changes={"currency": "USD"}
        )
    customer.refresh_from_db()
    assert customer.currency == "EUR"
    # with nothing owed either way, it changes
    ledger.customer_balance_move(
        customer_id=customer.pk, tenant_id=tenant.pk, currency="EUR", amount=Decimal("-30.00"), kind="adjustment"
    )
    changed = customer_update(
        tenant=tenant, actor=ACTOR, at=timezone.now(), external_id=customer.external_id, changes={"currency": "USD"}
    )
    assert changed.currency == "USD"


@pytest.mark.django_db
def test_a_payment_goes_only_to_open_invoices_in_its_currency(tenant: Tenant) -> None:
    # given: two open invoices of 120.00, the older in USD (written before a currency change)
    customer = payer(tenant)
    dollars = invoice_of(customer, "100.00", on=date(2026, 3, 1))
    Invoice.objects.filter(pk=dollars.pk).update(currency="USD")
    euros = invoice_of(customer, "100.00", on=date(2026, 4, 1))
    # when: 150.00 EUR arrive, naming no invoice
    pay(customer, "150.00")
    # then: 120.00 to the EUR invoice, 30.00 to the balance; the USD one untouched
    assert _state(euros) == ("paid", "120.0000", "0.0000")
    assert _state(dollars) == ("unpaid", "0.0000", "120.0000")
    assert _balance(customer) == Decimal("30.00")
