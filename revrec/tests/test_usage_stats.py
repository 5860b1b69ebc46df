"""Usage statistics (analytics.md): quantities per meter, month (tenant's time zone, cut exactly at
local midnight though the rollups are by UTC day) and group; top customers and devices;
anomalies against each device's own 30-day median. Every number is computed by hand."""

from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from rest_framework.test import APIClient

from revrec.usage_stats import usage_statistics
from tenancy.models import Tenant
from usage.ingest import events_ingest
from usage.partitions import forget_known_partitions
from usage.tests.factories import build_fleet

PARIS = ZoneInfo("Europe/Paris")
D = Decimal


@pytest.fixture(autouse=True)
def fresh_partitions() -> Iterator[None]:
    forget_known_partitions()
    yield
    forget_known_partitions()


def ingest(tenant: Tenant, events: Sequence[tuple[str, str, datetime, dict[str, Any]]]) -> None:
    """(meter code, device, local instant, properties), received just after the last one."""
    received = max(at for _, _, at, _ in events) + timedelta(minutes=1)
    batch = [
        {
            "transaction_id": "t%d-%s" % (i, at.isoformat()),
            "code": code,
            "device_id": device,
            "timestamp": at.isoformat(),
            "properties": props,
        }
        for i, (code, device, at, props) in enumerate(events)
    ]
    result = events_ingest(tenant=tenant, events=batch, received_at=received)
    assert [o.status for o in result.results] == ["accepted"] * len(batch), result.results


