"""Payments pages of the back-office (/app/payments/, /app/receivables/), the payment parts of the
invoice, customer and bill-run pages, and the receivables report with its API route.

Payments are recorded, refunded and charged by the real services (``payments.ledger.payment_record``
through ``payments.tests.factories.pay``, ``payments.refunds.payment_refund``,
``payments.charging.invoice_charge``); "Charge now" is tried without Stripe keys and against
localstripe (the fake Stripe server of the payments tests, started once for the session)."""

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import stripe
import time_machine
from django.test import Client
from django.utils import timezone
from djmoney.money import Money

from customers.models import Collection, Customer
from customers.services import customer_create
from invoicing.models import BillRun, Invoice
from payments.models import Payment, PaymentAttempt
from payments.reports import receivables_aging

# Fixtures of the payments tests (localstripe): pytest collects the fixtures a test module's
# namespace holds, imported ones included. ``localstripe_url`` keeps its session scope: its server
# starts once for this module's tests (apart from the one the payments tests start for theirs).
from payments.tests.conftest import (  # noqa: F401
    card_customer,
    intents_of,
    localstripe_url,
    make_card_invoice,
    stripe_api,
    stripe_tenant,
)
from payments.tests.factories import pay
from tenancy.actors import Actor
from tenancy.models import ApiKeyScope, Role, Tenant

pytestmark = pytest.mark.django_db

StaffMaker = Callable[..., Any]
PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")
AS_OF = date(2026, 6, 30)
NOW = datetime(2026, 6, 30, 10, 0, tzinfo=PARIS)


@pytest.fixture(autouse=True)
def _on_30_june() -> Any:
    """Every test runs on 30 June 2026 in Paris, sessions included."""
    with time_machine.travel(NOW, tick=True):
        yield


def html(response: Any) -> str:
    return response.content.decode()


def text(response: Any) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html(response))).replace("&#x27;", "'")


def client_for(
    tenant: Tenant, make_staff: StaffMaker, role: str = Role.OWNER, email: str = "staff@acme.test"
) -> Client:
    client = Client()
    client.force_login(make_staff(tenant, role, email))
    return client


def customer(tenant: Tenant, external_id: str, currency: str = "EUR", **fields: Any) -> Customer:
    payment_fields = {k: fields.pop(k) for k in ("collection", "payment_terms_days") if k in fields}
    created = customer_create(
        tenant=tenant,
        actor=ACTOR,
        at=timezone.now(),
        external_id=external_id,
        name=fields.pop("name", external_id.title()),
        email=f"{external_id}@x.test",
        country="FR",
        currency=currency,
        timezone="Europe/Paris",
        address_line1="1 rue de la Paix",
        postal_code="75002",
        city="Paris",
        **fields,
    )
    if payment_fields:
        Customer.objects.filter(pk=created.pk).update(**payment_fields)
        created.refresh_from_db()
    return created


_numbers = {"n": 0}


def invoice(
    c: Customer,
    total: str,
    *,
    due: date,
    issued: date | None = None,
    finalized: datetime | None = None,
    status: str = "finalized",
) -> Invoice:
    """A finalized invoice of ``total`` due on ``due`` (issued 30 days before unless told)."""
    _numbers["n"] += 1
    issued = issued or due - timedelta(days=30)
    return Invoice.objects.create(
        tenant=c.tenant,
        customer=c,
        issue_date=issued,
        currency=c.currency,
        net_total=Decimal(total),
        total=Decimal(total),
        amount_due=Decimal(total) if status != "draft" else Decimal(total),
        status=status,
        number=f"F-{_numbers['n']:04d}" if status != "draft" else "",
        number_year=issued.year if status != "draft" else None,
        number_sequence=_numbers["n"] if status != "draft" else None,
        finalized_at=None if status == "draft" else (finalized or datetime.combine(issued, datetime.min.time(), PARIS)),
        due_date=due if status != "draft" else None,
        payment_status="unpaid",
    )


# --- the receivables report -----------------------------------------------------------------------


