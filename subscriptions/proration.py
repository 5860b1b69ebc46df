"""Proration of per-device fees by calendar days in the customer's time zone.

fraction = days active / days in the period; a day counts when the device was active at any moment
of it (the activation day counts, the deactivation day does not). The line amount is
quantity x unit price x fraction, rounded once, half-up, to the currency's minor unit.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from billing_platform.money import round_minor
from billing_platform.periods import Period, active_days, days_in, local_date, local_midnight


@dataclass(frozen=True)
class DeviceActivity:
    device_id: str
    activated_at: datetime
    deactivated_at: datetime | None = None


@dataclass(frozen=True)
class ProrationLine:
    """One line per (service period, fraction): devices sharing them share the line."""

    period_start: datetime
    period_end: datetime
    devices: tuple[str, ...]
    days: int
    days_in_period: int
    unit_amount: Decimal
    fraction: Decimal
    amount: Decimal

    @property
    def quantity(self) -> int:
        return len(self.devices)


def activation_prorations(
    *, devices: Iterable[DeviceActivity], period: Period, unit_amount: Decimal, currency: str, tz: str
) -> list[ProrationLine]:
    """Fees for the days of ``period`` that devices activated inside it were active.

    Smart Fleet, March 2026 in Paris, 25.00 per device: A activated on the 15th is active 17 of
    31 days -> 25.00 x 17/31 = 13.709... -> 13.71; B on the 20th, 12 of 31 -> 9.677... -> 9.68.
    """
    total_days = days_in(period, tz)
    groups: dict[tuple[datetime, datetime, int], list[str]] = defaultdict(list)
    for device in devices:
        if not period.start <= device.activated_at < period.end:
            continue
        days = active_days(period, active_from=device.activated_at, active_until=device.deactivated_at, tz=tz)
        if days == 0:
            continue
        start = local_midnight(local_date(device.activated_at, tz), tz)
        end = period.end
        if device.deactivated_at is not None and device.deactivated_at < period.end:
            end = local_midnight(local_date(device.deactivated_at, tz), tz)
        groups[(start, end, days)].append(device.device_id)
    lines = []
    for (start, end, days), ids in sorted(groups.items()):
        fraction = Decimal(days) / Decimal(total_days)
        amount = round_minor(Decimal(len(ids)) * unit_amount * fraction, currency)
        lines.append(ProrationLine(start, end, tuple(sorted(ids)), days, total_days, unit_amount, fraction, amount))
    return lines
