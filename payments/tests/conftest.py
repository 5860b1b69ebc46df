"""Payments test data.

- Dupont's Smart Fleet (devices A, B and C active) and its open invoices, written as the ledger
  leaves them, for dunning; charging is recorded instead of reaching a gateway (``charged``).
- The ledger's tests record, rather than run, the charging and reactivation it hands over to
  (``charges``, ``reactivations``): those have their own tests.
- Card payments run against ``localstripe``, a stateful fake Stripe server started once for the
  session; each test's tenant has its own keys (localstripe accepts any ``sk_test_…``)."""

import hashlib
import hmac
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import stripe
from django.utils import timezone
from djmoney.money import Money

from billing_platform.celery import app as celery_app
from catalog.services import tax_rate_set
from customers.models import Collection, Customer
from customers.tests.factories import dupont
from invoicing.lines import LineType
from invoicing.models import Invoice, InvoiceKind, InvoiceLine, InvoicePaymentStatus, InvoiceStatus
from invoicing.tests.factories import ACTOR, issue, line
from payments import charging, ledger
from payments.gateway import payment_method_attach
from payments.models import Payment, PaymentAttempt, PaymentSettings
from subscriptions.models import Subscription, SubscriptionStatus
from subscriptions.tests.factories import smart_fleet, smart_fleet_activate
from tenancy.models import Tenant

PDF = b"%PDF-1.7 invoice"


def open_invoice(
    subscription: Subscription,
    *,
    number: str,
    issue_date: date,
    due_date: date,
    total: str,
    amount_due: str | None = None,
) -> Invoice:
    """A finalized invoice of the subscription's customer billing it, unpaid (partly paid when
    ``amount_due`` is below ``total``), with its PDF."""
    due = Decimal(amount_due or total)
    invoice = Invoice.objects.create(
        tenant_id=subscription.tenant_id,
        customer=subscription.customer,
        kind=InvoiceKind.INVOICE,
        status=InvoiceStatus.FINALIZED,
        number=number,
        issue_date=issue_date,
        currency="EUR",
        language="fr",
        net_total=Money(total, "EUR"),
        total=Money(total, "EUR"),
        amount_due=Money(due, "EUR"),
        amount_paid=Money(Decimal(total) - due, "EUR"),
        payment_status=InvoicePaymentStatus.UNPAID if due == Decimal(total) else InvoicePaymentStatus.PARTIALLY_PAID,
        due_date=due_date,
        pdf=PDF,
        finalized_at=datetime(issue_date.year, issue_date.month, issue_date.day, 6, 0).astimezone(),
    )
    InvoiceLine.objects.create(
        tenant_id=subscription.tenant_id,
        invoice=invoice,
        type=LineType.FEE,
        product="fleet-fee",
        description="Smart Fleet",
        quantity=Decimal(1),
        amount=Decimal(total),
        tax_category="standard",
        subscription=subscription,
    )
    return invoice


@pytest.fixture
def fleet(tenant: Tenant) -> Subscription:
    """Dupont's Smart Fleet with devices A, B and C active (billing.md)."""
    subscription = smart_fleet(tenant)
    smart_fleet_activate(tenant)
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    return subscription


@pytest.fixture
def charged(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[UUID], dict[str, Any]]]:
    """The calls to ``invoices_charge_enqueue``: (invoice ids, keyword arguments)."""
    calls: list[tuple[list[UUID], dict[str, Any]]] = []

    def enqueue(invoice_ids: Sequence[UUID], **kwargs: Any) -> None:
        calls.append((list(invoice_ids), kwargs))

    monkeypatch.setattr(charging, "invoices_charge_enqueue", enqueue)
    return calls


@pytest.fixture
def charges(monkeypatch: Any) -> list[dict[str, Any]]:
    """Calls of ``payments.charging.invoices_charge_enqueue``."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(
        charging,
        "invoices_charge_enqueue",
        lambda ids, *, tenant_id, trigger: calls.append({"ids": list(ids), "tenant_id": tenant_id, "trigger": trigger}),
    )
    return calls


@pytest.fixture
def reactivations(monkeypatch: Any) -> list[dict[str, Any]]:
    """Calls of ``payments.dunning.customers_reactivate_if_clear``."""
    from payments import dunning

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(
        dunning,
        "customers_reactivate_if_clear",
        lambda *, tenant_id, customer_ids, at: calls.append(
            {"tenant_id": tenant_id, "customer_ids": list(customer_ids), "at": at}
        ),
    )
    return calls


WEBHOOK_SECRET = "whsec_test_tripod_stripe"
VISA = "4242424242424242"
DECLINED = "4000000000000341"  # attaches, declined when charged


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def localstripe_running(*options: str) -> Iterator[str]:
    """localstripe (with Tripod's additions, payments.tests.localstripe_server) on a free port, until
    the block ends; ``options`` go to the server (``--webhook-url …``)."""
    port = _free_port()
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "payments.tests.localstripe_server", "--port", str(port), "--from-scratch", *options],
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


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    with localstripe_running() as url:
        yield url


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


@pytest.fixture
def checkout_stripe(live_server: Any, stripe_tenant: Tenant, settings: Any) -> Iterator[stripe.StripeClient]:
    """localstripe with the Checkout stand-in sending its events to the tenant's Stripe webhook on
    Tripod's live server, signed with the tenant's signing secret; Tripod's Stripe calls go there.
    Events are applied at once (Celery eager), as a worker would a moment later."""
    webhook = "%s/api/v1/webhooks/stripe?tenant=%s" % (live_server.url, stripe_tenant.slug)
    with localstripe_running("--webhook-url", webhook, "--webhook-secret", WEBHOOK_SECRET) as url:
        settings.STRIPE_API_BASE = url
        settings.STRIPE_TIMEOUT_SECONDS = 5
        celery_app.conf.task_always_eager = True
        try:
            yield stripe.StripeClient("sk_test_tripod", base_addresses={"api": url}, max_network_retries=0)
        finally:
            celery_app.conf.task_always_eager = False


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
    """What the ledger was asked to record: the keyword arguments of each call, in order."""

    def __init__(self) -> None:
        self.payments: list[dict[str, Any]] = []
        self.refunds: list[dict[str, Any]] = []


@pytest.fixture
def ledger_calls(monkeypatch: pytest.MonkeyPatch) -> LedgerCalls:
    """The real ledger, with its calls recorded: how many payments and refunds card payments record."""
    calls = LedgerCalls()
    record, refund = ledger.payment_record, ledger.refund_record

    def payment_record(**kwargs: Any) -> Payment:
        calls.payments.append(kwargs)
        return record(**kwargs)

    def refund_record(**kwargs: Any) -> Any:
        calls.refunds.append(kwargs)
        return refund(**kwargs)

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
