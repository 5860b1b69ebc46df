"""GET/PUT /api/v1/dunning_policy, the customer's own policy, and POST /api/v1/dunning_runs."""

from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from customers.models import Collection, Customer
from customers.tests.factories import dupont
from invoicing.models import InvoicingSettings
from payments.policies import DunningPolicyInvalid, customer_policy_set, policy_validate
from payments.tests.conftest import open_invoice
from subscriptions.models import Subscription
from tenancy.actors import Actor
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")
POLICY = {"retry_days": [3, 5, 7], "reminder_days": [-3, 7], "suspend_after_days": 21, "uncollectible_after_days": 60}


def test_defaults_then_update(api: APIClient, tenant: Tenant) -> None:
    assert api.get("/api/v1/dunning_policy").json() == {**POLICY, "bill_while_suspended": True, "pay_url": ""}
    body = {**POLICY, "reminder_days": [-5, 10], "suspend_after_days": None, "bill_while_suspended": False}
    response = api.put("/api/v1/dunning_policy", body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["reminder_days"] == [-5, 10]
    assert response.json()["suspend_after_days"] is None
    assert InvoicingSettings.objects.get(tenant=tenant).bill_while_suspended is False


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"reminder_days": [7, -3]}, "reminder_days"),
        ({"retry_days": [3, 3]}, "retry_days"),
        ({"reminder_days": [-61]}, "reminder_days[0]"),
        ({"retry_days": ["soon"]}, "retry_days"),
        ({"suspend_after_days": 30, "uncollectible_after_days": 20}, "uncollectible_after_days"),
        ({"suspend_after_days": 0}, "suspend_after_days"),
    ],
)
def test_bad_policies_are_422_problems(api: APIClient, change: dict[str, Any], field: str) -> None:
    response = api.put("/api/v1/dunning_policy", {**POLICY, "bill_while_suspended": True, **change}, format="json")
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert field in [e["field"] for e in response.json()["errors"]]


def test_suspension_on_the_due_date_is_refused_with_the_reason(api: APIClient, tenant: Tenant) -> None:
    # 0 would suspend on the due date itself, and every hourly pass of that day would undo it.
    response = api.put(
        "/api/v1/dunning_policy", {**POLICY, "suspend_after_days": 0, "bill_while_suspended": True}, format="json"
    )
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "suspend_after_days"
    assert "not suspended on the due date itself" in error["message"]
    dupont(tenant)
    own = api.put("/api/v1/customers/dupont/dunning_policy", {**POLICY, "suspend_after_days": 0}, format="json")
    assert own.status_code == 422
    with pytest.raises(DunningPolicyInvalid, match="not suspended on the due date itself"):
        policy_validate({**POLICY, "suspend_after_days": 0})
    assert policy_validate({**POLICY, "suspend_after_days": 1}).suspend_after_days == 1


def test_customer_policy(api: APIClient, tenant: Tenant) -> None:
    dupont(tenant)
    path = "/api/v1/customers/dupont/dunning_policy"
    assert api.get(path).status_code == 404
    own = {**POLICY, "reminder_days": [1]}
    assert api.put(path, own, format="json").json() == {**own, "customer": "dupont"}
    assert api.get(path).json()["reminder_days"] == [1]
    assert api.delete(path).status_code == 204
    assert api.get(path).status_code == 404
    assert api.put(path, {**own, "retry_days": [5, 1]}, format="json").status_code == 422


def test_run_now_answers_the_report(api: APIClient) -> None:
    response = api.post("/api/v1/dunning_runs")
    assert response.status_code == 200
    assert response.json()["suspensions"] == 0
    assert response.json()["attempts"] == 0
    assert response.json()["ids"]["reminders"] == []


def test_run_report_names_the_attempts_beside_the_retries(
    api: APIClient, tenant: Tenant, fleet: Subscription, charged: list[Any]
) -> None:
    Customer.objects.filter(pk=fleet.customer_id).update(collection=Collection.CHARGE_AUTOMATICALLY)
    card = open_invoice(
        fleet, number="INV-2026-000003", issue_date=date(2026, 6, 1), due_date=date(2026, 6, 1), total="9.00"
    )
    # 4 June 08:00 in Paris: 3 days past due, the first retry day: one attempt.
    with time_machine.travel(datetime(2026, 6, 4, 6, 0, tzinfo=UTC), tick=False):
        report = api.post("/api/v1/dunning_runs").json()
    assert (report["attempts"], report["retries"]) == (1, 1)
    assert report["ids"]["attempts"] == report["ids"]["retries"] == [str(card.pk)]
    assert len(charged) == 1


def test_the_customer_shows_its_own_dunning_policy(api: APIClient, tenant: Tenant) -> None:
    dupont(tenant)
    assert api.get("/api/v1/customers/dupont").json()["dunning_policy"] is None
    own = {**POLICY, "reminder_days": [1], "suspend_after_days": None}
    assert api.put("/api/v1/customers/dupont/dunning_policy", own, format="json").status_code == 200
    assert api.get("/api/v1/customers/dupont").json()["dunning_policy"] == own
    [listed] = api.get("/api/v1/customers").json()["results"]
    assert listed["dunning_policy"] == own
    assert api.delete("/api/v1/customers/dupont/dunning_policy").status_code == 204
    assert api.get("/api/v1/customers/dupont").json()["dunning_policy"] is None


def test_the_customer_list_loads_the_policies_with_the_customers(api: APIClient, tenant: Tenant) -> None:
    def listed() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = api.get("/api/v1/customers")
        assert response.status_code == 200
        return len(queries)

    def with_policy(n: int) -> None:
        customer = Customer.objects.create(
            tenant=tenant, external_id=f"c{n}", name=f"C{n}", email=f"c{n}@example.test", currency="EUR", country="FR"
        )
        customer_policy_set(customer=customer, values=POLICY, actor=ACTOR, at=datetime(2026, 6, 1, tzinfo=UTC))

    with_policy(0)
    listed()  # the first request's one-time lookups
    one = listed()
    for n in range(1, 6):
        with_policy(n)
    # 6 customers with their own policy: as many queries as for 1.
    assert listed() == one
