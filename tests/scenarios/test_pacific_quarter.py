"""A quarterly scenario west of UTC, end to end through the API and signed device-cloud webhooks,
time frozen at each step: billing day 31 in Los Angeles, a trial that ends mid-period after a
mid-period signature, a one-time activation fee per device, data priced by a matrix of device type
(from the device's attributes) and time band (in the customer's zone), and a late event. Every
invoice line and total is computed by hand below.

The seller is established in the United States (a seller outside the EU keeps the rate table of the
buyer's country, and issues no Factur-X unless it turns it on). The offer (USD, sales tax 7.25 % on
every product), plan ``pacific-quarterly``, quarterly, 14-day trial:

- service ``platform``: 90.00 per device and quarter, in advance, from the subscription's start;
- fee ``activation``: 15.00 per device, once, on its first activation;
- usage ``data``: meter ``data_mb`` = sum of ``mb``, dimension ``device_type``, time band ``peak``
  08:00-20:00 (else ``off_peak``), pooled, matrix on (device_type, time_band): probe/peak 0.02,
  probe/off_peak 0.01, tracker/any 0.004, default 0.05 per MB.

Customer "Pacific Haulage": US, America/Los_Angeles (UTC-8 in winter, UTC-7 from 8 March 2026),
billing day 31. Its quarters, anchored on the month of the start (February) and clamped to the
month's last day: [30 Nov 2025, 28 Feb 2026) of 90 days, [28 Feb, 31 May 2026), [31 May, 31 Aug).

Signed on 10 February 2026 (10:00 LA) with P1 (``device_type: probe``) and T1 (``tracker``): it
starts on 10 February, its trial ends on 24 February at 00:00 LA. P1 is activated on 12 February,
T1 on 5 March. No event names a device type: each is priced as its device is registered.
"""

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from rest_framework.test import APIClient
from standardwebhooks import Webhook

from invoicing.tests.billing_api import eager_celery, ok, post
from tenancy.keys import generate_webhook_secret
from tenancy.models import ApiKeyScope, Tenant

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]
__all__ = ["eager_celery"]
LA = ZoneInfo("America/Los_Angeles")


def la(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LA)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


OFFER: list[tuple[str, dict[str, Any]]] = [
    ("products", {"code": "platform", "name": "Platform", "kind": "service"}),
    ("products", {"code": "activation", "name": "Activation", "kind": "fee"}),
    ("products", {"code": "data", "name": "Data", "kind": "usage"}),
    (
        "meters",
        {
            "code": "data_mb",
            "name": "Data (MB)",
            "aggregation": "sum",
            "field": "mb",
            "dimensions": ["device_type"],
            "time_bands": {"peak": ["08:00", "20:00"]},
        },
    ),
    ("tax_rates", {"country": "US", "tax_category": "standard", "rate": "7.25"}),
    (
        "plans",
        {
            "code": "pacific-quarterly",
            "name": "Pacific quarterly",
            "interval": "quarter",
            "trial_days": 14,
            "components": [
                {
                    "product": "platform",
                    "kind": "service",
                    "per_device": True,
                    "starts_on": "subscription_start",
                    "charge": {"model": "flat", "amount": "90.00"},
                },
                {
                    "product": "activation",
                    "kind": "fee",
                    "price": "15.00",
                    "per_device": True,
                    "starts_on": "activation",
                },
                {
                    "product": "data",
                    "kind": "usage",
                    "meter": "data_mb",
                    "pooled": True,
                    "charge": {
                        "model": "matrix",
                        "dimensions": ["device_type", "time_band"],
                        "cells": [
                            {
                                "match": {"device_type": "probe", "time_band": "peak"},
                                "charge": {"model": "per_unit", "unit_amount": "0.02"},
                            },
                            {
                                "match": {"device_type": "probe", "time_band": "off_peak"},
                                "charge": {"model": "per_unit", "unit_amount": "0.01"},
                            },
                            {
                                "match": {"device_type": "tracker"},
                                "charge": {"model": "per_unit", "unit_amount": "0.004"},
                            },
                        ],
                        "default": {"model": "per_unit", "unit_amount": "0.05"},
                    },
                },
            ],
            "prices": [{"currency": "USD"}],
        },
    ),
    (
        "customers",
        {
            "external_id": "pacific",
            "name": "Pacific Haulage",
            "email": "ap@pacific.test",
            "currency": "USD",
            "timezone": "America/Los_Angeles",
            "language": "en",
            "country": "US",
            "billing_day": 31,
        },
    ),
]


