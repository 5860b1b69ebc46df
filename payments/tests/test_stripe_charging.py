"""Charging invoices through the tenant's Stripe account (localstripe): a card that works, one that
is declined, two paths racing (pitfall #6), a timeout reconciled (pitfall #7), refunds, minor units."""

import threading
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import stripe
import time_machine
from django.db import connection
from django.utils import timezone
from djmoney.money import Money
from stripe._http_client import RequestsClient

from billing_platform.errors import DomainError
from invoicing.models import Invoice, InvoicePaymentStatus
from payments.charging import AttemptOutcomeUnknown, attempt_open, invoice_charge
from payments.gateway import from_minor_units, to_minor_units
from payments.gateway_errors import AttemptInProgress, NothingToCharge, PaymentMethodMissing, StripeNotConfigured
from payments.models import AttemptStatus, GatewayCustomer, Payment, PaymentSettings
from payments.refunds import payment_refund
from payments.tests.conftest import DECLINED, LedgerCalls, attempts, card, intents_of
from tenancy.actors import Actor
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)


def test_amounts_go_to_stripe_in_the_currencys_minor_unit() -> None:
    # EUR has 2 decimals, JPY none, KWD 3 (ISO 4217)
    assert to_minor_units(Money("12.34", "EUR")) == 1234
    assert to_minor_units(Money("1234", "JPY")) == 1234
    assert to_minor_units(Money("1.234", "KWD")) == 1234
    # an amount kept with more places is rounded half-up first: 0.125 EUR -> 0.13 -> 13
    assert to_minor_units(Money("0.125", "EUR")) == 13
    assert from_minor_units(1234, "eur") == Money(Decimal("12.34"), "EUR")
    assert from_minor_units(1234, "jpy") == Money(Decimal("1234"), "JPY")
    assert from_minor_units(1234, "kwd") == Money(Decimal("1.234"), "KWD")


def test_a_card_that_works_pays_the_invoice(
    make_card_invoice: Callable[..., Invoice], stripe_api: stripe.StripeClient, ledger_calls: LedgerCalls
) -> None:
    # given: an invoice of 120.00 EUR (100.00 + 20 % VAT) and Dupont's Visa as default
    invoice = make_card_invoice()
    assert invoice.amount_due == Money("120.00", "EUR")
    assert GatewayCustomer.objects.get(customer=invoice.customer).payment_method_summary == "visa •••• 4242"
    # when
    attempt = invoice_charge(invoice_id=invoice.pk, trigger="api", at=timezone.now())
    # then: one PaymentIntent of 12000 cents, succeeded; the payment recorded once
    assert attempt.status == AttemptStatus.SUCCEEDED
    [intent] = intents_of(stripe_api, invoice.customer)
    assert (intent.id, intent.status, intent.amount, intent.currency) == (attempt.gateway_id, "succeeded", 12000, "eur")
    assert intent.metadata["attempt_id"] == str(attempt.pk)
    assert attempt.idempotency_key == "%s:%s:1" % (invoice.tenant_id, invoice.pk)
    [call] = ledger_calls.payments
    assert call["amount"] == Money("120.00", "EUR")
    assert (call["gateway"], call["gateway_id"], call["method"], call["invoice"].pk) == (
        "stripe",
        intent.id,
        "card",
        invoice.pk,
    )
    assert attempt.payment == Payment.objects.get(gateway_id=intent.id)
    invoice.refresh_from_db()
    assert invoice.payment_status == InvoicePaymentStatus.PAID
    assert invoice.amount_paid == invoice.total == Money("120.00", "EUR")
    # and a second charge finds nothing to charge
    with pytest.raises(NothingToCharge):
        invoice_charge(invoice_id=invoice.pk, trigger="api", at=timezone.now())
    assert len(intents_of(stripe_api, invoice.customer)) == 1


