"""The two worked examples of payments.md, end to end: the public API, the dunning pass as beat runs
it (once a day here, at 09:00 in the customer's zone), signed Stripe events, and a real Stripe
library talking to ``localstripe``. Every amount, status, e-mail and event is the spec's."""

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import stripe
import time_machine
from django.core import mail
from djmoney.money import Money
from rest_framework.test import APIClient

from invoicing.tests.billing_api import eager_celery, ok, paris
from payments.models import Payment, PaymentAttempt, PaymentSettings
from payments.tests.conftest import DECLINED, VISA, WEBHOOK_SECRET, card, intents_of, stripe_event, stripe_signature
from subscriptions.models import Subscription
from tenancy.models import Tenant
from tests.scenarios.test_smart_fleet import bill, fleet, send_usage
from webhooks.models import WebhookEvent

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]
__all__ = ["eager_celery", "fleet"]

PAYMENT_EVENTS = {
    "invoice.finalized",
    "invoice.paid",
    "invoice.overdue",
    "invoice.payment_failed",
    "payment.succeeded",
    "payment.failed",
    "subscription.suspended",
    "subscription.reactivated",
}


def events_since(mark: int) -> list[tuple[str, dict[str, Any]]]:
    """The payment-related events written after the first ``mark`` events, oldest first (those of
    one change, which share its instant, by type)."""
    rows = WebhookEvent.objects.order_by("created_at", "type").values_list("type", "body")
    return [(t, json.loads(body)["data"]) for t, body in list(rows)[mark:] if t in PAYMENT_EVENTS]


def event_count() -> int:
    return WebhookEvent.objects.count()


def dunning_day(api: APIClient, day: date, capture: Any) -> dict[str, Any]:
    """The dunning pass of ``day``, at 09:00 in Paris, as the hourly beat would run it."""
    with time_machine.travel(paris(day.year, day.month, day.day, 9), tick=False), capture(execute=True):
        return ok(api.post("/api/v1/dunning_runs", {}, format="json"))


def dunning_days(api: APIClient, first: date, last: date, capture: Any) -> dict[date, list[str]]:
    """Run the pass every day from ``first`` to ``last``; the subjects of the e-mails each day sent."""
    sent: dict[date, list[str]] = {}
    day = first
    while day <= last:
        before = len(mail.outbox)
        dunning_day(api, day, capture)
        if len(mail.outbox) > before:
            sent[day] = [str(m.subject) for m in mail.outbox[before:]]
        day += timedelta(days=1)
    return sent


def finalize(api: APIClient, invoice: dict[str, Any], at: datetime, capture: Any) -> dict[str, Any]:
    with time_machine.travel(at, tick=False), capture(execute=True):
        return ok(api.post(f"/api/v1/invoices/{invoice['id']}/finalize", {}, format="json"))


def pay(api: APIClient, at: datetime, amount: str, reference: str, capture: Any) -> dict[str, Any]:
    body = {
        "customer": "dupont",
        "amount": amount,
        "currency": "EUR",
        "method": "bank_transfer",
        "received_at": at.isoformat(),
        "reference": reference,
    }
    with time_machine.travel(at, tick=False), capture(execute=True):
        return ok(api.post("/api/v1/payments", body, format="json"))


def invoice_state(api: APIClient, invoice: dict[str, Any]) -> tuple[str, str, str, str]:
    read = ok(api.get(f"/api/v1/invoices/{invoice['id']}"))
    return (read["payment_status"], read["due_date"], read["amount_paid"], read["amount_due"])


def stripe_keys(tenant: Tenant) -> None:
    PaymentSettings.objects.update_or_create(
        tenant=tenant,
        defaults={"stripe_secret_key": "sk_test_tripod", "stripe_webhook_secret": WEBHOOK_SECRET},
    )


