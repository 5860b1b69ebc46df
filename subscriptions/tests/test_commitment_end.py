"""Renewal (billing.md): at the end of its commitment a subscription with ``auto_renew: false``
ends and its devices stop billing; with ``auto_renew: true`` it goes on."""

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from rest_framework.test import APIClient

from billing_platform.celery import app as celery_app
from catalog.tests.factories import platform_plan
from customers.tests.factories import dupont
from subscriptions import changes
from subscriptions.changes import subscription_change, subscription_ends_apply_due
from subscriptions.models import Subscription
from subscriptions.tasks import subscription_ends_apply_due_task, subscription_ends_apply_due_tenant_task
from subscriptions.tests.factories import signed_subscription
from tenancy.actors import Actor
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


def committed(tenant: Tenant, *, auto_renew: bool, starts_on: date = date(2026, 1, 1)) -> Subscription:
    """Transports Dupont (Paris, billing day 1) on 25.00 per device and month with a 3-month
    commitment, devices A and B, from ``starts_on``."""
    plan = platform_plan(tenant, "committed", "25.00", commitment_months=3)
    return signed_subscription(
        tenant,
        customer=dupont(tenant),
        plan=plan,
        devices=("A", "B"),
        starts_on=starts_on,
        auto_renew=auto_renew,
    )


def status_changes(subscription: Subscription) -> list[tuple[Any, ...]]:
    return [
        (e.at, e.from_status, e.to_status, e.data, e.actor_label)
        for e in subscription.events.filter(type="subscription.status_changed")
    ]


def test_a_subscription_that_does_not_renew_ends_when_its_commitment_does(tenant: Tenant, api: APIClient) -> None:
    # given: a 3-month commitment from 1 January 2026, not renewed: it ends on 1 April, 00:00 Paris
    subscription = committed(tenant, auto_renew=False)
    assert subscription.commitment_ends_at == paris(2026, 4, 1)
    before = api.get("/api/v1/subscriptions/sub").json()
    assert (before["status"], before["auto_renew"], before["ends_at"]) == ("active", False, "2026-03-31T22:00:00Z")
    # when: the schedule passes a minute before, then after the end, then again
    assert subscription_ends_apply_due(tenant=tenant, at=paris(2026, 3, 31, 23, 59)) == 0
    assert subscription_ends_apply_due(tenant=tenant, at=paris(2026, 4, 1, 0, 10)) == 1
    assert subscription_ends_apply_due(tenant=tenant, at=paris(2026, 4, 1, 0, 25)) == 0  # safe to run twice
    # then: cancelled, then ended, at the end of the commitment (not when the schedule ran)
    subscription.refresh_from_db()
    assert (subscription.status, subscription.cancelled_at, subscription.ended_at) == (
        "ended",
        paris(2026, 4, 1),
        paris(2026, 4, 1),
    )
    assert status_changes(subscription) == [
        (paris(2026, 4, 1), "active", "cancelled", {"reason": "not renewed"}, "commitment ended"),
        (paris(2026, 4, 1), "cancelled", "ended", {"reason": "commitment ended"}, "commitment ended"),
    ]
    # the end falls on a billing date: March was billed in advance, April never is: nothing to credit
    assert not subscription.changes.exists()
    after = api.get("/api/v1/subscriptions/sub").json()
    assert (after["status"], after["ended_at"], after["ends_at"]) == (
        "ended",
        "2026-03-31T22:00:00Z",
        "2026-03-31T22:00:00Z",
    )


@pytest.fixture
def eager() -> Iterator[None]:
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_a_subscription_that_renews_goes_on_after_its_commitment(tenant: Tenant, api: APIClient, eager: None) -> None:
    # given: the same commitment, renewed
    subscription = committed(tenant, auto_renew=True)
    # when: the schedule passes after the end of the commitment (the Celery task beat runs, which
    # queues one task per tenant: 1 tenant here, whose task ends nothing)
    assert subscription_ends_apply_due_task.apply().get() == 1
    assert subscription_ends_apply_due_tenant_task.apply(kwargs={"tenant_id": str(tenant.pk)}).get() == 0
    assert subscription_ends_apply_due(tenant=tenant, at=paris(2026, 4, 1, 0, 10)) == 0
    # then: still active, with no end
    subscription.refresh_from_db()
    assert (subscription.status, subscription.ended_at) == ("active", None)
    body = api.get("/api/v1/subscriptions/sub").json()
    assert (body["auto_renew"], body["commitment_ends_at"], body["ends_at"]) == (True, "2026-03-31T22:00:00Z", None)


def test_a_cancellation_scheduled_before_the_end_of_the_commitment_wins(tenant: Tenant) -> None:
    # given: not renewed, and cancelled on 16 February at the end of the period (1 March)
    subscription = committed(tenant, auto_renew=False)
    subscription_change(subscription=subscription, action="cancel", params={}, actor=ACTOR, at=paris(2026, 2, 16, 10))
    from subscriptions.changes import subscription_changes_apply_due

    assert subscription_changes_apply_due(tenant=tenant, at=paris(2026, 3, 1, 0, 5)) == 1
    # when: the end of the commitment passes
    assert subscription_ends_apply_due(tenant=tenant, at=paris(2026, 4, 1, 0, 10)) == 0
    # then: it ended on 1 March, as cancelled
    subscription.refresh_from_db()
    assert (subscription.status, subscription.ended_at) == ("ended", paris(2026, 3, 1))


def test_a_subscription_that_cannot_be_ended_is_left_for_the_next_run(tenant: Tenant, monkeypatch: Any) -> None:
    # given: two subscriptions not renewed, ending on 1 April; reading the first one's fees fails
    first = committed(tenant, auto_renew=False)
    second = signed_subscription(
        tenant, customer=first.customer, plan=first.plan, devices=("C",), external_id="other", auto_renew=False
    )
    credits = changes._credits

    def broken(subscription: Subscription, *args: Any) -> Any:
        if subscription.external_id == "sub":
            raise RuntimeError("no price")
        return credits(subscription, *args)

    monkeypatch.setattr(changes, "_credits", broken)
    # when
    assert subscription_ends_apply_due(tenant=tenant, at=paris(2026, 4, 1, 0, 10)) == 1
    # then: the other one has ended; the first is ended by the next run, once fixed, at its end
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("active", "ended")
    monkeypatch.undo()
    assert subscription_ends_apply_due(tenant=tenant, at=paris(2026, 4, 1, 0, 25)) == 1
    first.refresh_from_db()
    assert (first.status, first.ended_at) == ("ended", paris(2026, 4, 1))