def test_a_declined_card_fails_the_attempt_and_says_so(
    make_card_invoice: Callable[..., Invoice], stripe_api: stripe.StripeClient, ledger_calls: LedgerCalls
) -> None:
    invoice = make_card_invoice(DECLINED)
    # when
    attempt = invoice_charge(invoice_id=invoice.pk, trigger="finalization", at=timezone.now())
    # then: failed with Stripe's reason, no payment, the invoice still owes 120.00
    assert attempt.status == AttemptStatus.FAILED
    assert attempt.failure_code in ("card_declined", "generic_decline")
    assert attempt.failure_message
    assert ledger_calls.payments == []
    invoice.refresh_from_db()
    assert (invoice.payment_status, invoice.amount_due) == (InvoicePaymentStatus.UNPAID, Money("120.00", "EUR"))
    events = {e.type: e.body for e in WebhookEvent.objects.filter(tenant=invoice.tenant)}
    assert '"number": 1' in events["invoice.payment_failed"]
    assert str(attempt.pk) in events["payment.failed"]
    # and a new card can be charged: a second attempt, which succeeds
    from payments.gateway import payment_method_attach

    payment_method_attach(customer=invoice.customer, payment_method=card(stripe_api))
    second = invoice_charge(invoice_id=invoice.pk, trigger="api", at=timezone.now())
    assert (second.number, second.status) == (2, AttemptStatus.SUCCEEDED)
    assert [a.status for a in attempts(invoice)] == [AttemptStatus.FAILED, AttemptStatus.SUCCEEDED]


def test_two_paths_charging_at_once_take_the_money_once(
    make_card_invoice: Callable[..., Invoice], stripe_api: stripe.StripeClient, ledger_calls: LedgerCalls
) -> None:
    """Pitfall #6: the auto-charge and the portal both charge the invoice at the same moment."""
    invoice = make_card_invoice()
    barrier = threading.Barrier(2)
    outcomes: list[Any] = []

    def charge(trigger: str) -> None:
        try:
            barrier.wait()
            outcomes.append(invoice_charge(invoice_id=invoice.pk, trigger=trigger, at=timezone.now()))
        except DomainError as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=charge, args=(t,)) for t in ("finalization", "portal")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then: one attempt succeeded; the other path was refused (in progress, or nothing left to charge)
    succeeded = [o for o in outcomes if not isinstance(o, Exception)]
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert [o.status for o in succeeded] == [AttemptStatus.SUCCEEDED]
    assert [type(o) for o in refused] in ([AttemptInProgress], [NothingToCharge])
    assert len(attempts(invoice)) == 1
    assert len(intents_of(stripe_api, invoice.customer)) == 1
    assert len(ledger_calls.payments) == 1


def test_the_database_refuses_a_second_open_attempt(make_card_invoice: Callable[..., Invoice]) -> None:
    invoice = make_card_invoice()
    first = attempt_open(invoice_id=invoice.pk, trigger="api", at=timezone.now())
    assert first.status == AttemptStatus.CREATED
    with pytest.raises(AttemptInProgress, match="already in progress"):
        attempt_open(invoice_id=invoice.pk, trigger="portal", at=timezone.now())
    assert len(attempts(invoice)) == 1


