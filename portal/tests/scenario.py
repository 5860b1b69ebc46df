"""The portal pages' customer: Transports Dupont (Paris, billing day 1, French, EUR) subscribed since
1 March 2026 to plan ``p``, which bills data per MB (meter ``mb``: the sum of ``properties.mb``,
split by device type and region, peak hours 08:00-20:00) at 0.02 EUR beyond 100 MB included per
device; devices P (a probe, region EU) and T (a tracker, region US); 20 % VAT."""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rest_framework.test import APIClient

from customers.models import Customer
from invoicing.tests.factories import usage_customer
from tenancy.models import Tenant
from usage.tests.factories import post_events

PARIS = ZoneInfo("Europe/Paris")
# 20 April 2026, 14:00 in Paris: the open period is April, [1 April, 1 May) in Paris.
NOW = datetime(2026, 4, 20, 14, tzinfo=PARIS)

METER: dict[str, Any] = {
    "name": "Data (MB)",
    "aggregation": "sum",
    "field": "mb",
    "dimensions": ["device_type", "region"],
    "time_bands": {"peak": ["08:00", "20:00"]},
}


def portal_customer(tenant: Tenant, external_id: str = "dupont", **fields: Any) -> Customer:
    return usage_customer(
        tenant,
        products={"data": "Data"},
        meters={"mb": METER},
        components=[
            {
                "product": "data",
                "meter": "mb",
                "included_per_device": "100",
                "charge": {"model": "per_unit", "unit_amount": "0.02"},
            }
        ],
        devices=[
            {"device_id": "P", "device_type": "probe", "region": "EU"},
            {"device_id": "T", "device_type": "tracker", "region": "US"},
        ],
    )


def event(tid: str, device: str, at: datetime, mb: int | str) -> dict[str, Any]:
    return {
        "transaction_id": tid,
        "code": "mb",
        "device_id": device,
        "timestamp": at.isoformat(),
        "properties": {"mb": mb},
    }


# April's data, in Paris time: P 150 MB at 10:00 on 10 April (peak) and 50 MB at 22:00 on 11 April
# (off-peak); T 30 MB at 11:00 on 10 April (peak). And a March event, outside the open period.
APRIL_EVENTS = [
    event("p1", "P", datetime(2026, 4, 10, 10, tzinfo=PARIS), 150),
    event("p2", "P", datetime(2026, 4, 11, 22, tzinfo=PARIS), 50),
    event("t1", "T", datetime(2026, 4, 10, 11, tzinfo=PARIS), 30),
    event("m1", "T", datetime(2026, 3, 31, 23, tzinfo=PARIS), 999),
]


def send_usage(client: APIClient) -> None:
    response = post_events(client, APRIL_EVENTS, NOW)
    assert response.status_code == 202, response.content
    assert response.json()["accepted"] == len(APRIL_EVENTS), response.json()
