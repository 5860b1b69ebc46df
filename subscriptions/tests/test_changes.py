"""Changes mid-period with the proration rules of billing.md and pitfalls #4 and #5."""

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from billing_platform.periods import monthly_period_starting
from catalog.tests.factories import platform_plan
from customers.tests.factories import dupont
from subscriptions.changes import (
    service_charge_record,
    subscription_change,
    subscription_changes_apply_due,
)
from subscriptions.errors import InvalidTransition
from subscriptions.models import ServiceCharge, Subscription
from subscriptions.periods import subscription_period_at
from subscriptions.tests.factories import signed_subscription
from tenancy.actors import Actor
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


@pytest.fixture
def world(tenant: Tenant) -> dict[str, Any]:
    plans = {
        "basic": platform_plan(tenant, "basic", "25.00"),
        "premium": platform_plan(tenant, "premium", "40.00"),
        "gold": platform_plan(tenant, "gold", "55.00"),
        "yearly": platform_plan(tenant, "yearly", "300.00", interval="year"),
        "committed": platform_plan(
            tenant, "committed", "25.00", commitment_months=12, early_termination="remaining_fees"
        ),
    }
    return {"plans": plans, "customer": dupont(tenant)}


def subscribe(
    tenant: Tenant,
    world: dict[str, Any],
    plan: str = "basic",
    devices: tuple[str, ...] = ("A",),
    external_id: str = "sub",
) -> Subscription:
    """Signed on 1 January 2026, 09:00 Paris, started that day."""
    return signed_subscription(
        tenant, customer=world["customer"], plan=world["plans"][plan], devices=devices, external_id=external_id
    )


def bill_april_in_advance(subscription: Subscription) -> None:
    """What the bill run of 1 April records: each device's fee for April."""
    april = monthly_period_starting(date(2026, 4, 1), billing_day=1, tz="Europe/Paris")
    fee = Decimal("25.00") if subscription.plan.code == "basic" else Decimal("55.00")
    component = subscription.plan.components.get()
    for device in subscription.devices.all():
        service_charge_record(subscription=subscription, component=component, device=device, period=april, amount=fee)


def lines(result: Any) -> list[tuple[str, str, str, int]]:
    return [(line.type, line.product, str(line.amount), line.quantity) for line in result.lines]


def test_upgrade_mid_month_credits_the_unused_part_and_charges_the_new_fee(
    tenant: Tenant, world: dict[str, Any]
) -> None:
    # given: 2 devices on basic (25.00), April billed in advance
    sub = subscribe(tenant, world, devices=("A", "B"))
    bill_april_in_advance(sub)
    # when: upgrade to premium (40.00) on 16 April, Paris: 15 of April's 30 days remain
    result = subscription_change(
        subscription=sub, action="change_plan", params={"plan": "premium"}, actor=ACTOR, at=paris(2026, 4, 16, 10)
    )
    # then: credit 2 x 25.00 x 15/30 = 25.00, charge 2 x 40.00 x 15/30 = 40.00
    assert result.status == "applied"
    assert lines(result) == [("credit", "platform", "25.00", 2), ("service", "platform", "40.00", 2)]
    assert result.lines[0].period_start == paris(2026, 4, 16)
    assert result.lines[0].period_end == paris(2026, 5, 1)
    assert result.total == Decimal("15.00")
    sub.refresh_from_db()
    assert sub.plan.code == "premium"


def test_preview_returns_the_lines_and_changes_nothing(tenant: Tenant, world: dict[str, Any]) -> None:
    sub = subscribe(tenant, world)
    bill_april_in_advance(sub)
    before = ServiceCharge.objects.count()
    result = subscription_change(
        subscription=sub,
        action="change_plan",
        params={"plan": "premium"},
        actor=ACTOR,
        at=paris(2026, 4, 16, 10),
        preview=True,
    )
    assert result.status == "preview"
    assert lines(result) == [("credit", "platform", "12.50", 1), ("service", "platform", "20.00", 1)]
    sub.refresh_from_db()
    assert sub.plan.code == "basic"
    assert ServiceCharge.objects.count() == before


