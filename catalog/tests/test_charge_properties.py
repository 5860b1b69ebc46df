"""Invariants of the rating engine that a table of examples would miss (hypothesis).

Decimals with fixed places and bounded integers only: a float here would test float arithmetic,
which is exactly what the engine refuses to do.
"""

from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing_platform.money import minor_unit_exponent, round_minor
from catalog.charge_models import Usage, apply_allowance, price

quantities = st.decimals(min_value=Decimal(0), max_value=Decimal(1_000_000), places=4)
unit_amounts = st.decimals(min_value=Decimal(0), max_value=Decimal(100), places=6)
counts = st.integers(min_value=0, max_value=10_000)


@st.composite
def tier_lists(draw: st.DrawFn) -> list[dict[str, Any]]:
    """1 to 5 tiers with strictly increasing integer bounds and an open last tier."""
    size = draw(st.integers(min_value=1, max_value=5))
    bounds = sorted(draw(st.sets(st.integers(min_value=1, max_value=1_000_000), min_size=size - 1, max_size=size - 1)))
    uppers: list[int | None] = [*bounds, None]
    return [
        {"up_to": upper, "unit_amount": str(draw(unit_amounts)), "flat_amount": str(draw(unit_amounts))}
        for upper in uppers
    ]


def precise(charge: dict[str, Any], quantity: Decimal, event_count: int = 0) -> Decimal:
    return price(charge=charge, usage=Usage(quantity=quantity, event_count=event_count), currency="EUR").precise_amount


@settings(deadline=None)
@given(tiers=tier_lists(), a=quantities, b=quantities)
def test_graduated_never_decreases_as_quantity_grows(tiers: list[dict[str, Any]], a: Decimal, b: Decimal) -> None:
    low, high = sorted((a, b))
    charge = {"model": "graduated", "tiers": tiers}

    assert precise(charge, low) <= precise(charge, high)


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        # T of specs/pricing.md: tier 2 (0.002) prices all 10000 units, tier 3 (0.001) all 10001
        ("9999", "20.00"),  # 9999 × 0.002 = 19.998
        ("10000", "20.00"),  # 10000 × 0.002
        ("10000.0001", "10.00"),  # 10000.0001 × 0.001 = 10.0000001: past the bound, the cliff
        ("10001", "10.00"),  # 10001 × 0.001 = 10.001
    ],
)
def test_volume_drops_at_its_cliff(quantity: str, expected: str) -> None:
    # Volume is NOT monotonic by design, so its boundary is pinned by examples, not a property.
    tiers = [
        {"up_to": 1000, "unit_amount": "0"},
        {"up_to": 10000, "unit_amount": "0.002"},
        {"up_to": None, "unit_amount": "0.001"},
    ]

    priced = price(charge={"model": "volume", "tiers": tiers}, usage=Usage(quantity=Decimal(quantity)), currency="EUR")

    assert str(priced.amount) == expected


@settings(deadline=None)
@given(size=st.integers(min_value=1, max_value=1000), amount=unit_amounts, a=quantities, b=quantities)
def test_package_never_decreases_as_quantity_grows(size: int, amount: Decimal, a: Decimal, b: Decimal) -> None:
    low, high = sorted((a, b))
    charge = {"model": "package", "package_size": size, "package_amount": str(amount)}

    assert precise(charge, low) <= precise(charge, high)
    if amount:
        # a started package is billed in full: always a whole number of packages
        assert precise(charge, high) % amount == 0


charges = st.one_of(
    st.builds(lambda a: {"model": "per_unit", "unit_amount": str(a)}, unit_amounts),
    st.builds(lambda a: {"model": "flat", "amount": str(a)}, unit_amounts),
    st.builds(lambda tiers: {"model": "graduated", "tiers": tiers}, tier_lists()),
    st.builds(lambda tiers: {"model": "volume", "tiers": tiers}, tier_lists()),
    st.builds(
        lambda size, a: {"model": "package", "package_size": size, "package_amount": str(a)},
        st.integers(min_value=1, max_value=1000),
        unit_amounts,
    ),
    st.builds(
        lambda rate, fee: {"model": "percentage", "rate": str(rate), "fixed_per_event": str(fee)},
        st.decimals(min_value=Decimal(0), max_value=Decimal(100), places=4),
        unit_amounts,
    ),
)


@settings(deadline=None)
@given(charge=charges, quantity=quantities, event_count=counts, currency=st.sampled_from(["EUR", "JPY", "KWD"]))
def test_price_has_exactly_the_currency_exponent(
    charge: dict[str, Any], quantity: Decimal, event_count: int, currency: str
) -> None:
    priced = price(charge=charge, usage=Usage(quantity=quantity, event_count=event_count), currency=currency)

    exponent = minor_unit_exponent(currency)  # EUR 2, JPY 0, KWD 3
    assert priced.amount.as_tuple().exponent == -exponent
    # rounded once, half-up, from the precise amount
    assert priced.amount == round_minor(priced.precise_amount, currency)
    assert abs(priced.amount - priced.precise_amount) <= Decimal(1).scaleb(-exponent) / 2


