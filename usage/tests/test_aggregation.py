"""Bill-time aggregation over the raw events: each aggregation, meter filters, local periods across
both DST changes of Europe/Paris and America/Los_Angeles, time bands and dimensions."""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing_platform.periods import Period, monthly_period_containing
from catalog.models import Meter
from subscriptions.models import Subscription
from subscriptions.periods import subscription_period_at
from subscriptions.services import subscription_create
from tenancy.actors import Actor
from tenancy.models import ApiKeyScope, Tenant
from usage.aggregation import AggregateRow, aggregate, aggregate_many
from usage.tests.factories import events_poster

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 4, 20, 12, 0, tzinfo=UTC)
ACTOR = Actor.system("tests")
# The Paris customer's periods (billing day 1): local midnights, CET in March, CEST in April.
MARCH = Period(datetime(2026, 2, 28, 23, 0, tzinfo=UTC), datetime(2026, 3, 31, 22, 0, tzinfo=UTC))
APRIL = Period(datetime(2026, 3, 31, 22, 0, tzinfo=UTC), datetime(2026, 4, 30, 22, 0, tzinfo=UTC))


def ev(tid: str, code: str, ts: str, sub: str = "dupont-fleet", **props: Any) -> dict[str, Any]:
    return {"transaction_id": tid, "code": code, "external_subscription_id": sub, "timestamp": ts, "properties": props}


@pytest.fixture
def ingest(make_client: Any, tenant: Tenant) -> Any:
    return events_poster(make_client(tenant, ApiKeyScope.INGEST), NOW)


def meter(tenant: Tenant, code: str) -> Meter:
    return Meter.objects.get(tenant=tenant, code=code)


def totals(tenant: Tenant, subscription: Subscription, code: str, period: Period) -> tuple[Decimal, int]:
    [row] = aggregate(subscription_ids=[subscription.pk], meter=meter(tenant, code), period=period)
    return row.quantity, row.event_count


def test_the_periods_used_below_are_the_customers_local_months(fleet: Subscription) -> None:
    assert subscription_period_at(fleet, at=NOW) == APRIL
    assert monthly_period_containing(datetime(2026, 3, 16, tzinfo=UTC), billing_day=1, tz="Europe/Paris") == MARCH


def test_each_aggregation_is_exact(fleet: Subscription, tenant: Tenant, ingest: Any) -> None:
    ingest(
        [
            # sum of mb
            ev("d1", "data_mb", "2026-04-02T10:00:00Z", mb=100.5),
            ev("d2", "data_mb", "2026-04-10T10:00:00Z", mb=250),
            ev("d3", "data_mb", "2026-04-19T10:00:00Z", mb="49.5"),
            ev("d-march", "data_mb", "2026-03-20T10:00:00Z", mb=999),
            # count
            *[ev(f"c{i}", "api_calls", f"2026-04-1{i}T08:00:00Z") for i in range(4)],
            ev("c-march", "api_calls", "2026-03-30T08:00:00Z"),
            # max of celsius
            ev("t1", "peak_temp", "2026-04-03T10:00:00Z", celsius=21.5),
            ev("t2", "peak_temp", "2026-04-04T10:00:00Z", celsius="38.25"),
            ev("t3", "peak_temp", "2026-04-05T10:00:00Z", celsius=-3),
            ev("t-march", "peak_temp", "2026-03-05T10:00:00Z", celsius=99),
            # distinct iccid
            ev("s1", "active_sims", "2026-04-03T10:00:00Z", iccid="89330001"),
            ev("s2", "active_sims", "2026-04-04T10:00:00Z", iccid="89330002"),
            ev("s3", "active_sims", "2026-04-05T10:00:00Z", iccid="89330001"),
            ev("s4", "active_sims", "2026-04-06T10:00:00Z", iccid="89330003"),
            ev("s-march", "active_sims", "2026-03-06T10:00:00Z", iccid="89330009"),
            # latest km by timestamp, whatever the order of arrival
            ev("o1", "odometer", "2026-04-05T10:00:00Z", km=1200),
            ev("o2", "odometer", "2026-04-15T10:00:00Z", km=1500),
            ev("o3", "odometer", "2026-04-10T10:00:00Z", km=1400),
            # filtered count: only quality == good
            ev("g1", "gps_fixes", "2026-04-05T10:00:00Z", quality="good"),
            ev("g2", "gps_fixes", "2026-04-06T10:00:00Z", quality="good", hdop=1),
            ev("g3", "gps_fixes", "2026-04-07T10:00:00Z", quality="bad"),
            ev("g4", "gps_fixes", "2026-04-08T10:00:00Z"),
        ]
    )
    ingest([ev("o4", "odometer", "2026-04-12T10:00:00Z", km=9999)])  # arrives last, but is not the latest
    assert totals(tenant, fleet, "data_mb", APRIL) == (Decimal("400"), 3)
    assert totals(tenant, fleet, "api_calls", APRIL) == (Decimal(4), 4)
    assert totals(tenant, fleet, "peak_temp", APRIL) == (Decimal("38.25"), 3)
    assert totals(tenant, fleet, "active_sims", APRIL) == (Decimal(3), 4)
    assert totals(tenant, fleet, "odometer", APRIL) == (Decimal(1500), 4)
    assert totals(tenant, fleet, "gps_fixes", APRIL) == (Decimal(2), 2)
    # March holds only the March events
    assert totals(tenant, fleet, "data_mb", MARCH) == (Decimal(999), 1)
    assert totals(tenant, fleet, "peak_temp", MARCH) == (Decimal(99), 1)
    assert totals(tenant, fleet, "active_sims", MARCH) == (Decimal(1), 1)
    # an empty period aggregates to one zero row
    assert totals(tenant, fleet, "odometer", MARCH) == (Decimal(0), 0)


