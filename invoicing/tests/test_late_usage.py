"""Pitfalls #11 and #12: late usage is billed as an adjustment on the next invoice, once, and the
allowance is applied once to the whole period."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from invoicing.services import invoice_generate
from invoicing.tests.factories import usage_customer
from tenancy.actors import Actor
from tenancy.models import Tenant
from usage.ingest import events_ingest

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")


@pytest.fixture
def pooled() -> bool:
    return True


@pytest.fixture
def customer(tenant: Tenant, pooled: bool) -> Any:
    return usage_customer(
        tenant,
        products={"data": "Data"},
        meters={"mb": {"name": "MB", "aggregation": "sum", "field": "mb"}},
        components=[
            {
                "product": "data",
                "meter": "mb",
                "included_per_device": 100,
                "pooled": pooled,
                "charge": {"model": "per_unit", "unit_amount": "0.01"},
            }
        ],
        devices=("A", "B"),
    )


def send(tenant: Tenant, received: datetime, *events: tuple[str, datetime, int], device: str = "A") -> None:
    result = events_ingest(
        tenant=tenant,
        received_at=received,
        events=[
            {
                "transaction_id": tid,
                "code": "mb",
                "device_id": device,
                "timestamp": ts.isoformat(),
                "properties": {"mb": mb},
            }
            for tid, ts, mb in events
        ],
    )
    assert result.count("accepted") == len(events)


def usage_lines(invoice: Any) -> list[tuple[str, bool]]:
    return [(str(line.amount), line.adjustment) for line in invoice.lines.filter(type="usage").order_by("position")]


def test_late_march_usage_is_an_adjustment_on_the_may_invoice(tenant: Tenant, customer: Any) -> None:
    # March: 500 MB - 2 x 100 allowance = 300 x 0.01 = 3.00 on the 1 April invoice
    send(tenant, datetime(2026, 3, 31, 12, tzinfo=PARIS), ("m1", datetime(2026, 3, 20, 9, tzinfo=PARIS), 500))
    april = invoice_generate(customer=customer, billing_date=date(2026, 4, 1), at=datetime(2026, 4, 1, 1, tzinfo=PARIS))
    assert april is not None
    assert usage_lines(april) == [("3.0000", False)]
    # 200 MB of March arrive on 10 April: late, kept
    send(tenant, datetime(2026, 4, 10, 12, tzinfo=PARIS), ("m2", datetime(2026, 3, 28, 9, tzinfo=PARIS), 200))
    send(tenant, datetime(2026, 4, 30, 12, tzinfo=PARIS), ("a1", datetime(2026, 4, 20, 9, tzinfo=PARIS), 150))
    may = invoice_generate(customer=customer, billing_date=date(2026, 5, 1), at=datetime(2026, 5, 1, 1, tzinfo=PARIS))
    assert may is not None
    # April: 150 MB is within the 200 MB allowance: 0.00. March re-measured: 700 - 200 = 500 x 0.01 = 5.00,
    # 3.00 already billed: the adjustment is 2.00 (the allowance is not deducted a second time)
    assert usage_lines(may) == [("0.0000", False), ("2.0000", True)]
    adjustment = may.lines.get(adjustment=True)
    assert adjustment.detail == {"metered_quantity": "700", "billed_quantity": "500", "previously_billed": "3.00"}
    # generating again changes nothing; the June invoice does not bill March again
    assert (
        invoice_generate(customer=customer, billing_date=date(2026, 5, 1), at=datetime(2026, 5, 1, 2, tzinfo=PARIS))
        == may
    )
    june = invoice_generate(customer=customer, billing_date=date(2026, 6, 1), at=datetime(2026, 6, 1, 1, tzinfo=PARIS))
    assert june is not None
    assert usage_lines(june) == [("0.0000", False)]


def test_usage_arriving_two_periods_late_is_still_billed_once(tenant: Tenant, customer: Any) -> None:
    # March: 500 MB, billed 3.00 on 1 April; 200 MB of March arrive in April: a 2.00 adjustment on 1 May
    send(tenant, datetime(2026, 3, 31, 12, tzinfo=PARIS), ("m1", datetime(2026, 3, 20, 9, tzinfo=PARIS), 500))
    invoice_generate(customer=customer, billing_date=date(2026, 4, 1), at=datetime(2026, 4, 1, 1, tzinfo=PARIS))
    send(tenant, datetime(2026, 4, 10, 12, tzinfo=PARIS), ("m2", datetime(2026, 3, 28, 9, tzinfo=PARIS), 200))
    may = invoice_generate(customer=customer, billing_date=date(2026, 5, 1), at=datetime(2026, 5, 1, 1, tzinfo=PARIS))
    assert may is not None
    assert usage_lines(may) == [("0.0000", False), ("2.0000", True)]
    # 200 more MB of March arrive on 15 May (46 days old: within the 62-day limit)
    send(tenant, datetime(2026, 5, 15, 12, tzinfo=PARIS), ("m3", datetime(2026, 3, 30, 9, tzinfo=PARIS), 200))
    june = invoice_generate(customer=customer, billing_date=date(2026, 6, 1), at=datetime(2026, 6, 1, 1, tzinfo=PARIS))
    assert june is not None
    # March re-measured: 900 - 200 = 700 x 0.01 = 7.00; 3.00 + 2.00 billed so far: 2.00 more
    assert usage_lines(june) == [("0.0000", False), ("2.0000", True)]
    adjustment = june.lines.get(adjustment=True)
    assert adjustment.detail == {"metered_quantity": "900", "billed_quantity": "700", "previously_billed": "5.00"}
    assert adjustment.period_start == datetime(2026, 3, 1, tzinfo=PARIS)
    # nothing is left to bill for March in July
    july = invoice_generate(customer=customer, billing_date=date(2026, 7, 1), at=datetime(2026, 7, 1, 1, tzinfo=PARIS))
    assert july is not None
    assert usage_lines(july) == [("0.0000", False)]


@pytest.mark.parametrize("pooled", [False])
def test_late_usage_of_a_per_device_component_is_billed_per_device(tenant: Tenant, customer: Any) -> None:
    # March, each device with its own 100 MB: A 500 -> 400 x 0.01 = 4.00, B 50 -> 0.00
    send(tenant, datetime(2026, 3, 31, 12, tzinfo=PARIS), ("a1", datetime(2026, 3, 20, 9, tzinfo=PARIS), 500))
    send(
        tenant, datetime(2026, 3, 31, 12, tzinfo=PARIS), ("b1", datetime(2026, 3, 21, 9, tzinfo=PARIS), 50), device="B"
    )
    april = invoice_generate(customer=customer, billing_date=date(2026, 4, 1), at=datetime(2026, 4, 1, 1, tzinfo=PARIS))
    assert april is not None
    assert usage_lines(april) == [("4.0000", False)]
    # 200 MB of B's March arrive in April: B 250 -> 150 x 0.01 = 1.50 (B's allowance, not A's, absorbs the first 100)
    send(
        tenant, datetime(2026, 4, 10, 12, tzinfo=PARIS), ("b2", datetime(2026, 3, 28, 9, tzinfo=PARIS), 200), device="B"
    )
    may = invoice_generate(customer=customer, billing_date=date(2026, 5, 1), at=datetime(2026, 5, 1, 1, tzinfo=PARIS))
    assert may is not None
    assert usage_lines(may) == [("0.0000", False), ("1.5000", True)]
    adjustment = may.lines.get(adjustment=True)
    assert adjustment.detail == {"metered_quantity": "750", "billed_quantity": "550", "previously_billed": "4.00"}


def test_a_period_without_late_events_is_not_measured_again(tenant: Tenant, customer: Any, monkeypatch: Any) -> None:
    from invoicing import composition

    send(tenant, datetime(2026, 3, 31, 12, tzinfo=PARIS), ("m1", datetime(2026, 3, 20, 9, tzinfo=PARIS), 500))
    invoice_generate(customer=customer, billing_date=date(2026, 4, 1), at=datetime(2026, 4, 1, 1, tzinfo=PARIS))
    # April usage arrives on time; nothing more for March
    send(tenant, datetime(2026, 4, 20, 12, tzinfo=PARIS), ("a1", datetime(2026, 4, 20, 9, tzinfo=PARIS), 400))
    measured: list[Any] = []
    real = composition.aggregate_many

    def recorded(**kwargs: Any) -> Any:
        measured.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(composition, "aggregate_many", recorded)
    may = invoice_generate(customer=customer, billing_date=date(2026, 5, 1), at=datetime(2026, 5, 1, 1, tzinfo=PARIS))
    assert may is not None
    # April: 400 - 200 = 200 x 0.01 = 2.00; March is not scanned again and gets no adjustment
    assert usage_lines(may) == [("2.0000", False)]
    assert measured == []


# --- every charge model: the adjustment re-rates the whole period with the original grouping ------

# data_mb by device type and time band (peak 08:00-20:00 Paris): a tracker's peak MB 0.02, its
# off-peak MB 0.01, a camera's MB 0.03 at any time. No default: every group is priced by a cell.
BANDED_MATRIX = {
    "model": "matrix",
    "dimensions": ["device_type", "time_band"],
    "cells": [
        {
            "match": {"device_type": "tracker", "time_band": "peak"},
            "charge": {"model": "per_unit", "unit_amount": "0.02"},
        },
        {
            "match": {"device_type": "tracker", "time_band": "off_peak"},
            "charge": {"model": "per_unit", "unit_amount": "0.01"},
        },
        {"match": {"device_type": "camera"}, "charge": {"model": "per_unit", "unit_amount": "0.03"}},
    ],
}
# Volume tiers: every MB at 0.02 up to 1000 MB, every MB at 0.01 above (1000 -> 20.00, 1200 -> 12.00).
VOLUME = {
    "model": "volume",
    "tiers": [{"up_to": 1000, "unit_amount": "0.02"}, {"up_to": None, "unit_amount": "0.01"}],
}


@pytest.fixture
def charge() -> dict[str, Any]:
    return BANDED_MATRIX


@pytest.fixture
def priced_customer(tenant: Tenant, pooled: bool, charge: dict[str, Any]) -> Any:
    """Dupont (Paris, billing day 1) since 1 March 2026, devices A and B, data billed by ``charge``
    (pooled or per device) from a meter with the dimension device_type and a peak band."""
    return usage_customer(
        tenant,
        products={"data": "Data"},
        meters={
            "mb": {
                "name": "MB",
                "aggregation": "sum",
                "field": "mb",
                "dimensions": ["device_type"],
                "time_bands": {"peak": ["08:00", "20:00"]},
            }
        },
        components=[{"product": "data", "meter": "mb", "pooled": pooled, "charge": charge}],
        devices=("A", "B"),
    )


def send_typed(tenant: Tenant, received: datetime, *events: tuple[str, str, datetime, str, int]) -> None:
    """Events ``(transaction id, device, timestamp, device_type, MB)`` received at ``received``."""
    result = events_ingest(
        tenant=tenant,
        received_at=received,
        events=[
            {
                "transaction_id": tid,
                "code": "mb",
                "device_id": device,
                "timestamp": ts.isoformat(),
                "properties": {"mb": mb, "device_type": device_type},
            }
            for tid, device, ts, device_type, mb in events
        ],
    )
    assert result.count("accepted") == len(events), result.results


def bill(customer: Any, day: date) -> Any:
    invoice = invoice_generate(
        customer=customer, billing_date=day, at=datetime(day.year, day.month, day.day, 1, tzinfo=PARIS)
    )
    assert invoice is not None
    return invoice


def typed_lines(invoice: Any) -> list[tuple[str, str, bool]]:
    lines = invoice.lines.filter(type__in=("usage", "credit")).order_by("position")
    return [(line.type, str(line.amount), line.adjustment) for line in lines]


@pytest.mark.parametrize("pooled", [True, False])
def test_late_usage_of_a_matrix_with_time_bands_is_re_rated_by_group(
    tenant: Tenant, priced_customer: Any, pooled: bool
) -> None:
    # given: in March, tracker A 1000 MB at 10:00 (peak, 1000 x 0.02 = 20.00) and camera B 500 MB
    # at 22:00 (500 x 0.03 = 15.00): 35.00 on the 1 April invoice, pooled or per device alike
    send_typed(
        tenant,
        datetime(2026, 3, 31, 12, tzinfo=PARIS),
        ("m1", "A", datetime(2026, 3, 10, 10, tzinfo=PARIS), "tracker", 1000),
        ("m2", "B", datetime(2026, 3, 11, 22, tzinfo=PARIS), "camera", 500),
    )
    april = bill(priced_customer, date(2026, 4, 1))
    assert typed_lines(april) == [("usage", "35.0000", False)]
    # when: on 10 April, late March events arrive: tracker A 300 MB at 23:00 (off peak) and camera
    # B 100 MB at 09:00
    send_typed(
        tenant,
        datetime(2026, 4, 10, 12, tzinfo=PARIS),
        ("m3", "A", datetime(2026, 3, 28, 23, tzinfo=PARIS), "tracker", 300),
        ("m4", "B", datetime(2026, 3, 29, 9, tzinfo=PARIS), "camera", 100),
    )
    may = bill(priced_customer, date(2026, 5, 1))
    # then: March re-rated by group: tracker/peak 1000 x 0.02 = 20.00, tracker/off_peak 300 x 0.01
    # = 3.00, camera 600 x 0.03 = 18.00: 41.00, of which 35.00 billed: a 6.00 adjustment. April: 0.00.
    assert typed_lines(may) == [("usage", "0.0000", False), ("usage", "6.0000", True)]
    adjustment = may.lines.get(adjustment=True)
    assert adjustment.detail == {"metered_quantity": "1900", "billed_quantity": "1500", "previously_billed": "35.00"}
    assert (adjustment.period_start, adjustment.period_end) == (
        datetime(2026, 3, 1, tzinfo=PARIS),
        datetime(2026, 4, 1, tzinfo=PARIS),
    )
    # and nothing of March is billed again
    assert typed_lines(bill(priced_customer, date(2026, 6, 1))) == [("usage", "0.0000", False)]


@pytest.mark.parametrize("charge", [VOLUME])
def test_late_usage_that_lowers_a_volume_tier_is_credited_once(tenant: Tenant, priced_customer: Any) -> None:
    # given: 1000 MB in March, all in the first tier: 1000 x 0.02 = 20.00 on the 1 April invoice
    send_typed(
        tenant,
        datetime(2026, 3, 31, 12, tzinfo=PARIS),
        ("m1", "A", datetime(2026, 3, 10, 10, tzinfo=PARIS), "tracker", 1000),
    )
    assert typed_lines(bill(priced_customer, date(2026, 4, 1))) == [("usage", "20.0000", False)]
    # when: 200 late MB of March take the period into the second tier, where every MB costs 0.01
    send_typed(
        tenant,
        datetime(2026, 4, 10, 12, tzinfo=PARIS),
        ("m2", "A", datetime(2026, 3, 20, 10, tzinfo=PARIS), "tracker", 200),
    )
    may = bill(priced_customer, date(2026, 5, 1))
    # then: March is now 1200 x 0.01 = 12.00; 20.00 was billed: 8.00 is credited
    assert typed_lines(may) == [("usage", "0.0000", False), ("credit", "8.0000", True)]
    credit = may.lines.get(adjustment=True)
    assert credit.detail == {"metered_quantity": "1200", "billed_quantity": "1000", "previously_billed": "20.00"}
    assert credit.signed_amount == Decimal("-8.0000")
    # 200 more late MB: 1400 x 0.01 = 14.00, of which 20.00 - 8.00 = 12.00 billed: 2.00 more
    send_typed(
        tenant,
        datetime(2026, 5, 10, 12, tzinfo=PARIS),
        ("m3", "A", datetime(2026, 3, 21, 10, tzinfo=PARIS), "tracker", 200),
    )
    june = bill(priced_customer, date(2026, 6, 1))
    assert typed_lines(june) == [("usage", "0.0000", False), ("usage", "2.0000", True)]
    assert june.lines.get(adjustment=True).detail["previously_billed"] == "12.00"
