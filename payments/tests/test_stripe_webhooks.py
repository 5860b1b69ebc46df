"""Signed Stripe events: stored once by event id, applied by a task, bad signatures refused; and
``POST /invoices/{id}/pay`` and the customer's payment method through the API."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import stripe
from django.utils import timezone
from djmoney.money import Money
from rest_framework.test import APIClient

from billing_platform.celery import app as celery_app
from invoicing.models import Invoice, InvoicePaymentStatus
from payments.charging import attempt_open
from payments.models import AttemptStatus, GatewayCustomer, GatewayEvent, Payment, PaymentAttempt
from payments.tests.conftest import LedgerCalls, card, intents_of, stripe_event, stripe_signature
from tenancy.models import ApiKeyScope, Tenant

pytestmark = pytest.mark.django_db

Capture = Callable[..., Any]


@pytest.fixture
def eager_celery() -> Iterator[None]:
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def _post_event(tenant: Tenant, payload: bytes, signature: str | None = None) -> Any:
    return APIClient().post(
        "/api/v1/webhooks/stripe?tenant=%s" % tenant.slug,
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature if signature is not None else stripe_signature(payload),
    )


def _intent_taken_outside(client: stripe.StripeClient, attempt: PaymentAttempt) -> dict[str, Any]:
    """The attempt's PaymentIntent, created and confirmed at Stripe as the charge would."""
    stripe_customer = GatewayCustomer.objects.get(customer=attempt.invoice.customer)
    intent = client.v1.payment_intents.create(
        params={
            "amount": 12000,
            "currency": "eur",
            "customer": stripe_customer.gateway_customer_id,
            "payment_method": stripe_customer.default_payment_method,
            "off_session": True,
            "confirm": True,
            "metadata": {"attempt_id": str(attempt.pk), "invoice_id": str(attempt.invoice_id)},
        }
    )
    return intent.to_dict()


