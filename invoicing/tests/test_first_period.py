"""The first period of a service fee (billing.md): a fee billed in advance is not billed for the
days before it started, so the part of the period it started in, from its start (the
subscription's, or the end of its trial) to the period's end, is billed prorated by calendar days
in the customer's zone on the invoice that closes that period, once. A fee that waits for the
device's activation is prorated from the activation, as it always was, and never billed twice.

Through the public API, bill runs on Celery. Customer c1 in Paris, billing day 1, VAT 20 %; the
``tracker`` plan bills ``platform``: 30.00 per device and month, in advance."""

from datetime import date
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from invoicing.tests.billing_api import Capture, bill, eager_celery, get, paris, post, projected, summary
from subscriptions.models import ServiceCharge
from subscriptions.services import device_event_apply
from tenancy.actors import Actor
from tenancy.models import Tenant

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]
__all__ = ["eager_celery"]
CATALOG_AT = paris(2026, 10, 20, 9)


def catalog(api: APIClient, *, starts_on: str = "subscription_start", per_device: bool = True, **plan: Any) -> None:
    post(api, CATALOG_AT, "products", {"code": "platform", "name": "Platform", "kind": "service"})
    post(api, CATALOG_AT, "tax_rates", {"country": "FR", "tax_category": "standard", "rate": "20"})
    component = {"product": "platform", "kind": "service", "per_device": per_device, "starts_on": starts_on}
    post(
        api,
        CATALOG_AT,
        "plans",
        {
            "code": "tracker",
            "name": "Tracker",
            "components": [{**component, "charge": {"model": "flat", "amount": "30.00"}}],
            "prices": [{"currency": "EUR"}],
            **plan,
        },
    )
    customer = {"external_id": "c1", "name": "C1", "email": "c1@x.test", "currency": "EUR", "country": "FR"}
    post(api, CATALOG_AT, "customers", {**customer, "timezone": "Europe/Paris", "billing_day": 1})


def sign(api: APIClient, signed_at: Any, devices: tuple[str, ...] = ("d1",), **extra: Any) -> None:
    body = {
        "external_id": "s1",
        "customer": "c1",
        "plan": "tracker",
        "signed_at": signed_at.isoformat(),
        "devices": [{"device_id": d} for d in devices],
        **extra,
    }
    post(api, signed_at, "subscriptions", body)