def test_aggregate_many_runs_one_statement_per_aggregation_kind(
    fleet: Subscription, tenant: Tenant, ingest: Any
) -> None:
    other = subscription_create(
        tenant=tenant,
        actor=ACTOR,
        at=timezone.now(),
        external_id="dupont-2",
        customer=fleet.customer,
        plan=fleet.plan,
        signed_at=timezone.now(),
        starts_on=date(2026, 1, 1),
    )
    ingest(
        [
            ev("a1", "data_mb", "2026-04-02T10:00:00Z", mb=10),
            ev("a2", "data_mb", "2026-04-02T11:00:00Z", "dupont-2", mb=7),
            ev("a3", "api_calls", "2026-04-02T10:00:00Z", "dupont-2"),
            ev("a4", "peak_temp", "2026-04-02T10:00:00Z", celsius=30),
            ev("a5", "active_sims", "2026-04-02T10:00:00Z", "dupont-2", iccid="x"),
            ev("a6", "odometer", "2026-04-02T10:00:00Z", km=5),
            ev("a7", "gps_fixes", "2026-04-02T10:00:00Z", quality="good"),
            ev("a8", "gps_fixes", "2026-04-02T10:00:00Z", quality="bad"),
        ]
    )
    meters = list(Meter.objects.filter(tenant=tenant))
    assert len({m.aggregation for m in meters}) == 5
    with CaptureQueriesContext(connection) as queries:
        many = aggregate_many(subscription_ids=[fleet.pk, other.pk], meters=meters, period=APRIL)
    # one per kind on the events; a period older than 62 days also looks for archived months
    assert len([q for q in queries if "usage_usagearchive" not in q["sql"]]) == 5
    got = {
        (s, m.code): (rows[0].quantity, rows[0].event_count)
        for m in meters
        for (s, mid), rows in many.items()
        if mid == m.pk
    }
    assert got == {
        (fleet.pk, "data_mb"): (Decimal(10), 1),
        (other.pk, "data_mb"): (Decimal(7), 1),
        (fleet.pk, "api_calls"): (Decimal(0), 0),
        (other.pk, "api_calls"): (Decimal(1), 1),
        (fleet.pk, "peak_temp"): (Decimal(30), 1),
        (other.pk, "peak_temp"): (Decimal(0), 0),
        (fleet.pk, "active_sims"): (Decimal(0), 0),
        (other.pk, "active_sims"): (Decimal(1), 1),
        (fleet.pk, "odometer"): (Decimal(5), 1),
        (other.pk, "odometer"): (Decimal(0), 0),
        (fleet.pk, "gps_fixes"): (Decimal(1), 1),
        (other.pk, "gps_fixes"): (Decimal(0), 0),
    }
    # each pair equals aggregate() for that subscription and meter alone
    for (sub, meter_id), rows in many.items():
        one = aggregate(subscription_ids=[sub], meter=next(m for m in meters if m.pk == meter_id), period=APRIL)
        assert rows == one


