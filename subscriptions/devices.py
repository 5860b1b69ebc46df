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
from catalog.models import PlanComponent, ProductKind, StartsOn


class DeviceLike(Protocol):
    """A device's instants: added to the subscription, activated by the device cloud, deactivated,
    removed from the subscription (a change)."""

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
    a fee that starts on activation, only once activated."""
    if device.removed_at is not None and device.removed_at <= at:
        return False
    if device.deactivated_at is not None and device.deactivated_at <= at:
        return False
    if component.starts_on == StartsOn.ACTIVATION:
        return device.activated_at is not None and device.activated_at <= at
    return True


def devices_active_in(devices: Iterable[D], period: Period, *, needs_activation: bool) -> list[D]:
    """Devices active at any moment of ``period``: from their activation (or, on a plan whose fees
    do not wait for activation, from when they were added) until deactivated or removed."""
    active = []
    for device in devices:
        since = device.activated_at if device.activated_at is not None or needs_activation else device.added_at
        if since is None or since >= period.end:
            continue
        if any(end is not None and end <= period.start for end in (device.deactivated_at, device.removed_at)):
            continue
        active.append(device)
    return active


__all__ = ["DeviceLike", "device_is_billable", "devices_active_in", "plan_needs_activation"]
