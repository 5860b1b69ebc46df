"""One batch as the ingestion writes it: duplicates within the batch and against stored events,
rejections beside accepted events, two months, and rollups that equal a recomputation from the
raw events; the customers a batch changed; device history read only when an event needs it."""

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.tests.factories import dupont
from subscriptions.models import Subscription
from subscriptions.tests.factories import signed_subscription
from tenancy.models import ApiKeyScope, Tenant
from usage.ingest import events_ingest

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 4, 20, 12, 0, tzinfo=UTC)


def ev(tid: str, ts: str, device: str = "A", code: str = "data_mb", **props: Any) -> dict[str, Any]:
    return {"transaction_id": tid, "code": code, "device_id": device, "timestamp": ts, "properties": props}


def rows(sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def rollup_rows(sql: str) -> list[tuple[Any, ...]]:
    """Rollup rows by bucket, dimensions (as the JSON text jsonb writes) and time band."""
    return sorted(rows(sql), key=lambda row: (row[0], str(row[1]), row[2]))


# The 15-minute rollups recomputed from the raw events of data_mb (dimensions device_type, region).
RECOMPUTED_QUARTERS = """
SELECT date_bin('15 minutes', e."timestamp", TIMESTAMPTZ '2000-01-01 00:00+00') AS bucket,
       jsonb_strip_nulls(jsonb_build_object('device_type', e.properties ->> 'device_type',
                                            'region', e.properties ->> 'region')) AS dims,
       e.time_band, count(*), sum(e.value), max(e.value), max(e."timestamp"),
       (array_agg(e.value ORDER BY e."timestamp" DESC))[1]
FROM usage_event e JOIN catalog_meter m ON m.id = e.meter_id AND m.code = 'data_mb'
GROUP BY 1, 2, 3
"""
STORED_QUARTERS = """
SELECT r.bucket, r.dimensions, r.time_band, r.event_count, r.value_sum, r.value_max, r.latest_at, r.latest_value
FROM usage_usagerollup r JOIN catalog_meter m ON m.id = r.meter_id AND m.code = 'data_mb'
"""
RECOMPUTED_DAYS = """
SELECT date_bin('1 day', e."timestamp", TIMESTAMPTZ '2000-01-01 00:00+00') AS day, count(*), sum(e.value)
FROM usage_event e JOIN catalog_meter m ON m.id = e.meter_id AND m.code = 'data_mb'
GROUP BY 1 ORDER BY 1
"""
STORED_DAYS = """
SELECT r.day, sum(r.event_count), sum(r.value_sum)
FROM usage_usagedailyrollup r JOIN catalog_meter m ON m.id = r.meter_id AND m.code = 'data_mb'
GROUP BY 1 ORDER BY 1
"""


def test_one_batch_with_duplicates_rejections_and_two_months(
    fleet: Subscription, tenant: Tenant, make_client: Any
) -> None:
    client = make_client(tenant, ApiKeyScope.INGEST)

    def post(events: list[dict[str, Any]]) -> dict[str, Any]:
        with time_machine.travel(NOW, tick=False):
            response = client.post(
                "/api/v1/events", data=json.dumps({"events": events}), content_type="application/json"
            )
        assert response.status_code == 202
        return dict(response.json())

    # given: one event stored by an earlier batch
    post([ev("t1", "2026-04-16T10:00:00Z", mb=100, device_type="tracker", region="EU")])
    # when: a batch replays it, names n1 twice, has two bad events and reaches back into March
    body = post(
        [
            ev("t1", "2026-04-16T10:00:00Z", mb=100, device_type="tracker", region="EU"),
            ev("n1", "2026-04-16T10:05:00Z", mb=40, device_type="tracker", region="EU"),
            ev("n2", "2026-03-31T21:30:00Z", device="B", mb=7),  # 23:30 in Paris: March, late
            ev("n1", "2026-04-16T10:06:00Z", mb=999, device_type="tracker", region="EU"),
            ev("bad", "2026-04-16T10:00:00Z", code="no_such_meter", mb=1),
            ev("neg", "2026-04-16T10:00:00Z", mb=-5),
            ev("n3", "2026-04-16T10:14:59Z", device="C", mb=3, region="US"),
        ]
    )
    # then: one outcome per event, in order
    assert body["results"] == [
        {"transaction_id": "t1", "status": "duplicate"},
        {"transaction_id": "n1", "status": "accepted"},
        {"transaction_id": "n2", "status": "accepted"},
        {"transaction_id": "n1", "status": "duplicate"},
        {
            "transaction_id": "bad",
            "status": "rejected",
            "reason": "unknown_meter",
            "detail": "No meter with code no_such_meter.",
        },
        {
            "transaction_id": "neg",
            "status": "rejected",
            "reason": "negative_value",
            "detail": "properties.mb is negative; meter data_mb does not accept negative values.",
        },
        {"transaction_id": "n3", "status": "accepted"},
    ]
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (3, 2, 2)
    # the first version of each id is stored, each in its month's partition, March's flagged late
    assert rows(
        "SELECT tableoid::regclass::text, transaction_id, value, late, received_at FROM usage_event "
        "ORDER BY transaction_id"
    ) == [
        ("usage_event_2026_04", "n1", Decimal("40"), False, NOW),
        ("usage_event_2026_03", "n2", Decimal("7"), True, NOW),
        ("usage_event_2026_04", "n3", Decimal("3"), False, NOW),
        ("usage_event_2026_04", "t1", Decimal("100"), False, NOW),
    ]
    assert rows("SELECT transaction_id FROM usage_event_key ORDER BY 1") == [("n1",), ("n2",), ("n3",), ("t1",)]
    assert rows("SELECT transaction_id, reason FROM usage_rejectedevent ORDER BY 1") == [
        ("bad", "unknown_meter"),
        ("neg", "negative_value"),
    ]
    # the 15-minute rollups: t1 and n1 share a row (12:00 in Paris is peak), n3 and n2 have their own
    quarters = rollup_rows(STORED_QUARTERS)
    april, march = datetime(2026, 4, 16, 10, 0, tzinfo=UTC), datetime(2026, 3, 31, 21, 30, tzinfo=UTC)
    assert [
        (bucket, json.loads(dims) if isinstance(dims, str) else dims, *rest) for bucket, dims, *rest in quarters
    ] == [
        (march, {}, "off_peak", 1, Decimal("7"), Decimal("7"), march, Decimal("7")),
        (
            april,
            {"device_type": "tracker", "region": "EU"},
            "peak",
            2,
            Decimal("140"),
            Decimal("100"),
            datetime(2026, 4, 16, 10, 5, tzinfo=UTC),
            Decimal("40"),
        ),
        (
            april,
            {"region": "US"},
            "peak",
            1,
            Decimal("3"),
            Decimal("3"),
            datetime(2026, 4, 16, 10, 14, 59, tzinfo=UTC),
            Decimal("3"),
        ),
    ]
    # and they are exactly what the raw events give, as are the daily ones
    assert quarters == rollup_rows(RECOMPUTED_QUARTERS)
    assert (
        rows(STORED_DAYS)
        == rows(RECOMPUTED_DAYS)
        == [
            (datetime(2026, 3, 31, tzinfo=UTC), 1, Decimal("7")),
            (datetime(2026, 4, 16, tzinfo=UTC), 3, Decimal("143")),
        ]
    )


def test_a_batch_reports_the_customers_whose_usage_it_changed(fleet: Subscription, tenant: Tenant) -> None:
    other = signed_subscription(
        tenant,
        customer=dupont(tenant, external_id="martin", name="Martin"),
        plan=fleet.plan,
        external_id="martin-fleet",
        devices=("M1",),
    )
    both: list[dict[str, Any]] = [
        {"transaction_id": tid, "code": "data_mb", "external_subscription_id": sub, "timestamp": "2026-04-16T10:00:00Z"}
        | {"properties": {"mb": mb}}
        for tid, sub, mb in (("a1", "dupont-fleet", 1), ("b1", "martin-fleet", 2))
    ]
    first = events_ingest(tenant=tenant, events=both, received_at=NOW)
    assert [o.status for o in first.results] == ["accepted", "accepted"]
    assert first.customer_ids == {fleet.customer_id, other.customer_id}
    # a replay stores nothing: no customer's usage changed; a rejected event changes none either
    replay = events_ingest(tenant=tenant, events=[*both, ev("x", "2026-04-16T10:00:00Z", code="nope")], received_at=NOW)
    assert [o.status for o in replay.results] == ["duplicate", "duplicate", "rejected"]
    assert replay.customer_ids == frozenset()


def test_device_history_is_read_only_for_events_lacking_a_device_dimension(fleet: Subscription, tenant: Tenant) -> None:
    complete = [ev("c%d" % i, "2026-04-16T10:00:00Z", mb=i, device_type="tracker", region="EU") for i in range(3)]
    with CaptureQueriesContext(connection) as with_dimensions:
        result = events_ingest(tenant=tenant, events=complete, received_at=NOW)
    assert [o.status for o in result.results] == ["accepted"] * 3
    history = [q["sql"] for q in with_dimensions.captured_queries if '"added_at"' in q["sql"]]
    assert history == []
    with CaptureQueriesContext(connection) as without:
        result = events_ingest(tenant=tenant, events=[ev("m1", "2026-04-16T10:00:00Z", mb=1)], received_at=NOW)
    assert [o.status for o in result.results] == ["accepted"]
    assert len([q for q in without.captured_queries if '"added_at"' in q["sql"]]) == 1


def test_an_event_whose_code_is_no_string_is_rejected_alone(fleet: Subscription, tenant: Tenant) -> None:
    # The meter's device dimensions make the batch look for events lacking them before validating:
    # a code that is a list or an object must not stop the batch there; it is rejected on its own.
    batch = [
        ev("ok1", "2026-04-16T10:00:00Z", mb=5, device_type="tracker", region="EU"),
        {"transaction_id": "bad1", "code": ["data_mb"], "device_id": "A", "timestamp": "2026-04-16T10:00:00Z"},
        {"transaction_id": "bad2", "code": {"x": 1}, "device_id": "A", "timestamp": "2026-04-16T10:00:00Z"},
        ev("ok2", "2026-04-16T11:00:00Z", mb=7, device_type="tracker", region="EU"),
    ]
    result = events_ingest(tenant=tenant, events=batch, received_at=NOW)
    assert [o.status for o in result.results] == ["accepted", "rejected", "rejected", "accepted"]
    assert rows("SELECT count(*), sum(value) FROM usage_event") == [(2, Decimal("12"))]