def aging_data(tenant: Tenant) -> dict[str, Any]:
    """As of 2026-06-30, Acme (EUR) owes 100.00 due 06-30 (0 days: not yet due), 200.00 due 06-15
    (15 days: 1-30), 300.00 due 05-01 (60 days: 31-60), 400.00 due 04-01 (90 days: 61-90) and 500.00
    due 03-01 (121 days: over 90); Zeta (EUR) 50.00 due 06-20 (10 days) of which 20.00 was paid on
    06-10, and Yankee (USD) 70.00 due 06-01 (29 days) and 80.00 due 02-01 (149 days). An invoice
    finalized on 1 July and one paid in full on 2 July (paid after as_of: still owed) are counted as
    the day saw them: the first not at all, the second whole."""
    acme, zeta, yankee = customer(tenant, "acme"), customer(tenant, "zeta"), customer(tenant, "yankee", "USD")
    for total, due in [("100", date(2026, 6, 30)), ("200", date(2026, 6, 15)), ("300", date(2026, 5, 1))]:
        invoice(acme, total, due=due)
    invoice(acme, "400", due=date(2026, 4, 1))
    invoice(acme, "500", due=date(2026, 3, 1))
    # finalized after as_of: left out
    invoice(
        acme, "999", due=date(2026, 7, 31), issued=date(2026, 7, 1), finalized=datetime(2026, 7, 1, 9, tzinfo=PARIS)
    )
    partly = invoice(zeta, "50", due=date(2026, 6, 20))
    # The report dates a payment by its allocation, written when the ledger records it.
    on_10_june = datetime(2026, 6, 10, 12, tzinfo=PARIS)
    with time_machine.travel(on_10_june, tick=False):
        pay(zeta, "20.00", invoice=partly, received_at=on_10_june, at=on_10_june)
    late_paid = invoice(yankee, "70", due=date(2026, 6, 1))
    on_2_july = datetime(2026, 7, 2, 12, tzinfo=PARIS)
    with time_machine.travel(on_2_july, tick=False):
        pay(yankee, "70.00", invoice=late_paid, received_at=on_2_july, at=on_2_july)
    invoice(yankee, "80", due=date(2026, 2, 1))
    # A draft and a void invoice owe nothing.
    invoice(zeta, "10", due=date(2026, 6, 1), issued=date(2026, 5, 2), status="draft")
    invoice(zeta, "15", due=date(2026, 6, 1), issued=date(2026, 5, 3), status="void")
    return {"acme": acme, "zeta": zeta, "yankee": yankee, "partly": partly}


def test_receivables_aging_buckets_per_customer_and_currency(tenant: Tenant, django_assert_num_queries: Any) -> None:
    aging_data(tenant)
    with django_assert_num_queries(3):  # the tenant's time zone, the aging, the rates
        report = receivables_aging(tenant_id=tenant.pk, as_of=AS_OF)
    eur, usd = report.currencies
    assert (eur.currency, usd.currency) == ("EUR", "USD")
    # EUR: not yet due 100; 1-30: 200 (acme) + 30 (zeta: 50 - 20) = 230; 31-60: 300; 61-90: 400; >90: 500
    assert [m.amount for m in eur.total.buckets()] == [100, 230, 300, 400, 500]
    assert eur.total.total == Money("1530.00", "EUR")  # 100 + 230 + 300 + 400 + 500
    assert eur.invoices == 6
    acme, zeta = eur.customers
    assert (acme.external_id, [m.amount for m in acme.aging.buckets()]) == ("acme", [100, 200, 300, 400, 500])
    assert (zeta.external_id, zeta.aging.total) == ("zeta", Money("30.00", "EUR"))
    # USD: 70 (29 days, paid only on 2 July) in 1-30, 80 (149 days) over 90
    assert [m.amount for m in usd.total.buckets()] == [0, 70, 0, 0, 80]
    assert usd.total.total == Money("150.00", "USD")
    # Billed in the 90 days 2026-04-02..06-30 (issued 30 days before due): EUR 100 (05-31) + 200 (05-16)
    # + 50 (05-21) = 350, collected 20 by 06-30: rate 20 / 350 = 0.0571; DSO = 1530 / 350 x 90 = 393.4
    assert eur.billed == Money("350.00", "EUR")
    assert eur.collection_rate == Decimal("0.0571")
    assert eur.dso == Decimal("393.4")
    # USD: 70 issued 05-02 billed, nothing collected by 06-30; DSO 150 / 70 x 90 = 192.9
    assert (usd.billed, usd.collection_rate, usd.dso) == (Money("70.00", "USD"), Decimal("0.0000"), Decimal("192.9"))
    assert eur.dunning_recovery is None  # no attempt failed


