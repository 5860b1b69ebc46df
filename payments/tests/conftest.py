"""Card payments run against ``localstripe``, a stateful fake Stripe server started once for the
session; each test's tenant has its own keys (localstripe accepts any ``sk_test_…``)."""

import hashlib
import hmac
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import stripe
from django.utils import timezone
from djmoney.money import Money

from catalog.services import tax_rate_set
from customers.models import Collection, Customer
from customers.tests.factories import dupont
from invoicing.models import Invoice, InvoicePaymentStatus
from invoicing.tests.factories import ACTOR, issue, line
from payments import ledger
from payments.gateway import payment_method_attach
from payments.models import Payment, PaymentAttempt, PaymentSettings
from tenancy.models import Tenant

WEBHOOK_SECRET = "whsec_test_tripod_stripe"
VISA = "4242424242424242"
DECLINED = "4000000000000341"  # attaches, declined when charged


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    port = _free_port()
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "payments.tests.localstripe_server", "--port", str(port), "--from-scratch"],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = "http://127.0.0.1:%d" % port
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("localstripe did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def stripe_api(localstripe_url: str, settings: Any) -> stripe.StripeClient:
    """Tripod's calls go to localstripe; the returned client lets a test look at what Stripe holds."""
    settings.STRIPE_API_BASE = localstripe_url
    settings.STRIPE_TIMEOUT_SECONDS = 5
    return stripe.StripeClient("sk_test_tripod", base_addresses={"api": localstripe_url}, max_network_retries=0)


@pytest.fixture
def stripe_tenant(tenant: Tenant, stripe_api: stripe.StripeClient) -> Tenant:
    PaymentSettings.objects.update_or_create(
        tenant=tenant,
        defaults={
            "stripe_secret_key": "sk_test_tripod",
            "stripe_webhook_secret": WEBHOOK_SECRET,
            "stripe_publishable_key": "pk_test_tripod",
        },
    )
    return tenant


def card(client: stripe.StripeClient, number: str = VISA) -> str:
    """A PaymentMethod made at Stripe, as Stripe.js would with the publishable key."""
    method = client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}
    )
    return str(method.id)


@pytest.fixture
def card_customer(stripe_tenant: Tenant) -> Customer:
    tax_rate_set(tenant=stripe_tenant, actor=ACTOR, at=timezone.now(), country="FR", tax_category="standard", rate="20")
    customer = dupont(stripe_tenant)
    customer.collection = Collection.CHARGE_AUTOMATICALLY
    customer.save(update_fields=["collection"])
    return customer


@pytest.fixture
def make_card_invoice(card_customer: Customer, stripe_api: stripe.StripeClient) -> Callable[..., Invoice]:
    """A finalized invoice of 100.00 + 20 % VAT = 120.00 EUR to Dupont, whose card is ``number``."""

    def make(number: str = VISA) -> Invoice:
        payment_method_attach(customer=card_customer, payment_method=card(stripe_api, number))
        invoice = issue(card_customer, [line("service", "fleet-plan", "100.00")])
        invoice.refresh_from_db()
        return invoice

    return make


class LedgerCalls:
    def __init__(self) -> None:
        self.payments: list[dict[str, Any]] = []
        self.refunds: list[dict[str, Any]] = []


@pytest.fixture(autouse=True)
def fake_ledger(monkeypatch: pytest.MonkeyPatch) -> LedgerCalls:
    """The ledger's two writes as card payments use them: the Payment (or Refund) row, and the
    invoice paid in full. Idempotent by gateway id, as the ledger is."""
    from payments.models import Refund

    calls = LedgerCalls()

    def payment_record(**kwargs: Any) -> Payment:
        calls.payments.append(kwargs)
        customer, amount, invoice = kwargs["customer"], kwargs["amount"], kwargs.get("invoice")
        payment, _ = Payment.objects.get_or_create(
            tenant=customer.tenant,
            gateway=kwargs.get("gateway", "manual"),
            gateway_id=kwargs.get("gateway_id", ""),
            defaults={
                "customer": customer,
                "currency": amount.currency.code,
                "amount": amount,
                "method": kwargs["method"],
                "received_at": kwargs["received_at"],
                "reference": kwargs.get("reference", ""),
            },
        )
        if invoice is not None:
            Invoice.objects.filter(pk=invoice.pk).update(
                amount_paid=Money(amount.amount, invoice.currency),
                amount_due=Money(Decimal(0), invoice.currency),
                payment_status=InvoicePaymentStatus.PAID,
            )
        return payment

    def refund_record(**kwargs: Any) -> Refund:
        calls.refunds.append(kwargs)
        payment, amount = kwargs["payment"], kwargs["amount"]
        refund, _ = Refund.objects.get_or_create(
            tenant=payment.tenant,
            gateway_id=kwargs.get("gateway_id", ""),
            defaults={
                "payment": payment,
                "currency": amount.currency.code,
                "amount": amount,
                "reason": kwargs["reason"],
            },
        )
        return refund

    monkeypatch.setattr(ledger, "payment_record", payment_record)
    monkeypatch.setattr(ledger, "refund_record", refund_record)
    return calls


def stripe_signature(payload: bytes, secret: str = WEBHOOK_SECRET, at: datetime | None = None) -> str:
    """The ``Stripe-Signature`` header as Stripe computes it: ``t=…,v1=HMAC-SHA256(secret, "t.payload")``."""
    timestamp = int((at or timezone.now()).timestamp())
    signed = hmac.new(secret.encode(), b"%d." % timestamp + payload, hashlib.sha256).hexdigest()
    return "t=%d,v1=%s" % (timestamp, signed)


def stripe_event(event_id: str, event_type: str, obj: dict[str, Any]) -> bytes:
    return json.dumps(
        {"id": event_id, "object": "event", "type": event_type, "api_version": "2024-06-20", "data": {"object": obj}}
    ).encode()


def attempts(invoice: Invoice) -> list[PaymentAttempt]:
    return list(PaymentAttempt.objects.filter(invoice=invoice).order_by("number"))


def intents_of(client: stripe.StripeClient, customer: Customer) -> list[Any]:
    from payments.models import GatewayCustomer

    stripe_customer = GatewayCustomer.objects.get(customer=customer).gateway_customer_id
    return list(client.v1.payment_intents.list(params={"customer": stripe_customer}).data)
