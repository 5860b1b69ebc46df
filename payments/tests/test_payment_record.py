"""Recording a payment: allocation to a named invoice or oldest first, the rest to the balance,
and the balance applied to the next invoice finalized."""

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from djmoney.money import Money

from customers.models import Customer
from invoicing.models import Invoice
from payments.errors import PaymentCurrencyMismatch
from payments.models import AllocationSource, BalanceTransaction, Payment, PaymentAllocation
from payments.tests.factories import invoice_of, pay, payer
from tenancy.models import Tenant
from webhooks.models import WebhookEvent

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("charges", "reactivations")]


def _state(invoice: Invoice) -> tuple[str, str, str]:
    invoice.refresh_from_db()
    return invoice.payment_status, str(invoice.amount_paid.amount), str(invoice.amount_due.amount)


def test_a_payment_naming_an_invoice_is_allocated_to_it_only(tenant: Tenant) -> None:
    # given: two invoices of 100.00 + 20 % = 120.00
    customer = payer(tenant)
    older = invoice_of(customer, "100.00", on=date(2026, 4, 1))
    named = invoice_of(customer, "100.00", on=date(2026, 5, 1))
    # when: 50.00 for the newer one
    payment = pay(customer, "50.00", invoice=named)
    # then: 120.00 − 50.00 = 70.00 due on it; the older one untouched
    assert _state(named) == ("partially_paid", "50.0000", "70.0000")
    assert _state(older) == ("unpaid", "0.0000", "120.0000")
    assert [(a.invoice_id, a.amount) for a in payment.allocations.all()] == [(named.pk, Money("50.00", "EUR"))]


def test_a_payment_goes_to_the_oldest_invoices_first_and_the_rest_to_the_balance(
    tenant: Tenant, reactivations: list[Any]
) -> None:
    # given: three invoices of 120.00, 60.00 and 36.00 (net 100.00, 50.00, 30.00 + 20 %)
    customer = payer(tenant)
    first = invoice_of(customer, "100.00", on=date(2026, 3, 1))
    second = invoice_of(customer, "50.00", on=date(2026, 4, 1))
    third = invoice_of(customer, "30.00", on=date(2026, 5, 1))
    # when: 250.00 received without an invoice
    payment = pay(customer, "250.00")
    # then: 120.00 + 60.00 + 36.00 = 216.00 allocated, 250.00 − 216.00 = 34.00 to the balance
    assert _state(first) == ("paid", "120.0000", "0.0000")
    assert _state(second) == ("paid", "60.0000", "0.0000")
    assert _state(third) == ("paid", "36.0000", "0.0000")
    assert sorted(str(a.amount.amount) for a in payment.allocations.all()) == ["120.0000", "36.0000", "60.0000"]
    [credit] = BalanceTransaction.objects.filter(customer=customer)
    assert (credit.kind, credit.amount, credit.payment_id) == ("overpayment", Money("34.00", "EUR"), payment.pk)
    customer.refresh_from_db()
    assert customer.balance == Decimal("34.00")
    # three invoices became paid: one invoice.paid each, and the customer checked for reactivation
    assert WebhookEvent.objects.filter(tenant=tenant, type="invoice.paid").count() == 3
    assert WebhookEvent.objects.filter(tenant=tenant, type="payment.succeeded").count() == 1
    assert reactivations == []  # no suspended subscription: nothing to reactivate


