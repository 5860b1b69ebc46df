"""POST /api/v1/events: outcomes per event, write-time deduplication, rejections kept, CloudEvents."""

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine
from cloudevents.core.bindings.http import to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from django.db import connection
from django.utils import timezone

from catalog.services import plan_create
from customers.services import customer_create
from subscriptions.models import Subscription
from subscriptions.services import subscription_create
from tenancy.actors import Actor
from tenancy.models import ApiKeyScope, Tenant
from usage.ingest import MAX_EVENT_VALUE
from usage.models import RejectedEvent, UsageRollup, UsageSettings

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")
NOW = datetime(2026, 4, 20, 12, 0, tzinfo=UTC)


def ev(
    tid: str, code: str = "data_mb", device: str = "A", ts: str = "2026-04-16T10:00:00Z", **props: Any
) -> dict[str, Any]:
    return {
        "transaction_id": tid,
        "code": code,
        "device_id": device,
        "timestamp": ts,
        "properties": props or {"mb": 100},
    }


def stored(tenant: Tenant) -> list[tuple[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT transaction_id, value FROM usage_event WHERE tenant_id = %s ORDER BY transaction_id", [tenant.pk]
        )
        return list(cursor.fetchall())


@pytest.fixture
def ingest(make_client: Any, tenant: Tenant) -> Any:
    client = make_client(tenant, ApiKeyScope.INGEST)

    def post(events: list[Any], content_type: str = "application/json") -> Any:
        body = json.dumps({"events": events}) if content_type == "application/json" else json.dumps(events)
        with time_machine.travel(NOW, tick=False):
            return client.post("/api/v1/events", data=body, content_type=content_type)

    return post


def test_duplicates_within_and_across_batches_count_once(fleet: Subscription, tenant: Tenant, ingest: Any) -> None:
    first = ingest([ev("t1"), ev("t2"), ev("t1")])
    assert first.status_code == 202
    assert first.json()["results"] == [
        {"transaction_id": "t1", "status": "accepted"},
        {"transaction_id": "t2", "status": "accepted"},
        {"transaction_id": "t1", "status": "duplicate"},
    ]
    # replaying the whole batch, plus one new event: only the new one is stored
    second = ingest([ev("t1"), ev("t2"), ev("t3")])
    assert (second.json()["accepted"], second.json()["duplicates"]) == (1, 2)
    assert [tid for tid, _ in stored(tenant)] == ["t1", "t2", "t3"]
    rollup_sum = sum(r.value_sum for r in UsageRollup.objects.filter(subscription=fleet))
    assert rollup_sum == 300


def test_a_replay_with_another_timestamp_is_still_a_duplicate(fleet: Subscription, tenant: Tenant, ingest: Any) -> None:
    # pitfall #8: the key is (tenant, transaction_id) alone, whatever partition the event would land in
    ingest([ev("t1", ts="2026-04-16T10:00:00Z")])
    replay = ingest([ev("t1", ts="2026-03-31T10:00:00Z")])
    assert replay.json()["results"] == [{"transaction_id": "t1", "status": "duplicate"}]
    assert stored(tenant) == [("t1", 100)]


def test_three_bad_events_of_ten_are_rejected_precisely_and_seven_are_stored(
    fleet: Subscription, tenant: Tenant, ingest: Any
) -> None:
    good = [ev(f"g{i}") for i in range(7)]
    bad = [
        ev("b1", code="nope"),
        ev("b2", device="ZZ"),
        ev("b3", ts="yesterday"),
    ]
    response = ingest([*good[:3], bad[0], *good[3:5], bad[1], bad[2], *good[5:]])
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (7, 0, 3)
    rejected = [r for r in body["results"] if r["status"] == "rejected"]
    assert rejected == [
        {"transaction_id": "b1", "status": "rejected", "reason": "unknown_meter", "detail": "No meter with code nope."},
        {
            "transaction_id": "b2",
            "status": "rejected",
            "reason": "unknown_device",
            "detail": "No live subscription holds device ZZ.",
        },
        {
            "transaction_id": "b3",
            "status": "rejected",
            "reason": "bad_timestamp",
            "detail": "timestamp 'yesterday' is not ISO 8601.",
        },
    ]
    assert len(stored(tenant)) == 7
    kept = RejectedEvent.objects.filter(tenant=tenant).order_by("transaction_id")
    assert [(r.transaction_id, r.reason) for r in kept] == [
        ("b1", "unknown_meter"),
        ("b2", "unknown_device"),
        ("b3", "bad_timestamp"),
    ]
    assert kept[0].payload["code"] == "nope"


@pytest.mark.parametrize(
    ("event", "reason", "detail"),
    [
        (
            {"code": "data_mb", "device_id": "A", "timestamp": "2026-04-16T10:00:00Z", "properties": {"mb": 1}},
            "missing_field",
            "transaction_id is required.",
        ),
        (ev("x", mb="lots"), "value_not_a_number", "properties.mb must be a number, not 'lots'."),
        (ev("x", kb=3), "missing_field", "properties.mb is required by meter data_mb."),
        (ev("x", ts="2026-04-16T10:00:00"), "bad_timestamp", "timestamp needs an offset (e.g. Z or +02:00)."),
        (ev("x", ts="2026-04-21T10:00:00Z"), "bad_timestamp", "timestamp is in the future."),
        (ev("x", ts="2026-01-01T10:00:00Z"), "too_old", "Events older than 62 days are not accepted."),
        (
            {"transaction_id": "x", "code": "data_mb", "timestamp": "2026-04-16T10:00:00Z", "properties": {"mb": 1}},
            "missing_field",
            "Give external_subscription_id, device_id or external_customer_id.",
        ),
        (
            {**ev("x"), "device_id": None, "external_subscription_id": "nope"},
            "unknown_subscription",
            "No live subscription nope.",
        ),
    ],
)
def test_each_rejection_reason(
    fleet: Subscription, ingest: Any, event: dict[str, Any], reason: str, detail: str
) -> None:
    [result] = ingest([event]).json()["results"]
    assert (result["status"], result["reason"], result["detail"]) == ("rejected", reason, detail)


def test_mapping_by_subscription_and_by_customer(fleet: Subscription, tenant: Tenant, ingest: Any) -> None:
    by_sub = {
        "transaction_id": "s1",
        "code": "api_calls",
        "external_subscription_id": "dupont-fleet",
        "timestamp": "2026-04-16T10:00:00Z",
    }
    by_customer = {
        "transaction_id": "c1",
        "code": "api_calls",
        "external_customer_id": "dupont",
        "timestamp": "2026-04-16T10:00:00Z",
    }
    body = ingest([by_sub, by_customer]).json()
    assert body["accepted"] == 2


def test_late_events_are_accepted_and_flagged(fleet: Subscription, tenant: Tenant, ingest: Any) -> None:
    # on 20 April, March has closed for a Paris customer billed on the 1st: a March event is late
    ingest([ev("march", ts="2026-03-31T21:30:00Z"), ev("april", ts="2026-03-31T22:30:00Z")])
    with connection.cursor() as cursor:
        cursor.execute("SELECT transaction_id, late FROM usage_event ORDER BY transaction_id")
        # 22:30Z on 31 March is 00:30 on 1 April in Paris: April, not late
        assert cursor.fetchall() == [("april", False), ("march", True)]


def martin_subscribed(tenant: Tenant, *, interval: str, external_id: str, starts_on: date) -> None:
    """Martin Logistique (Paris, billed on the 1st), subscribed from ``starts_on`` to a usage plan
    billed every ``interval``."""
    now = timezone.now()
    plan = plan_create(
        tenant=tenant,
        actor=ACTOR,
        at=now,
        code="iot-" + interval,
        name="IoT " + interval,
        interval=interval,
        components=[
            {"product": "u-data_mb", "meter": "data_mb", "charge": {"model": "per_unit", "unit_amount": "0.01"}}
        ],
        prices=[{"currency": "EUR"}],
    )
    customer = customer_create(
        tenant=tenant,
        actor=ACTOR,
        at=now,
        external_id="martin",
        name="Martin Logistique",
        email="a@martin.test",
        country="FR",
        timezone="Europe/Paris",
        billing_day=1,
    )
    subscription_create(
        tenant=tenant,
        actor=ACTOR,
        at=now,
        external_id=external_id,
        customer=customer,
        plan=plan,
        signed_at=now,
        starts_on=starts_on,
    )


def test_on_a_quarterly_plan_an_event_is_late_only_before_the_open_quarter(
    fleet: Subscription, tenant: Tenant, make_client: Any
) -> None:
    # given: a Paris customer billed on the 1st, on a quarterly plan from 1 January 2026: its
    # quarters start on 1 January, 1 April and 1 July
    martin_subscribed(tenant, interval="quarter", external_id="martin-quarterly", starts_on=date(2026, 1, 1))
    client = make_client(tenant, ApiKeyScope.INGEST)
    events = [
        {
            "transaction_id": tid,
            "code": "data_mb",
            "external_subscription_id": "martin-quarterly",
            "timestamp": ts,
            "properties": {"mb": 1},
        }
        # April: the last month, in the quarter open since 1 April; 23:30 on 31 March in Paris: the previous quarter
        for tid, ts in (("april", "2026-04-30T10:00:00Z"), ("march", "2026-03-31T21:30:00Z"))
    ]
    # when: they arrive on 20 May
    with time_machine.travel(datetime(2026, 5, 20, 12, 0, tzinfo=UTC), tick=False):
        response = client.post("/api/v1/events", data=json.dumps({"events": events}), content_type="application/json")
    # then: both are accepted; only the one from before 1 April is late
    assert response.json()["accepted"] == 2
    with connection.cursor() as cursor:
        cursor.execute("SELECT transaction_id, late FROM usage_event ORDER BY transaction_id")
        assert cursor.fetchall() == [("april", False), ("march", True)]


def test_on_a_yearly_plan_an_event_is_late_only_before_the_open_year(
    fleet: Subscription, tenant: Tenant, make_client: Any
) -> None:
    # given: a Paris customer billed on the 1st, on a yearly plan from 1 March 2026: its years start
    # on 1 March 2026 and 1 March 2027
    martin_subscribed(tenant, interval="year", external_id="martin-yearly", starts_on=date(2026, 3, 1))
    client = make_client(tenant, ApiKeyScope.INGEST)

    def send(at: datetime, events: tuple[tuple[str, str], ...]) -> Any:
        body = {
            "events": [
                {
                    "transaction_id": tid,
                    "code": "data_mb",
                    "external_subscription_id": "martin-yearly",
                    "timestamp": ts,
                    "properties": {"mb": 1},
                }
                for tid, ts in events
            ]
        }
        with time_machine.travel(at, tick=False):
            return client.post("/api/v1/events", data=json.dumps(body), content_type="application/json").json()

    # when: a January event arrives on 20 February 2027, inside the year open since 1 March 2026 (a
    # monthly period would have closed on 1 February)...
    january = send(datetime(2027, 2, 20, 12, 0, tzinfo=UTC), (("january", "2027-01-15T10:00:00Z"),))
    # ...and on 20 March 2027, 23:30 on 28 February in Paris (the year that closed on 1 March) and
    # 00:30 on 1 March (the new year)
    march = send(
        datetime(2027, 3, 20, 12, 0, tzinfo=UTC),
        (("last-year", "2027-02-28T22:30:00Z"), ("this-year", "2027-02-28T23:30:00Z")),
    )
    # then: all are accepted; only the one from before 1 March 2027 is late
    assert (january["accepted"], march["accepted"]) == (1, 2)
    with connection.cursor() as cursor:
        cursor.execute("SELECT transaction_id, late FROM usage_event ORDER BY transaction_id")
        assert cursor.fetchall() == [("january", False), ("last-year", True), ("this-year", False)]


def test_events_in_two_months_go_to_two_partitions(fleet: Subscription, tenant: Tenant, ingest: Any) -> None:
    ingest([ev("m", ts="2026-03-31T23:59:59Z"), ev("a", ts="2026-04-01T00:00:00Z")])
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text, transaction_id FROM usage_event ORDER BY transaction_id")
        assert cursor.fetchall() == [("usage_event_2026_04", "a"), ("usage_event_2026_03", "m")]


def test_a_cloudevents_batch_made_by_the_sdk_is_accepted(fleet: Subscription, tenant: Tenant, make_client: Any) -> None:
    events = [
        CloudEvent(
            attributes={
                "id": f"ce-{i}",
                "source": "//fleet",
                "type": "data_mb",
                "subject": "B",
                "time": datetime(2026, 4, 16, 10, i, tzinfo=UTC),
                "specversion": "1.0",
                "datacontenttype": "application/json",
            },
            data={"mb": 250},
        )
        for i in range(3)
    ]
    batch = b"[" + b",".join(to_structured(e, JSONFormat()).body for e in events) + b"]"
    client = make_client(tenant, ApiKeyScope.INGEST)
    with time_machine.travel(NOW, tick=False):
        response = client.post("/api/v1/events", data=batch, content_type="application/cloudevents-batch+json")
        single = client.post(
            "/api/v1/events",
            data=to_structured(events[0], JSONFormat()).body,
            content_type="application/cloudevents+json",
        )
    assert response.status_code == 202, response.content
    assert response.json()["accepted"] == 3
    assert single.json()["results"] == [{"transaction_id": "ce-0", "status": "duplicate"}]
    assert [v for _, v in stored(tenant)] == [250, 250, 250]


def test_batch_limits_and_bad_bodies(fleet: Subscription, ingest: Any, make_client: Any, tenant: Tenant) -> None:
    too_many = ingest([ev(f"t{i}") for i in range(1001)])
    assert (too_many.status_code, too_many.json()["errors"][0]["code"]) == (422, "batch_too_large")
    client = make_client(tenant, ApiKeyScope.INGEST)
    assert client.post("/api/v1/events", data="{", content_type="application/json").status_code == 400
    assert client.post("/api/v1/events", data="x", content_type="text/plain").status_code == 415
    assert client.post("/api/v1/events", data='{"events": []}', content_type="application/json").status_code == 422


def test_rate_limit_answers_429_with_retry_after(fleet: Subscription, tenant: Tenant, make_client: Any) -> None:
    UsageSettings.objects.update_or_create(tenant=tenant, defaults={"rate_limit_per_second": 2})
    client = make_client(tenant, ApiKeyScope.INGEST)
    body = json.dumps({"events": [ev("r1")]})
    with time_machine.travel(NOW, tick=False):
        statuses = [client.post("/api/v1/events", data=body, content_type="application/json") for _ in range(3)]
    assert [r.status_code for r in statuses] == [202, 202, 429]
    assert statuses[2]["Retry-After"] == "1"
    assert statuses[2].json()["code"] == "rate_limited"


def test_a_read_key_cannot_ingest(fleet: Subscription, make_client: Any, tenant: Tenant) -> None:
    client = make_client(tenant, ApiKeyScope.READ)
    response = client.post("/api/v1/events", data=json.dumps({"events": [ev("t")]}), content_type="application/json")
    assert response.status_code == 403


def test_values_past_the_bound_are_rejected_one_by_one_and_the_rest_is_stored(
    fleet: Subscription, tenant: Tenant, ingest: Any
) -> None:
    # given: eleven values of 27 nines, whose sum overflowed the usage totals and lost the batch (500)
    huge = "9" * 27
    # when
    response = ingest([*(ev(f"h{i}", mb=huge) for i in range(11)), ev("ok")])
    # then
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 11)
    assert body["results"][0] == {
        "transaction_id": "h0",
        "status": "rejected",
        "reason": "value_out_of_range",
        "detail": "properties.mb is out of range: at most 1,000,000,000,000 in absolute value.",
    }
    assert stored(tenant) == [("ok", 100)]


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (str(MAX_EVENT_VALUE), "accepted"),  # 10^12
        ("1000000000001", "rejected"),
        ("1000000000000.0000000001", "rejected"),
        ("-1000000000001", "rejected"),
    ],
)
def test_the_event_value_bound(fleet: Subscription, ingest: Any, value: str, status: str) -> None:
    [result] = ingest([ev("x", mb=value)]).json()["results"]
    assert result["status"] == status
    if status == "rejected":
        assert result["reason"] == "value_out_of_range"


def test_an_event_nested_too_deep_is_rejected_alone(fleet: Subscription, tenant: Tenant, ingest: Any) -> None:
    # given: properties nested 300 levels deep, beside a plain event; the whole batch used to fail (500)
    deep: Any = 1
    for _ in range(300):
        deep = {"a": deep}
    # when
    response = ingest([ev("deep", mb=1, nested=deep), ev("plain")])
    # then
    assert response.status_code == 202, response.content
    assert response.json()["results"] == [
        {
            "transaction_id": "deep",
            "status": "rejected",
            "reason": "too_deep",
            "detail": "The event is nested deeper than 32 levels.",
        },
        {"transaction_id": "plain", "status": "accepted"},
    ]
    assert stored(tenant) == [("plain", 100)]
    # what is kept of the rejected event: its fields that are neither objects nor lists
    kept = RejectedEvent.objects.get(tenant=tenant, transaction_id="deep")
    assert kept.payload == {
        "transaction_id": "deep",
        "code": "data_mb",
        "device_id": "A",
        "timestamp": "2026-04-16T10:00:00Z",
    }