def lines_with_days(invoice: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Each line as (its description, devices, amount, first day of its period)."""
    return [
        (line["description"], ",".join(line["devices"]), line["amount"], (line["period_start"] or "")[:10])
        for line in invoice["lines"]
    ]


def ledger() -> list[tuple[str, str, str, str]]:
    """The charge ledger: (source, covered from, covered to, amount), local days in Paris."""
    return [
        (
            c.source,
            c.covered_start.astimezone(paris(2026, 1, 1).tzinfo).date().isoformat(),
            c.covered_end.astimezone(paris(2026, 1, 1).tzinfo).date().isoformat(),
            f"{c.amount:.2f}",
        )
        for c in ServiceCharge.objects.order_by("period_start", "source", "id")
    ]


def test_a_subscription_signed_mid_month_pays_its_first_days_on_the_first_invoice(
    api: APIClient, django_capture_on_commit_callbacks: Capture
) -> None:
    # given: the example, signed on 15 November 2026 (Paris, billing day 1), from that day
    catalog(api)
    sign(api, paris(2026, 11, 15, 10))
    assert projected(api, paris(2026, 11, 20, 12)) == [
        ("service", "platform", "d1", "16.00"),
        ("service", "platform", "d1", "30.00"),
    ]

    # when
    december = bill(api, paris(2026, 12, 1, 6), "2026-12-01", django_capture_on_commit_callbacks)

    # then: 15-30 November, 16 of November's 30 days: 16/30 x 30.00 = 16.00; December in advance
    assert lines_with_days(december) == [
        ("Platform, 15–30 Nov 2026 (16/30)", "d1", "16.00", "2026-11-14"),  # 15 Nov 00:00 Paris
        ("Platform", "d1", "30.00", "2026-11-30"),  # 1 Dec 00:00 Paris is 30 Nov 23:00 UTC
    ]
    # 46.00 + 20 % VAT 9.20 = 55.20
    assert (december["net_total"], december["total"]) == ("46.00", "55.20")
    # billed once: recorded as the first period's, and a run again changes nothing
    assert bill(api, paris(2026, 12, 1, 7), "2026-12-01", django_capture_on_commit_callbacks)["id"] == december["id"]
    assert ledger() == [
        ("first_period", "2026-11-15", "2026-12-01", "16.00"),
        ("in_advance", "2026-12-01", "2027-01-01", "30.00"),
    ]
    # the next invoice bills January in advance only
    january = bill(api, paris(2027, 1, 1, 6), "2027-01-01", django_capture_on_commit_callbacks)
    assert summary(january) == [("service", "platform", "d1", "30.00")]


def test_after_a_trial_the_rest_of_the_period_is_billed_prorated(
    api: APIClient, django_capture_on_commit_callbacks: Capture
) -> None:
    # given: a 14-day trial, signed on 10 November 2026: the trial ends on 24 November at 00:00
    catalog(api, trial_days=14)
    sign(api, paris(2026, 11, 10, 10))

    # when
    december = bill(api, paris(2026, 12, 1, 6), "2026-12-01", django_capture_on_commit_callbacks)

    # then: no fee for the trial days; 24-30 November, 7/30 x 30.00 = 7.00; December in advance
    assert lines_with_days(december) == [
        ("Platform, 24–30 Nov 2026 (7/30)", "d1", "7.00", "2026-11-23"),
        ("Platform", "d1", "30.00", "2026-11-30"),
    ]
    assert (december["net_total"], december["total"]) == ("37.00", "44.40")  # VAT 7.40


def test_a_trial_that_ends_after_the_billing_date_defers_the_fee_to_its_end(
    api: APIClient, django_capture_on_commit_callbacks: Capture
) -> None:
    # given: two devices, a 14-day trial, signed on 25 November 2026: the trial ends on 9 December
    catalog(api, trial_days=14)
    sign(api, paris(2026, 11, 25, 10), devices=("d1", "d2"))

    # when / then: nothing of the service is billed in advance for December, still in trial at 1 December
    december = bill(api, paris(2026, 12, 1, 6), "2026-12-01", django_capture_on_commit_callbacks)
    assert december == {}
    # 1 January: 9-31 December, 23 of 31 days: 2 x 30.00 x 23/31 = 44.516... -> 44.52; January in advance
    january = bill(api, paris(2027, 1, 1, 6), "2027-01-01", django_capture_on_commit_callbacks)
    assert lines_with_days(january) == [
        ("Platform, 9–31 Dec 2026 (23/31)", "d1,d2", "44.52", "2026-12-08"),
        ("Platform", "d1,d2", "60.00", "2026-12-31"),  # 2 x 30.00
    ]


def test_a_fee_per_subscription_pays_its_first_days_too(
    api: APIClient, django_capture_on_commit_callbacks: Capture
) -> None:
    # given: 30.00 a month for the subscription, whatever its devices; signed on 15 November
    catalog(api, per_device=False)
    sign(api, paris(2026, 11, 15, 10), devices=("d1", "d2"))

    # when
    december = bill(api, paris(2026, 12, 1, 6), "2026-12-01", django_capture_on_commit_callbacks)

    # then: 16/30 x 30.00 = 16.00 once, and December in advance once
    assert summary(december) == [("service", "platform", "", "16.00"), ("service", "platform", "", "30.00")]


def test_a_subscription_starting_on_its_billing_date_is_billed_in_advance_that_day_and_not_again(
    api: APIClient, django_capture_on_commit_callbacks: Capture
) -> None:
    # given: signed on 20 November 2026, starting on 1 December: the period from 1 December is its first
    catalog(api)
    sign(api, paris(2026, 11, 20, 10), starts_on="2026-12-01")

    # when / then: the 1 December invoice bills December in advance, as for any subscription started by then
    december = bill(api, paris(2026, 12, 1, 6), "2026-12-01", django_capture_on_commit_callbacks)
    assert summary(december) == [("service", "platform", "d1", "30.00")]
    # and the 1 January invoice does not bill December again as a first period
    january = bill(api, paris(2027, 1, 1, 6), "2027-01-01", django_capture_on_commit_callbacks)
    assert summary(january) == [("service", "platform", "d1", "30.00")]


def test_a_fee_from_activation_is_prorated_from_the_activation_once_even_with_a_trial(
    api: APIClient, tenant: Tenant, django_capture_on_commit_callbacks: Capture
) -> None:
    # given: the fee waits for the device's activation; a 14-day trial from 10 November (to 24
    # November); d1 is activated during the trial, on 12 November, d2 after it, on 26 November
    catalog(api, starts_on="activation", trial_days=14)
    sign(api, paris(2026, 11, 10, 10), devices=("d1", "d2"))
    for device, at in (("d1", paris(2026, 11, 12, 9)), ("d2", paris(2026, 11, 26, 9))):
        with time_machine.travel(at, tick=False):
            device_event_apply(
                tenant=tenant,
                device_id=device,
                event_type="device.activated",
                occurred_at=at,
                actor=Actor.system("tests"),
            )

    # when
    december = bill(api, paris(2026, 12, 1, 6), "2026-12-01", django_capture_on_commit_callbacks)

    # then: d1 from the trial's end, 24-30 November, 7/30 x 30.00 = 7.00 (not from its activation);
    # d2 from its activation, 26-30 November, 5/30 x 30.00 = 5.00; December in advance for both
    assert lines_with_days(december) == [
        ("Platform, 24–30 Nov 2026 (7/30)", "d1", "7.00", "2026-11-23"),
        ("Platform, 26–30 Nov 2026 (5/30)", "d2", "5.00", "2026-11-25"),
        ("Platform", "d1,d2", "60.00", "2026-11-30"),
    ]
    # each once in the ledger, as activation prorations
    assert [row for row in ledger() if row[0] == "activation"] == [
        ("activation", "2026-11-24", "2026-12-01", "7.00"),
        ("activation", "2026-11-26", "2026-12-01", "5.00"),
    ]
    january = bill(api, paris(2027, 1, 1, 6), "2027-01-01", django_capture_on_commit_callbacks)
    assert summary(january) == [("service", "platform", "d1,d2", "60.00")]


def test_billing_md_smart_fleet_prorations_are_unchanged(
    api: APIClient, tenant: Tenant, django_capture_on_commit_callbacks: Capture
) -> None:
    """billing.md's Smart Fleet prorations, from activation, on a fee of 25.00 per device: A activated
    on 15 March 2026 is billed 15-31 March, 25.00 x 17/31 = 13.709... -> 13.71; B on 20 March, 25.00 x
    12/31 = 9.677... -> 9.68; C on 10 April, 10-30 April, 25.00 x 21/30 = 17.50."""
    # given
    post(api, CATALOG_AT, "products", {"code": "platform", "name": "Platform", "kind": "service"})
    post(api, CATALOG_AT, "tax_rates", {"country": "FR", "tax_category": "standard", "rate": "20"})
    component = {"product": "platform", "per_device": True, "starts_on": "activation"}
    plan = {"code": "tracker", "name": "Tracker", "prices": [{"currency": "EUR"}]}
    post(
        api,
        CATALOG_AT,
        "plans",
        {**plan, "components": [{**component, "charge": {"model": "flat", "amount": "25.00"}}]},
    )
    customer = {"external_id": "c1", "name": "C1", "email": "c1@x.test", "currency": "EUR", "country": "FR"}
    post(api, CATALOG_AT, "customers", {**customer, "timezone": "Europe/Paris", "billing_day": 1})
    sign(api, paris(2026, 3, 10, 10), devices=("A", "B", "C"))
    for device, at in (("A", paris(2026, 3, 15, 9)), ("B", paris(2026, 3, 20, 14)), ("C", paris(2026, 4, 10, 8))):
        with time_machine.travel(at, tick=False):
            device_event_apply(
                tenant=tenant, device_id=device, event_type="device.activated", occurred_at=at, actor=Actor.system("t")
            )

    # when
    april = bill(api, paris(2026, 4, 1, 0, 30), "2026-04-01", django_capture_on_commit_callbacks)
    may = bill(api, paris(2026, 5, 1, 0, 30), "2026-05-01", django_capture_on_commit_callbacks)

    # then
    assert summary(april) == [
        ("service", "platform", "A", "13.71"),  # 25.00 x 17/31
        ("service", "platform", "B", "9.68"),  # 25.00 x 12/31
        ("service", "platform", "A,B", "50.00"),  # April in advance, 2 x 25.00
    ]
    assert summary(may) == [
        ("service", "platform", "C", "17.50"),  # 25.00 x 21/30
        ("service", "platform", "A,B,C", "75.00"),  # May in advance, 3 x 25.00
    ]
    assert date.fromisoformat(may["issue_date"]) == date(2026, 5, 1)


def test_a_trial_ends_at_local_midnight_across_a_change_of_time(
    api: APIClient, django_capture_on_commit_callbacks: Capture
) -> None:
    # given: a 14-day trial from 20 October 2026 (Paris, summer time): it ends on 3 November at
    # 00:00, after the clocks went back on 25 October (14 x 24 hours would end it an hour earlier,
    # on 2 November at 23:00, and charge that day)
    catalog(api, trial_days=14)
    sign(api, paris(2026, 10, 20, 10))
    assert get(api, paris(2026, 10, 20, 11), "subscriptions/s1")["trial_ends_at"] == "2026-11-02T23:00:00Z"

    # when / then: nothing on 1 November (still in trial); on 1 December, 3-30 November, 28/30 x 30.00 = 28.00
    assert bill(api, paris(2026, 11, 1, 6), "2026-11-01", django_capture_on_commit_callbacks) == {}
    december = bill(api, paris(2026, 12, 1, 6), "2026-12-01", django_capture_on_commit_callbacks)
    assert lines_with_days(december) == [
        ("Platform, 3–30 Nov 2026 (28/30)", "d1", "28.00", "2026-11-02"),
        ("Platform", "d1", "30.00", "2026-11-30"),
    ]
