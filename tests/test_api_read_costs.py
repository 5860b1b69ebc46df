"""The API's hot reads (a customer, a customer's invoices, a subscription with its devices): what
they cost in queries, whatever the number of devices or invoices, and that the responses written
from rows are byte for byte what the serializers write from model instances."""

from dataclasses import replace
from datetime import UTC, date, datetime

import orjson
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.serializers import ModelSerializer
from rest_framework.test import APIClient

from catalog.services import tax_rate_set
from catalog.tests.factories import platform_plan
from customers.models import Partner
from customers.tests.factories import dupont
from invoicing.api.serializers import InvoiceOutputSerializer
from invoicing.models import Invoice
from invoicing.selectors import invoice_get, invoice_list
from invoicing.services import credit_note_create, invoice_void
from invoicing.tests.factories import ACTOR, AT, buyer, issue, line
from payments.models import DunningPolicy, PaymentAttempt
from subscriptions.api.serializers import SubscriptionDetailOutputSerializer
from subscriptions.models import Device, Subscription
from subscriptions.selectors import subscription_get
from subscriptions.tests.factories import signed_subscription, smart_fleet, smart_fleet_activate
from tenancy.models import ApiKey, Tenant


def queries_of(api: APIClient, path: str) -> tuple[int, bytes]:
    """The queries of a GET, after a first one (which also records when the API key was last used:
    once a minute)."""
    api.get(path)
    with CaptureQueriesContext(connection) as captured:
        response = api.get(path)
    assert response.status_code == 200, response.content
    return len(captured.captured_queries), response.content


def serializer_bytes(tenant: Tenant, external_id: str) -> bytes:
    """The subscription as SubscriptionDetailOutputSerializer writes it from model instances,
    rendered by DRF's own JSON renderer."""
    data = SubscriptionDetailOutputSerializer(subscription_get(tenant=tenant, external_id=external_id)).data
    return bytes(JSONRenderer().render(data))


@pytest.mark.django_db
def test_a_subscription_reads_as_its_serializer_writes_it(tenant: Tenant, api: APIClient) -> None:
    smart_fleet(tenant)
    smart_fleet_activate(tenant, ["A", "B"])
    subscription = Subscription.objects.get(tenant=tenant, external_id="dupont-fleet")
    # every kind of value: set and null timestamps, microseconds, non-ASCII metadata, a scheduled end
    Subscription.objects.filter(pk=subscription.pk).update(
        metadata={"fleet": "Lyon — Nord", "owner": "Zoë"},
        cancel_at=datetime(2026, 12, 31, 23, 0, 0, 250000, tzinfo=UTC),
    )
    Device.objects.filter(subscription=subscription, device_id="C").update(
        device_type="capteur été", region="Île-de-France", removed_at=datetime(2026, 6, 1, tzinfo=UTC)
    )
    response = api.get("/api/v1/subscriptions/dupont-fleet")
    assert response.status_code == 200
    assert response.content == serializer_bytes(tenant, "dupont-fleet")
    body = response.json()
    assert [d["device_id"] for d in body["devices"]] == ["A", "B", "C"]
    assert [d["activated_at"] for d in body["devices"]] == ["2026-03-15T08:00:00Z", "2026-03-20T13:00:00Z", None]
    assert body["devices"][2]["removed_at"] == "2026-06-01T00:00:00Z"
    assert body["ends_at"] == "2026-12-31T23:00:00.250000Z"
    assert [e["type"] for e in body["events"]] == [
        "subscription.signed",
        "device.activated",
        "subscription.status_changed",
        "device.activated",
    ]
    assert list(body) == [
        "id",
        "external_id",
        "customer",
        "plan",
        "status",
        "signed_at",
        "starts_at",
        "trial_ends_at",
        "commitment_ends_at",
        "auto_renew",
        "price_locked",
        "cancel_at",
        "cancelled_at",
        "ended_at",
        "ends_at",
        "devices",
        "metadata",
        "created_at",
        "events",
    ]


