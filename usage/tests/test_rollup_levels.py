"""Rollups at two levels: the daily rows always equal the sum of their day's 15-minute rows, and
``rollup_groups`` reads whole UTC days from the daily rows and the ragged ends of a window from the
15-minute rows with exactly the result of reading the 15-minute rows alone: for local midnights
on half and quarter hours (Asia/Kolkata +05:30, Asia/Kathmandu +05:45, Pacific/Chatham +12:45),
for max and latest across the levels, late events and replayed batches."""

import json
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing_platform.periods import Period, local_midnight
from catalog.models import Meter
from customers.services import customer_create
from subscriptions.models import Subscription
from subscriptions.tests.factories import signed_subscription
from tenancy.actors import Actor
from tenancy.models import Tenant
from usage.aggregation import aggregate
from usage.ingest import daily_rollups_rebuild, events_ingest
from usage.models import UsageDailyRollup, UsageRollup
from usage.selectors import RollupGroup, _pieces, rollup_groups
from usage.tests.factories import metered_plan

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")
KOLKATA, KATHMANDU = "Asia/Kolkata", "Asia/Kathmandu"
# April 2026 between local midnights: 2026-03-31T18:30Z to 2026-04-30T18:30Z in Kolkata.
KOLKATA_APRIL = Period(local_midnight(date(2026, 4, 1), KOLKATA), local_midnight(date(2026, 5, 1), KOLKATA))
KATHMANDU_APRIL = Period(local_midnight(date(2026, 4, 1), KATHMANDU), local_midnight(date(2026, 5, 1), KATHMANDU))
# Values go below zero too (the rollups must add them up exactly): every valued meter accepts them.
METERS: dict[str, dict[str, Any]] = {
    "data_mb": {
        "aggregation": "sum",
        "field": "mb",
        "dimensions": ["region"],
        "time_bands": {"peak": ["08:00", "20:00"]},
        "accepts_negative": True,
    },
    "api_calls": {"aggregation": "count"},
    "peak_temp": {"aggregation": "max", "field": "celsius", "accepts_negative": True},
    "odometer": {"aggregation": "latest", "field": "km", "accepts_negative": True},
}
FIELDS = {"data_mb": "mb", "peak_temp": "celsius", "odometer": "km"}

# The 15-minute rollups alone, as rollup_groups read them before the daily level: the reference.
QUARTERS_ONLY_SQL = """
SELECT r.subscription_id, r.meter_id, r.dimensions, r.time_band,
       sum(r.event_count), sum(r.value_sum), max(r.value_max), max(r.latest_at),
       (array_agg(r.latest_value ORDER BY r.latest_at DESC NULLS LAST))[1]
FROM usage_usagerollup r
JOIN unnest(%(subscriptions)s::uuid[], %(starts)s::timestamptz[], %(ends)s::timestamptz[])
    AS w(subscription_id, starts, ends) ON w.subscription_id = r.subscription_id
WHERE r.tenant_id = %(tenant)s AND r.meter_id = ANY(%(meters)s::uuid[])
  AND r.bucket >= w.starts AND r.bucket < w.ends
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3, 4
"""

# The daily rows as they must be: the 15-minute rows of each UTC day taken together.
DAILY_FROM_QUARTERS_SQL = """
SELECT subscription_id, meter_id, date_bin('1 day', bucket, TIMESTAMPTZ '2000-01-01 00:00+00'), dimensions,
       time_band, sum(event_count), sum(value_sum), max(value_max), max(latest_at),
       (array_agg(latest_value ORDER BY latest_at DESC NULLS LAST))[1]
FROM usage_usagerollup GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
"""
DAILY_SQL = """
SELECT subscription_id, meter_id, day, dimensions, time_band, event_count, value_sum, value_max, latest_at,
       latest_value
FROM usage_usagedailyrollup ORDER BY 1, 2, 3, 4, 5
"""


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.fixture
def plan(tenant: Tenant) -> Any:
    return metered_plan(tenant, METERS, unit_amount="1")