def test_monthly_to_yearly_prorates_each_side_with_its_own_period(tenant: Tenant, world: dict[str, Any]) -> None:
    # pitfall #4: the monthly credit is over April (30 days), the yearly charge over the year
    sub = subscribe(tenant, world)
    bill_april_in_advance(sub)
    result = subscription_change(
        subscription=sub, action="change_plan", params={"plan": "yearly"}, actor=ACTOR, at=paris(2026, 4, 16, 10)
    )
    yearly = subscription_period_at(sub, at=paris(2026, 4, 16, 10), plan=world["plans"]["yearly"])
    assert (yearly.start, yearly.end) == (paris(2026, 1, 1), paris(2027, 1, 1))
    # credit 25.00 x 15/30 = 12.50 ; charge 300.00 x 260/365 (16 Apr..31 Dec) = 213.698... -> 213.70
    assert lines(result) == [("credit", "platform", "12.50", 1), ("service", "platform", "213.70", 1)]
    assert result.lines[1].fraction == Decimal(260) / Decimal(365)


def test_consecutive_upgrades_never_credit_more_than_was_charged(tenant: Tenant, world: dict[str, Any]) -> None:
    # pitfall #5: basic -> premium -> gold on the same day
    sub = subscribe(tenant, world)
    bill_april_in_advance(sub)
    first = subscription_change(
        subscription=sub, action="change_plan", params={"plan": "premium"}, actor=ACTOR, at=paris(2026, 4, 16, 10)
    )
    sub.refresh_from_db()
    second = subscription_change(
        subscription=sub, action="change_plan", params={"plan": "gold"}, actor=ACTOR, at=paris(2026, 4, 16, 15)
    )
    # the premium fee charged at 10:00 (20.00) is credited in full, not more
    assert lines(first) == [("credit", "platform", "12.50", 1), ("service", "platform", "20.00", 1)]
    assert lines(second) == [("credit", "platform", "20.00", 1), ("service", "platform", "27.50", 1)]


def test_a_device_removed_before_anything_was_billed_gets_no_credit(tenant: Tenant, world: dict[str, Any]) -> None:
    sub = subscribe(tenant, world, devices=("A", "B"))
    result = subscription_change(
        subscription=sub, action="remove_devices", params={"device_ids": ["B"]}, actor=ACTOR, at=paris(2026, 4, 16, 10)
    )
    assert result.lines == []
    device = sub.devices.get(device_id="B")
    assert device.removed_at == paris(2026, 4, 16, 10)


def test_removing_a_billed_device_credits_its_unused_days(tenant: Tenant, world: dict[str, Any]) -> None:
    sub = subscribe(tenant, world, devices=("A", "B"))
    bill_april_in_advance(sub)
    result = subscription_change(
        subscription=sub, action="remove_devices", params={"device_ids": ["B"]}, actor=ACTOR, at=paris(2026, 4, 21, 10)
    )
    # 21..30 April = 10 of 30 days unused: 25.00 x 10/30 = 8.33
    assert lines(result) == [("credit", "platform", "8.33", 1)]
    assert result.lines[0].devices == ("B",)


def test_adding_devices_charges_the_rest_of_the_period(tenant: Tenant, world: dict[str, Any]) -> None:
    sub = subscribe(tenant, world)
    result = subscription_change(
        subscription=sub,
        action="add_devices",
        params={"devices": [{"device_id": "C"}, {"device_id": "D"}]},
        actor=ACTOR,
        at=paris(2026, 4, 10, 8),
    )
    # 10..30 April = 21 of 30 days: 2 x 25.00 x 21/30 = 35.00
    assert lines(result) == [("service", "platform", "35.00", 2)]
    assert sorted(sub.devices.values_list("device_id", flat=True)) == ["A", "C", "D"]