def test_dunning_recovery_from_attempts(tenant: Tenant) -> None:
    c = customer(tenant, "acme")
    first, second = invoice(c, "100", due=date(2026, 6, 1)), invoice(c, "60", due=date(2026, 6, 10))

    def attempt(inv: Invoice, number: int, status: str, amount: str) -> None:
        row = PaymentAttempt.objects.create(
            tenant=tenant,
            invoice=inv,
            number=number,
            idempotency_key=f"{inv.pk}-{number}",
            status=status,
            currency="EUR",
            amount=Decimal(amount),
        )
        PaymentAttempt.objects.filter(pk=row.pk).update(created_at=datetime(2026, 6, 10 + number, tzinfo=UTC))

    attempt(first, 1, "failed", "100")
    attempt(first, 2, "failed", "100")
    attempt(first, 3, "succeeded", "100")
    attempt(second, 1, "failed", "60")
    report = receivables_aging(tenant_id=tenant.pk, as_of=AS_OF)
    [eur] = report.currencies
    # failed: the first failure of each invoice, 100 + 60 = 160; recovered: 100 (attempt 3 of the first)
    assert (eur.failed, eur.recovered) == (Money("160.00", "EUR"), Money("100.00", "EUR"))
    assert eur.dunning_recovery == Decimal("0.6250")  # 100 / 160


def test_receivables_api(tenant: Tenant, make_client: Callable[..., Any]) -> None:
    aging_data(tenant)
    api = make_client(tenant, ApiKeyScope.READ)
    response = api.get("/api/v1/reports/receivables?as_of=2026-06-30")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["as_of"] == "2026-06-30"
    eur = body["currencies"][0]
    assert eur["total"] == {
        "current": "100.00",
        "days_1_30": "230.00",
        "days_31_60": "300.00",
        "days_61_90": "400.00",
        "over_90": "500.00",
        "total": "1530.00",
    }
    assert [c["customer"] for c in eur["customers"]] == ["acme", "zeta"]
    assert (eur["dso"], eur["collection_rate"], eur["dunning_recovery"]) == ("393.4", "0.0571", None)
    for bad in ("2026-13-01", "30/06/2026", "", "0001-01-01"):
        refused = api.get("/api/v1/reports/receivables", {"as_of": bad})
        assert refused.status_code == 400, bad
        assert refused["Content-Type"] == "application/problem+json"
        assert refused.json()["errors"][0]["field"] == "as_of"
    # default: today in Paris
    with time_machine.travel(datetime(2026, 6, 30, 23, 30, tzinfo=UTC), tick=False):  # 1 July in Paris
        assert api.get("/api/v1/reports/receivables").json()["as_of"] == "2026-07-01"


# --- pages and roles --------------------------------------------------------------------------------


def test_receivables_page(tenant: Tenant, make_staff: StaffMaker) -> None:
    aging_data(tenant)
    client = client_for(tenant, make_staff, Role.FINANCE_VIEWER)
    response = client.get("/app/receivables/?as_of=2026-06-30")
    assert response.status_code == 200
    page = text(response)
    assert "Acme acme €100.00 €200.00 €300.00 €400.00 €500.00 €1,500.00" in page
    assert "Total €100.00 €230.00 €300.00 €400.00 €500.00 €1,530.00" in page
    assert "393.4 days" in page
    assert "5.7%" in page
    assert 'id="receivables-chart-data"' in html(response)
    assert "receivables.js" in html(response)
    # A bad day shows today's report with the error.
    assert client.get("/app/receivables/?as_of=2026-02-31").status_code == 200
    french = client
    french.cookies["django_language"] = "fr"
    assert "Créances" in text(french.get("/app/receivables/?as_of=2026-06-30"))