def stripe_post(api: APIClient, tenant: Tenant, payload: bytes, at: datetime, capture: Any) -> None:
    anonymous = APIClient()
    with time_machine.travel(at, tick=False), capture(execute=True):
        response = anonymous.post(
            f"/api/v1/webhooks/stripe?tenant={tenant.slug}",
            data=payload,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=stripe_signature(payload, at=at),
        )
    assert response.status_code == 200, response.content


def test_smart_fleet_pays(
    fleet: dict[str, Any],
    api: APIClient,
    tenant: Tenant,
    stripe_api: stripe.StripeClient,
    django_capture_on_commit_callbacks: Any,
) -> None:
    capture = django_capture_on_commit_callbacks
    stripe_keys(tenant)
    policy = {"retry_days": [3, 5, 7], "reminder_days": [-3, 7], "suspend_after_days": 21}
    policy["uncollectible_after_days"], policy["bill_while_suspended"] = 60, True
    assert ok(api.put("/api/v1/dunning_policy", policy, format="json"))["reminder_days"] == [-3, 7]
    subscription = Subscription.objects.get(tenant=tenant)
    address = {"line1": "8 avenue des Transporteurs", "postal_code": "94150", "city": "Rungis", "country": "FR"}
    ok(api.patch("/api/v1/customers/dupont", {"address": address}, format="json"))

    # 1. The invoice of 1 April: 181.09, due 1 May (30 days); a transfer of 181.09 on 20 April pays it.
    send_usage(
        fleet["ingest"],
        paris(2026, 3, 31, 12),
        [("a-0001", "A", paris(2026, 3, 16, 11), 800), ("b-0001", "B", paris(2026, 3, 25, 11), 3000)],
    )
    april = bill(api, paris(2026, 4, 1, 0, 30), "2026-04-01", capture)
    mark = event_count()
    april = finalize(api, april, paris(2026, 4, 1, 9), capture)
    assert (april["number"], april["total"], april["due_date"]) == ("INV-2026-000001", "181.09", "2026-05-01")
    assert invoice_state(api, april) == ("unpaid", "2026-05-01", "0.00", "181.09")
    transfer = pay(api, paris(2026, 4, 20, 10), "181.09", "VIR-0420", capture)
    assert transfer["allocations"] == [{"invoice": "INV-2026-000001", "invoice_id": april["id"], "amount": "181.09"}]
    assert invoice_state(api, april) == ("paid", "2026-05-01", "181.09", "0.00")
    assert [(t, d.get("number")) for t, d in events_since(mark)] == [
        ("invoice.finalized", "INV-2026-000001"),
        ("invoice.paid", "INV-2026-000001"),  # 20 April, with the payment
        ("payment.succeeded", None),
    ]
    # Paid before its reminder day (28 April): nothing is sent for it.
    assert dunning_days(api, date(2026, 4, 21), date(2026, 4, 30), capture) == {}

    # 2. The invoice of 1 May: 308.57, due 31 May. Reminder on 28 May (3 days before), none before.
    send_usage(
        fleet["ingest"],
        paris(2026, 4, 30, 12),
        [
            ("a-0002", "A", paris(2026, 4, 1, 0, 30), 5000),
            ("b-0002", "B", paris(2026, 4, 18, 9), 7000),
            ("c-0002", "C", paris(2026, 4, 20, 9), 2000),
        ],
    )
    may = bill(api, paris(2026, 5, 1, 0, 30), "2026-05-01", capture)
    mark = event_count()
    may = finalize(api, may, paris(2026, 5, 1, 9), capture)
    assert (may["number"], may["total"], may["due_date"]) == ("INV-2026-000002", "308.57", "2026-05-31")
    sent = dunning_days(api, date(2026, 5, 1), date(2026, 6, 1), capture)
    assert list(sent) == [date(2026, 5, 28)]
    [subject] = sent[date(2026, 5, 28)]
    assert subject.startswith("Rappel")  # in French, Dupont's language
    assert "INV-2026-000002" in subject
    assert "308,57" in subject
    reminder = [m for m in mail.outbox if m.subject == subject][0]
    assert reminder.to == ["compta@dupont.test"]
    assert [name for name, _, kind in reminder.attachments] == ["INV-2026-000002.pdf"]
    # A transfer of 100.00 on 2 June: partially paid, 308.57 - 100.00 = 208.57 due.
    pay(api, paris(2026, 6, 2, 10), "100.00", "VIR-0602", capture)
    assert invoice_state(api, may) == ("partially_paid", "2026-05-31", "100.00", "208.57")
    # Reminder on 7 June (7 days past due), for what is still due.
    sent = dunning_days(api, date(2026, 6, 2), date(2026, 6, 20), capture)
    assert list(sent) == [date(2026, 6, 7)]
    [subject] = sent[date(2026, 6, 7)]
    assert subject.startswith("Impayé")
    assert "INV-2026-000002" in subject
    assert "208,57" in subject
    assert ok(api.get(f"/api/v1/subscriptions/{subscription.external_id}"))["status"] == "active"

    # 3. 21 June, 21 days past due: the subscription is suspended, and the device cloud told which devices.
    report = dunning_day(api, date(2026, 6, 21), capture)
    assert (report["suspensions"], report["ids"]["suspensions"]) == (1, [str(subscription.pk)])
    assert ok(api.get(f"/api/v1/subscriptions/{subscription.external_id}"))["status"] == "suspended"

    # 4. 23 June: the customer pays 210.00 by card (Stripe Checkout in payment mode): 208.57 goes to
    # the invoice, now paid; 210.00 - 208.57 = 1.43 goes to the balance; the subscription is active again.
    method = card(stripe_api, VISA)
    stripe_customer = stripe_api.v1.customers.create(params={"email": "compta@dupont.test"})
    intent = stripe_api.v1.payment_intents.create(
        params={
            "amount": 21000,
            "currency": "eur",
            "customer": stripe_customer.id,
            "payment_method": method,
            "confirm": True,
            "metadata": {"invoice_id": may["id"]},
        }
    )
    assert intent.status == "succeeded"
    session = {
        "id": "cs_test_0623",
        "object": "checkout.session",
        "mode": "payment",
        "payment_intent": intent.id,
        "metadata": {"invoice_id": may["id"]},
    }
    stripe_post(
        api, tenant, stripe_event("evt_0623", "checkout.session.completed", session), paris(2026, 6, 23, 15), capture
    )
    assert invoice_state(api, may) == ("paid", "2026-05-31", "308.57", "0.00")
    card_payment = Payment.objects.get(gateway="stripe", gateway_id=intent.id)
    assert (card_payment.amount, card_payment.method) == (Money("210.00", "EUR"), "card")
    assert ok(api.get("/api/v1/customers/dupont"))["balance"] == "1.43"
    assert ok(api.get(f"/api/v1/subscriptions/{subscription.external_id}"))["status"] == "active"
    events = events_since(mark)
    assert [(t, d.get("number")) for t, d in events] == [
        ("invoice.finalized", "INV-2026-000002"),
        ("invoice.overdue", "INV-2026-000002"),
        ("payment.succeeded", None),  # 100.00 on 2 June
        ("subscription.suspended", None),
        ("invoice.paid", "INV-2026-000002"),  # 23 June, with the payment of 210.00
        ("payment.succeeded", None),
        ("subscription.reactivated", None),
    ]
    suspended = dict(events)["subscription.suspended"]
    assert sorted(suspended["devices"]) == ["A", "B", "C"]
    assert sorted(dict(events)["subscription.reactivated"]["devices"]) == ["A", "B", "C"]
    # The same Stripe event again changes nothing.
    stripe_post(
        api, tenant, stripe_event("evt_0623", "checkout.session.completed", session), paris(2026, 6, 23, 16), capture
    )
    assert Payment.objects.filter(gateway="stripe").count() == 1
    assert ok(api.get("/api/v1/customers/dupont"))["balance"] == "1.43"

    # 5. The next invoice (1 June's, reviewed and finalized on 24 June) is due its total - 1.43.
    june = bill(api, paris(2026, 6, 1, 0, 30), "2026-06-01", capture)
    june = finalize(api, june, paris(2026, 6, 24, 9), capture)
    # its total less the 1.43 of credit balance, applied at finalization (not an invoice line)
    due = Decimal(june["total"]) - Decimal("1.43")
    assert invoice_state(api, june) == ("partially_paid", "2026-07-01", "1.43", str(due))
    assert june["total"] == ok(api.get(f"/api/v1/invoices/{june['id']}"))["total"]
    assert ok(api.get("/api/v1/customers/dupont"))["balance"] == "0.00"


