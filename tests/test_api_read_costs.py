"""The API's hot reads (a customer, a customer's invoices, a subscription with its devices): what
they cost in queries, whatever the number of devices or invoices, and that the responses written
from rows are byte for byte what the serializers write from model instances."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from catalog.tests.factories import platform_plan
from customers.tests.factories import dupont
from subscriptions.api.serializers import SubscriptionDetailOutputSerializer
from subscriptions.models import Device, Subscription
from subscriptions.selectors import subscription_get
from subscriptions.tests.factories import signed_subscription, smart_fleet, smart_fleet_activate
from tenancy.models import Tenant


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