# specs/pricing.md's matrix, and the same cells written out independently of its matcher
MATRIX: dict[str, Any] = {
    "model": "matrix",
    "dimensions": ["device_type", "region"],
    "cells": [
        {"match": {"device_type": "tracker", "region": "EU"}, "charge": {"model": "per_unit", "unit_amount": "0.0010"}},
        {"match": {"device_type": "tracker", "region": "US"}, "charge": {"model": "per_unit", "unit_amount": "0.0012"}},
        {"match": {"device_type": "camera", "region": "*"}, "charge": {"model": "per_unit", "unit_amount": "0.0030"}},
    ],
    "default": {"model": "per_unit", "unit_amount": "0.0015"},
}
UNIT_AMOUNT_BY_CELL = {"tracker/EU": "0.0010", "tracker/US": "0.0012", "camera/*": "0.0030", "default": "0.0015"}


def cell_of(device_type: str, region: str) -> str:
    if device_type == "tracker" and region in ("EU", "US"):
        return "tracker/%s" % region
    if device_type == "camera":
        return "camera/*"
    return "default"


events = st.lists(
    st.tuples(
        st.sampled_from(["tracker", "camera", "sensor"]),
        st.sampled_from(["EU", "US", "APAC"]),
        st.decimals(min_value=Decimal(0), max_value=Decimal(100_000), places=3),
    ),
    max_size=30,
)


@settings(deadline=None)
@given(events=events)
def test_matrix_equals_its_events_split_by_cell_and_priced_alone(events: list[tuple[str, str, Decimal]]) -> None:
    # given: the events grouped by dimension values, as the meter hands them to the matrix
    by_values: dict[tuple[str, ...], list[Decimal]] = defaultdict(list)
    by_cell: dict[str, list[Decimal]] = defaultdict(list)
    for device_type, region, mb in events:
        by_values[(device_type, region)].append(mb)
        by_cell[cell_of(device_type, region)].append(mb)
    groups = {values: Usage(quantity=sum(mbs, Decimal(0)), event_count=len(mbs)) for values, mbs in by_values.items()}
    total = sum((mb for _, _, mb in events), Decimal(0))
    # when
    whole = price(charge=MATRIX, usage=Usage(quantity=total, event_count=len(events), groups=groups), currency="EUR")
    parts = [
        price(
            charge={"model": "per_unit", "unit_amount": UNIT_AMOUNT_BY_CELL[cell]},
            usage=Usage(quantity=sum(mbs, Decimal(0)), event_count=len(mbs)),
            currency="EUR",
        )
        for cell, mbs in by_cell.items()
    ]
    # then: the precise amounts add up exactly, and the matrix line is that sum rounded once
    split_total = sum((part.precise_amount for part in parts), Decimal(0))
    assert whole.precise_amount == split_total
    assert whole.amount == round_minor(split_total, "EUR")


SMART_FLEET_DATA: dict[str, Any] = {
    "model": "graduated",
    "tiers": [{"up_to": 10000, "unit_amount": "0.010"}, {"up_to": None, "unit_amount": "0.005"}],
}


def smart_fleet_expected(billable: Decimal) -> Decimal:
    """billing.md's tiers by hand: 0.010 up to 10000 MB, 0.005 above."""
    if billable <= 10000:
        return billable * Decimal("0.010")
    return Decimal(100) + (billable - 10000) * Decimal("0.005")


@settings(deadline=None)
@given(
    quantity=st.decimals(min_value=Decimal(0), max_value=Decimal(100_000), places=3),
    included=st.decimals(min_value=Decimal(0), max_value=Decimal(4096), places=0),
    devices=st.integers(min_value=0, max_value=50),
)
def test_allowance_is_applied_once_and_recomputing_gives_the_same_result(
    quantity: Decimal, included: Decimal, devices: int
) -> None:
    # given: a period rated once...
    billable, used = apply_allowance(quantity=quantity, included_per_device=included, devices=devices)
    first = price(charge=SMART_FLEET_DATA, usage=Usage(quantity=billable), currency="EUR")
    # when: ...and recomputed later from the same raw inputs (pitfalls #12)
    billable_again, used_again = apply_allowance(quantity=quantity, included_per_device=included, devices=devices)
    again = price(charge=SMART_FLEET_DATA, usage=Usage(quantity=billable_again), currency="EUR")
    # then: same billable quantity and amount; the free units were taken off exactly once
    assert (billable_again, used_again) == (billable, used)
    assert again == first
    assert billable + used == quantity
    assert billable == max(quantity - included * devices, Decimal(0))
    # price() deducts nothing further: the billable quantity is priced as it is
    assert first.precise_amount == smart_fleet_expected(billable)


@settings(deadline=None)
@given(
    rate=st.decimals(min_value=Decimal(0), max_value=Decimal(100), places=4),
    fee=unit_amounts,
    a=quantities,
    b=quantities,
    n=counts,
    m=counts,
)
def test_percentage_is_linear_in_the_sum(rate: Decimal, fee: Decimal, a: Decimal, b: Decimal, n: int, m: int) -> None:
    charge = {"model": "percentage", "rate": str(rate), "fixed_per_event": str(fee)}

    assert precise(charge, a + b, n + m) == precise(charge, a, n) + precise(charge, b, m)