def subscribe(tenant: Tenant, plan: Any, name: str, tz: str) -> Subscription:
    now = timezone.now()
    customer = customer_create(
        tenant=tenant,
        actor=ACTOR,
        at=now,
        external_id=name,
        name=name,
        email=f"{name}@example.test",
        country="IN" if tz == KOLKATA else "NP",
        currency="EUR",
        timezone=tz,
        billing_day=1,
    )
    return signed_subscription(
        tenant, customer=customer, plan=plan, external_id=f"{name}-fleet", devices=(), signed_at=now
    )


@pytest.fixture
def kolkata(tenant: Tenant, plan: Any) -> Subscription:
    return subscribe(tenant, plan, "mumbai-logistics", KOLKATA)


@pytest.fixture
def kathmandu(tenant: Tenant, plan: Any) -> Subscription:
    return subscribe(tenant, plan, "himalaya-rides", KATHMANDU)


def ev(tid: str, code: str, ts: str | datetime, sub: Subscription, value: Any = None, **props: Any) -> dict[str, Any]:
    if value is not None:
        props[FIELDS[code]] = value
    stamp = ts if isinstance(ts, str) else ts.isoformat()
    return {
        "transaction_id": tid,
        "code": code,
        "external_subscription_id": sub.external_id,
        "timestamp": stamp,
        "properties": props,
    }


def ingest(tenant: Tenant, events: Sequence[dict[str, Any]], received_at: datetime) -> dict[str, int]:
    result = events_ingest(tenant=tenant, events=events, received_at=received_at)
    assert result.count("rejected") == 0, [o for o in result.results if o.status == "rejected"]
    return {status: result.count(status) for status in ("accepted", "duplicate")}


def meter_ids(tenant: Tenant) -> list[str]:
    return sorted(str(pk) for pk in Meter.objects.filter(tenant=tenant).values_list("pk", flat=True))


