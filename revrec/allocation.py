"""Allocation of a contract's fixed transaction price (ASC 606 / IFRS 15 step 4).

Pure functions, no database. The fixed consideration is allocated to the contract's lines in
proportion to their standalone selling prices (SSP x quantity x committed periods), to the minor
unit, by the largest-remainder method of ``billing_platform.money.allocate`` (remaining cents to the
largest remainders; between equal remainders, the first line), so the parts add up exactly to the
transaction price. A line shared by several devices is then split per device: equal shares rounded
down, the remainder to the last device.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from billing_platform.money import allocate, quantum


@dataclass(frozen=True, slots=True)
class SspLine:
    """A contract line as allocation sees it: its unit SSP, how many units, for how many periods
    (1 for hardware and one-time fees; the committed months of a monthly service)."""

    ssp: Decimal
    quantity: Decimal
    periods: int = 1

    @property
    def ssp_total(self) -> Decimal:
        return self.ssp * self.quantity * self.periods


def _check_minor(amount: Decimal, currency: str, what: str) -> None:
    if amount != amount.quantize(quantum(currency)):
        raise ValueError(f"{what} {amount} is not a whole number of minor units of {currency}")


def transaction_price_allocate(*, transaction_price: Decimal, lines: Sequence[SspLine], currency: str) -> list[Decimal]:
    """The transaction price allocated to ``lines``, in their order, summing to it exactly.

    1,620.00 over SSP totals (900, 1,080) -> 736.36, 883.64: the exact parts are 736.3636... and
    883.6363...; rounded down they leave one cent, which goes to the larger remainder (0.6363...).
    """
    if not lines:
        raise ValueError("a contract needs at least one line to allocate to")
    if transaction_price < 0:
        raise ValueError("a transaction price cannot be negative")
    _check_minor(transaction_price, currency, "transaction price")
    weights = [line.ssp_total for line in lines]
    if any(weight < 0 for weight in weights):
        raise ValueError("a standalone selling price cannot be negative")
    if sum(weights, Decimal(0)) == 0:
        # No basis for a relative split: refuse rather than split evenly behind the reader's back.
        raise ValueError("the lines' standalone selling prices are all zero")
    return allocate(transaction_price, weights, currency)


def device_shares(amount: Decimal, *, devices: int, currency: str) -> list[Decimal]:
    """A line's amount split between ``devices``: equal shares rounded down to the minor unit, the
    cents left over to the last device. 883.64 over 3 -> 294.54, 294.54, 294.56."""
    if devices < 1:
        raise ValueError("a line is shared by at least one device")
    _check_minor(amount, currency, "amount")
    share = (amount / devices).quantize(quantum(currency), rounding=ROUND_DOWN)
    return [share] * (devices - 1) + [amount - share * (devices - 1)]
