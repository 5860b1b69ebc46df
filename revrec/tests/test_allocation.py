"""Allocation of the transaction price and per-device shares, against revrec.md's worked example.

Pure functions, no database. Amounts are compared as strings so the currency exponent is checked.
"""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from revrec.allocation import SspLine, device_shares, transaction_price_allocate

# revrec.md, Smart Fleet: 3 devices committed 12 months; SSP eld-200 300.00, fleet-platform 30.00.
HARDWARE = SspLine(ssp=Decimal("300.00"), quantity=Decimal(3))
SERVICE = SspLine(ssp=Decimal("30.00"), quantity=Decimal(3), periods=12)


def test_ssp_totals_of_the_worked_example() -> None:
    # 3 × 300 = 900; 3 × 12 × 30 = 1,080
    assert HARDWARE.ssp_total == Decimal(900)
    assert SERVICE.ssp_total == Decimal(1080)


@pytest.mark.parametrize(
    ("price", "lines", "currency", "expected"),
    [
        # 720.00 + 900.00 = 1,620.00; 1620 × 900/1980 = 736.3636… and 1620 × 1080/1980 = 883.6363…:
        # rounded down 736.36 + 883.63 = 1,619.99, the cent left goes to the larger remainder (.6363).
        pytest.param("1620.00", [HARDWARE, SERVICE], "EUR", ["736.36", "883.64"], id="smart-fleet"),
        # 100.00 over three equal SSPs: 33.333… each, the cent to the first (equal remainders).
        pytest.param(
            "100.00",
            [SspLine(ssp=Decimal(1), quantity=Decimal(1))] * 3,
            "EUR",
            ["33.34", "33.33", "33.33"],
            id="tie-first-line",
        ),
        # JPY has no minor unit: 1000 × 1/3 = 333.33…, 1000 × 2/3 = 666.66… -> 333 + 666 = 999, the
        # yen left to the larger remainder (.66…).
        pytest.param(
            "1000",
            [SspLine(ssp=Decimal(1), quantity=Decimal(1)), SspLine(ssp=Decimal(2), quantity=Decimal(1))],
            "JPY",
            ["333", "667"],
            id="jpy",
        ),
        # A line whose SSP is zero (a free accessory) gets nothing.
        pytest.param(
            "50.00",
            [SspLine(ssp=Decimal(0), quantity=Decimal(2)), SspLine(ssp=Decimal(10), quantity=Decimal(1))],
            "EUR",
            ["0.00", "50.00"],
            id="zero-ssp-line",
        ),
    ],
)
def test_transaction_price_allocate(price: str, lines: list[SspLine], currency: str, expected: list[str]) -> None:
    parts = transaction_price_allocate(transaction_price=Decimal(price), lines=lines, currency=currency)
    assert [str(part) for part in parts] == expected


@pytest.mark.parametrize(
    ("amount", "devices", "expected"),
    [
        # 736.36 / 3 = 245.4533… -> 245.45 twice, the last 736.36 − 490.90 = 245.46
        pytest.param("736.36", 3, ["245.45", "245.45", "245.46"], id="hardware"),
        # 883.64 / 3 = 294.5466… -> 294.54 twice, the last 883.64 − 589.08 = 294.56 (not rounded half-up)
        pytest.param("883.64", 3, ["294.54", "294.54", "294.56"], id="service"),
        pytest.param("10.00", 1, ["10.00"], id="one-device"),
        # 0.05 / 4 = 0.0125 -> 0.01 three times, the last 0.02
        pytest.param("0.05", 4, ["0.01", "0.01", "0.01", "0.02"], id="cents"),
    ],
)
def test_device_shares(amount: str, devices: int, expected: list[str]) -> None:
    assert [str(share) for share in device_shares(Decimal(amount), devices=devices, currency="EUR")] == expected


@pytest.mark.parametrize(
    ("price", "lines", "message"),
    [
        pytest.param("10.00", [], "at least one line", id="no-line"),
        pytest.param("-1.00", [HARDWARE], "cannot be negative", id="negative-price"),
        pytest.param("10.005", [HARDWARE], "not a whole number of minor units", id="sub-cent-price"),
        pytest.param("10.00", [SspLine(ssp=Decimal(0), quantity=Decimal(1))], "all zero", id="no-ssp"),
        pytest.param("10.00", [SspLine(ssp=Decimal(-1), quantity=Decimal(1))], "cannot be negative", id="negative-ssp"),
    ],
)
def test_transaction_price_allocate_refuses(price: str, lines: list[SspLine], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        transaction_price_allocate(transaction_price=Decimal(price), lines=lines, currency="EUR")


def test_device_shares_need_a_device() -> None:
    with pytest.raises(ValueError, match="at least one device"):
        device_shares(Decimal("10.00"), devices=0, currency="EUR")


cents = st.integers(min_value=0, max_value=10_000_000_00).map(lambda n: Decimal(n).scaleb(-2))
ssp_lines = st.builds(
    SspLine,
    ssp=st.decimals(min_value=Decimal("0.01"), max_value=Decimal(100_000), places=2),
    quantity=st.integers(min_value=1, max_value=500).map(Decimal),
    periods=st.integers(min_value=1, max_value=60),
)


@settings(deadline=None)
@given(price=cents, lines=st.lists(ssp_lines, min_size=1, max_size=8))
def test_allocations_sum_to_the_transaction_price(price: Decimal, lines: list[SspLine]) -> None:
    parts = transaction_price_allocate(transaction_price=price, lines=lines, currency="EUR")
    assert sum(parts, Decimal(0)) == price
    assert all(part >= 0 and part == part.quantize(Decimal("0.01")) for part in parts)
    # Largest remainder: no part is more than one cent away from its exact proportional share.
    weight = sum((line.ssp_total for line in lines), Decimal(0))
    exact = [price * line.ssp_total / weight for line in lines]
    assert all(abs(part - share) < Decimal("0.01") for part, share in zip(parts, exact, strict=True))


@settings(deadline=None)
@given(amount=cents, devices=st.integers(min_value=1, max_value=200))
def test_shares_sum_to_the_line(amount: Decimal, devices: int) -> None:
    shares = device_shares(amount, devices=devices, currency="EUR")
    assert len(shares) == devices
    assert sum(shares, Decimal(0)) == amount
    # Every device but the last has the same share; the last has at most devices − 1 cents more.
    assert len(set(shares[:-1])) <= 1
    assert Decimal(0) <= shares[-1] - shares[0] < Decimal("0.01") * devices