def reference(tenant: Tenant, windows: Sequence[tuple[Any, Period]]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(
            QUARTERS_ONLY_SQL,
            {
                "tenant": tenant.pk,
                "subscriptions": [str(s) for s, _ in windows],
                "starts": [p.start for _, p in windows],
                "ends": [p.end for _, p in windows],
                "meters": meter_ids(tenant),
            },
        )
        return [
            (sub, meter, json.loads(dims), band, int(n), value_sum, value_max, latest_at, latest_value)
            for sub, meter, dims, band, n, value_sum, value_max, latest_at, latest_value in cursor.fetchall()
        ]


def as_rows(groups: Iterable[RollupGroup]) -> list[tuple[Any, ...]]:
    return [
        (
            g.subscription_id,
            g.meter_id,
            g.dimensions,
            g.time_band,
            g.event_count,
            g.value_sum,
            g.value_max,
            g.latest_at,
            g.latest_value,
        )
        for g in groups
    ]


def assert_daily_equals_quarters() -> None:
    with connection.cursor() as cursor:
        cursor.execute(DAILY_FROM_QUARTERS_SQL)
        expected = cursor.fetchall()
        cursor.execute(DAILY_SQL)
        assert cursor.fetchall() == expected
    assert expected, "no rollups at all: the test proves nothing"


def combined(groups: Sequence[RollupGroup]) -> dict[str, Any]:
    """The groups of one subscription and meter taken together, as the current usage combines them."""
    dated = [g for g in groups if g.latest_at is not None]
    latest = max(dated, key=lambda g: g.latest_at or datetime.min.replace(tzinfo=UTC), default=None)
    return {
        "count": sum(g.event_count for g in groups),
        "sum": sum((g.value_sum for g in groups), Decimal(0)),
        "max": max((g.value_max for g in groups if g.value_max is not None), default=None),
        "latest_at": latest.latest_at if latest else None,
        "latest": latest.latest_value if latest else None,
    }


def by_meter(tenant: Tenant, groups: Iterable[RollupGroup]) -> dict[tuple[Any, str], list[RollupGroup]]:
    codes = {m.pk: m.code for m in Meter.objects.filter(tenant=tenant)}
    found: dict[tuple[Any, str], list[RollupGroup]] = defaultdict(list)
    for g in groups:
        found[(g.subscription_id, codes[g.meter_id])].append(g)
    return found


# --- splitting a window -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "edges", "days"),
    [
        pytest.param(
            "2026-03-31T18:30Z",
            "2026-04-30T18:30Z",
            [("2026-03-31T18:30Z", "2026-04-01T00:00Z"), ("2026-04-30T00:00Z", "2026-04-30T18:30Z")],
            ("2026-04-01T00:00Z", "2026-04-30T00:00Z"),
            id="kolkata-month",
        ),
        pytest.param(
            "2026-03-31T18:15Z",
            "2026-04-30T18:15Z",
            [("2026-03-31T18:15Z", "2026-04-01T00:00Z"), ("2026-04-30T00:00Z", "2026-04-30T18:15Z")],
            ("2026-04-01T00:00Z", "2026-04-30T00:00Z"),
            id="kathmandu-month",
        ),
        pytest.param(
            "2026-03-31T22:00Z",
            "2026-04-30T22:00Z",
            [("2026-03-31T22:00Z", "2026-04-01T00:00Z"), ("2026-04-30T00:00Z", "2026-04-30T22:00Z")],
            ("2026-04-01T00:00Z", "2026-04-30T00:00Z"),
            id="paris-month",
        ),
        pytest.param(
            "2026-04-01T00:00Z", "2026-05-01T00:00Z", [], ("2026-04-01T00:00Z", "2026-05-01T00:00Z"), id="utc-month"
        ),
        pytest.param(
            "2026-04-01T00:00Z",
            "2026-04-10T05:45Z",
            [("2026-04-10T00:00Z", "2026-04-10T05:45Z")],
            ("2026-04-01T00:00Z", "2026-04-10T00:00Z"),
            id="utc-start",
        ),
        pytest.param(
            "2026-04-10T18:30Z", "2026-04-11T18:30Z", [("2026-04-10T18:30Z", "2026-04-11T18:30Z")], None, id="one-day"
        ),
        pytest.param(
            "2026-04-10T18:30Z",
            "2026-04-12T18:30Z",
            [("2026-04-10T18:30Z", "2026-04-11T00:00Z"), ("2026-04-12T00:00Z", "2026-04-12T18:30Z")],
            ("2026-04-11T00:00Z", "2026-04-12T00:00Z"),
            id="two-days",
        ),
        pytest.param(
            "2026-04-10T00:00Z", "2026-04-10T23:45Z", [("2026-04-10T00:00Z", "2026-04-10T23:45Z")], None, id="no-end"
        ),
        pytest.param(
            "2026-04-01T03:30+05:30",
            "2026-04-03T00:00+00:00",
            [("2026-03-31T22:00Z", "2026-04-01T00:00Z")],
            ("2026-04-01T00:00Z", "2026-04-03T00:00Z"),
            id="bounds-in-any-zone",
        ),
    ],
)
def test_a_window_is_its_whole_utc_days_and_its_ragged_ends(
    start: str, end: str, edges: list[tuple[str, str]], days: tuple[str, str] | None
) -> None:
    got_edges, got_days = _pieces(utc(start), utc(end))
    assert got_edges == [(utc(a), utc(b)) for a, b in edges]
    assert got_days == (None if days is None else (utc(days[0]), utc(days[1])))
    # Together the pieces are the window, without gap or overlap.
    pieces = sorted([*got_edges, *([got_days] if got_days else [])])
    assert pieces[0][0] == utc(start)
    assert pieces[-1][1] == utc(end)
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:], strict=False))


# --- exact sums over local midnights on half and quarter hours -----------------------------------