class Quarter:
    """The scenario, step by step through the API."""

    def __init__(self, tenant: Tenant, api: APIClient, make_client: Any, capture: Any) -> None:
        self.secret = generate_webhook_secret()
        tenant.device_cloud_secrets = [self.secret]
        # A seller established in the United States: its US customers pay the sales tax of their
        # state, a rate of its table (a seller outside the EU keeps the buyer country's rates).
        tenant.country, tenant.vat_number, tenant.legal_registration_id, tenant.legal_registration_scheme = (
            "US",
            "",
            "",
            "",
        )
        tenant.save()
        self.api, self.capture = api, capture
        self.cloud = make_client(tenant, ApiKeyScope.DEVICE_CLOUD)
        self.ingest = make_client(tenant, ApiKeyScope.INGEST)

    def activate(self, device: str, at: datetime) -> None:
        body = json.dumps({"type": "device.activated", "data": {"device_id": device, "occurred_at": at.isoformat()}})
        with time_machine.travel(at, tick=False), self.capture(execute=True):
            ok(
                self.cloud.post(
                    "/api/v1/webhooks/device-cloud",
                    data=body,
                    content_type="application/json",
                    HTTP_WEBHOOK_ID=f"act-{device}",
                    HTTP_WEBHOOK_TIMESTAMP=str(int(at.timestamp())),
                    HTTP_WEBHOOK_SIGNATURE=Webhook(self.secret).sign(f"act-{device}", at.astimezone(UTC), body),
                )
            )

    def usage(self, at: datetime, events: list[tuple[str, str, datetime, int]]) -> dict[str, Any]:
        body = {
            "events": [
                {
                    "transaction_id": t,
                    "code": "data_mb",
                    "device_id": d,
                    "timestamp": ts.isoformat(),
                    "properties": {"mb": mb},
                }
                for t, d, ts, mb in events
            ]
        }
        with time_machine.travel(at, tick=False):
            result: dict[str, Any] = ok(self.ingest.post("/api/v1/events", body, format="json"))
        assert result["accepted"] == len(events), result
        return result

    def bill(self, at: datetime, billing_date: str) -> dict[str, Any]:
        with time_machine.travel(at, tick=False), self.capture(execute=True):
            run = ok(self.api.post("/api/v1/bill_runs", {"billing_date": billing_date}, format="json"))
        with time_machine.travel(at, tick=False):
            run = ok(self.api.get(f"/api/v1/bill_runs/{run['id']}"))
            assert (run["status"], run["created"]) == ("completed", 1), run
            found = ok(
                self.api.get(f"/api/v1/invoices?customer=pacific&date_from={billing_date}&date_to={billing_date}")
            )
        [invoice] = found["results"]
        return dict(invoice)


@pytest.fixture
def invoices(
    tenant: Tenant, api: APIClient, make_client: Any, django_capture_on_commit_callbacks: Any
) -> dict[str, dict[str, Any]]:
    """The invoices of 28 February and 31 May 2026."""
    quarter = Quarter(tenant, api, make_client, django_capture_on_commit_callbacks)
    for path, body in OFFER:
        post(api, la(2026, 1, 15, 9), path, body)
    signature = {
        "external_id": "pacific-fleet",
        "customer": "pacific",
        "plan": "pacific-quarterly",
        "signed_at": "2026-02-10T10:00:00-08:00",
        "devices": [{"device_id": "P1", "device_type": "probe"}, {"device_id": "T1", "device_type": "tracker"}],
    }
    subscription = post(api, la(2026, 2, 10, 10), "subscriptions", signature)
    assert (subscription["starts_at"], subscription["trial_ends_at"]) == (
        "2026-02-10T08:00:00Z",  # 10 February 00:00 LA
        "2026-02-24T08:00:00Z",  # 14 days later: 24 February 00:00 LA
    )
    quarter.activate("P1", la(2026, 2, 12, 9))
    quarter.usage(
        la(2026, 2, 27, 20),
        [
            ("p1-1", "P1", utc(2026, 2, 20, 17), 1000),  # 20 Feb 09:00 LA: probe, peak
            ("p1-2", "P1", utc(2026, 2, 21, 5), 2000),  # 20 Feb 21:00 LA: probe, off_peak
            ("t1-1", "T1", utc(2026, 2, 28, 3), 4000),  # 27 Feb 19:00 LA, still February there: tracker, peak
        ],
    )
    # 28 February 00:00 LA is 08:00 UTC: the run at 09:00 UTC finds the customer due
    february = quarter.bill(utc(2026, 2, 28, 9), "2026-02-28")

    # a late event of the first quarter (25 Feb 10:00 LA, probe, peak), received on 2 March
    late = quarter.usage(la(2026, 3, 2, 12), [("p1-late", "P1", utc(2026, 2, 25, 18), 500)])
    assert late.get("late") in (None, 1), late
    quarter.activate("T1", la(2026, 3, 5, 15))
    # the second quarter's events, each sent shortly after it happened
    quarter.usage(la(2026, 3, 10, 14), [("t1-2", "T1", utc(2026, 3, 10, 20), 5000)])  # 10 Mar 13:00 PDT: tracker, peak
    quarter.usage(la(2026, 4, 2, 9), [("p1-3", "P1", utc(2026, 4, 2, 6, 30), 3000)])  # 1 Apr 23:30 PDT: probe, off_peak
    # 30 May 22:00 PDT, still May there: probe, off_peak
    quarter.usage(la(2026, 5, 30, 23), [("p1-4", "P1", utc(2026, 5, 31, 5), 1000)])
    # 31 May 00:00 PDT is 07:00 UTC
    may = quarter.bill(utc(2026, 5, 31, 8), "2026-05-31")
    return {"february": february, "may": may}