def test_a_downgrade_waits_for_the_period_end(tenant: Tenant, world: dict[str, Any]) -> None:
    sub = subscribe(tenant, world, plan="premium")
    result = subscription_change(
        subscription=sub, action="change_plan", params={"plan": "basic"}, actor=ACTOR, at=paris(2026, 4, 16, 10)
    )
    assert (result.status, result.effective_at, result.lines) == ("scheduled", paris(2026, 5, 1), [])
    assert subscription_changes_apply_due(tenant=tenant, at=paris(2026, 4, 30, 23)) == 0
    assert subscription_changes_apply_due(tenant=tenant, at=paris(2026, 5, 1, 0, 5)) == 1
    assert subscription_changes_apply_due(tenant=tenant, at=paris(2026, 5, 1, 0, 20)) == 0  # safe to run twice
    sub.refresh_from_db()
    assert sub.plan.code == "basic"


def test_cancel_at_period_end_then_ended(tenant: Tenant, world: dict[str, Any]) -> None:
    sub = subscribe(tenant, world)
    result = subscription_change(subscription=sub, action="cancel", params={}, actor=ACTOR, at=paris(2026, 4, 16, 10))
    assert (result.status, result.effective_at) == ("scheduled", paris(2026, 5, 1))
    sub.refresh_from_db()
    assert (sub.status, sub.cancel_at) == ("active", paris(2026, 5, 1))
    subscription_changes_apply_due(tenant=tenant, at=paris(2026, 5, 1, 0, 5))
    sub.refresh_from_db()
    assert (sub.status, sub.ended_at) == ("ended", paris(2026, 5, 1))


def test_immediate_cancellation_inside_the_commitment_carries_the_early_termination_fee(
    tenant: Tenant, world: dict[str, Any]
) -> None:
    # given: 12-month commitment from 1 January 2026, 25.00 per device, April billed
    sub = subscribe(tenant, world, plan="committed", devices=("A", "B"))
    april = monthly_period_starting(date(2026, 4, 1), billing_day=1, tz="Europe/Paris")
    component = sub.plan.components.get()
    for device in sub.devices.all():
        service_charge_record(
            subscription=sub, component=component, device=device, period=april, amount=Decimal("25.00")
        )
    # when: cancelled now, on 16 April
    result = subscription_change(
        subscription=sub, action="cancel", params={"at_period_end": False}, actor=ACTOR, at=paris(2026, 4, 16, 10)
    )
    # then: credit 2 x 12.50; fee for May..December = 8 periods x 2 devices x 25.00 = 400.00
    assert lines(result) == [("credit", "platform", "25.00", 2), ("fee", "platform", "400.00", 1)]
    sub.refresh_from_db()
    assert sub.status == "ended"


def test_cancellation_at_period_end_inside_the_commitment_charges_the_committed_periods_after_it(
    tenant: Tenant, world: dict[str, Any]
) -> None:
    # given: 12-month commitment from 1 January 2026, 25.00 per device, two devices, April billed
    sub = subscribe(tenant, world, plan="committed", devices=("A", "B"))
    april = monthly_period_starting(date(2026, 4, 1), billing_day=1, tz="Europe/Paris")
    component = sub.plan.components.get()
    for device in sub.devices.all():
        service_charge_record(
            subscription=sub, component=component, device=device, period=april, amount=Decimal("25.00")
        )
    # when: on 16 April the customer cancels at the end of April
    result = subscription_change(
        subscription=sub, action="cancel", params={"at_period_end": True}, actor=ACTOR, at=paris(2026, 4, 16, 10)
    )
    # then: April runs to its end (nothing credited); May..December = 8 periods x 2 x 25.00 = 400.00,
    # charged now, for the next invoice; leaving at a period end does not waive the commitment
    assert result.status == "scheduled"
    assert lines(result) == [("fee", "platform", "400.00", 1)]
    sub.refresh_from_db()
    assert (sub.status, sub.cancel_at) == ("active", paris(2026, 5, 1))
    fee = ServiceCharge.objects.get(subscription=sub, source="early_termination")
    assert (fee.amount, fee.change_id) == (Decimal("400.00"), result.change.pk if result.change else None)
    # a second request (a double click, a retry) is refused: one scheduled change, one fee
    with pytest.raises(InvalidTransition):
        subscription_change(
            subscription=sub, action="cancel", params={"at_period_end": True}, actor=ACTOR, at=paris(2026, 4, 16, 11)
        )
    # ending at once after all, on 20 April, credits April's unused days (2 x 25.00 x 11/30 = 18.33)
    # and charges no second fee
    result = subscription_change(
        subscription=sub, action="cancel", params={"at_period_end": False}, actor=ACTOR, at=paris(2026, 4, 20, 10)
    )
    assert [line[0] for line in lines(result)] == ["credit"]
    # applied on 1 May, the scheduled change charges nothing more
    subscription_changes_apply_due(tenant=tenant, at=paris(2026, 5, 1, 0, 5))
    assert ServiceCharge.objects.filter(subscription=sub, source="early_termination").count() == 1