def test_kolkata_month_counts_the_ragged_edges_and_the_whole_days_once(tenant: Tenant, kolkata: Subscription) -> None:
    k = kolkata
    events = [
        # 1 April in Kolkata starts at 2026-03-31T18:30Z: one second earlier is March.
        ev("before", "data_mb", "2026-03-31T18:29:59Z", k, 1000, region="EU"),
        ev("start", "data_mb", "2026-03-31T18:30:00Z", k, 1, region="EU"),  # the start edge, 15-minute rows
        ev("edge-1", "data_mb", "2026-03-31T23:59:59.999Z", k, 2, region="EU"),
        ev("day-1", "data_mb", "2026-04-01T00:00:00Z", k, 4, region="EU"),  # whole UTC days, daily rows
        ev("day-2", "data_mb", "2026-04-15T12:34:56Z", k, 8, region="US"),
        ev("day-3", "data_mb", "2026-04-29T23:59:59Z", k, 16),
        ev("edge-2", "data_mb", "2026-04-30T00:00:00Z", k, 32, region="US"),  # the end edge
        ev("last", "data_mb", "2026-04-30T18:29:59Z", k, 64, region="EU"),
        ev("after", "data_mb", "2026-04-30T18:30:00Z", k, 2000, region="EU"),  # 1 May in Kolkata
        ev("c-before", "api_calls", "2026-03-31T18:15:00Z", k),
        ev("c-edge", "api_calls", "2026-03-31T18:45:00Z", k),
        ev("c-day", "api_calls", "2026-04-02T10:00:00Z", k),
        ev("c-end", "api_calls", "2026-04-30T18:15:00Z", k),
        ev("c-after", "api_calls", "2026-04-30T18:45:00Z", k),
    ]
    assert ingest(tenant, events, received_at=utc("2026-05-02T00:00Z"))["accepted"] == len(events)

    groups = rollup_groups(tenant=tenant, windows=[(k.pk, KOLKATA_APRIL)], meter_ids=meter_ids(tenant))

    assert as_rows(groups) == reference(tenant, [(k.pk, KOLKATA_APRIL)])
    found = by_meter(tenant, groups)
    assert combined(found[(k.pk, "data_mb")])["sum"] == 1 + 2 + 4 + 8 + 16 + 32 + 64
    assert combined(found[(k.pk, "data_mb")])["count"] == 7
    assert combined(found[(k.pk, "api_calls")])["count"] == 3
    for code in ("data_mb", "api_calls"):
        [raw] = aggregate(
            subscription_ids=[k.pk], meter=Meter.objects.get(tenant=tenant, code=code), period=KOLKATA_APRIL
        )
        assert (raw.quantity, raw.event_count) == (
            combined(found[(k.pk, code)])["sum" if code == "data_mb" else "count"],
            combined(found[(k.pk, code)])["count"],
        )
    # The edges really were read from the 15-minute rows and the middle from the daily ones.
    assert UsageDailyRollup.objects.filter(subscription=k, day=utc("2026-03-31T00:00Z")).exists()
    assert UsageRollup.objects.filter(subscription=k, bucket=utc("2026-03-31T18:30Z")).exists()