def lines(invoice: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(type, product, devices, local first day of the period or "", amount), in the invoice's order."""
    return [
        (
            line["type"],
            line["product"],
            ",".join(line["devices"]),
            datetime.fromisoformat(line["period_start"]).astimezone(LA).date().isoformat()
            if line["period_start"]
            else "",
            line["amount"],
        )
        for line in invoice["lines"]
    ]


def test_the_quarter_bills_the_first_days_after_the_trial_the_quarter_in_advance_and_each_activation_fee_once(
    invoices: dict[str, dict[str, Any]],
) -> None:
    february, may = invoices["february"], invoices["may"]
    # 28 February, the first invoice: what does not depend on how usage is priced
    assert [line for line in lines(february) if line[0] != "usage"] == [
        # trial over on 24 February: 24-27 February, 4 of the quarter's 90 days, 2 x 90.00 x 4/90 = 8.00
        ("service", "platform", "P1,T1", "2026-02-24", "8.00"),
        # the next quarter in advance, [28 Feb, 31 May): 2 x 90.00
        ("service", "platform", "P1,T1", "2026-02-28", "180.00"),
        # P1 activated on 12 February: 1 x 15.00 (T1 not yet activated)
        ("fee", "activation", "P1", "", "15.00"),
    ]
    [first_days] = [line for line in february["lines"] if line["description"].startswith("Platform, ")]
    assert first_days["description"] == "Platform, 24–27 Feb 2026 (4/90)"
    # the usage of the first quarter: 1000 + 2000 + 4000 MB, T1's event of 28 Feb UTC counted in February
    [usage] = [line for line in february["lines"] if line["type"] == "usage"]
    assert (usage["product"], usage["detail"]["metered_quantity"], usage["period_start"]) == (
        "data",
        "7000",
        "2025-11-30T08:00:00Z",  # 30 November 2025 00:00 LA
    )
    # 31 May: the next quarter in advance, and T1's activation fee, once; P1's is not billed again
    assert [line for line in lines(may) if line[0] != "usage"] == [
        ("service", "platform", "P1,T1", "2026-05-31", "180.00"),  # [31 May, 31 Aug): 2 x 90.00
        ("fee", "activation", "T1", "", "15.00"),  # activated on 5 March: 1 x 15.00
    ]
    assert (may["issue_date"], february["issue_date"]) == ("2026-05-31", "2026-02-28")


def test_every_line_and_total_of_the_quarter(invoices: dict[str, dict[str, Any]]) -> None:
    february, may = invoices["february"], invoices["may"]
    assert lines(february) == [
        ("service", "platform", "P1,T1", "2026-02-24", "8.00"),  # 2 x 90.00 x 4/90
        ("service", "platform", "P1,T1", "2026-02-28", "180.00"),  # 2 x 90.00 in advance
        # the first quarter's data, each group as its device is registered, bands in LA time:
        # probe/peak 1000 x 0.02 = 20.00; probe/off_peak 2000 x 0.01 = 20.00; tracker/peak 4000 x 0.004 = 16.00
        ("usage", "data", "", "2025-11-30", "56.00"),
        ("fee", "activation", "P1", "", "15.00"),
    ]
    # net 8.00 + 180.00 + 56.00 + 15.00 = 259.00; tax 7.25 % = 18.7775 -> 18.78; total 277.78
    assert (february["net_total"], february["taxes"][0]["amount"], february["total"]) == ("259.00", "18.78", "277.78")

    assert lines(may) == [
        ("service", "platform", "P1,T1", "2026-05-31", "180.00"),  # 2 x 90.00 in advance
        # the second quarter: tracker/peak 5000 x 0.004 = 20.00; probe/off_peak (3000 + 1000) x 0.01 = 40.00
        ("usage", "data", "", "2026-02-28", "60.00"),
        ("fee", "activation", "T1", "", "15.00"),
        # the late 500 MB of the first quarter, probe/peak: it is now 1500 x 0.02 + 20.00 + 16.00 = 66.00,
        # less the 56.00 billed: 10.00
        ("usage", "data", "", "2025-11-30", "10.00"),
    ]
    assert may["lines"][-1]["adjustment"] is True
    # net 180.00 + 60.00 + 15.00 + 10.00 = 265.00; tax 7.25 % = 19.2125 -> 19.21; total 284.21
    assert (may["net_total"], may["taxes"][0]["amount"], may["total"]) == ("265.00", "19.21", "284.21")
