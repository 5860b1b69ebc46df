"""Which devices pay: the rules that say whether a device pays a service fee at an instant, which
devices were active in a period, and whether a plan's fees wait for the device cloud's activation.

They hold for any object with a device's four instants (``DeviceLike``): the ``Device`` model that
changes load, and the plain rows current usage and bill runs read in bulk (``usage.usage_context.DeviceRow``),
so both apply the same rules without building model instances.
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol, TypeVar

from billing_platform.periods import Period
from catalog.models import BillOn, PlanComponent, ProductKind, StartsOn


class DeviceLike(Protocol):
    """A device's instants: added to the subscription, activated by the device cloud, deactivated,
    removed from the subscription (a change); and its id, blank for a slot (ordered, not shipped)."""

    @property
    def device_id(self) -> str: ...

    @property
    def added_at(self) -> datetime: ...

    @property
    def activated_at(self) -> datetime | None: ...

    @property
    def deactivated_at(self) -> datetime | None: ...

    @property
    def removed_at(self) -> datetime | None: ...


D = TypeVar("D", bound=DeviceLike)


def plan_needs_activation(components: Iterable[PlanComponent]) -> bool:
    """Does a fee of the plan wait for the device cloud's activation? Then a new subscription waits
    in ``pending_activation``, and a device counts as active only once activated."""
    return any(c.kind == ProductKind.SERVICE and c.starts_on == StartsOn.ACTIVATION for c in components)


def device_is_billable(device: DeviceLike, component: PlanComponent, at: datetime) -> bool:
    """Does this device pay this component's fee at ``at``? Not once removed or deactivated; and for
    a fee that starts on activation, only once activated. A slot (no device bound yet) never does."""
    if not device.device_id:
        return False
    if device.removed_at is not None and device.removed_at <= at:
        return False
    if device.deactivated_at is not None and device.deactivated_at <= at:
        return False
    if component.starts_on == StartsOn.ACTIVATION:
        return device.activated_at is not None and device.activated_at <= at
    return True


def devices_active_in(devices: Iterable[D], period: Period, *, needs_activation: bool) -> list[D]:
    """Devices active at any moment of ``period``: from their activation (or, on a plan whose fees
    do not wait for activation, from when they were added) until deactivated or removed. Slots (no
    device bound yet) never are."""
    active = []
    for device in devices:
        if not device.device_id:
            continue  # a slot: nothing shipped, nothing active
        since = device.activated_at if device.activated_at is not None or needs_activation else device.added_at
        if since is None or since >= period.end:
            continue
        if any(end is not None and end <= period.start for end in (device.deactivated_at, device.removed_at)):
            continue
        active.append(device)
    return active


class ShippableDevice(DeviceLike, Protocol):
    @property
    def shipped_at(self) -> datetime | None: ...


# What starts a device's billing, and the device's instant for it.
BILLING_TRIGGERS = (BillOn.SIGNATURE, BillOn.SHIPMENT, BillOn.ACTIVATION)


def device_billing_triggers(components: Iterable[PlanComponent]) -> frozenset[str]:
    """What makes a device of the plan start being billed: the ``bill_on`` of its hardware
    (signature, shipment or activation) and the start of its per-device services and one-time fees
    (``subscription_start`` counts as the signature: the device's addition to the subscription).
    A plan with none of those bills its devices by usage only, from their addition."""
    triggers: set[str] = set()
    for c in components:
        if c.kind == ProductKind.HARDWARE:
            triggers.add(c.bill_on)
        elif c.kind in (ProductKind.SERVICE, ProductKind.FEE) and c.per_device:
            triggers.add(BillOn.ACTIVATION if c.starts_on == StartsOn.ACTIVATION else BillOn.SIGNATURE)
    return frozenset(triggers) or frozenset({BillOn.SIGNATURE})


def device_billing_start(device: ShippableDevice, triggers: Iterable[str]) -> tuple[datetime, str] | None:
    """When the device started being billed and by what (``signature``, ``shipment``,
    ``activation``): the earliest of the plan's triggers that has happened; None until one has."""
    instants = {
        BillOn.SIGNATURE: device.added_at,
        BillOn.SHIPMENT: device.shipped_at,
        BillOn.ACTIVATION: device.activated_at,
    }
    wanted = set(triggers)
    started: list[tuple[datetime, str]] = []
    for trigger in BILLING_TRIGGERS:
        when = instants[trigger]
        if trigger in wanted and when is not None:
            started.append((when, str(trigger)))
    return min(started) if started else None


__all__ = [
    "DeviceLike",
    "ShippableDevice",
    "device_billing_start",
    "device_billing_triggers",
    "device_is_billable",
    "devices_active_in",
    "plan_needs_activation",
]