@pytest.mark.parametrize(
    ("role", "reads", "writes"),
    [
        (Role.OWNER, 200, 200),
        (Role.FINANCE_ADMIN, 200, 200),
        (Role.FINANCE_VIEWER, 200, 403),
        (Role.SUPPORT_AGENT, 403, 403),
    ],
)
def test_who_may_open_the_pages(tenant: Tenant, make_staff: StaffMaker, role: str, reads: int, writes: int) -> None:
    c = customer(tenant, "acme")
    payment = pay(c, "10.00", method="cash", received_at=NOW, at=NOW)  # no invoice: all to the balance
    client = client_for(tenant, make_staff, role)
    for url in ("/app/payments/", f"/app/payments/{payment.pk}/", "/app/receivables/"):
        assert client.get(url).status_code == reads, url
    assert client.get("/app/payments/new/?customer=acme").status_code == writes
    refused = client.post(f"/app/payments/{payment.pk}/refund/", {"amount": "1", "reason": "x"})
    assert refused.status_code in ((302, 422) if writes == 200 else (403,))


def test_pages_of_another_tenant_are_not_found(tenant: Tenant, other_tenant: Tenant, make_staff: StaffMaker) -> None:
    theirs = customer(other_tenant, "secret")
    payment = pay(theirs, "10.00", method="cash", received_at=NOW, at=NOW)
    client = client_for(tenant, make_staff)
    assert client.get(f"/app/payments/{payment.pk}/").status_code == 404
    assert client.post(f"/app/payments/{payment.pk}/refund/", {"amount": "1", "reason": "x"}).status_code == 404
    assert client.get("/app/payments/new/?customer=secret").status_code == 404
    assert "Secret" not in text(client.get("/app/payments/"))
    assert client.get("/app/payments/not-a-uuid/").status_code == 404


def test_record_a_payment_for_an_invoice(tenant: Tenant, make_staff: StaffMaker) -> None:
    c = customer(tenant, "acme", name="Acme Fleet")
    inv = invoice(c, "120.00", due=date(2026, 6, 15))
    client = client_for(tenant, make_staff, Role.FINANCE_ADMIN)
    form = client.get(f"/app/payments/new/?customer=acme&invoice={inv.pk}")
    assert form.status_code == 200
    assert f'<option value="{inv.pk}" selected>' in html(form)
    assert 'name="currency" value="EUR"' in html(form)
    response = client.post(
        "/app/payments/new/",
        {
            "customer": "acme",
            "invoice": str(inv.pk),
            "amount": "150.00",
            "currency": "EUR",
            "method": "bank_transfer",
            "received_on": "2026-06-29",
            "reference": "VIR 0629",
        },
    )
    assert response.status_code == 302, text(response)
    payment = Payment.objects.get(tenant=tenant)
    assert (payment.amount, payment.method, payment.reference) == (Money("150.00", "EUR"), "bank_transfer", "VIR 0629")
    assert payment.received_at == datetime(2026, 6, 29, tzinfo=PARIS)
    # 120.00 on the invoice, 150.00 - 120.00 = 30.00 to the balance
    inv.refresh_from_db()
    assert (inv.amount_paid, inv.amount_due, inv.payment_status) == (Money("120.00", "EUR"), Money("0", "EUR"), "paid")
    followed = client.get(response["Location"])
    assert followed.status_code == 200, (response["Location"], followed.status_code)
    detail = text(followed)
    assert "Payment of €150.00 from Acme Fleet recorded." in detail
    assert "On invoices €120.00" in detail
    assert "To the credit balance €30.00" in detail
    assert inv.number in detail