def test_changes_api_preview_then_apply(api: APIClient, tenant: Tenant, world: dict[str, Any]) -> None:
    sub = subscribe(tenant, world)
    bill_april_in_advance(sub)
    body = {"action": "change_plan", "plan": "premium", "effective_at": "2026-04-16T10:00:00+02:00", "preview": True}
    preview = api.post("/api/v1/subscriptions/sub/changes", body, format="json")
    assert preview.status_code == 200, preview.content
    assert [(line["type"], line["amount"]) for line in preview.json()["lines"]] == [
        ("credit", "12.50"),
        ("service", "20.00"),
    ]
    assert preview.json()["total"] == "7.50"
    applied = api.post("/api/v1/subscriptions/sub/changes", {**body, "preview": False}, format="json")
    assert (applied.status_code, applied.json()["status"]) == (201, "applied")
    again = api.post("/api/v1/subscriptions/sub/changes", {**body, "preview": False}, format="json")
    assert (again.status_code, again.json()["errors"][0]["code"]) == (422, "same_plan")


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"action": "explode"}, "action", "invalid_choice"),
        ({"action": "change_plan", "plan": "nope"}, "plan", "unknown_plan"),
        ({"action": "remove_devices", "device_ids": ["Z"]}, "device_ids", "unknown_device"),
    ],
)
def test_bad_changes_are_422(
    api: APIClient, tenant: Tenant, world: dict[str, Any], body: dict[str, Any], field: str, code: str
) -> None:
    subscribe(tenant, world)
    response = api.post("/api/v1/subscriptions/sub/changes", body, format="json")
    assert response.status_code == 422, response.content
    assert (response.json()["errors"][0]["field"], response.json()["errors"][0]["code"]) == (field, code)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["basic", "premium", "gold", "yearly"]), st.integers(1, 30), st.integers(0, 23)),
        min_size=1,
        max_size=5,
    )
)
def test_credits_in_a_period_never_exceed_what_was_charged(
    make_tenant: Callable[..., Tenant], steps: list[tuple[str, int, int]]
) -> None:
    # property (pitfall #5): whatever sequence of plan changes happens in April, per device and
    # period the credits never exceed the charges
    tenant = make_tenant()
    world_ = world.__wrapped__(tenant)  # type: ignore[attr-defined]
    sub = subscribe(tenant, world_)
    bill_april_in_advance(sub)
    for plan, day, hour in sorted(steps, key=lambda s: (s[1], s[2])):
        sub.refresh_from_db()
        if sub.plan.code == plan:
            continue
        subscription_change(
            subscription=sub,
            action="change_plan",
            params={"plan": plan},
            actor=ACTOR,
            at=paris(2026, 4, day, hour),
            effective_at=paris(2026, 4, day, hour),
        )
    totals = (
        ServiceCharge.objects.filter(subscription=sub)
        .values("component", "device", "period_start", "kind")
        .annotate(total=Sum("amount"))
    )
    by_key: dict[tuple[Any, ...], dict[str, Decimal]] = {}
    for row in totals:
        by_key.setdefault((row["component"], row["device"], row["period_start"]), {})[row["kind"]] = row["total"]
    for sums in by_key.values():
        assert sums.get("credit", Decimal(0)) <= sums.get("charge", Decimal(0))