def test_a_charge_that_times_out_is_reconciled_not_retried(
    make_card_invoice: Callable[..., Invoice],
    stripe_api: stripe.StripeClient,
    ledger_calls: LedgerCalls,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pitfall #7. localstripe does not honour Idempotency-Key: a blind retry would charge twice."""
    invoice = make_card_invoice()
    original = RequestsClient.request

    def times_out(self: Any, method: str, url: str, headers: Any, post_data: Any = None) -> Any:
        answer = original(self, method, url, headers, post_data)
        if method == "post" and url.endswith("/v1/payment_intents"):
            raise stripe.APIConnectionError("Request timed out")
        return answer

    monkeypatch.setattr(RequestsClient, "request", times_out)
    # when: the charge times out
    attempt = invoice_charge(invoice_id=invoice.pk, trigger="finalization", at=timezone.now())
    # then: the outcome is unknown, though Stripe did take the money
    assert (attempt.status, attempt.gateway_id) == (AttemptStatus.UNKNOWN, "")
    [intent] = intents_of(stripe_api, invoice.customer)
    assert intent.status == "succeeded"
    assert ledger_calls.payments == []
    # when: Stripe cannot be reached, nothing new is tried
    monkeypatch.setattr(RequestsClient, "request", _unreachable)
    with pytest.raises(AttemptOutcomeUnknown):
        invoice_charge(invoice_id=invoice.pk, trigger="dunning", at=timezone.now())
    # when: Stripe answers again, the next charge reconciles first (by the attempt id in the metadata)
    monkeypatch.setattr(RequestsClient, "request", original)
    again = invoice_charge(invoice_id=invoice.pk, trigger="dunning", at=timezone.now())
    # then: the first attempt is the one that paid; no second PaymentIntent, the money taken once
    assert (again.pk, again.number, again.status, again.gateway_id) == (
        attempt.pk,
        1,
        AttemptStatus.SUCCEEDED,
        intent.id,
    )
    assert len(intents_of(stripe_api, invoice.customer)) == 1
    assert len(attempts(invoice)) == 1
    assert len(ledger_calls.payments) == 1
    invoice.refresh_from_db()
    assert invoice.payment_status == InvoicePaymentStatus.PAID


def _unreachable(self: Any, method: str, url: str, headers: Any, post_data: Any = None) -> Any:
    raise stripe.APIConnectionError("Connection refused")


def test_an_unknown_attempt_that_stripe_does_not_show_stays_unknown_for_an_hour(
    make_card_invoice: Callable[..., Invoice], stripe_api: stripe.StripeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pitfall #7: a PaymentIntent not listed yet may still be on its way; a new attempt is refused
    until the window (3600 s by default) has passed, then the first is taken as never made."""
    invoice = make_card_invoice()
    original = RequestsClient.request

    def never_arrives(self: Any, method: str, url: str, headers: Any, post_data: Any = None) -> Any:
        if method == "post" and url.endswith("/v1/payment_intents"):
            raise stripe.APIConnectionError("Connection reset")
        return original(self, method, url, headers, post_data)

    start = timezone.now()
    monkeypatch.setattr(RequestsClient, "request", never_arrives)
    with time_machine.travel(start, tick=False):
        first = invoice_charge(invoice_id=invoice.pk, trigger="api", at=timezone.now())
    assert first.status == AttemptStatus.UNKNOWN
    monkeypatch.setattr(RequestsClient, "request", original)
    # when: charged again 5 minutes later; Stripe shows no PaymentIntent for the attempt
    with time_machine.travel(start + timedelta(minutes=5), tick=False), pytest.raises(AttemptOutcomeUnknown):
        invoice_charge(invoice_id=invoice.pk, trigger="api", at=timezone.now())
    # then: still unknown, nothing new made
    assert [(a.number, a.status, a.failure_code) for a in attempts(invoice)] == [(1, AttemptStatus.UNKNOWN, "")]
    assert intents_of(stripe_api, invoice.customer) == []
    # when: 61 minutes after, past the 60-minute window
    with time_machine.travel(start + timedelta(minutes=61), tick=False):
        second = invoice_charge(invoice_id=invoice.pk, trigger="api", at=timezone.now())
    # then: the first is failed (never created), the second paid: one PaymentIntent in all
    assert [(a.number, a.status, a.failure_code) for a in attempts(invoice)] == [
        (1, AttemptStatus.FAILED, "not_created"),
        (2, AttemptStatus.SUCCEEDED, ""),
    ]
    assert second.number == 2
    assert len(intents_of(stripe_api, invoice.customer)) == 1


def test_charging_is_refused_without_keys_or_card(make_card_invoice: Callable[..., Invoice]) -> None:
    invoice = make_card_invoice()
    GatewayCustomer.objects.filter(customer=invoice.customer).update(default_payment_method="")
    with pytest.raises(PaymentMethodMissing):
        invoice_charge(invoice_id=invoice.pk, trigger="api", at=timezone.now())
    keys = PaymentSettings.objects.get(tenant=invoice.tenant)
    keys.stripe_secret_key = ""
    keys.save()
    with pytest.raises(StripeNotConfigured):
        invoice_charge(invoice_id=invoice.pk, trigger="api", at=timezone.now())
    assert attempts(invoice) == []


def test_a_card_payment_is_refunded_through_stripe(
    make_card_invoice: Callable[..., Invoice], stripe_api: stripe.StripeClient, ledger_calls: LedgerCalls
) -> None:
    invoice = make_card_invoice()
    attempt = invoice_charge(invoice_id=invoice.pk, trigger="api", at=timezone.now())
    assert attempt.payment is not None
    # when: 20.00 of the 120.00 is refunded
    refund = payment_refund(
        payment=attempt.payment,
        amount=Money("20.00", "EUR"),
        reason="goodwill",
        actor=Actor.system("tests"),
        at=timezone.now() + timedelta(days=1),
    )
    # then: Stripe holds a refund of 2000 cents on the PaymentIntent, recorded with its id
    stripe_refund = stripe_api.v1.refunds.retrieve(refund.gateway_id)
    assert (stripe_refund.amount, stripe_refund.payment_intent, stripe_refund.status) == (
        2000,
        attempt.gateway_id,
        "succeeded",
    )
    [call] = ledger_calls.refunds
    assert (call["amount"], call["reason"], refund.reason) == (Money("20.00", "EUR"), "goodwill", "goodwill")
    # and the ledger holds it: 120.00 - 20.00 = 100.00 paid, 20.00 due again
    payment = Payment.objects.get(pk=attempt.payment.pk)
    assert (payment.status, payment.amount_refunded) == ("partially_refunded", Money("20.00", "EUR"))
    invoice.refresh_from_db()
    assert (invoice.payment_status, invoice.amount_paid, invoice.amount_due) == (
        "partially_paid",
        Money("100.00", "EUR"),
        Money("20.00", "EUR"),
    )


def test_an_attempt_whose_invoice_was_paid_meanwhile_is_not_sent(
    make_card_invoice: Callable[..., Invoice], stripe_api: stripe.StripeClient, ledger_calls: LedgerCalls
) -> None:
    """Pitfall #6: the attempt is opened for 120.00; a transfer of 120.00 is recorded before the
    worker sends it; the card is not charged on top."""
    from payments import ledger
    from payments.charging import attempt_send

    invoice = make_card_invoice()
    attempt = attempt_open(invoice_id=invoice.pk, trigger="api", at=timezone.now())
    assert (attempt.status, attempt.amount) == (AttemptStatus.CREATED, Money("120.00", "EUR"))
    ledger.payment_record(
        customer=invoice.customer,
        amount=Money("120.00", "EUR"),
        method="bank_transfer",
        received_at=timezone.now(),
        actor=Actor.system("tests"),
        at=timezone.now(),
        invoice=invoice,
    )
    # when: the worker sends the attempt
    sent = attempt_send(attempt_id=attempt.pk, at=timezone.now())
    # then: closed as stale, no PaymentIntent at Stripe, the invoice paid once (by the transfer)
    assert (sent.status, sent.failure_code, sent.gateway_id) == (AttemptStatus.FAILED, "stale", "")
    assert [(a.status, a.failure_code) for a in attempts(invoice)] == [(AttemptStatus.FAILED, "stale")]
    assert intents_of(stripe_api, invoice.customer) == []
    assert [c["method"] for c in ledger_calls.payments] == ["bank_transfer"]
    invoice.refresh_from_db()
    assert (invoice.payment_status, invoice.amount_paid, invoice.amount_due) == (
        InvoicePaymentStatus.PAID,
        Money("120.00", "EUR"),
        Money("0.00", "EUR"),
    )


def test_an_attempt_whose_invoice_was_partly_paid_meanwhile_is_not_sent(
    make_card_invoice: Callable[..., Invoice], stripe_api: stripe.StripeClient
) -> None:
    """20.00 of the 120.00 is paid by transfer meanwhile: 100.00 is due, less than the attempt's
    120.00, so charging 120.00 would take 20.00 too much."""
    from payments import ledger
    from payments.charging import attempt_send

    invoice = make_card_invoice()
    attempt = attempt_open(invoice_id=invoice.pk, trigger="api", at=timezone.now())
    ledger.payment_record(
        customer=invoice.customer,
        amount=Money("20.00", "EUR"),
        method="bank_transfer",
        received_at=timezone.now(),
        actor=Actor.system("tests"),
        at=timezone.now(),
        invoice=invoice,
    )
    sent = attempt_send(attempt_id=attempt.pk, at=timezone.now())
    assert (sent.status, sent.failure_code) == (AttemptStatus.FAILED, "stale")
    assert intents_of(stripe_api, invoice.customer) == []
    # and a new attempt charges the 100.00 left: 120.00 - 20.00
    again = invoice_charge(invoice_id=invoice.pk, trigger="api", at=timezone.now())
    assert (again.number, again.status, again.amount) == (2, AttemptStatus.SUCCEEDED, Money("100.00", "EUR"))
    [intent] = intents_of(stripe_api, invoice.customer)
    assert intent.amount == 10000


def test_a_charge_refused_for_the_tenants_keys_fails_the_attempt_and_says_so(
    make_card_invoice: Callable[..., Invoice], stripe_api: stripe.StripeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoice = make_card_invoice()

    def refused(self: Any, method: str, url: str, headers: Any, post_data: Any = None) -> Any:
        raise stripe.AuthenticationError("Invalid API Key provided: sk_test_****ipod")

    monkeypatch.setattr(RequestsClient, "request", refused)
    attempt = invoice_charge(invoice_id=invoice.pk, trigger="api", at=timezone.now())
    assert (attempt.status, attempt.failure_code) == (AttemptStatus.FAILED, "stripe_keys_invalid")
    assert "Stripe keys are refused" in attempt.failure_message


def _refund_times_out(original: Any) -> Any:
    """Stripe makes the refund, the answer is lost on the way back."""

    def times_out(self: Any, method: str, url: str, headers: Any, post_data: Any = None) -> Any:
        answer = original(self, method, url, headers, post_data)
        if method == "post" and url.endswith("/v1/refunds"):
            raise stripe.APIConnectionError("Request timed out")
        return answer

    return times_out


def test_a_refund_that_timed_out_then_retried_refunds_once(
    make_card_invoice: Callable[..., Invoice],
    stripe_api: stripe.StripeClient,
    make_client: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from payments.models import Refund
    from tenancy.models import ApiKeyScope

    invoice = make_card_invoice()
    attempt = invoice_charge(invoice_id=invoice.pk, trigger="api", at=timezone.now())
    assert attempt.payment is not None
    api = make_client(invoice.tenant, ApiKeyScope.FULL)
    url = "/api/v1/payments/%s/refunds" % attempt.payment.pk
    body = {"amount": "20.00", "reason": "goodwill"}
    original = RequestsClient.request
    # when: the refund of 20.00 times out once Stripe made it
    monkeypatch.setattr(RequestsClient, "request", _refund_times_out(original))
    first = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="refund-goodwill-1")
    # then: a clear 502, nothing recorded, though Stripe did refund
    assert first.status_code == 502, first.content
    assert first.json()["code"] == "stripe_unavailable"
    assert not Refund.objects.filter(payment=attempt.payment).exists()
    [made] = stripe_api.v1.refunds.list(params={"payment_intent": attempt.gateway_id}).data
    assert made.amount == 2000
    # when: the client retries with the same key, Stripe answering again
    monkeypatch.setattr(RequestsClient, "request", original)
    retry = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="refund-goodwill-1")
    # then: the refund Stripe made is recorded, none made again: 2000 cents refunded in all
    assert retry.status_code == 201, retry.content
    assert [r.id for r in stripe_api.v1.refunds.list(params={"payment_intent": attempt.gateway_id}).data] == [made.id]
    [refund] = Refund.objects.filter(payment=attempt.payment)
    assert (refund.gateway_id, refund.amount) == (made.id, Money("20.00", "EUR"))
    payment = Payment.objects.get(pk=attempt.payment.pk)
    assert payment.amount_refunded == Money("20.00", "EUR")


def test_a_refund_that_timed_out_and_was_recorded_by_its_event_is_not_made_again(
    make_card_invoice: Callable[..., Invoice], stripe_api: stripe.StripeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from payments import ledger
    from payments.gateway_errors import StripeUnavailable

    invoice = make_card_invoice()
    attempt = invoice_charge(invoice_id=invoice.pk, trigger="api", at=timezone.now())
    assert attempt.payment is not None
    original = RequestsClient.request
    monkeypatch.setattr(RequestsClient, "request", _refund_times_out(original))
    refund_args: dict[str, Any] = {
        "amount": Money("120.00", "EUR"),
        "reason": "cancelled",
        "actor": Actor.system("tests"),
        "request_key": "refund-all-1",
    }
    with pytest.raises(StripeUnavailable):
        payment_refund(payment=attempt.payment, at=timezone.now(), **refund_args)
    monkeypatch.setattr(RequestsClient, "request", original)
    [made] = stripe_api.v1.refunds.list(params={"payment_intent": attempt.gateway_id}).data
    # given: its charge.refunded event recorded it by its id (the whole 120.00)
    recorded = ledger.refund_record(
        payment=attempt.payment,
        amount=Money("120.00", "EUR"),
        reason="Refunded at Stripe",
        actor=Actor.system("stripe"),
        at=timezone.now(),
        gateway_id=made.id,
    )
    # when: the request is retried with the same key
    again = payment_refund(payment=attempt.payment, at=timezone.now(), **refund_args)
    # then: answered with the recorded refund; nothing refunded again, nothing recorded twice
    assert again.pk == recorded.pk
    assert len(stripe_api.v1.refunds.list(params={"payment_intent": attempt.gateway_id}).data) == 1
    payment = Payment.objects.get(pk=attempt.payment.pk)
    assert (payment.status, payment.amount_refunded) == ("refunded", Money("120.00", "EUR"))


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (stripe.AuthenticationError("Invalid API Key provided"), 422, "stripe_keys_invalid"),
        (
            stripe.IdempotencyError("Keys for idempotent requests can only be used with the same parameters"),
            409,
            "stripe_request_conflict",
        ),
        (stripe.APIError("An unknown error occurred"), 502, "stripe_unavailable"),
    ],
)
def test_a_refund_stripe_refuses_is_a_clear_problem_not_a_500(
    make_card_invoice: Callable[..., Invoice],
    make_client: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    error: stripe.StripeError,
    status: int,
    code: str,
) -> None:
    from tenancy.models import ApiKeyScope

    invoice = make_card_invoice()
    attempt = invoice_charge(invoice_id=invoice.pk, trigger="api", at=timezone.now())
    assert attempt.payment is not None
    original = RequestsClient.request

    def refused(self: Any, method: str, url: str, headers: Any, post_data: Any = None) -> Any:
        if method == "post" and url.endswith("/v1/refunds"):
            raise error
        return original(self, method, url, headers, post_data)

    monkeypatch.setattr(RequestsClient, "request", refused)
    response = make_client(invoice.tenant, ApiKeyScope.FULL).post(
        "/api/v1/payments/%s/refunds" % attempt.payment.pk, {"amount": "20.00", "reason": "goodwill"}, format="json"
    )
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert Payment.objects.get(pk=attempt.payment.pk).amount_refunded == Money("0.00", "EUR")


def test_a_failed_attempt_names_the_next_retry_day_at_local_midnight(
    make_card_invoice: Callable[..., Invoice], stripe_api: stripe.StripeClient
) -> None:
    """Retries on days 3, 5 and 7 after a due date of 2 March 2026, Dupont in Paris (UTC+1 in
    March before the 29th): each failure names the next one, the last none."""
    import json
    from datetime import UTC, date, datetime
    from zoneinfo import ZoneInfo

    from payments.policies import tenant_policy_set

    paris = ZoneInfo("Europe/Paris")
    invoice = make_card_invoice(DECLINED)
    Invoice.objects.filter(pk=invoice.pk).update(due_date=date(2026, 3, 2))
    tenant_policy_set(
        tenant=invoice.tenant,
        values={
            "retry_days": [3, 5, 7],
            "reminder_days": [],
            "suspend_after_days": None,
            "uncollectible_after_days": None,
        },
        actor=Actor.system("tests"),
        at=timezone.now(),
    )
    expected = [
        # failed on (Paris)   -> next retry: local midnight of due + 3 / + 5 / + 7 days, in UTC
        (datetime(2026, 3, 2, 10, 0, tzinfo=paris), datetime(2026, 3, 4, 23, 0, tzinfo=UTC)),  # 5 March 00:00
        (datetime(2026, 3, 5, 10, 0, tzinfo=paris), datetime(2026, 3, 6, 23, 0, tzinfo=UTC)),  # 7 March 00:00
        (datetime(2026, 3, 7, 10, 0, tzinfo=paris), datetime(2026, 3, 8, 23, 0, tzinfo=UTC)),  # 9 March 00:00
        (datetime(2026, 3, 9, 10, 0, tzinfo=paris), None),  # the day-7 retry: none left
    ]
    for number, (failed_on, next_retry) in enumerate(expected, start=1):
        with time_machine.travel(failed_on, tick=False):
            attempt = invoice_charge(invoice_id=invoice.pk, trigger="dunning", at=timezone.now())
        assert (attempt.number, attempt.status, attempt.next_retry_at) == (number, AttemptStatus.FAILED, next_retry)
    # and the payment.failed event of the first says so
    first = WebhookEvent.objects.filter(tenant=invoice.tenant, type="payment.failed").order_by("created_at").first()
    assert first is not None
    assert json.loads(first.body)["data"]["next_retry_at"] == "2026-03-04T23:00:00Z"
