"""The pooled per-device allowance, deducted once, before the charge model applies.

This is the only place an allowance is subtracted (specs/pitfalls.md #12): it is a pure function
of the period's raw quantity and device count, so recomputing a period gives the same billable
quantity instead of taking the free units off a second time.
"""

from decimal import Decimal


def apply_allowance(*, quantity: Decimal, included_per_device: Decimal, devices: int) -> tuple[Decimal, Decimal]:
    """(billable quantity, allowance used) for the period's raw pooled ``quantity``.

    allowance = included_per_device × devices (devices active at any moment in the period);
    billable = max(quantity − allowance, 0); used = min(quantity, allowance).

    Smart Fleet, March: 3800 MB with 2 devices × 1024 MB -> 3800 − 2048 = 1752 billable, 2048 used.
    Smart Fleet, April: 14000 MB with 3 devices × 1024 MB -> 14000 − 3072 = 10928 billable.
    """
    if quantity < 0 or included_per_device < 0 or devices < 0:
        raise ValueError("quantity, included_per_device and devices must not be negative")
    allowance = included_per_device * devices
    billable = max(quantity - allowance, Decimal(0))
    used = min(quantity, allowance)
    return billable, used