def test_a_declined_card_then_a_working_one(
    api: APIClient,
    stripe_tenant: Tenant,
    card_customer: Any,
    stripe_api: stripe.StripeClient,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """charge_automatically, retry days [3, 5, 7], a card that is declined: the invoice finalized on
    day 0 fails, the retries on days 3, 5 and 7 fail, the customer adds a working card and pays: 5
    attempts, one PaymentIntent succeeded, the invoice paid once."""
    from invoicing.tests.factories import issue, line
    from payments.gateway import payment_method_attach

    capture = django_capture_on_commit_callbacks
    policy = {
        "retry_days": [3, 5, 7],
        "reminder_days": [],
        "suspend_after_days": 21,
        "uncollectible_after_days": 60,
        "bill_while_suspended": True,
    }
    ok(api.put("/api/v1/dunning_policy", policy, format="json"))
    payment_method_attach(customer=card_customer, payment_method=card(stripe_api, DECLINED))
    mark = event_count()
    # Day 0, 2 March 2026: the invoice of 100.00 + 20 % VAT = 120.00 is finalized; its first charge fails.
    with time_machine.travel(paris(2026, 3, 2, 8), tick=False), capture(execute=True):
        invoice = issue(card_customer, [line("service", "fleet-plan", "100.00")], on=date(2026, 3, 2))
    invoice.refresh_from_db()
    assert (invoice.total, invoice.due_date) == (Money("120.00", "EUR"), date(2026, 3, 2))  # due at once
    assert [(a.number, a.status, a.failure_code) for a in PaymentAttempt.objects.filter(invoice=invoice)] == [
        (1, "failed", "card_declined")
    ]
    # Days 1 to 8: retries on days 3, 5 and 7 only, each failing.
    retried = {}
    for offset in range(1, 9):
        day = date(2026, 3, 2) + timedelta(days=offset)
        report = dunning_day(api, day, capture)
        if report["retries"]:
            retried[offset] = PaymentAttempt.objects.filter(invoice=invoice).count()
    assert retried == {3: 2, 5: 3, 7: 4}
    assert [a.status for a in PaymentAttempt.objects.filter(invoice=invoice).order_by("number")] == ["failed"] * 4
    # The customer adds a working card (portal, Checkout in setup mode) and pays.
    payment_method_attach(customer=card_customer, payment_method=card(stripe_api, VISA))
    with time_machine.travel(paris(2026, 3, 10, 11), tick=False), capture(execute=True):
        attempt = ok(api.post(f"/api/v1/invoices/{invoice.pk}/pay", {}, format="json"))
    assert attempt["number"] == 5
    attempts = list(PaymentAttempt.objects.filter(invoice=invoice).order_by("number"))
    assert [a.status for a in attempts] == ["failed", "failed", "failed", "failed", "succeeded"]
    intents = intents_of(stripe_api, card_customer)
    assert sorted(i.status for i in intents).count("succeeded") == 1
    invoice.refresh_from_db()
    assert (invoice.payment_status, invoice.amount_paid, invoice.amount_due) == (
        "paid",
        Money("120.00", "EUR"),
        Money("0.00", "EUR"),
    )
    assert Payment.objects.filter(customer=card_customer, status="succeeded").count() == 1
    types = [t for t, _ in events_since(mark)]
    assert types.count("invoice.payment_failed") == 4
    assert types.count("invoice.paid") == 1
