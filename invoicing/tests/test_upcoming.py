"""Current usage: the rollups agree with the raw-event aggregation that invoicing uses (pitfall #8),
the allowance is taken once however often it is computed (pitfall #12), and the Smart Fleet
scenario's numbers, through the API."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from djmoney.money import Money

from billing_platform.periods import Period
from catalog.models import Meter
from catalog.services import plan_create, product_create
from customers.models import Customer
from customers.services import customer_create
from invoicing.upcoming import CurrentUsage, invoice_upcoming
from subscriptions.models import Subscription
from subscriptions.periods import subscription_period_at
from subscriptions.services import device_event_apply, subscription_create
from subscriptions.tests.factories import smart_fleet as smart_fleet_subscription
from tenancy.actors import Actor
from tenancy.models import ApiKeyScope, Tenant
from usage.aggregation import aggregate
from usage.tests.factories import events_poster
from usage.tests.test_aggregation import DST_DAYS, totals
from usage.tests.test_aggregation import ev as usage_event

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")
NOW = datetime(2026, 4, 20, 12, 0, tzinfo=UTC)
MARCH_NOW = datetime(2026, 3, 25, 12, 0, tzinfo=UTC)


def ev(tid: str, code: str, ts: str, **fields: Any) -> dict[str, Any]:
    props = fields.pop("props", {})
    return {"transaction_id": tid, "code": code, "timestamp": ts, "properties": props, **fields}


@pytest.fixture
def ingest(make_client: Any, tenant: Tenant) -> Any:
    return events_poster(make_client(tenant, ApiKeyScope.INGEST), NOW)


def component(usage: CurrentUsage, meter: str, subscription: int = 0) -> Any:
    [found] = [c for c in usage.subscriptions[subscription].components if c.meter == meter]
    return found


# --- pitfall #8: what the customer sees is what the invoice bills ------------------------------


FLEET_BATCH = [
    ev(
        "d1",
        "data_mb",
        "2026-04-02T06:00:00Z",
        device_id="A",
        props={"mb": 1200.25, "device_type": "t", "region": "EU"},
    ),
    ev("d2", "data_mb", "2026-04-02T19:00:00Z", device_id="B", props={"mb": 300, "device_type": "t", "region": "US"}),
    ev("d3", "data_mb", "2026-03-31T22:30:00Z", device_id="C", props={"mb": 55}),  # April in Paris
    ev("d4", "data_mb", "2026-03-31T21:59:00Z", device_id="C", props={"mb": 99999}),  # March in Paris
    ev("c1", "api_calls", "2026-04-03T10:00:00Z", device_id="A"),
    ev("c2", "api_calls", "2026-04-03T10:20:00Z", device_id="A"),
    ev("c3", "api_calls", "2026-04-19T23:59:00Z", device_id="B"),
    ev("t1", "peak_temp", "2026-04-03T10:00:00Z", device_id="A", props={"celsius": 31.5}),
    ev("t2", "peak_temp", "2026-04-03T10:01:00Z", device_id="B", props={"celsius": 42}),
    ev("s1", "active_sims", "2026-04-03T10:00:00Z", device_id="A", props={"iccid": "8933-1"}),
    ev("s2", "active_sims", "2026-04-04T10:00:00Z", device_id="A", props={"iccid": "8933-1"}),
    ev("s3", "active_sims", "2026-04-05T10:00:00Z", device_id="B", props={"iccid": "8933-2"}),
    ev("o1", "odometer", "2026-04-03T10:00:00Z", device_id="A", props={"km": 100}),
    ev("o2", "odometer", "2026-04-18T10:00:00Z", device_id="A", props={"km": 180.5}),
    ev("o3", "odometer", "2026-04-10T10:00:00Z", device_id="A", props={"km": 150}),
    ev("g1", "gps_fixes", "2026-04-03T10:00:00Z", device_id="A", props={"quality": "good"}),
    ev("g2", "gps_fixes", "2026-04-03T10:00:00Z", device_id="A", props={"quality": "poor"}),
]
# (quantity, events, amount at per_unit 0.01) in April
FLEET_APRIL = {
    "data_mb": (Decimal("1555.25"), 3, Decimal("15.55")),
    "api_calls": (Decimal(3), 3, Decimal("0.03")),
    "peak_temp": (Decimal(42), 2, Decimal("0.42")),
    "active_sims": (Decimal(2), 3, Decimal("0.02")),
    "odometer": (Decimal("180.5"), 3, Decimal("1.81")),
    "gps_fixes": (Decimal(1), 1, Decimal("0.01")),
}


def test_current_usage_equals_the_raw_aggregation_even_after_a_replayed_batch(
    fleet: Subscription, tenant: Tenant, ingest: Any
) -> None:
    ingest(FLEET_BATCH)
    first = invoice_upcoming(customer=fleet.customer, at=NOW)
    [sub] = first.subscriptions
    assert (sub.period_start, sub.period_end) == (
        datetime(2026, 3, 31, 22, 0, tzinfo=UTC),
        datetime(2026, 4, 30, 22, 0, tzinfo=UTC),
    )
    meters = {m.code: m for m in Meter.objects.filter(tenant=tenant)}
    for code, (quantity, events, amount) in FLEET_APRIL.items():
        live = component(first, code)
        [billed] = aggregate(subscription_ids=[fleet.pk], meter=meters[code], period=sub.period)
        assert (live.quantity, live.event_count) == (billed.quantity, billed.event_count) == (quantity, events), code
        assert (live.allowance, live.billable_quantity, live.amount) == (Decimal(0), quantity, amount), code
    # the whole batch again, and one event replayed with another timestamp: nothing changes
    replay = ingest([*FLEET_BATCH, ev("d1", "data_mb", "2026-04-19T06:00:00Z", device_id="A", props={"mb": 5})])
    assert (replay["accepted"], replay["duplicates"]) == (0, len(FLEET_BATCH) + 1)
    assert invoice_upcoming(customer=fleet.customer, at=NOW) == first
    assert (
        first.projected.net_total
        == Money(sum((a for _, _, a in FLEET_APRIL.values()), Decimal(0)), "EUR")
        == Money("17.84", "EUR")
    )
    assert first.projected.warnings == ["No standard tax rate for FR: tax not included."]
    assert first.projected.total == Money("17.84", "EUR")


def test_matrix_groups_from_the_rollups_equal_the_raw_groups(fleet: Subscription, tenant: Tenant, ingest: Any) -> None:
    product_create(tenant=tenant, actor=ACTOR, at=timezone.now(), code="u-matrix", name="Data", kind="usage")
    plan = plan_create(
        tenant=tenant,
        actor=ACTOR,
        at=timezone.now(),
        code="matrix",
        name="Matrix",
        components=[
            {
                "product": "u-matrix",
                "meter": "data_mb",
                "charge": {
                    "model": "matrix",
                    "dimensions": ["device_type", "time_band"],
                    "cells": [
                        {
                            "match": {"device_type": "tracker", "time_band": "peak"},
                            "charge": {"model": "per_unit", "unit_amount": "0.002"},
                        },
                        {"match": {"device_type": "tracker"}, "charge": {"model": "per_unit", "unit_amount": "0.001"}},
                    ],
                    "default": {"model": "per_unit", "unit_amount": "0.003"},
                },
            }
        ],
        prices=[{"currency": "EUR"}],
    )
    subscription_create(
        tenant=tenant,
        actor=ACTOR,
        at=timezone.now(),
        external_id="m-sub",
        customer=fleet.customer,
        plan=plan,
        signed_at=timezone.now(),
        starts_on=date(2026, 1, 1),
    )
    sub = {"external_subscription_id": "m-sub"}
    ingest(
        [
            ev("p1", "data_mb", "2026-04-14T06:00:00Z", **sub, props={"mb": 600, "device_type": "tracker"}),  # 08:00
            ev("p2", "data_mb", "2026-04-14T17:59:00Z", **sub, props={"mb": 400, "device_type": "tracker"}),  # 19:59
            ev("o1", "data_mb", "2026-04-14T18:00:00Z", **sub, props={"mb": 500, "device_type": "tracker"}),  # 20:00
            ev("c1", "data_mb", "2026-04-15T10:00:00Z", **sub, props={"mb": 200, "device_type": "camera"}),
        ]
    )
    usage = invoice_upcoming(customer=fleet.customer, at=NOW)
    [matrix] = [s for s in usage.subscriptions if s.subscription == "m-sub"]
    [data] = matrix.components
    # tracker/peak 1000 x 0.002 + tracker/off_peak 500 x 0.001 + camera/peak 200 x 0.003 (default)
    assert (data.quantity, data.amount) == (Decimal(1700), Decimal("3.10"))
    groups = [(g["values"], g["quantity"], g["amount"]) for g in data.detail["groups"]]
    assert groups == [
        ({"device_type": "camera", "time_band": "peak"}, "200", "0.600"),
        ({"device_type": "tracker", "time_band": "off_peak"}, "500", "0.500"),
        ({"device_type": "tracker", "time_band": "peak"}, "1000", "2.000"),
    ]
    raw = aggregate(
        subscription_ids=[Subscription.objects.get(external_id="m-sub").pk],
        meter=Meter.objects.get(tenant=tenant, code="data_mb"),
        period=matrix.period,
        group_by_dimensions=["device_type"],
        by_time_band=True,
    )
    assert [(r.dimensions["device_type"], r.time_band, r.quantity) for r in raw] == [
        ("camera", "peak", Decimal(200)),
        ("tracker", "off_peak", Decimal(500)),
        ("tracker", "peak", Decimal(1000)),
    ]


# --- the Smart Fleet scenario (billing.md) and pitfall #12 --------------------------------------


@pytest.fixture
def smart_fleet(tenant: Tenant) -> Customer:
    # products named by their codes: the projected lines' descriptions below start with the name
    return smart_fleet_subscription(
        tenant, names={"eld-200": "eld-200", "fleet-platform": "fleet-platform", "data-overage": "data-overage"}
    ).customer


def activate(tenant: Tenant, device: str, when: str) -> None:
    device_event_apply(
        tenant=tenant,
        device_id=device,
        event_type="device.activated",
        occurred_at=datetime.fromisoformat(when),
        actor=ACTOR,
    )


def lines(usage: CurrentUsage) -> list[tuple[str, str, Decimal, Decimal]]:
    return [(line.type, line.description, line.quantity, line.amount) for line in usage.projected.lines]


def test_smart_fleet_march_projects_the_invoice_of_1_april(smart_fleet: Customer, tenant: Tenant, ingest: Any) -> None:
    activate(tenant, "A", "2026-03-15T09:00:00+01:00")
    activate(tenant, "B", "2026-03-20T14:00:00+01:00")
    ingest(
        [
            ev("a-1", "data_mb", "2026-03-16T10:00:00Z", device_id="A", props={"mb": 300}),
            ev("a-2", "data_mb", "2026-03-22T10:00:00Z", device_id="A", props={"mb": 500}),
            ev("b-1", "data_mb", "2026-03-21T10:00:00Z", device_id="B", props={"mb": 3000}),
        ],
        now=MARCH_NOW,
    )
    usage = invoice_upcoming(customer=smart_fleet, at=MARCH_NOW)
    data = component(usage, "data_mb")
    # 3800 - 2 x 1024 = 1752 MB x 0.010
    assert (data.quantity, data.allowance, data.billable_quantity, data.amount) == (
        Decimal(3800),
        Decimal(2048),
        Decimal(1752),
        Decimal("17.52"),
    )
    assert lines(usage) == [
        ("hardware", "eld-200, instalment 1/12", Decimal(3), Decimal("60.00")),
        ("service", "fleet-platform, 15–31 Mar 2026 (17/31)", Decimal(1), Decimal("13.71")),
        ("service", "fleet-platform, 20–31 Mar 2026 (12/31)", Decimal(1), Decimal("9.68")),
        ("service", "fleet-platform", Decimal(2), Decimal("50.00")),
        ("usage", "data-overage", Decimal(1752), Decimal("17.52")),
    ]
    assert (usage.projected.net_total, usage.projected.total) == (Money("150.91", "EUR"), Money("181.09", "EUR"))
    [vat] = usage.projected.taxes
    assert (vat.category, vat.rate, vat.base, vat.amount) == (
        "standard",
        Decimal(20),
        Decimal("150.91"),
        Decimal("30.18"),
    )


def test_smart_fleet_april_allowance_is_applied_once_however_often_it_is_computed(
    smart_fleet: Customer, tenant: Tenant, ingest: Any
) -> None:
    activate(tenant, "A", "2026-03-15T09:00:00+01:00")
    activate(tenant, "B", "2026-03-20T14:00:00+01:00")
    ingest([ev("march", "data_mb", "2026-03-16T10:00:00Z", device_id="A", props={"mb": 800})], now=MARCH_NOW)
    activate(tenant, "C", "2026-04-10T08:00:00+02:00")
    batch = [
        ev("a", "data_mb", "2026-04-02T10:00:00Z", device_id="A", props={"mb": 5000}),
        ev("b", "data_mb", "2026-04-05T10:00:00Z", device_id="B", props={"mb": 7000}),
        ev("c", "data_mb", "2026-04-12T10:00:00Z", device_id="C", props={"mb": 2000}),
    ]
    ingest(batch)
    with CaptureQueriesContext(connection) as queries:
        first = invoice_upcoming(customer=smart_fleet, at=NOW)
    # subscriptions, components, devices, one rollup statement, prices (2 x 3), tax rates
    assert len(queries) <= 12
    second = invoice_upcoming(customer=smart_fleet, at=NOW)
    ingest(batch)  # a replayed batch changes nothing either
    third = invoice_upcoming(customer=smart_fleet, at=NOW)
    assert first == second == third
    data = component(first, "data_mb")
    # 14000 - 3 x 1024 = 10928 MB -> 10000 x 0.010 + 928 x 0.005 = 104.64
    assert (data.quantity, data.allowance, data.billable_quantity, data.amount) == (
        Decimal(14000),
        Decimal(3072),
        Decimal(10928),
        Decimal("104.64"),
    )
    assert first.subscriptions[0].active_devices == 3
    assert [(t["units"], t["unit_amount"], t["amount"]) for t in data.detail["tiers"]] == [
        ("10000", "0.010", "100.000"),
        ("928", "0.005", "4.640"),
    ]
    assert lines(first) == [
        ("hardware", "eld-200, instalment 2/12", Decimal(3), Decimal("60.00")),
        ("service", "fleet-platform, 10–30 Apr 2026 (21/30)", Decimal(1), Decimal("17.50")),
        ("service", "fleet-platform", Decimal(3), Decimal("75.00")),
        ("usage", "data-overage", Decimal(10928), Decimal("104.64")),
    ]
    assert (first.projected.net_total, first.projected.taxes[0].amount, first.projected.total) == (
        Money("257.14", "EUR"),
        Decimal("51.43"),
        Money("308.57", "EUR"),
    )


def test_the_api_shows_the_smart_fleet_numbers_and_404s_an_unknown_customer(
    smart_fleet: Customer, tenant: Tenant, ingest: Any, make_client: Any
) -> None:
    activate(tenant, "A", "2026-03-15T09:00:00+01:00")
    activate(tenant, "B", "2026-03-20T14:00:00+01:00")
    activate(tenant, "C", "2026-04-10T08:00:00+02:00")
    ingest(
        [
            ev("a", "data_mb", "2026-04-02T10:00:00Z", device_id="A", props={"mb": 5000}),
            ev("b", "data_mb", "2026-04-05T10:00:00Z", device_id="B", props={"mb": 7000}),
            ev("c", "data_mb", "2026-03-31T22:30:00Z", device_id="C", props={"mb": 2000}),  # 1 April, 00:30 in Paris
        ]
    )
    client = make_client(tenant, ApiKeyScope.READ)
    with time_machine.travel(NOW, tick=False):
        response = client.get("/api/v1/customers/dupont/current_usage")
        unknown = client.get("/api/v1/customers/nobody/current_usage")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["customer"], body["currency"], body["at"]) == ("dupont", "EUR", "2026-04-20T12:00:00Z")
    [sub] = body["subscriptions"]
    assert (sub["subscription"], sub["period_start"], sub["period_end"]) == (
        "dupont-fleet",
        "2026-03-31T22:00:00Z",
        "2026-04-30T22:00:00Z",
    )
    [data] = sub["components"]
    assert {
        k: data[k] for k in ("product", "meter", "aggregation", "quantity", "allowance", "billable_quantity", "amount")
    } == {
        "product": "data-overage",
        "meter": "data_mb",
        "aggregation": "sum",
        "quantity": "14000",
        "allowance": "3072",
        "billable_quantity": "10928",
        "amount": "104.64",
    }
    assert data["detail"]["amount"] == "104.640"
    projected = body["projected"]
    assert [(line["type"], line["quantity"], line["amount"]) for line in projected["lines"]] == [
        ("hardware", "3", "60.00"),
        ("service", "1", "17.50"),
        ("service", "3", "75.00"),
        ("usage", "10928", "104.64"),
    ]
    assert projected["lines"][1]["devices"] == ["C"]
    assert (projected["net_total"], projected["total"]) == ("257.14", "308.57")
    assert projected["taxes"] == [
        {
            "category": "standard",
            "rate": "20.00",
            "base": "257.14",
            "amount": "51.43",
            "vat_category": "S",
            "exemption_reason_code": "",
            "exemption_reason": "",
        }
    ]
    assert unknown.status_code == 404
    assert unknown["Content-Type"] == "application/problem+json"
    assert unknown.json()["code"] == "customer_not_found"


# The live view cuts a period at the same local midnight as the raw-event aggregation.
@pytest.mark.parametrize(("tz", "day", "starts", "ends"), DST_DAYS)
def test_events_around_local_midnight_on_dst_days_land_in_the_right_day_and_period(
    fleet: Subscription, tenant: Tenant, ingest: Any, tz: str, day: date, starts: str, ends: str
) -> None:
    # given: a customer in that zone billed on that day of the month (a period starts at its midnight)
    customer = customer_create(
        tenant=tenant,
        actor=ACTOR,
        at=timezone.now(),
        external_id="dst",
        name="DST",
        email="dst@x.test",
        country="FR",
        timezone=tz,
        billing_day=day.day,
    )
    sub = subscription_create(
        tenant=tenant,
        actor=ACTOR,
        at=timezone.now(),
        external_id="dst-sub",
        customer=customer,
        plan=fleet.plan,
        signed_at=timezone.now(),
        starts_on=date(2026, 1, 1),
    )
    start, end = datetime.fromisoformat(starts), datetime.fromisoformat(ends)
    second = timedelta(seconds=1)
    now = end + timedelta(days=3)
    # when: one event just before and one at each of the two local midnights of the DST day
    ingest(
        [
            usage_event("before-start", "data_mb", (start - second).isoformat(), "dst-sub", mb=1),
            usage_event("at-start", "data_mb", start.isoformat(), "dst-sub", mb=10),
            usage_event("before-end", "data_mb", (end - second).isoformat(), "dst-sub", mb=100),
            usage_event("at-end", "data_mb", end.isoformat(), "dst-sub", mb=1000),
        ],
        now=now,
    )
    # then: the local day is 23 or 25 hours long and holds exactly its two events
    local_day = Period(start, end)
    assert (end - start).total_seconds() / 3600 in (23, 25)
    assert totals(tenant, sub, "data_mb", local_day) == (Decimal(110), 2)
    # the billing period starts at the DST day's local midnight: the event a second before is in the previous one
    previous, current = subscription_period_at(sub, at=start - second), subscription_period_at(sub, at=start)
    assert previous.end == current.start == start
    assert totals(tenant, sub, "data_mb", previous) == (Decimal(1), 1)
    assert totals(tenant, sub, "data_mb", current) == (Decimal(1110), 3)
    # and the live view from the rollups cuts the period at the same instant
    [subscription] = invoice_upcoming(customer=customer, at=now).subscriptions
    [data] = [c for c in subscription.components if c.meter == "data_mb"]
    assert (subscription.period_start, data.quantity, data.event_count) == (start, Decimal(1110), 3)
