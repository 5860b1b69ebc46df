"""Renewal, end to end through the API and the bill runs (billing.md): a subscription with
``auto_renew: false`` ends with its 3-month commitment on 1 April 2026. The invoice of 1 March bills
its last in-advance fee (March); the invoice of 1 April bills only March's usage, in arrears, whether
the schedule ends the subscription before or after the run; nothing is billed after. With
``auto_renew: true`` April is billed in advance as usual."""

from datetime import datetime
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from catalog.tests.factories import SMART_FLEET_METER, SMART_FLEET_TAX_RATE
from customers.tests.factories import DUPONT
from invoicing.tests.billing_api import eager_celery, ok, paris, send_data_mb
from subscriptions.tasks import subscription_ends_apply_due_tenant_task
from tenancy.models import ApiKeyScope, Tenant

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]
__all__ = ["eager_celery"]

# 25.00 per device and month from the subscription's start, data at 0.010 per MB, 3 months' commitment.
PLAN: dict[str, Any] = {
    "code": "fleet-3m",
    "name": "Fleet, 3 months",
    "interval": "month",
    "commitment_months": 3,
    "components": [
        {
            "product": "fleet-platform",
            "kind": "service",
            "per_device": True,
            "starts_on": "subscription_start",
            "charge": {"model": "flat", "amount": "25.00"},
        },
        {
            "product": "data-overage",
            "kind": "usage",
            "meter": "data_mb",
            "pooled": True,
            "charge": {"model": "per_unit", "unit_amount": "0.010"},
        },
    ],
    "prices": [{"currency": "EUR"}],
}


def signed(api: APIClient, *, auto_renew: bool) -> None:
    """The offer, Transports Dupont (Paris, billing day 1) and its subscription ``dupont-3m``
    signed on 1 January 2026 with devices A and B."""
    with time_machine.travel(paris(2026, 1, 1, 9), tick=False):
        for path, body in (
            ("/api/v1/products", {"code": "fleet-platform", "name": "Fleet platform", "kind": "service"}),
            ("/api/v1/products", {"code": "data-overage", "name": "Data overage", "kind": "usage"}),
            ("/api/v1/meters", SMART_FLEET_METER),
            ("/api/v1/tax_rates", SMART_FLEET_TAX_RATE),
            ("/api/v1/plans", PLAN),
            ("/api/v1/customers", DUPONT),
        ):
            ok(api.post(path, body, format="json"))
        body = {
            "external_id": "dupont-3m",
            "customer": "dupont",
            "plan": "fleet-3m",
            "signed_at": "2026-01-01T09:00:00+01:00",
            "devices": [{"device_id": "A"}, {"device_id": "B"}],
            "auto_renew": auto_renew,
        }
        subscription = ok(api.post("/api/v1/subscriptions", body, format="json"))
    assert (subscription["commitment_ends_at"], subscription["ends_at"]) == (
        "2026-03-31T22:00:00Z",
        None if auto_renew else "2026-03-31T22:00:00Z",
    )


def bill(api: APIClient, at: datetime, billing_date: str, capture: Any) -> list[dict[str, Any]]:
    """A bill run through the API; the customer's invoices of that date."""
    with time_machine.travel(at, tick=False), capture(execute=True):
        run = ok(api.post("/api/v1/bill_runs", {"billing_date": billing_date}, format="json"))
    assert ok(api.get(f"/api/v1/bill_runs/{run['id']}"))["status"] == "completed"
    invoices = ok(api.get(f"/api/v1/invoices?customer=dupont&date_from={billing_date}&date_to={billing_date}"))
    return list(invoices["results"])


def end_commitments(tenant: Tenant, at: datetime) -> int:
    """The task that ends the tenant's subscriptions not renewed, as beat queues it for each tenant;
    how many it ended."""
    with time_machine.travel(at, tick=False):
        return int(subscription_ends_apply_due_tenant_task.apply(kwargs={"tenant_id": str(tenant.pk)}).get())