@pytest.mark.django_db
def test_a_subscription_that_does_not_renew_ends_at_its_commitment_end(tenant: Tenant, api: APIClient) -> None:
    plan = platform_plan(tenant, "basic", "10.00")
    customer = dupont(tenant)
    signed_subscription(tenant, customer=customer, plan=plan, external_id="fixed", auto_renew=False)
    response = api.get("/api/v1/subscriptions/fixed")
    assert response.content == serializer_bytes(tenant, "fixed")
    body = response.json()
    assert body["ends_at"] == body["commitment_ends_at"]


@pytest.mark.django_db
def test_a_subscription_costs_the_same_queries_with_2_or_50_devices(tenant: Tenant, api: APIClient) -> None:
    plan = platform_plan(tenant, "basic", "10.00")
    customer = dupont(tenant)
    signed_subscription(tenant, customer=customer, plan=plan, external_id="small", devices=["d0", "d1"])
    signed_subscription(
        tenant, customer=customer, plan=plan, external_id="large", devices=["d%02d" % i for i in range(2, 52)]
    )
    small, _ = queries_of(api, "/api/v1/subscriptions/small")
    large, content = queries_of(api, "/api/v1/subscriptions/large")
    # the API key, the subscription, its devices, its events (and the tenant's scope, set and reset)
    assert (small, large) == (6, 6)
    assert content.count(b'"device_id":"d') == 50
    assert content == serializer_bytes(tenant, "large")


@pytest.mark.django_db
def test_an_unknown_subscription_is_a_404(api: APIClient) -> None:
    response = api.get("/api/v1/subscriptions/nope")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


# --- a customer ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_customer_with_a_partner_and_its_own_dunning_policy_is_one_query(tenant: Tenant, api: APIClient) -> None:
    partner = Partner.objects.create(tenant=tenant, code="alpnet", name="AlpNet", currency="EUR")
    customer = dupont(tenant, partner=partner)
    DunningPolicy.objects.create(
        tenant=tenant, customer=customer, retry_days=[3, 7], reminder_days=[-2], suspend_after_days=30
    )
    dupont(tenant, external_id="direct", name="Direct SARL")
    queries, content = queries_of(api, "/api/v1/customers/dupont")
    # the API key, the customer with its partner and its policy (and the tenant's scope, set and reset)
    assert queries == 4
    body = orjson.loads(content)
    assert (body["partner"], body["reseller"]) == ("alpnet", "alpnet")
    assert body["dunning_policy"] == {
        "retry_days": [3, 7],
        "reminder_days": [-2],
        "suspend_after_days": 30,
        "uncollectible_after_days": None,
    }
    queries, content = queries_of(api, "/api/v1/customers/direct")
    assert queries == 4
    assert orjson.loads(content)["partner"] is None


@pytest.mark.django_db
def test_an_unknown_customer_is_a_404(api: APIClient) -> None:
    assert api.get("/api/v1/customers/nope").status_code == 404


# --- a customer's invoices -------------------------------------------------------------------------


@pytest.fixture
def taxed(tenant: Tenant) -> Tenant:
    tax_rate_set(tenant=tenant, actor=ACTOR, at=AT, country="FR", tax_category="standard", rate="20")
    return tenant


@pytest.mark.django_db
def test_a_customers_invoices_cost_the_same_queries_for_1_or_4_invoices(taxed: Tenant, api: APIClient) -> None:
    one = buyer(taxed, "one", country="FR")
    four = buyer(taxed, "four", country="FR")
    issue(one, [line("service", "fleet-platform", "20.00")])
    for month in (1, 2, 3, 4):
        issue(
            four,
            [line("service", "fleet-platform", "75.00", quantity="3"), line("hardware", "eld-200", "240.00")],
            on=date(2026, month, 1),
        )
    single, _ = queries_of(api, "/api/v1/invoices?customer=one")
    several, content = queries_of(api, "/api/v1/invoices?customer=four")
    # the API key, the invoices with their customers, lines, taxes and payment attempts in one
    # query (and the tenant's scope, set and reset)
    assert (single, several) == (4, 4)
    body = orjson.loads(content)
    assert [invoice["issue_date"] for invoice in body["results"]] == [
        "2026-04-01",
        "2026-03-01",
        "2026-02-01",
        "2026-01-01",
    ]
    assert [len(invoice["lines"]) for invoice in body["results"]] == [2, 2, 2, 2]
    assert body["results"][0]["total"] == "378.00"