def test_changes_api_line_shape(api: APIClient, tenant: Tenant, world: dict[str, Any]) -> None:
    sub = subscribe(tenant, world, devices=("A", "B"))
    bill_april_in_advance(sub)
    body = {"action": "change_plan", "plan": "premium", "effective_at": "2026-04-16T10:00:00+02:00", "preview": True}
    [credit, charge] = api.post("/api/v1/subscriptions/sub/changes", body, format="json").json()["lines"]
    assert credit == {
        "type": "credit",
        "product": "platform",
        "description": "Unused Basic",
        "devices": ["A", "B"],
        "period_start": "2026-04-15T22:00:00Z",
        "period_end": "2026-04-30T22:00:00Z",
        "quantity": 2,
        "unit_amount": "25.00",
        "fraction": "0.5",
        "amount": "25.00",
    }
    assert (charge["type"], charge["unit_amount"], charge["amount"]) == ("service", "40.00", "40.00")


def test_pitfall_1_a_period_fee_is_charged_once_whatever_the_time_zone(tenant: Tenant, world: dict[str, Any]) -> None:
    from billing_platform.periods import billing_date_due

    # a bill run at 23:00 UTC on 31 March: Paris is already 1 April, Los Angeles still 31 March
    run_at = datetime(2026, 3, 31, 23, 0, tzinfo=UTC)
    assert billing_date_due(run_at, billing_day=1, tz="Europe/Paris") == date(2026, 4, 1)
    assert billing_date_due(run_at, billing_day=1, tz="America/Los_Angeles") == date(2026, 3, 1)
    assert billing_date_due(run_at, billing_day=1, tz="Asia/Tokyo") == date(2026, 4, 1)
    # and recording April's fee twice (a retried run) charges it once
    sub = subscribe(tenant, world)
    bill_april_in_advance(sub)
    bill_april_in_advance(sub)
    assert ServiceCharge.objects.filter(subscription=sub).count() == 1


def test_preview_says_what_applying_would_do_and_has_no_id(
    api: APIClient, tenant: Tenant, world: dict[str, Any]
) -> None:
    subscribe(tenant, world, plan="premium")
    body = {"action": "change_plan", "plan": "basic", "preview": True}
    response = api.post("/api/v1/subscriptions/sub/changes", body, format="json").json()
    assert (response["status"], response["outcome"], response["id"]) == ("preview", "scheduled", None)


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        (
            {"action": "cancel", "at_period_end": False, "effective_at": "2025-12-31T00:00:00Z"},
            "effective_at",
            "before_start",
        ),
        (
            {"action": "cancel", "at_period_end": False, "effective_at": "9999-12-31T00:00:00Z"},
            "effective_at",
            "out_of_range",
        ),
        (
            {"action": "add_devices", "devices": [{"device_id": "x", "region": "r" * 101}]},
            "devices[0].region",
            "max_length",
        ),
    ],
)
def test_changes_refuse_impossible_dates_and_sizes(
    api: APIClient, tenant: Tenant, world: dict[str, Any], body: dict[str, Any], field: str, code: str
) -> None:
    subscribe(tenant, world)
    response = api.post("/api/v1/subscriptions/sub/changes", body, format="json")
    assert response.status_code == 422, response.content
    assert (response.json()["errors"][0]["field"], response.json()["errors"][0]["code"]) == (field, code)


def test_nul_characters_are_refused_before_the_database(api: APIClient, tenant: Tenant) -> None:
    assert api.get("/api/v1/customers?q=%00").status_code == 400
    response = api.post(
        "/api/v1/plans", {"code": "p", "name": "P", "components": [{"product": "\u0000"}]}, format="json"
    )
    assert (response.status_code, response.json()["code"]) == (400, "nul_character")