def test_record_a_payment_refused(tenant: Tenant, make_staff: StaffMaker) -> None:
    c = customer(tenant, "acme")
    inv = invoice(c, "120.00", due=date(2026, 6, 15))
    client = client_for(tenant, make_staff)
    base = {"customer": "acme", "invoice": str(inv.pk), "method": "cheque", "received_on": "2026-06-29"}
    usd = client.post("/app/payments/new/", {**base, "amount": "120.00", "currency": "USD"})
    negative = client.post("/app/payments/new/", {**base, "amount": "-5", "currency": "EUR"})
    cents = client.post("/app/payments/new/", {**base, "amount": "1.005", "currency": "EUR"})
    future = client.post("/app/payments/new/", {**base, "amount": "5", "currency": "EUR", "received_on": "2026-07-01"})
    assert usd.status_code == 422
    assert f"Invoice {inv.number} is in EUR: a payment in USD cannot settle it." in text(usd)
    assert "Enter an amount above zero." in text(negative)
    assert "EUR amounts have at most 2 decimals." in text(cents)
    assert "The day the money was received cannot be in the future." in text(future)
    assert Payment.objects.count() == 0
    inv.refresh_from_db()
    assert inv.amount_due == Money("120.00", "EUR")


def test_refund_a_payment(tenant: Tenant, make_staff: StaffMaker) -> None:
    c = customer(tenant, "acme")
    payment = pay(c, "80.00", method="cash", received_at=NOW, at=NOW)  # no invoice: all to the balance
    client = client_for(tenant, make_staff)
    assert "At most €80.00" in text(client.get(f"/app/payments/{payment.pk}/"))
    too_much = client.post(f"/app/payments/{payment.pk}/refund/", {"amount": "90", "reason": "duplicate"})
    assert too_much.status_code == 422
    # the ledger's refusal, on the amount field
    assert "Amount At most 80.00 EUR: what the payment still holds." in text(too_much)
    done = client.post(f"/app/payments/{payment.pk}/refund/", {"amount": "30", "reason": "duplicate"})
    assert done.status_code == 302
    page = text(client.get(done["Location"]))
    assert "Refund of €30.00 recorded." in page
    assert "duplicate" in page
    assert "At most €50.00" in page
    payment.refresh_from_db()
    assert (payment.amount_refunded, payment.status) == (Money("30.00", "EUR"), "partially_refunded")
    c.refresh_from_db()
    assert c.balance == Decimal("50.00")  # the 80.00 it put on the balance, less the 30.00 refunded


def test_payments_list_filters_and_bounded_queries(
    tenant: Tenant, make_staff: StaffMaker, django_assert_max_num_queries: Any
) -> None:
    for i in range(12):
        c = customer(tenant, f"c{i}")
        pay(
            c,
            "%d.00" % (10 + i),
            method="cash" if i % 2 else "cheque",
            received_at=datetime(2026, 6, 1 + i, 12, tzinfo=PARIS),
            at=NOW,
        )
    client = client_for(tenant, make_staff)
    client.get("/app/payments/")
    with django_assert_max_num_queries(12):  # session, user, membership... then the count and the page
        response = client.get("/app/payments/")
    assert len(re.findall(r'href="/app/payments/[0-9a-f-]{36}/"', html(response))) == 12
    cash = text(client.get("/app/payments/?method=cash"))
    assert cash.count("Cash") == 6 + 1  # six payments and the filter's option
    dated = html(client.get("/app/payments/?date_from=2026-06-03&date_to=2026-06-04"))
    assert len(re.findall(r'href="/app/payments/[0-9a-f-]{36}/"', dated)) == 2  # 3 and 4 June
    one = text(client.get("/app/payments/?customer=c3"))
    assert "€13.00" in one
    assert "€14.00" not in one