def invoices_serializer_bytes(tenant: Tenant, customer: str) -> bytes:
    """A customer's invoices as InvoiceOutputSerializer writes them from model instances in the
    list's envelope (newest first, one page), rendered by DRF's own JSON renderer."""
    invoices = invoice_list(tenant=tenant, customer=customer).order_by("-created_at", "-id")
    return bytes(JSONRenderer().render({"results": InvoiceOutputSerializer(invoices, many=True).data, "next": None}))


@pytest.mark.django_db
def test_invoices_read_as_their_serializer_writes_them(taxed: Tenant, api: APIClient) -> None:
    # given: the reduced rate too, a partner's customer with non-ASCII text, a subscription
    tax_rate_set(tenant=taxed, actor=ACTOR, at=AT, country="FR", tax_category="reduced", rate="5.5")
    partner = Partner.objects.create(tenant=taxed, code="alpnet", name="AlpNet", currency="EUR")
    customer = buyer(taxed, "zoe", country="FR", name="Société Générale des Flottes — Île", partner=partner)
    subscription = signed_subscription(
        taxed, customer=customer, plan=platform_plan(taxed, "basic", "10.00"), external_id="flotte-ete"
    )
    instalment = replace(
        line("hardware", "eld-200", "20.00"), qualifiers={"instalment": 2, "of": 12}, detail={"instalment": 2}
    )
    service = replace(
        line("service", "fleet-platform", "45.00", quantity="3"),
        subscription=subscription,
        devices=("A", "B", "C"),
        detail={"days": 30, "price_book": "été"},
    )
    prorated = replace(
        line("service", "fleet-platform", "5.33"),
        qualifiers={"from": "2026-04-15", "to": "2026-05-01", "days": 16, "days_in_period": 30},
    )
    usage = replace(
        line("usage", "data-mb", "12.50", quantity="1752.5", tax_category="reduced"),
        unit_amount=None,
        detail={"tiers": [{"from": "0", "to": "1000", "amount": "0.00"}, {"from": "1000", "amount": "12.50"}]},
    )
    fee = line("fee", "activation", "15.00")
    late = replace(line("usage", "data-mb", "0.75", tax_category="reduced"), unit_amount=None, adjustment=True)
    late = replace(late, qualifiers={"late_usage": True})
    first = issue(customer, [instalment, service, prorated, usage, fee, late], on=date(2026, 3, 1))
    second = issue(customer, [line("service", "fleet-platform", "100.00")], on=date(2026, 4, 1))
    voided = issue(customer, [line("fee", "setup", "9.99")], on=date(2026, 4, 2))
    invoice_void(invoice=voided, actor=ACTOR, at=AT, reason="Doublon — erreur")
    note = credit_note_create(invoice=second, actor=ACTOR, at=AT, reason="Geste commercial")
    # a partial payment: one failed attempt, one that succeeded for part of the total
    Invoice.objects.filter(pk=first.pk).update(
        amount_paid="50.0000", amount_due="51.6790", payment_status="partially_paid", metadata={"erp": "Zoë-1"}
    )
    retry = datetime(2026, 3, 4, 8, 0, 0, 125000, tzinfo=UTC)
    for number, status, amount, next_retry in ((1, "failed", "101.6800", retry), (2, "succeeded", "50.0000", None)):
        PaymentAttempt.objects.create(
            tenant=taxed,
            invoice=first,
            number=number,
            idempotency_key="attempt:%s:%d" % (first.pk, number),
            status=status,
            currency="EUR",
            amount=amount,
            gateway_id="pi_%d" % number,
            failure_code="card_declined" if status == "failed" else "",
            next_retry_at=next_retry,
        )
    # when
    response = api.get("/api/v1/invoices?customer=zoe")
    # then
    assert response.status_code == 200
    assert response.content == invoices_serializer_bytes(taxed, "zoe")
    body = orjson.loads(response.content)
    assert [(i["kind"], i["status"]) for i in body["results"]] == [
        ("credit_note", "finalized"),
        ("invoice", "void"),
        ("invoice", "finalized"),
        ("invoice", "finalized"),
    ]
    assert [i["payment_status"] for i in body["results"]] == ["unpaid", "unpaid", "paid", "partially_paid"]
    assert body["results"][0]["credited_invoice"] == second.number
    [first_body] = [i for i in body["results"] if i["id"] == str(first.pk)]
    assert [x["description"] for x in first_body["lines"]] == [
        "Eld 200, instalment 2/12",
        "Fleet Platform",
        "Fleet Platform, 15–30 Apr 2026 (16/30)",
        "Data Mb",
        "Activation",
        "Data Mb (late usage)",
    ]
    assert [(t["category"], t["rate"], t["base"], t["amount"]) for t in first_body["taxes"]] == [
        ("reduced", "5.50", "13.25", "0.73"),
        ("standard", "20.00", "85.33", "17.07"),
    ]
    assert [(a["number"], a["status"], a["amount"]) for a in first_body["attempts"]] == [
        (1, "failed", "101.68"),
        (2, "succeeded", "50.00"),
    ]
    assert (first_body["amount_paid"], first_body["amount_due"], first_body["metadata"]) == (
        "50.00",
        "51.68",
        {"erp": "Zoë-1"},
    )
    # an invoice alone is written the same way
    detail = api.get("/api/v1/invoices/%s" % first.pk)
    assert orjson.loads(detail.content) == first_body
    alone = InvoiceOutputSerializer(invoice_get(tenant=taxed, pk=str(first.pk))).data
    assert detail.content == bytes(JSONRenderer().render(alone))
    assert note.kind == "credit_note"


