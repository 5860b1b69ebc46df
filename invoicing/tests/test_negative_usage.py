"""Negative usage never lowers a bill: a meter refuses negative values unless it says it accepts
them (a net quantity), and where it does, a period or matrix group that nets out below zero bills
nothing instead of failing current usage and the bill run."""

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from djmoney.money import Money

from customers.models import Customer
from invoicing.models import BillRun, BillRunCustomer, Invoice
from invoicing.services import bill_run_chunk, bill_run_plan
from invoicing.tests.factories import usage_customer
from tenancy.actors import Actor
from tenancy.models import ApiKeyScope, Tenant
from usage.models import RejectedEvent
from usage.tests.factories import post_events

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")
MARCH_20 = datetime(2026, 3, 20, 12, tzinfo=PARIS)


@pytest.fixture
def customer(tenant: Tenant) -> Customer:
    """Dupont (Paris, billing day 1) since 1 March 2026 on a plan billing data at 0.01 per MB (a
    meter with the default: negative values refused) and net energy at 0.10 per kWh by site (a
    meter that accepts them: a site may give back more than it takes)."""
    per_kwh = {"model": "per_unit", "unit_amount": "0.10"}
    return usage_customer(
        tenant,
        products={"data": "Data", "energy": "Energy"},
        meters={
            "mb": {"name": "MB", "aggregation": "sum", "field": "mb"},
            "kwh": {
                "name": "Net kWh",
                "aggregation": "sum",
                "field": "kwh",
                "dimensions": ["site"],
                "accepts_negative": True,
            },
        },
        components=[
            {"product": "data", "meter": "mb", "charge": {"model": "per_unit", "unit_amount": "0.01"}},
            {
                "product": "energy",
                "meter": "kwh",
                "charge": {"model": "matrix", "dimensions": ["site"], "cells": [{"match": {}, "charge": per_kwh}]},
            },
        ],
        devices=("A",),
    )


def event(tid: str, code: str, at: datetime, **properties: Any) -> dict[str, Any]:
    return {
        "transaction_id": tid,
        "code": code,
        "device_id": "A",
        "timestamp": at.isoformat(),
        "properties": properties,
    }


def test_a_negative_value_is_refused_for_a_meter_that_does_not_accept_it(
    tenant: Tenant, customer: Customer, make_client: Any
) -> None:
    # given: a batch with a valid event, a negative data volume and a negative net energy
    client = make_client(tenant, ApiKeyScope.FULL)
    batch = [
        event("d1", "mb", MARCH_20, mb=500),
        event("d2", "mb", MARCH_20, mb=-5000000),
        event("e1", "kwh", MARCH_20, kwh=-20, site="roof"),
    ]
    # when
    response = post_events(client, batch, MARCH_20)
    # then: only the negative data volume is refused, with its reason; the rest of the batch is stored
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    assert body["results"][1] == {
        "transaction_id": "d2",
        "status": "rejected",
        "reason": "negative_value",
        "detail": "properties.mb is negative; meter mb does not accept negative values.",
    }
    kept = RejectedEvent.objects.get(tenant=tenant)
    assert (kept.transaction_id, kept.reason, kept.payload["properties"]) == ("d2", "negative_value", {"mb": -5000000})
    # and the bill is not lowered: 500 MB x 0.01 = 5.00; the roof's -20 kWh bills nothing
    with time_machine.travel(MARCH_20, tick=False):
        usage = client.get("/api/v1/customers/dupont/current_usage")
    assert usage.status_code == 200, usage.content
    components = {c["meter"]: c for c in usage.json()["subscriptions"][0]["components"]}
    assert (components["mb"]["quantity"], components["mb"]["amount"]) == ("500", "5.00")
    assert (components["kwh"]["quantity"], components["kwh"]["amount"]) == ("-20", "0.00")


def test_a_negative_sum_bills_nothing_in_current_usage_and_in_the_bill_run(
    tenant: Tenant, customer: Customer, make_client: Any
) -> None:
    # given: in March the roof gives back 50 kWh and takes 30 (net -20), the grid takes 12;
    # 100 MB of data
    client = make_client(tenant, ApiKeyScope.FULL)
    response = post_events(
        client,
        [
            event("e1", "kwh", MARCH_20, kwh=30, site="roof"),
            event("e2", "kwh", MARCH_20, kwh=-50, site="roof"),
            event("e3", "kwh", MARCH_20, kwh="12", site="grid"),
            event("d1", "mb", MARCH_20, mb=100),
        ],
        MARCH_20,
    )
    assert response.json()["accepted"] == 4
    # when: current usage, then the bill run of 1 April
    with time_machine.travel(MARCH_20, tick=False):
        usage = client.get("/api/v1/customers/dupont/current_usage")
    run = BillRun.objects.create(tenant=tenant, billing_date=date(2026, 4, 1))
    run_at = datetime(2026, 4, 1, 6, tzinfo=PARIS)
    for chunk in bill_run_plan(run=run, at=run_at):
        bill_run_chunk(run_id=str(run.pk), customer_ids=chunk, at=run_at)
    # then: the metered quantity is the net -8 kWh; the roof's group (-20) bills 0, not -2.00,
    # the grid's 12 x 0.10 = 1.20
    assert usage.status_code == 200, usage.content
    energy = next(c for c in usage.json()["subscriptions"][0]["components"] if c["meter"] == "kwh")
    assert (energy["quantity"], energy["amount"]) == ("-8", "1.20")
    assert [(g["values"], g["quantity"], g["amount"]) for g in energy["detail"]["groups"]] == [
        ({"site": "grid"}, "12", "1.20"),
        ({"site": "roof"}, "0", "0.00"),
    ]
    assert BillRunCustomer.objects.get(bill_run=run).outcome == "invoiced"
    invoice = Invoice.objects.get(customer=customer)
    # 100 x 0.01 = 1.00 and 1.20; net 2.20, VAT 20 % 0.44, total 2.64
    assert [(line.product, str(line.amount)) for line in invoice.lines.order_by("position")] == [
        ("data", "1.0000"),
        ("energy", "1.2000"),
    ]
    assert invoice.total == Money("2.64", "EUR")