def test_invoice_page_shows_payments_and_charges(tenant: Tenant, make_staff: StaffMaker) -> None:
    c = customer(tenant, "acme", collection=Collection.CHARGE_AUTOMATICALLY)
    inv = invoice(c, "100.00", due=date(2026, 6, 1))
    pay(c, "40.00", invoice=inv, method="cheque", received_at=NOW, at=NOW, reference="CHQ 12")
    # A card declined on an earlier day, as charging records it (this tenant has no Stripe keys:
    # no charge can be made here).
    PaymentAttempt.objects.create(
        tenant=tenant,
        invoice=inv,
        number=1,
        idempotency_key="k1",
        status="failed",
        currency="EUR",
        amount=Decimal("100"),
        failure_code="card_declined",
        failure_message="Your card was declined.",
        next_retry_at=datetime(2026, 6, 4, 8, tzinfo=UTC),
    )
    client = client_for(tenant, make_staff)
    page = text(client.get(f"/app/billing/invoices/{inv.pk}/"))
    assert "Partially paid" in page
    assert "Overdue" in page
    assert "Amount paid €40.00 Amount due €60.00" in page  # 100.00 - 40.00
    assert "CHQ 12" in page
    assert "card_declined Your card was declined." in page
    assert "Charge now" in page
    assert f"/app/payments/new/?customer=acme&amp;invoice={inv.pk}" in html(
        client.get(f"/app/billing/invoices/{inv.pk}/")
    )
    # "Charge now" without Stripe keys: charging's own refusal, and nothing charged
    response = client.post(f"/app/billing/invoices/{inv.pk}/charge/")
    assert response.status_code == 302
    after = text(client.get(response["Location"]))
    assert "Stripe is not connected: add the account's secret key in Settings, Payments." in after
    assert PaymentAttempt.objects.filter(invoice=inv).count() == 1
    assert Payment.objects.filter(customer=c).count() == 1
    inv.refresh_from_db()
    assert (inv.amount_paid, inv.amount_due) == (Money("40.00", "EUR"), Money("60.00", "EUR"))
    # a viewer sees no button and cannot charge
    viewer = client_for(tenant, make_staff, Role.FINANCE_VIEWER, "viewer@acme.test")
    assert "Charge now" not in text(viewer.get(f"/app/billing/invoices/{inv.pk}/"))
    assert viewer.post(f"/app/billing/invoices/{inv.pk}/charge/").status_code == 403


# Charging outside a transaction sends the attempt at once (inside one it waits for the commit).
@pytest.mark.django_db(transaction=True)
def test_charge_now_takes_the_money_at_stripe(
    tenant: Tenant,
    make_staff: StaffMaker,
    make_card_invoice: Callable[..., Invoice],  # noqa: F811 (the imported fixture)
    stripe_api: stripe.StripeClient,  # noqa: F811 (the imported fixture)
) -> None:
    # given: Dupont's invoice of 100.00 + 20 % VAT = 120.00 EUR, his Visa the default card, and a
    # cheque of 20.00 on it: 120.00 - 20.00 = 100.00 left to charge
    inv = make_card_invoice()
    pay(inv.customer, "20.00", invoice=inv, method="cheque", received_at=NOW, at=NOW)
    client = client_for(tenant, make_staff)
    assert "Charge now" in text(client.get(f"/app/billing/invoices/{inv.pk}/"))
    # when
    response = client.post(f"/app/billing/invoices/{inv.pk}/charge/")
    # then: attempt 1 took the 100.00 at Stripe (10000 cents) and the invoice is paid
    assert response.status_code == 302
    assert "Charge attempt 1: Succeeded." in text(client.get(response["Location"]))
    [attempt] = PaymentAttempt.objects.filter(invoice=inv)
    assert (attempt.number, attempt.status, attempt.trigger) == (1, "succeeded", "backoffice")
    assert attempt.amount == Money("100.00", "EUR")
    [intent] = intents_of(stripe_api, inv.customer)
    assert (intent.id, intent.status, intent.amount) == (attempt.gateway_id, "succeeded", 10000)
    card_payment = Payment.objects.get(gateway="stripe", gateway_id=intent.id)
    assert (card_payment.amount, card_payment.method) == (Money("100.00", "EUR"), "card")
    inv.refresh_from_db()
    # 20.00 (cheque) + 100.00 (card) = 120.00 paid, nothing due
    assert (inv.amount_paid, inv.amount_due, inv.payment_status) == (
        Money("120.00", "EUR"),
        Money("0.00", "EUR"),
        "paid",
    )
    assert "Charge now" not in text(client.get(f"/app/billing/invoices/{inv.pk}/"))


