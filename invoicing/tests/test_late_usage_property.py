"""Property (pitfall #11): for any sequence of accepted events, late or not, what the invoices bill
for a usage period (its original line plus every adjustment, credits subtracted) equals the price
of all that period's events, computed here from the events themselves."""

from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing_platform.money import round_minor
from catalog.charge_models import Usage, price
from invoicing.models import InvoiceLine
from invoicing.services import invoice_generate
from invoicing.tests.factories import usage_customer
from tenancy.actors import Actor
from tenancy.models import Tenant
from usage.ingest import events_ingest
from usage.partitions import forget_known_partitions

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")
MARCH = datetime(2026, 3, 1, tzinfo=PARIS)
APRIL = datetime(2026, 4, 1, tzinfo=PARIS)
MAY = datetime(2026, 5, 1, tzinfo=PARIS)
DEVICE_TYPES = {"A": "tracker", "B": "camera"}

# Data by device type and time band (peak 08:00-20:00 Paris), pooled.
DATA = {
    "model": "matrix",
    "dimensions": ["device_type", "time_band"],
    "cells": [
        {
            "match": {"device_type": "tracker", "time_band": "peak"},
            "charge": {"model": "per_unit", "unit_amount": "0.02"},
        },
        {
            "match": {"device_type": "tracker", "time_band": "off_peak"},
            "charge": {"model": "per_unit", "unit_amount": "0.0125"},
        },
        {"match": {"device_type": "camera"}, "charge": {"model": "per_unit", "unit_amount": "0.03"}},
    ],
}
# SMS per device, 5 included per device, then volume tiers: a late event can lower the amount.
SMS_INCLUDED = Decimal(5)
SMS = {"model": "volume", "tiers": [{"up_to": 10, "unit_amount": "0.10"}, {"up_to": None, "unit_amount": "0.05"}]}

# When a batch arrives, Paris time: before the 1 April invoice, on 30 April before the 1 May one
# (March is late then), on 1 May after it (March and April are late; within the 62-day limit).
ARRIVALS = (
    datetime(2026, 3, 31, 23, 30, tzinfo=PARIS),
    datetime(2026, 4, 30, 23, 30, tzinfo=PARIS),
    datetime(2026, 5, 1, 12, 0, tzinfo=PARIS),
)
# The invoices, each made at 01:00 Paris on its billing date.
BILLING_DATES = (date(2026, 4, 1), date(2026, 5, 1), date(2026, 6, 1))

Event = tuple[str, str, int, int, int, str | None, int]  # device, meter, day, hour, value, device_type, arrival
EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["A", "B"]),
        st.sampled_from(["mb", "sms"]),
        st.integers(0, 60),  # days after 1 March: 1 March to 30 April
        st.integers(0, 23),
        st.integers(0, 3000),
        st.sampled_from([None, "tracker", "camera"]),  # None: the device's own type
        st.integers(0, 2),
    ),
    min_size=1,
    max_size=12,
)


def world(tenant: Tenant) -> Any:
    """Dupont (Paris, billing day 1) since 1 March 2026 with tracker A and camera B, billed for
    data (``DATA``) and SMS (``SMS``, per device)."""
    return usage_customer(
        tenant,
        products={"data": "Data", "sms": "SMS"},
        meters={
            "mb": {
                "name": "MB",
                "aggregation": "sum",
                "field": "mb",
                "dimensions": ["device_type"],
                "time_bands": {"peak": ["08:00", "20:00"]},
            },
            "sms": {"name": "SMS", "aggregation": "sum", "field": "n"},
        },
        components=[
            {"product": "data", "meter": "mb", "charge": DATA},
            {"product": "sms", "meter": "sms", "pooled": False, "included_per_device": 5, "charge": SMS},
        ],
        devices=[{"device_id": d, "device_type": t} for d, t in DEVICE_TYPES.items()],
    )


def timestamp(day: int, hour: int) -> datetime:
    local = MARCH.date() + timedelta(days=day)
    return datetime(local.year, local.month, local.day, hour, tzinfo=PARIS)


def expected(events: list[Event], period_start: datetime, period_end: datetime) -> dict[str, Decimal]:
    """The price of the period's events, by product, computed from the events alone."""
    data: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    sms: dict[str, Decimal] = defaultdict(Decimal)
    for device, meter, day, hour, value, device_type, _ in events:
        at = timestamp(day, hour)
        if not period_start <= at < period_end:
            continue
        if meter == "mb":
            band = "peak" if 8 <= at.astimezone(PARIS).hour < 20 else "off_peak"
            data[(device_type or DEVICE_TYPES[device], band)] += value
        else:
            sms[device] += value % 20
    groups = {key: Usage(quantity=q) for key, q in data.items()}
    data_amount = price(
        charge=DATA, usage=Usage(quantity=sum(data.values(), Decimal(0)), groups=groups), currency="EUR"
    )
    sms_precise = sum(
        (
            price(charge=SMS, usage=Usage(quantity=max(q - SMS_INCLUDED, Decimal(0))), currency="EUR").precise_amount
            for q in sms.values()
        ),
        Decimal(0),
    )
    return {"data": data_amount.amount, "sms": round_minor(sms_precise, "EUR")}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=EVENTS)
def test_a_periods_lines_and_adjustments_add_up_to_the_price_of_all_its_events(
    make_tenant: Callable[..., Tenant], events: list[Event]
) -> None:
    # given: a fresh tenant, and every event in its batch (an April event cannot arrive in March)
    forget_known_partitions()
    tenant = make_tenant()
    customer = world(tenant)
    events = [(*e[:6], max(e[6], 1) if timestamp(e[2], e[3]) >= APRIL else e[6]) for e in events]
    batches: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for i, (device, meter, day, hour, value, device_type, arrival) in enumerate(events):
        properties: dict[str, Any] = {"mb": value} if meter == "mb" else {"n": value % 20}
        if device_type is not None and meter == "mb":
            properties["device_type"] = device_type
        batches[arrival].append(
            {
                "transaction_id": "e%d" % i,
                "code": meter,
                "device_id": device,
                "timestamp": timestamp(day, hour).isoformat(),
                "properties": properties,
            }
        )
    # when: each batch arrives, then the next invoice is made
    for arrival, billing_date in enumerate(BILLING_DATES):
        if batches[arrival]:
            result = events_ingest(tenant=tenant, events=batches[arrival], received_at=ARRIVALS[arrival])
            assert result.count("accepted") == len(batches[arrival]), result.results
        invoice_generate(
            customer=customer,
            billing_date=billing_date,
            at=datetime(billing_date.year, billing_date.month, billing_date.day, 1, tzinfo=PARIS),
        )
    # then: for March and April, by product, the lines of the period add up to its events' price
    for start, end in ((MARCH, APRIL), (APRIL, MAY)):
        billed: dict[str, Decimal] = defaultdict(Decimal)
        for line in InvoiceLine.objects.filter(tenant=tenant, period_start=start, type__in=("usage", "credit")):
            billed[line.product] += line.signed_amount
        assert dict(billed) == expected(events, start, end), (start, events)