def test_max_and_latest_are_taken_across_the_levels(
    tenant: Tenant, kolkata: Subscription, kathmandu: Subscription
) -> None:
    k, n = kolkata, kathmandu
    events = [
        # Kolkata: the highest temperature in the start edge, the latest reading in the end edge;
        # higher and later ones just outside the window must not count.
        ev("k-t0", "peak_temp", "2026-03-31T18:29:00Z", k, 99),
        ev("k-t1", "peak_temp", "2026-03-31T20:00:00Z", k, 45.5),
        ev("k-t2", "peak_temp", "2026-04-10T12:00:00Z", k, 30),
        ev("k-t3", "peak_temp", "2026-04-30T17:00:00Z", k, 40),
        ev("k-o1", "odometer", "2026-04-01T00:00:00Z", k, 900),
        ev("k-o2", "odometer", "2026-04-29T23:59:59Z", k, 800),
        ev("k-o3", "odometer", "2026-04-30T18:29:59Z", k, 700),
        ev("k-o4", "odometer", "2026-04-30T18:30:00Z", k, 600),
        # Kathmandu (+05:45): the highest temperature and the latest reading inside whole days.
        ev("n-t1", "peak_temp", "2026-03-31T18:15:00Z", n, 20),
        ev("n-t2", "peak_temp", "2026-04-12T09:00:00Z", n, 50.25),
        ev("n-t3", "peak_temp", "2026-04-30T18:14:59Z", n, 21),
        ev("n-t4", "peak_temp", "2026-04-30T18:15:00Z", n, 70),
        ev("n-o1", "odometer", "2026-03-31T18:20:00Z", n, 10),
        ev("n-o2", "odometer", "2026-04-29T23:00:00Z", n, 30),
        ev("n-o3", "odometer", "2026-04-10T10:00:00Z", n, 20),
        ev("n-o4", "odometer", "2026-03-31T18:14:00Z", n, 5),
    ]
    ingest(tenant, events, received_at=utc("2026-05-02T00:00Z"))
    windows = [(k.pk, KOLKATA_APRIL), (n.pk, KATHMANDU_APRIL)]

    groups = rollup_groups(tenant=tenant, windows=windows, meter_ids=meter_ids(tenant))

    assert as_rows(groups) == reference(tenant, windows)
    found = by_meter(tenant, groups)
    assert combined(found[(k.pk, "peak_temp")])["max"] == Decimal("45.5")
    assert combined(found[(k.pk, "odometer")])["latest"] == 700
    assert combined(found[(k.pk, "odometer")])["latest_at"] == utc("2026-04-30T18:29:59Z")
    assert combined(found[(n.pk, "peak_temp")])["max"] == Decimal("50.25")
    assert combined(found[(n.pk, "odometer")])["latest"] == 30
    for sub, period in windows:
        for code in ("peak_temp", "odometer"):
            meter = Meter.objects.get(tenant=tenant, code=code)
            [raw] = aggregate(subscription_ids=[sub], meter=meter, period=period)
            aggregation = "max" if code == "peak_temp" else "latest"
            assert raw.quantity == combined(found[(sub, code)])[aggregation]


def test_one_statement_for_every_window(tenant: Tenant, kolkata: Subscription, kathmandu: Subscription) -> None:
    windows = [(kolkata.pk, KOLKATA_APRIL), (kathmandu.pk, KATHMANDU_APRIL)]
    meters = meter_ids(tenant)
    with CaptureQueriesContext(connection) as queries:
        assert rollup_groups(tenant=tenant, windows=windows, meter_ids=meters) == []
    assert len(queries) == 1


def test_windows_inside_a_day_and_unaligned_bounds_read_as_before(tenant: Tenant, kolkata: Subscription) -> None:
    k = kolkata
    events = [
        ev(f"e{i}", "data_mb", utc("2026-04-09T17:00Z") + timedelta(minutes=37 * i), k, i, region="EU")
        for i in range(1, 200)
    ]
    ingest(tenant, events, received_at=utc("2026-04-20T00:00Z"))
    meters = meter_ids(tenant)
    for start, end in [
        ("2026-04-10T18:30Z", "2026-04-11T18:30Z"),  # one Kolkata day, across a UTC midnight
        ("2026-04-10T00:00Z", "2026-04-11T00:00Z"),  # one UTC day
        ("2026-04-10T18:30Z", "2026-04-13T18:30Z"),
        ("2026-04-09T18:07Z", "2026-04-12T05:52Z"),  # not on bucket edges: buckets starting inside count
        ("2026-04-10T00:00:00.000001Z", "2026-04-12T23:59:59.999999Z"),
    ]:
        window = [(k.pk, Period(utc(start), utc(end)))]
        assert as_rows(rollup_groups(tenant=tenant, windows=window, meter_ids=meters)) == reference(tenant, window)


