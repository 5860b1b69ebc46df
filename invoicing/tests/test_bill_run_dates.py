"""A bill run is for a billing date that has arrived (billing.md): a date still to come is refused
with a 422 that says why, never "completed, 0 of 0". Whether it has arrived is read in the tenant's
time zone and in its customers' zones, not in UTC."""

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from rest_framework.test import APIClient

from customers.tests.factories import dupont
from invoicing.errors import BillingDateNotArrived
from invoicing.models import BillRun
from invoicing.services import bill_run_create, bill_runs_start_due
from subscriptions.tests.factories import monthly_fee_customers, signed_subscription
from tenancy.actors import Actor
from tenancy.models import AuditLogEntry, Tenant

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")
APRIL_1 = date(2026, 4, 1)


def test_a_date_that_has_arrived_in_paris_is_billed_though_it_is_still_the_day_before_in_utc(tenant: Tenant) -> None:
    # given: a Paris tenant; 22:30 UTC on 31 March is 00:30 on 1 April in Paris
    monthly_fee_customers(tenant)
    at = datetime(2026, 3, 31, 22, 30, tzinfo=UTC)
    # when
    run = bill_run_create(tenant=tenant, billing_date=APRIL_1, actor=ACTOR, at=at)
    # then
    assert run.billing_date == APRIL_1


def test_a_date_still_to_come_in_paris_is_refused_and_nothing_is_stored(tenant: Tenant) -> None:
    # given: 21:30 UTC on 31 March is 23:30 on 31 March in Paris
    monthly_fee_customers(tenant)
    at = datetime(2026, 3, 31, 21, 30, tzinfo=UTC)
    # when / then
    message = r"^The billing date 2026-04-01 has not arrived yet: it is 2026-03-31 in Europe/Paris\.$"
    with pytest.raises(BillingDateNotArrived, match=message) as refused:
        bill_run_create(tenant=tenant, billing_date=APRIL_1, actor=ACTOR, at=at)
    assert (refused.value.status, refused.value.code) == (422, "billing_date_not_arrived")
    assert refused.value.extra == {"today": "2026-03-31", "time_zone": "Europe/Paris"}
    assert not BillRun.objects.exists()
    assert not AuditLogEntry.objects.filter(action="bill_run.started").exists()


def test_a_date_that_has_arrived_in_utc_but_not_in_los_angeles_is_refused(make_tenant: Any) -> None:
    # given: a Los Angeles tenant and customer; 03:00 UTC on 1 April is 20:00 on 31 March there
    tenant = make_tenant("west", timezone="America/Los_Angeles")
    dupont(tenant, timezone="America/Los_Angeles")
    at = datetime(2026, 4, 1, 3, 0, tzinfo=UTC)
    # when / then
    with pytest.raises(BillingDateNotArrived, match="it is 2026-03-31 in America/Los_Angeles"):
        bill_run_create(tenant=tenant, billing_date=APRIL_1, actor=ACTOR, at=at)
    # and the day before is fine
    assert bill_run_create(tenant=tenant, billing_date=date(2026, 3, 31), actor=ACTOR, at=at).pk


def test_a_date_that_has_arrived_for_a_customer_east_of_the_tenant_is_billed(make_tenant: Any) -> None:
    # given: a Los Angeles tenant with a customer in Paris; 03:00 UTC on 1 April is 20:00 on 31 March
    # in Los Angeles and 05:00 on 1 April in Paris
    tenant = make_tenant("west", timezone="America/Los_Angeles")
    dupont(tenant)
    at = datetime(2026, 4, 1, 3, 0, tzinfo=UTC)
    # when
    run = bill_run_create(tenant=tenant, billing_date=APRIL_1, actor=ACTOR, at=at)
    # then: the Paris customer's 1 April has arrived
    assert run.billing_date == APRIL_1
    # but 2 April has arrived nowhere: the message names the zone furthest ahead
    with pytest.raises(BillingDateNotArrived, match="it is 2026-04-01 in Europe/Paris"):
        bill_run_create(tenant=tenant, billing_date=date(2026, 4, 2), actor=ACTOR, at=at)


def test_the_api_refuses_a_date_still_to_come_with_a_problem(api: APIClient, tenant: Tenant) -> None:
    # given: 23:30 on 31 March in Paris
    monthly_fee_customers(tenant)
    # when
    with time_machine.travel(datetime(2026, 3, 31, 21, 30, tzinfo=UTC), tick=False):
        response = api.post("/api/v1/bill_runs", {"billing_date": "2026-04-01"}, format="json")
    # then
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    message = "The billing date 2026-04-01 has not arrived yet: it is 2026-03-31 in Europe/Paris."
    assert response.json() == {
        "type": "https://tripod.dev/problems/billing_date_not_arrived",
        "title": "Invalid input",
        "status": 422,
        "detail": message,
        "code": "billing_date_not_arrived",
        "errors": [{"field": "billing_date", "code": "not_arrived", "message": message}],
        "today": "2026-03-31",
        "time_zone": "Europe/Paris",
    }
    assert not BillRun.objects.exists()
    # and half an hour later, on 1 April in Paris, the run starts
    with time_machine.travel(datetime(2026, 3, 31, 22, 30, tzinfo=UTC), tick=False):
        assert api.post("/api/v1/bill_runs", {"billing_date": "2026-04-01"}, format="json").status_code == 202


def test_the_schedule_never_starts_a_run_for_a_date_that_has_not_arrived(make_tenant: Any) -> None:
    # given: a Los Angeles tenant with one customer in Los Angeles and one in Paris, both billed on the 1st
    tenant = make_tenant("west", timezone="America/Los_Angeles")
    [in_paris] = monthly_fee_customers(tenant)
    signed_subscription(
        tenant,
        customer=dupont(tenant, external_id="west", timezone="America/Los_Angeles"),
        plan=in_paris.subscriptions.get().plan,
        external_id="west-sub",
        starts_on=date(2026, 3, 1),
    )
    # when: the schedule runs at 23:30 UTC on 31 March (01:30 on 1 April in Paris, 16:30 on 31 March
    # in Los Angeles): the UTC dates 30 and 31 March, on which nobody is billed
    assert bill_runs_start_due(tenant=tenant, at=datetime(2026, 3, 31, 23, 30, tzinfo=UTC)) == 0
    # at 00:30 UTC on 1 April: 1 April has arrived in Paris, not in Los Angeles (17:30 on 31 March),
    # nor in the tenant's zone; the run is started for the Paris customer, and not refused
    assert bill_runs_start_due(tenant=tenant, at=datetime(2026, 4, 1, 0, 30, tzinfo=UTC)) == 1
    [run] = BillRun.objects.filter(tenant=tenant)
    assert run.billing_date == APRIL_1
    assert run.billing_date <= datetime(2026, 4, 1, 0, 30, tzinfo=UTC).astimezone(PARIS).date()