def test_a_signed_succeeded_event_pays_the_invoice_once(
    make_card_invoice: Callable[..., Invoice],
    stripe_api: stripe.StripeClient,
    ledger_calls: LedgerCalls,
    eager_celery: None,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    # given: an attempt whose PaymentIntent succeeded at Stripe, the answer lost on the way back
    invoice = make_card_invoice()
    attempt = attempt_open(invoice_id=invoice.pk, trigger="api", at=timezone.now())
    intent = _intent_taken_outside(stripe_api, attempt)
    payload = stripe_event("evt_1", "payment_intent.succeeded", intent)
    # when: Stripe sends the event, then sends it again
    with django_capture_on_commit_callbacks(execute=True):
        first = _post_event(invoice.tenant, payload)
    with django_capture_on_commit_callbacks(execute=True):
        second = _post_event(invoice.tenant, payload)
    # then: both answered 200; stored once, applied once
    assert first.status_code == 200, first.content
    assert first.json() == {"id": "evt_1", "type": "payment_intent.succeeded", "duplicate": False}
    assert second.status_code == 200
    assert second.json()["duplicate"] is True
    [event] = GatewayEvent.objects.filter(tenant=invoice.tenant)
    assert event.processed_at is not None
    assert event.error == ""
    attempt.refresh_from_db()
    assert (attempt.status, attempt.gateway_id) == (AttemptStatus.SUCCEEDED, intent["id"])
    assert len(ledger_calls.payments) == 1
    assert Payment.objects.filter(gateway_id=intent["id"]).count() == 1
    invoice.refresh_from_db()
    assert invoice.payment_status == InvoicePaymentStatus.PAID
    assert invoice.amount_paid == invoice.total == Money("120.00", "EUR")


def test_a_failed_event_fails_the_attempt(
    make_card_invoice: Callable[..., Invoice],
    eager_celery: None,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    invoice = make_card_invoice()
    attempt = attempt_open(invoice_id=invoice.pk, trigger="api", at=timezone.now())
    intent = {
        "id": "pi_declined_1",
        "object": "payment_intent",
        "status": "requires_payment_method",
        "amount": 12000,
        "currency": "eur",
        "metadata": {"attempt_id": str(attempt.pk)},
        "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds", "message": "No funds."},
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = _post_event(invoice.tenant, stripe_event("evt_2", "payment_intent.payment_failed", intent))
    assert response.status_code == 200
    attempt.refresh_from_db()
    assert (attempt.status, attempt.failure_code, attempt.failure_message) == (
        AttemptStatus.FAILED,
        "insufficient_funds",
        "No funds.",
    )


@pytest.mark.parametrize(
    ("signature", "why"),
    [
        ("", "missing"),
        ("t=1,v1=00", "stale and wrong"),
        (None, "signed with another secret"),
    ],
)
def test_a_bad_signature_is_a_400_and_stores_nothing(stripe_tenant: Tenant, signature: str | None, why: str) -> None:
    payload = stripe_event("evt_3", "payment_intent.succeeded", {"id": "pi_x", "metadata": {}})
    header = stripe_signature(payload, secret="whsec_someone_else") if signature is None else signature
    response = _post_event(stripe_tenant, payload, header)
    assert response.status_code == 400, why
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_signature"
    assert not GatewayEvent.objects.filter(tenant=stripe_tenant).exists()


def test_an_unknown_tenant_gets_the_same_400(stripe_tenant: Tenant) -> None:
    payload = stripe_event("evt_4", "payment_intent.succeeded", {"id": "pi_x", "metadata": {}})
    response = APIClient().post(
        "/api/v1/webhooks/stripe?tenant=nobody-here",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=stripe_signature(payload),
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"


def test_pay_answers_202_with_the_attempt_then_charges_it_on_commit(
    make_card_invoice: Callable[..., Invoice],
    stripe_api: stripe.StripeClient,
    make_client: Callable[..., APIClient],
    eager_celery: None,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    invoice = make_card_invoice()
    api = make_client(invoice.tenant, ApiKeyScope.FULL)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/invoices/%s/pay" % invoice.pk)
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["number"], body["status"], body["amount"], body["currency"]) == (1, "created", "120.00", "EUR")
    # the task sent it once committed: succeeded at Stripe
    attempt = PaymentAttempt.objects.get(pk=body["id"])
    assert attempt.status == AttemptStatus.SUCCEEDED
    assert [i.id for i in intents_of(stripe_api, invoice.customer)] == [attempt.gateway_id]
    # a second /pay finds the invoice paid: 409
    again = api.post("/api/v1/invoices/%s/pay" % invoice.pk)
    assert again.status_code == 409
    assert again.json()["code"] == "nothing_to_charge"


def test_a_payment_method_is_attached_through_the_api(
    card_customer: Any, stripe_api: stripe.StripeClient, make_client: Callable[..., APIClient]
) -> None:
    api = make_client(card_customer.tenant, ApiKeyScope.FULL)
    method = card(stripe_api)
    response = api.post(
        "/api/v1/customers/%s/payment_method" % card_customer.external_id, {"payment_method": method}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["payment_method"] == method
    assert response.json()["summary"] == "visa •••• 4242"
    stripe_customer = stripe_api.v1.customers.retrieve(response.json()["gateway_customer"])
    assert stripe_customer.invoice_settings is not None
    assert stripe_customer.invoice_settings.default_payment_method == method
    bad = api.post(
        "/api/v1/customers/%s/payment_method" % card_customer.external_id,
        {"payment_method": "pm_doesnotexist"},
        format="json",
    )
    assert bad.status_code == 422
    assert bad.json()["code"] == "payment_method_invalid"


@pytest.mark.parametrize("method", ["get", "put", "delete", "trace"])
def test_only_post_is_allowed_whoever_calls(stripe_tenant: Tenant, make_client: Any, method: str) -> None:
    # Stripe only posts: any other method is a 405, with or without an API key, before any check.
    for client in (APIClient(), make_client(stripe_tenant)):
        response = client.generic(method.upper(), f"/api/v1/webhooks/stripe?tenant={stripe_tenant.slug}")
        assert response.status_code == 405, (method, response.content)


def test_a_failed_event_keeps_its_error_once_its_work_is_rolled_back(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    from payments import stripe_webhooks

    # given: a stored charge.refunded event whose handling fails
    event = GatewayEvent.objects.create(
        tenant=tenant,
        gateway="stripe",
        event_id="evt_fails",
        type="charge.refunded",
        payload={"id": "evt_fails", "type": "charge.refunded", "data": {"object": {"id": "ch_1"}}},
    )

    def fail(tenant: Tenant, charge: dict[str, Any], at: Any) -> None:
        GatewayEvent.objects.filter(pk=event.pk).update(type="changed by the failed work")
        raise RuntimeError("Stripe said no")

    monkeypatch.setattr(stripe_webhooks, "_charge_refunded", fail)
    # when: it is applied
    with pytest.raises(RuntimeError, match="Stripe said no"):
        stripe_webhooks.gateway_event_apply(event_pk=event.pk, at=timezone.now())
    # then: what it did is rolled back, its error is kept, and it is still to apply
    event.refresh_from_db()
    assert (event.type, event.error, event.processed_at) == ("charge.refunded", "RuntimeError: Stripe said no", None)


def test_a_payment_intent_event_locks_the_invoice_before_its_attempt(
    make_card_invoice: Callable[..., Invoice], stripe_api: stripe.StripeClient
) -> None:
    """The lock order of every path (customer, invoices, attempts, payment): a charge sending its
    attempt locks the customer, the invoice, then the attempt, so the event must not hold the
    attempt while it waits for the others (a deadlock)."""
    import re

    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from payments.stripe_webhooks import _payment_intent

    invoice = make_card_invoice()
    attempt = attempt_open(invoice_id=invoice.pk, trigger="api", at=timezone.now())
    intent = _intent_taken_outside(stripe_api, attempt)
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        _payment_intent(invoice.tenant, intent, timezone.now())
    locked = [
        re.search(r'FROM "?(\w+)"?', q["sql"]).group(1)  # type: ignore[union-attr]
        for q in queries.captured_queries
        if "FOR UPDATE" in q["sql"]
    ]
    # the customer first, then the invoice, and the attempt only after them
    assert locked[:2] == ["customers_customer", "invoicing_invoice"]
    assert "payments_paymentattempt" in locked
    assert locked.index("payments_paymentattempt") > 1
    assert PaymentAttempt.objects.get(pk=attempt.pk).status == AttemptStatus.SUCCEEDED


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (stripe.AuthenticationError("Invalid API Key provided: sk_test_****ipod"), 422, "stripe_keys_invalid"),
        (stripe.PermissionError("The provided key does not have access to this resource."), 422, "stripe_keys_invalid"),
        (stripe.APIError("An unknown error occurred"), 502, "stripe_unavailable"),
        (stripe.RateLimitError("Too many requests"), 502, "stripe_unavailable"),
        (stripe.APIConnectionError("Connection refused"), 502, "stripe_unavailable"),
    ],
)
def test_stripe_refusing_the_keys_or_failing_is_a_clear_problem_not_a_500(
    card_customer: Any,
    stripe_api: stripe.StripeClient,
    make_client: Callable[..., APIClient],
    monkeypatch: pytest.MonkeyPatch,
    error: stripe.StripeError,
    status: int,
    code: str,
) -> None:
    from stripe._http_client import RequestsClient

    api = make_client(card_customer.tenant, ApiKeyScope.FULL)
    method = card(stripe_api)

    def refused(self: Any, method: str, url: str, headers: Any, post_data: Any = None) -> Any:
        raise error

    monkeypatch.setattr(RequestsClient, "request", refused)
    response = api.post(
        "/api/v1/customers/%s/payment_method" % card_customer.external_id, {"payment_method": method}, format="json"
    )
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert not GatewayCustomer.objects.filter(customer=card_customer).exists()