def test_random_windows_on_every_quarter_hour_match_the_15_minute_rows(
    tenant: Tenant, kolkata: Subscription, kathmandu: Subscription
) -> None:
    rng = random.Random(20260401)
    start = utc("2026-03-27T00:00Z")
    events = []
    for i in range(600):
        sub = rng.choice((kolkata, kathmandu))
        code = rng.choice(list(METERS))
        ts = start + timedelta(seconds=rng.randrange(40 * 86400))
        value = None if code == "api_calls" else str(Decimal(rng.randrange(-500, 100_000)) / 100)
        region = rng.choice(("EU", "US", None))
        events.append(ev(f"r{i}", code, ts, sub, value, **({"region": region} if region else {})))
    ingest(tenant, events, received_at=utc("2026-05-06T12:00Z"))
    assert_daily_equals_quarters()
    meters = meter_ids(tenant)
    zones = (KOLKATA, KATHMANDU, "Pacific/Chatham", "America/St_Johns", "Europe/Paris", "UTC")
    for _ in range(60):
        a, b = sorted(rng.sample(range(40 * 96 + 1), 2))  # quarter hours since the start
        windows = [
            (kolkata.pk, Period(start + timedelta(minutes=15 * a), start + timedelta(minutes=15 * b))),
            (kathmandu.pk, Period(start + timedelta(minutes=15 * (a // 2)), start + timedelta(minutes=15 * b))),
        ]
        assert as_rows(rollup_groups(tenant=tenant, windows=windows, meter_ids=meters)) == reference(tenant, windows)
    for zone in zones:
        for first, last in [(date(2026, 3, 28), date(2026, 5, 1)), (date(2026, 4, 1), date(2026, 4, 2))]:
            period = Period(local_midnight(first, zone), local_midnight(last, zone))
            windows = [(kolkata.pk, period), (kathmandu.pk, period)]
            groups = rollup_groups(tenant=tenant, windows=windows, meter_ids=meters)
            assert as_rows(groups) == reference(tenant, windows)
            found = by_meter(tenant, groups)
            for code in METERS:
                meter = Meter.objects.get(tenant=tenant, code=code)
                for sub_id in (kolkata.pk, kathmandu.pk):
                    [raw] = aggregate(subscription_ids=[sub_id], meter=meter, period=period)
                    got = combined(found[(sub_id, code)])
                    key = meter.aggregation  # sum, count, max or latest: the names of combined()
                    assert (got[key] or 0, got["count"]) == (raw.quantity, raw.event_count), (zone, code)


# --- the daily rows stay equal to the 15-minute ones ---------------------------------------------


def test_daily_rows_are_the_sum_of_the_15_minute_rows_after_late_events_and_replays(
    tenant: Tenant, kolkata: Subscription
) -> None:
    k = kolkata
    first = [
        ev("a1", "data_mb", "2026-04-10T01:00:00Z", k, 10, region="EU"),
        ev("a2", "data_mb", "2026-04-10T01:05:00Z", k, 20, region="EU"),
        ev("a3", "data_mb", "2026-04-10T23:59:00Z", k, 30, region="EU"),
        ev("a2", "data_mb", "2026-04-10T01:05:00Z", k, 20, region="EU"),  # the same id twice in a batch
        ev("t1", "peak_temp", "2026-04-10T05:00:00Z", k, 12),
        ev("o1", "odometer", "2026-04-10T05:00:00Z", k, 100),
        ev("c1", "api_calls", "2026-04-10T05:00:00Z", k),
    ]
    assert ingest(tenant, first, received_at=utc("2026-04-15T00:00Z")) == {"accepted": 6, "duplicate": 1}
    assert_daily_equals_quarters()
    # A replayed batch changes nothing; a batch mixing replays and new events adds the new ones.
    assert ingest(tenant, first, received_at=utc("2026-04-15T00:01Z")) == {"accepted": 0, "duplicate": 7}
    mixed = [
        *first[:2],
        ev("a4", "data_mb", "2026-04-10T12:00:00Z", k, 40, region="EU"),
        ev("t2", "peak_temp", "2026-04-10T23:00:00Z", k, 11),
        ev("o2", "odometer", "2026-04-10T04:59:59Z", k, 99),  # older than o1: not the latest
    ]
    assert ingest(tenant, mixed, received_at=utc("2026-04-15T00:02Z")) == {"accepted": 3, "duplicate": 2}
    assert_daily_equals_quarters()
    # Late events (their Kolkata period closed on 2026-03-31T18:30Z) are rolled up at both levels.
    late = [
        ev("l1", "data_mb", "2026-03-31T18:29:00Z", k, 5, region="EU"),
        ev("l2", "data_mb", "2026-03-31T10:00:00Z", k, 6, region="EU"),
        ev("l3", "odometer", "2026-03-31T18:00:00Z", k, 50),
    ]
    assert ingest(tenant, late, received_at=utc("2026-04-15T00:03Z")) == {"accepted": 3, "duplicate": 0}
    assert_daily_equals_quarters()

    # 10 April UTC in Kolkata: 06:30, 06:35 and 05:29 (the next day) are off-peak, 17:30 is peak.
    days = UsageDailyRollup.objects.filter(subscription=k, meter__code="data_mb", day=utc("2026-04-10T00:00Z"))
    assert {
        d.time_band: (d.dimensions, d.event_count, d.value_sum, d.value_max, d.latest_at, d.latest_value) for d in days
    } == {
        "off_peak": ({"region": "EU"}, 3, 60, 30, utc("2026-04-10T23:59:00Z"), 30),
        "peak": ({"region": "EU"}, 1, 40, 40, utc("2026-04-10T12:00:00Z"), 40),
    }
    odometer = UsageDailyRollup.objects.get(subscription=k, meter__code="odometer", day=utc("2026-04-10T00:00Z"))
    assert (odometer.event_count, odometer.latest_value) == (2, 100)
    march = Period(local_midnight(date(2026, 3, 1), KOLKATA), local_midnight(date(2026, 4, 1), KOLKATA))
    found = by_meter(tenant, rollup_groups(tenant=tenant, windows=[(k.pk, march)], meter_ids=meter_ids(tenant)))
    assert combined(found[(k.pk, "data_mb")])["sum"] == 11
    assert combined(found[(k.pk, "odometer")])["latest"] == 50


def test_events_at_the_same_instant_pick_the_same_latest_value_at_both_levels(
    tenant: Tenant, kolkata: Subscription
) -> None:
    k = kolkata
    same = "2026-04-10T05:00:00Z"
    ingest(
        tenant,
        [ev("s1", "odometer", same, k, 7), ev("s2", "odometer", same, k, 9), ev("s3", "odometer", same, k, 8)],
        received_at=utc("2026-04-15T00:00Z"),
    )
    assert_daily_equals_quarters()
    # Within a batch the highest value wins the tie; a later batch wins over an earlier one.
    assert UsageRollup.objects.get(subscription=k, meter__code="odometer").latest_value == 9
    ingest(tenant, [ev("s4", "odometer", same, k, 1)], received_at=utc("2026-04-15T00:01Z"))
    assert_daily_equals_quarters()
    assert UsageDailyRollup.objects.get(subscription=k, meter__code="odometer").latest_value == 1


def test_rebuild_makes_the_daily_rows_equal_to_the_15_minute_rows_again(tenant: Tenant, kolkata: Subscription) -> None:
    k = kolkata
    events = [ev(f"d{i}", "peak_temp", utc("2026-04-01T00:00Z") + timedelta(hours=7 * i), k, i) for i in range(40)]
    ingest(tenant, events, received_at=utc("2026-04-20T00:00Z"))
    # As if an older process had written only the 15-minute rows during a deploy.
    UsageDailyRollup.objects.filter(day__gte=utc("2026-04-05T00:00Z")).update(event_count=0, value_sum=0)
    UsageDailyRollup.objects.filter(day=utc("2026-04-08T00:00Z")).delete()
    kept = UsageDailyRollup.objects.get(day=utc("2026-04-02T00:00Z"))
    kept.value_sum = Decimal(-1)
    kept.save()

    daily_rollups_rebuild(tenant=tenant, since=utc("2026-04-05T06:00Z"))  # from the start of that UTC day

    assert UsageDailyRollup.objects.get(day=utc("2026-04-02T00:00Z")).value_sum == -1  # before since: kept
    assert UsageDailyRollup.objects.filter(day=utc("2026-04-08T00:00Z")).exists()
    daily_rollups_rebuild(tenant=tenant)
    assert_daily_equals_quarters()
    window = [(k.pk, Period(utc("2026-03-31T18:30Z"), utc("2026-04-30T18:30Z")))]
    assert as_rows(rollup_groups(tenant=tenant, windows=window, meter_ids=meter_ids(tenant))) == reference(
        tenant, window
    )