def test_an_event_at_2230z_on_31_march_is_april_usage_in_paris(
    fleet: Subscription, tenant: Tenant, ingest: Any
) -> None:
    # billing.md: 2026-03-31T22:30:00Z is 1 April 00:30 in Paris
    ingest(
        [
            ev("last-march", "data_mb", "2026-03-31T21:59:59Z", mb=1),
            ev("midnight", "data_mb", "2026-03-31T22:00:00Z", mb=10),
            ev("note", "data_mb", "2026-03-31T22:30:00Z", mb=100),
        ]
    )
    assert totals(tenant, fleet, "data_mb", MARCH) == (Decimal(1), 1)
    assert totals(tenant, fleet, "data_mb", APRIL) == (Decimal(110), 2)
    # a UTC month would have put all three in March
    utc_march = Period(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    assert totals(tenant, fleet, "data_mb", utc_march) == (Decimal(111), 3)


# (zone, the DST day, its local midnight in UTC, the next local midnight in UTC)
DST_DAYS = [
    pytest.param("Europe/Paris", date(2026, 3, 29), "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", id="paris-spring"),
    pytest.param("Europe/Paris", date(2026, 10, 25), "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z", id="paris-autumn"),
    pytest.param(
        "America/Los_Angeles", date(2026, 3, 8), "2026-03-08T08:00:00Z", "2026-03-09T07:00:00Z", id="la-spring"
    ),
    pytest.param(
        "America/Los_Angeles", date(2026, 11, 1), "2026-11-01T07:00:00Z", "2026-11-02T08:00:00Z", id="la-autumn"
    ),
]


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_time_band_edges_08_00_is_peak_and_20_00_is_off_peak(fleet: Subscription, tenant: Tenant, ingest: Any) -> None:
    # 14 April in Paris is CEST (UTC+2); 16 March is CET (UTC+1)
    ingest(
        [
            ev("0759", "data_mb", "2026-04-14T05:59:59Z", mb=1),
            ev("0800", "data_mb", "2026-04-14T06:00:00Z", mb=10),
            ev("1959", "data_mb", "2026-04-14T17:59:59Z", mb=100),
            ev("2000", "data_mb", "2026-04-14T18:00:00Z", mb=1000),
            ev("winter-0800", "data_mb", "2026-03-16T07:00:00Z", mb=5),
            ev("winter-0759", "data_mb", "2026-03-16T06:59:59Z", mb=7),
        ]
    )
    data_mb = meter(tenant, "data_mb")
    rows = aggregate(subscription_ids=[fleet.pk], meter=data_mb, period=APRIL, by_time_band=True)
    assert rows == [
        AggregateRow({}, "off_peak", Decimal(1001), 2),
        AggregateRow({}, "peak", Decimal(110), 2),
    ]
    march = aggregate(subscription_ids=[fleet.pk], meter=data_mb, period=MARCH, by_time_band=True)
    assert [(r.time_band, r.quantity) for r in march] == [("off_peak", Decimal(7)), ("peak", Decimal(5))]
    many = aggregate_many(subscription_ids=[fleet.pk], meters=[data_mb], period=APRIL, by_time_band=True)
    assert many[(fleet.pk, data_mb.pk)] == rows


def test_grouping_by_dimensions(fleet: Subscription, tenant: Tenant, ingest: Any) -> None:
    # pricing.md's matrix example, plus one event without a region
    ingest(
        [
            ev("te", "data_mb", "2026-04-02T10:00:00Z", mb=10000, device_type="tracker", region="EU"),
            ev("tu", "data_mb", "2026-04-02T10:00:00Z", mb=4000, device_type="tracker", region="US"),
            ev("tu2", "data_mb", "2026-04-02T22:00:00Z", mb=1000, device_type="tracker", region="US"),
            ev("ce", "data_mb", "2026-04-03T10:00:00Z", mb=2000, device_type="camera", region="EU"),
            ev("sa", "data_mb", "2026-04-04T10:00:00Z", mb=1000, device_type="sensor", region="APAC", extra="x"),
            ev("t-", "data_mb", "2026-04-05T10:00:00Z", mb=7, device_type="tracker"),
        ]
    )
    data_mb = meter(tenant, "data_mb")
    rows = aggregate(subscription_ids=[fleet.pk], meter=data_mb, period=APRIL, group_by_dimensions=True)
    assert rows == [
        AggregateRow({"device_type": "camera", "region": "EU"}, "", Decimal(2000), 1),
        AggregateRow({"device_type": "sensor", "region": "APAC"}, "", Decimal(1000), 1),
        AggregateRow({"device_type": "tracker", "region": "EU"}, "", Decimal(10000), 1),
        AggregateRow({"device_type": "tracker", "region": "US"}, "", Decimal(5000), 2),
        AggregateRow({"device_type": "tracker"}, "", Decimal(7), 1),
    ]
    # one dimension of the meter only, and dimensions with time band
    by_type = aggregate(subscription_ids=[fleet.pk], meter=data_mb, period=APRIL, group_by_dimensions=["device_type"])
    assert [(r.dimensions, r.quantity) for r in by_type] == [
        ({"device_type": "camera"}, Decimal(2000)),
        ({"device_type": "sensor"}, Decimal(1000)),
        ({"device_type": "tracker"}, Decimal(15007)),
    ]
    both = aggregate(
        subscription_ids=[fleet.pk], meter=data_mb, period=APRIL, group_by_dimensions=True, by_time_band=True
    )
    us = [(r.time_band, r.quantity) for r in both if r.dimensions == {"device_type": "tracker", "region": "US"}]
    assert us == [("off_peak", Decimal(1000)), ("peak", Decimal(4000))]  # 22:00Z is midnight in Paris
    many = aggregate_many(subscription_ids=[fleet.pk], meters=[data_mb], period=APRIL, group_by_dimensions=True)
    assert many[(fleet.pk, data_mb.pk)] == rows


def test_values_are_bound_parameters_never_sql(fleet: Subscription, tenant: Tenant, ingest: Any) -> None:
    ingest([ev("q1", "data_mb", "2026-04-02T10:00:00Z", mb=1, device_type="x'); DROP TABLE usage_event; --")])
    data_mb = meter(tenant, "data_mb")
    rows = aggregate(
        subscription_ids=[fleet.pk], meter=data_mb, period=APRIL, group_by_dimensions=["device_type", "it's"]
    )
    assert rows == [AggregateRow({"device_type": "x'); DROP TABLE usage_event; --"}, "", Decimal(1), 1)]
    assert totals(tenant, fleet, "data_mb", APRIL) == (Decimal(1), 1)


def test_the_period_prunes_the_monthly_partitions(fleet: Subscription, tenant: Tenant, ingest: Any) -> None:
    ingest([ev("m", "data_mb", "2026-03-10T10:00:00Z", mb=1), ev("a", "data_mb", "2026-04-10T10:00:00Z", mb=2)])
    inside_april = Period(datetime(2026, 4, 2, tzinfo=UTC), datetime(2026, 4, 20, tzinfo=UTC))
    data_mb = meter(tenant, "data_mb")
    with CaptureQueriesContext(connection) as queries:
        [row] = aggregate(subscription_ids=[fleet.pk], meter=data_mb, period=inside_april)
    assert row.quantity == 2
    [query] = [q for q in queries.captured_queries if "usage_usagearchive" not in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + query["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "usage_event_2026_04" in plan
    assert "usage_event_2026_03" not in plan