def summary(invoice: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    return [
        (line["type"], line["product"], line["period_start"], line["quantity"], line["amount"])
        for line in invoice["lines"]
    ]


def usage_of_february_and_march(make_client: Any, tenant: Tenant) -> APIClient:
    ingest = make_client(tenant, ApiKeyScope.INGEST)
    february = [("f-a", "A", paris(2026, 2, 10, 12), 600), ("f-b", "B", paris(2026, 2, 20, 12), 400)]
    assert send_data_mb(ingest, paris(2026, 2, 28, 12), february)["accepted"] == 2
    # 23:30 on 31 March in Paris is still March
    march = [("m-a", "A", paris(2026, 3, 15, 12), 1500), ("m-b", "B", paris(2026, 3, 31, 23, 30), 500)]
    assert send_data_mb(ingest, paris(2026, 3, 31, 23, 45), march)["accepted"] == 2
    return ingest


@pytest.mark.parametrize("ended_first", [True, False], ids=["ended-then-billed", "billed-then-ended"])
def test_a_subscription_not_renewed_bills_its_last_fee_then_only_its_trailing_usage(
    api: APIClient, make_client: Any, tenant: Tenant, django_capture_on_commit_callbacks: Any, ended_first: bool
) -> None:
    # given
    signed(api, auto_renew=False)
    ingest = usage_of_february_and_march(make_client, tenant)
    capture = django_capture_on_commit_callbacks

    # the invoice of 1 March: March in advance, the last fee of the commitment, and February's usage
    [march] = bill(api, paris(2026, 3, 1, 6), "2026-03-01", capture)
    assert summary(march) == [
        ("service", "fleet-platform", "2026-02-28T23:00:00Z", "2", "50.00"),  # 2 x 25.00
        ("usage", "data-overage", "2026-01-31T23:00:00Z", "1000", "10.00"),  # 600 + 400 MB x 0.010
    ]
    assert (march["net_total"], march["tax_total"], march["total"]) == ("60.00", "12.00", "72.00")

    # when: on 1 April the schedule ends the subscription, before or after the bill run
    if ended_first:
        assert end_commitments(tenant, paris(2026, 4, 1, 0, 10)) == 1
        [april] = bill(api, paris(2026, 4, 1, 6), "2026-04-01", capture)
    else:
        [april] = bill(api, paris(2026, 4, 1, 0, 5), "2026-04-01", capture)
        assert end_commitments(tenant, paris(2026, 4, 1, 0, 10)) == 1

    # then: the invoice of 1 April bills March's usage in arrears, and no fee for April
    assert summary(april) == [
        ("usage", "data-overage", "2026-02-28T23:00:00Z", "2000", "20.00"),  # 1500 + 500 MB x 0.010
    ]
    assert (april["net_total"], april["tax_total"], april["total"]) == ("20.00", "4.00", "24.00")
    subscription = ok(api.get("/api/v1/subscriptions/dupont-3m"))
    assert (subscription["status"], subscription["ended_at"], subscription["ends_at"]) == (
        "ended",
        "2026-03-31T22:00:00Z",
        "2026-03-31T22:00:00Z",
    )
    # usage after the end is not taken, and the next billing date bills nothing
    assert send_data_mb(ingest, paris(2026, 4, 2, 12), [("x-a", "A", paris(2026, 4, 2, 10), 100)])["accepted"] == 0
    assert bill(api, paris(2026, 5, 1, 6), "2026-05-01", capture) == []
    assert end_commitments(tenant, paris(2026, 5, 1, 6)) == 0


def test_a_subscription_renewed_goes_on_billing_in_advance(
    api: APIClient, make_client: Any, tenant: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    # given
    signed(api, auto_renew=True)
    usage_of_february_and_march(make_client, tenant)
    # when: the schedule passes the end of the commitment, then the run of 1 April
    assert end_commitments(tenant, paris(2026, 4, 1, 0, 10)) == 0
    [april] = bill(api, paris(2026, 4, 1, 6), "2026-04-01", django_capture_on_commit_callbacks)
    # then: April in advance and March's usage, as any month
    assert summary(april) == [
        ("service", "fleet-platform", "2026-03-31T22:00:00Z", "2", "50.00"),  # 2 x 25.00
        ("usage", "data-overage", "2026-02-28T23:00:00Z", "2000", "20.00"),  # 2000 MB x 0.010
    ]
    assert ok(api.get("/api/v1/subscriptions/dupont-3m"))["status"] == "active"
