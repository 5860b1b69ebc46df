"""The pooled per-device allowance, deducted once, before the charge model applies.

This is the only place an allowance is subtracted (specs/pitfalls.md #12): it is a pure function
of the period's raw quantity and device count, so recomputing a period gives the same billable
quantity instead of taking the free units off a second time.
"""

from decimal import Decimal


def not_negative(quantity: Decimal) -> Decimal:
    """What a charge model may price of a measured quantity: itself, or 0 when negative.

    Only a meter that accepts negative values (a net quantity) can measure less than nothing over a
    period or a matrix group. Charge models are defined from 0 up (tiers start at 0, a package of 0
    units costs 0), and usage never pays the customer back: such a quantity bills nothing (the
    component's ``min_amount`` still applies), and money owed back is a credit note.
    """
    return max(quantity, Decimal(0))


def apply_allowance(*, quantity: Decimal, included_per_device: Decimal, devices: int) -> tuple[Decimal, Decimal]:
    """(billable quantity, allowance used) for the period's raw pooled ``quantity``.

    allowance = included_per_device × devices (devices active at any moment in the period);
    billable = max(quantity − allowance, 0); used = min(quantity, allowance), and 0 when a meter
    that accepts negative values measured less than nothing (``not_negative``).

    Smart Fleet, March: 3800 MB with 2 devices × 1024 MB -> 3800 − 2048 = 1752 billable, 2048 used.
    Smart Fleet, April: 14000 MB with 3 devices × 1024 MB -> 14000 − 3072 = 10928 billable.
    """
    if included_per_device < 0 or devices < 0:
        raise ValueError("included_per_device and devices must not be negative")
    allowance = included_per_device * devices
    billable = not_negative(quantity - allowance)
    used = min(not_negative(quantity), allowance)
    return billable, used