def test_the_balance_left_by_a_payment_is_applied_to_the_next_invoice(tenant: Tenant) -> None:
    # given: payments.md's Smart Fleet: 308.57 due (net 257.14, VAT 51.428 → 51.43), 100.00 paid
    customer = payer(tenant)
    may = invoice_of(customer, "257.14", on=date(2026, 5, 1))
    assert may.total == Money("308.57", "EUR")
    pay(customer, "100.00", invoice=may)
    assert _state(may) == ("partially_paid", "100.0000", "208.5700")  # 308.57 − 100.00
    # when: 210.00 paid on 23 June
    pay(customer, "210.00")
    # then: 208.57 allocated, 210.00 − 208.57 = 1.43 on the balance
    assert _state(may) == ("paid", "308.5700", "0.0000")
    customer.refresh_from_db()
    assert customer.balance == Decimal("1.43")
    # and the next invoice (net 100.00 → 120.00) is due 120.00 − 1.43 = 118.57
    june = invoice_of(customer, "100.00", on=date(2026, 6, 1))
    assert june.total == Money("120.00", "EUR")
    assert _state(june) == ("partially_paid", "1.4300", "118.5700")
    [applied] = PaymentAllocation.objects.filter(invoice=june)
    assert (applied.source, applied.amount) == (AllocationSource.BALANCE, Money("1.43", "EUR"))
    customer.refresh_from_db()
    assert customer.balance == Decimal("0.00")  # 1.43 − 1.43
    assert BalanceTransaction.objects.get(customer=customer, kind="applied").amount == Money("-1.43", "EUR")


def test_a_payment_in_another_currency_is_refused_and_writes_nothing(tenant: Tenant) -> None:
    customer = payer(tenant)
    invoice = invoice_of(customer, "100.00", on=date(2026, 4, 1))
    with pytest.raises(PaymentCurrencyMismatch, match="The payment is in USD; customer dupont pays in EUR."):
        pay(customer, "120.00", invoice=invoice, currency="USD")
    assert Payment.objects.count() == 0
    assert PaymentAllocation.objects.count() == 0
    assert _state(invoice) == ("unpaid", "0.0000", "120.0000")


def test_a_gateway_payment_is_recorded_once(tenant: Tenant) -> None:
    customer = payer(tenant)
    invoice = invoice_of(customer, "100.00", on=date(2026, 4, 1))
    first = pay(customer, "120.00", gateway="stripe", gateway_id="pi_123", method="card")
    again = pay(customer, "120.00", gateway="stripe", gateway_id="pi_123", method="card")
    assert again.pk == first.pk
    assert Payment.objects.count() == 1
    assert _state(invoice) == ("paid", "120.0000", "0.0000")  # once, not 240.00
    assert WebhookEvent.objects.filter(type="invoice.paid").count() == 1
    assert Customer.objects.get(pk=customer.pk).balance == Decimal("0")


def test_the_invoice_document_shows_what_the_credit_balance_paid(tenant: Tenant) -> None:
    from django.utils import translation

    from invoicing.pdf import invoice_context

    # given: 1.43 left on the balance (121.43 paid on 120.00)
    customer = payer(tenant)
    invoice_of(customer, "100.00", on=date(2026, 4, 1))
    pay(customer, "121.43")
    # when: the next invoice of 120.00 is finalized
    may = invoice_of(customer, "100.00", on=date(2026, 5, 1))
    with translation.override(may.language):  # Dupont reads French
        context = invoice_context(may)
    # then: 120.00 − 1.43 = 118.57 due, by 1 May + 30 days
    assert (context["total"], context["paid_from_balance"], context["amount_due"]) == (
        "120,00\xa0€",
        "1,43\xa0€",
        "118,57\xa0€",
    )
    assert context["due_date"] == "31 mai 2026"


def test_paying_a_suspended_customers_invoice_asks_for_its_reactivation(
    tenant: Tenant, reactivations: list[Any]
) -> None:
    from subscriptions.models import Subscription
    from subscriptions.tests.factories import monthly_fee_customers

    # given: a customer whose subscription was suspended, with an invoice of 120.00 (100.00 + 20 %)
    [customer] = monthly_fee_customers(tenant, 1)
    Subscription.objects.filter(customer=customer).update(status="suspended")
    invoice = invoice_of(customer, "100.00", on=date(2026, 6, 1))
    # when: 50.00 then 70.00 received
    pay(customer, "50.00", invoice=invoice)
    assert reactivations == []  # 70.00 still due
    pay(customer, "70.00", invoice=invoice)
    # then: paid (50.00 + 70.00 = 120.00), and dunning asked to reactivate what is clear
    assert _state(invoice) == ("paid", "120.0000", "0.0000")
    assert [c["customer_ids"] for c in reactivations] == [[customer.pk]]
