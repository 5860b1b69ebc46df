"""Late usage of a period billed by an earlier invoice is billed on the next invoice, however long the
subscription's periods are: a quarterly plan's next invoice comes three months after the period
it adjusts, longer than the maximum event age (62 days), and the events that arrived since the
previous invoice must still be found.

Through the public API, bill runs on Celery. Customer c1 in Paris, billing day 1, VAT 20 %; plan
``quarterly``: data at 0.01 per MB, pooled, no allowance."""

from datetime import datetime
from typing import Any

import pytest
from rest_framework.test import APIClient

from invoicing.tests.billing_api import Capture, bill, eager_celery, paris, post, summary
from tenancy.models import ApiKeyScope, Tenant

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]
__all__ = ["eager_celery"]
AT = paris(2025, 12, 20, 9)


def events(api: APIClient, at: datetime, *items: tuple[str, datetime, int]) -> None:
    body = {
        "events": [
            {
                "transaction_id": t,
                "code": "data_mb",
                "device_id": "d1",
                "timestamp": ts.isoformat(),
                "properties": {"mb": mb},
            }
            for t, ts, mb in items
        ]
    }
    result = post(api, at, "events", body)
    assert result["accepted"] == len(items), result


def test_late_usage_of_a_quarter_is_billed_on_the_next_quarters_invoice(
    api: APIClient, make_client: Any, tenant: Tenant, django_capture_on_commit_callbacks: Capture
) -> None:
    # given: a quarterly plan from 1 January 2026; 1000 MB in February
    post(api, AT, "products", {"code": "data", "name": "Data", "kind": "usage"})
    post(api, AT, "meters", {"code": "data_mb", "name": "Data (MB)", "aggregation": "sum", "field": "mb"})
    post(api, AT, "tax_rates", {"country": "FR", "tax_category": "standard", "rate": "20"})
    usage = {"product": "data", "kind": "usage", "meter": "data_mb", "pooled": True}
    post(
        api,
        AT,
        "plans",
        {
            "code": "quarterly",
            "name": "Quarterly",
            "interval": "quarter",
            "components": [{**usage, "charge": {"model": "per_unit", "unit_amount": "0.01"}}],
            "prices": [{"currency": "EUR"}],
        },
    )
    customer = {"external_id": "c1", "name": "C1", "email": "c1@x.test", "currency": "EUR", "country": "FR"}
    post(api, AT, "customers", {**customer, "timezone": "Europe/Paris", "billing_day": 1})
    signature = {"external_id": "s1", "customer": "c1", "plan": "quarterly", "devices": [{"device_id": "d1"}]}
    post(api, paris(2026, 1, 1, 9), "subscriptions", {**signature, "signed_at": "2026-01-01T09:00:00+01:00"})
    ingest = make_client(tenant, ApiKeyScope.INGEST)
    events(ingest, paris(2026, 2, 10, 12), ("feb", paris(2026, 2, 10, 11), 1000))
    april = bill(api, paris(2026, 4, 1, 6), "2026-04-01", django_capture_on_commit_callbacks)
    assert summary(april) == [("usage", "data", "", "10.00")]  # the first quarter: 1000 x 0.01

    # when: 500 MB of 20 March arrive on 5 April, after the first quarter was invoiced
    events(ingest, paris(2026, 4, 5, 12), ("late", paris(2026, 3, 20, 11), 500))
    july = bill(api, paris(2026, 7, 1, 6), "2026-07-01", django_capture_on_commit_callbacks)

    # then: the 1 July invoice, 91 days after the first quarter ended, bills them as an adjustment:
    # 1500 x 0.01 = 15.00, less the 10.00 billed = 5.00
    assert summary(july) == [("usage", "data", "", "0.00"), ("usage", "data", "", "5.00")]
    assert [line["adjustment"] for line in july["lines"]] == [False, True]
    assert july["lines"][1]["period_start"] == "2025-12-31T23:00:00Z"  # 1 January 00:00 Paris