@pytest.mark.django_db
def test_an_output_serializers_fields_are_built_once_and_copied_for_each_use(taxed: Tenant) -> None:
    customer = buyer(taxed, "one", country="FR")
    invoice = issue(customer, [line("service", "fleet-platform", "20.00")])
    built = {name: repr(field) for name, field in ModelSerializer.get_fields(InvoiceOutputSerializer()).items()}
    first, second = InvoiceOutputSerializer(invoice), InvoiceOutputSerializer(invoice)
    assert {name: repr(field) for name, field in first.fields.items()} == built
    assert first.fields["total"] is not second.fields["total"]
    assert first.fields["lines"].parent is first
    assert second.fields["lines"].parent is second
    assert first.data == second.data
    assert first.data["lines"][0]["amount"] == "20.00"


# --- the API key ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_api_key_is_read_without_the_tenants_logo_or_device_cloud_secrets(tenant: Tenant, api: APIClient) -> None:
    tenant.logo = b"\x89PNG" + b"\x00" * 200_000
    tenant.device_cloud_secrets = ["whsec_" + "a" * 32]
    tenant.save(update_fields=["logo", "device_cloud_secrets"])
    dupont(tenant)
    api.get("/api/v1/customers/dupont")
    with CaptureQueriesContext(connection) as captured:
        assert api.get("/api/v1/customers/dupont").status_code == 200
    [key_query] = [q["sql"] for q in captured.captured_queries if '"tenancy_apikey"' in q["sql"]]
    assert '"tenancy_tenant"."slug"' in key_query
    assert '"tenancy_tenant"."logo"' not in key_query
    assert '"tenancy_tenant"."device_cloud_secrets"' not in key_query
    assert len(captured.captured_queries) == 4


@pytest.mark.django_db
def test_a_revoked_key_is_refused_at_its_next_request(tenant: Tenant, api: APIClient) -> None:
    dupont(tenant)
    assert api.get("/api/v1/customers/dupont").status_code == 200
    ApiKey.objects.filter(tenant=tenant).update(revoked_at=timezone.now())
    response = api.get("/api/v1/customers/dupont")
    assert response.status_code == 401