def test_invoices_list_payment_column_and_filter(
    tenant: Tenant, make_staff: StaffMaker, django_assert_max_num_queries: Any
) -> None:
    c = customer(tenant, "acme")
    paid = invoice(c, "10", due=date(2026, 6, 25))
    pay(c, "10.00", invoice=paid, received_at=NOW, at=NOW)
    overdue = invoice(c, "20", due=date(2026, 6, 1))
    not_due = invoice(c, "30", due=date(2026, 7, 15))
    client = client_for(tenant, make_staff)
    client.get("/app/billing/invoices/")
    with django_assert_max_num_queries(13):  # with the bulk counts and the saved filters
        listed = text(client.get("/app/billing/invoices/"))
    only_overdue = text(client.get("/app/billing/invoices/?payment=overdue"))
    unpaid = text(client.get("/app/billing/invoices/?payment=unpaid"))
    paid_only = text(client.get("/app/billing/invoices/?payment=paid"))
    assert listed.count("Overdue") == 1 + 1  # the filter's option and the June invoice
    assert overdue.number in only_overdue
    assert not_due.number not in only_overdue
    assert paid.number not in only_overdue
    assert overdue.number in unpaid
    assert not_due.number in unpaid
    assert paid.number not in unpaid
    assert paid.number in paid_only
    assert overdue.number not in paid_only


def test_customer_page_shows_collection_terms_and_balance(tenant: Tenant, make_staff: StaffMaker) -> None:
    c = customer(tenant, "acme", payment_terms_days=45)
    pay(c, "12.50", received_at=NOW, at=NOW)  # no open invoice: all of it to the credit balance
    page = text(client_for(tenant, make_staff).get("/app/customers/acme/"))
    assert "Collection Send invoice" in page
    assert "Payment terms 45 days" in page
    assert "Credit balance €12.50" in page
    assert "its payments" in page


# --- bill run: finalize and send the drafts ---------------------------------------------------------


def test_bill_run_finalize_and_send_the_drafts(
    tenant: Tenant,
    make_staff: StaffMaker,
    django_capture_on_commit_callbacks: Any,
    django_assert_max_num_queries: Any,
) -> None:
    run = BillRun.objects.create(tenant=tenant, billing_date=date(2026, 6, 1))
    complete = [customer(tenant, f"c{i}") for i in range(3)]
    no_address = customer_create(
        tenant=tenant, actor=ACTOR, at=timezone.now(), external_id="nomad", name="Nomad", email="n@x.test", country="FR"
    )
    drafts = [
        invoice(c, "24.00", due=date(2026, 7, 1), issued=date(2026, 6, 1), status="draft")
        for c in [*complete, no_address]
    ]
    Invoice.objects.filter(pk__in=[d.pk for d in drafts]).update(bill_run=run)
    client = client_for(tenant, make_staff)
    page = client.get(f"/app/billing/runs/{run.pk}/")
    assert "4 draft invoices in this run." in text(page)
    assert 'data-confirm="Finalize and send the 4 drafts of this run?' in html(page)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        with django_assert_max_num_queries(40):
            response = client.post(f"/app/billing/runs/{run.pk}/finalize/")
    assert response.status_code == 302
    # 3 finalized with consecutive numbers, 1 left a draft; one render-and-send task per finalized invoice
    finalized = Invoice.objects.filter(bill_run=run, status="finalized").order_by("number_sequence")
    assert finalized.count() == 3
    assert [i.number_sequence for i in finalized] == [1, 2, 3]
    assert Invoice.objects.get(bill_run=run, customer=no_address).status == "draft"
    assert sum(1 for cb in callbacks if "invoice_render_task" in repr(cb)) == 3
    after = text(client.get(response["Location"]))
    assert "3 invoices finalized: their PDFs are rendered and e-mailed to the customers." in after
    assert "Nomad: left as a draft, it would not be a valid e-invoice (EN 16931). Missing:" in after
    assert "1 draft invoice in this run." in after
    viewer = client_for(tenant, make_staff, Role.FINANCE_VIEWER, "viewer@acme.test")
    assert viewer.post(f"/app/billing/runs/{run.pk}/finalize/").status_code == 403