def paris(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


@pytest.fixture
def fleet_usage(tenant: Tenant) -> None:
    """Dupont (Paris) with devices A, B, C; data_mb (sum of mb, peak 08:00-20:00) and api_calls (count)."""
    with time_machine.travel(paris(2026, 3, 1, 9, 0), tick=False):
        build_fleet(tenant)
    ingest(
        tenant,
        [
            ("data_mb", "A", paris(2026, 3, 10, 10, 0), {"mb": 10, "device_type": "tracker"}),  # peak
            # 23:30 on 31 March in Paris is 21:30 UTC: March
            ("data_mb", "B", paris(2026, 3, 31, 23, 30), {"mb": 5, "device_type": "probe"}),  # off-peak
        ],
    )
    ingest(
        tenant,
        [
            # 00:30 on 1 April in Paris is 22:30 UTC on 31 March: April, though its UTC day is in March
            ("data_mb", "A", paris(2026, 4, 1, 0, 30), {"mb": 7, "device_type": "tracker"}),  # off-peak
            ("data_mb", "C", paris(2026, 4, 15, 12, 0), {"mb": 20, "device_type": "tracker"}),  # peak
            ("api_calls", "A", paris(2026, 4, 2, 9, 0), {}),
            ("api_calls", "A", paris(2026, 4, 3, 9, 0), {}),
            ("api_calls", "C", paris(2026, 4, 3, 9, 0), {}),
        ],
    )


def test_quantities_per_month_cut_at_the_tenants_midnight(tenant: Tenant, fleet_usage: None) -> None:
    # when
    meters = usage_statistics(tenant=tenant, start=date(2026, 3, 1), end=date(2026, 4, 1), group_by="time_band")
    # then
    by_code = {m.meter: m for m in meters}
    data = by_code["data_mb"]
    # March: 10 + 5 = 15; April: 7 + 20 = 27
    assert [(m.month, m.quantity) for m in data.months] == [(date(2026, 3, 1), D(15)), (date(2026, 4, 1), D(27))]
    # by time band, largest first: March peak 10, off-peak 5; April peak 20, off-peak 7
    assert [[(g.group, g.quantity) for g in m.groups] for m in data.months] == [
        [("peak", D(10)), ("off_peak", D(5))],
        [("peak", D(20)), ("off_peak", D(7))],
    ]
    # api_calls: 3 events in April
    assert [m.quantity for m in by_code["api_calls"].months] == [D(0), D(3)]
    # top customers over both months: Dupont, 42 MB; top devices: C 20, A 10 + 7 = 17, B 5
    assert [(t.customer, t.quantity) for t in data.top_customers] == [("dupont", D(42))]
    assert [(t.device_id, t.quantity) for t in data.top_devices] == [("C", D(20)), ("A", D(17)), ("B", D(5))]
    assert [(t.device_id, t.quantity) for t in by_code["api_calls"].top_devices] == [("A", D(2)), ("C", D(1))]
    assert data.anomalies == []


def test_grouped_by_device_type_and_by_customer(tenant: Tenant, fleet_usage: None) -> None:
    (data,) = usage_statistics(
        tenant=tenant, start=date(2026, 4, 1), end=date(2026, 4, 1), meter_code="data_mb", group_by="device_type"
    )
    # April: trackers A (7) and C (20) = 27
    assert [(g.group, g.quantity) for g in data.months[0].groups] == [("tracker", D(27))]
    (data,) = usage_statistics(
        tenant=tenant, start=date(2026, 3, 1), end=date(2026, 3, 1), meter_code="data_mb", group_by="customer"
    )
    assert [(g.group, g.name, g.quantity) for g in data.months[0].groups] == [("dupont", "Transports Dupont", D(15))]


def test_a_day_above_three_times_the_devices_median_is_an_anomaly(tenant: Tenant) -> None:
    # given: device A uses 10 MB a day from 1 to 10 April, then 31 MB on 11 April and 30 MB on 12 April
    with time_machine.travel(paris(2026, 3, 1, 9, 0), tick=False):
        build_fleet(tenant)
    days = [(paris(2026, 4, d, 12, 0), 10) for d in range(1, 11)] + [
        (paris(2026, 4, 11, 12, 0), 31),
        (paris(2026, 4, 12, 12, 0), 30),
    ]
    ingest(tenant, [("data_mb", "A", at, {"mb": mb}) for at, mb in days])
    # when
    (data,) = usage_statistics(tenant=tenant, start=date(2026, 4, 1), end=date(2026, 4, 1), meter_code="data_mb")
    # then: 11 April, 10 days of history with median 10: 31 > 3 x 10, ratio 3.10. 12 April: 11
    # days [10 x 10, 31], median the 6th = 10: 30 is not above 30. Days 2 to 7 have fewer than 7
    # days of history; days 8 to 10 equal their median.
    assert [(a.device_id, a.customer, a.day, a.quantity, a.median, a.ratio) for a in data.anomalies] == [
        ("A", "dupont", date(2026, 4, 11), D(31), D(10), D("3.10"))
    ]


def test_the_statistics_take_a_fixed_number_of_queries(
    tenant: Tenant, fleet_usage: None, django_assert_max_num_queries: Any
) -> None:
    # the meters (1), monthly groups, monthly totals and top customers from the rollups (3, plus 3
    # for the unique_count meter from the events), top devices (1), anomalies (1), customers' names (1),
    # the archived months (1: the months asked for are older than 62 days)
    with django_assert_max_num_queries(11):
        usage_statistics(tenant=tenant, start=date(2026, 1, 1), end=date(2026, 12, 1), group_by="customer")


def test_the_usage_report_api(tenant: Tenant, fleet_usage: None, api: APIClient) -> None:
    response = api.get(
        "/api/v1/reports/usage", {"meter": "data_mb", "from": "2026-03", "to": "2026-04", "group_by": "region"}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["from"], body["to"], body["group_by"]) == ("2026-03", "2026-04", "region")
    (meter,) = body["meters"]
    assert [(m["month"], m["quantity"]) for m in meter["months"]] == [("2026-03", "15"), ("2026-04", "27")]
    # no event carried a region: one group, unknown
    assert meter["months"][1]["groups"] == [{"group": "", "name": "", "quantity": "27"}]
    assert meter["top_devices"][0] == {"device_id": "C", "customer": "dupont", "quantity": "20"}


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ({"group_by": "colour"}, 400, "group_by"),
        ({"from": "2026-3"}, 400, "from"),
        ({"from": "2020-01", "to": "2026-01"}, 422, "from"),  # 73 months, more than 36
    ],
)
def test_bad_usage_queries(api: APIClient, query: dict[str, str], status: int, field: str) -> None:
    response = api.get("/api/v1/reports/usage", query)
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]
