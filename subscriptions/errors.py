from typing import Any

from billing_platform.errors import Conflict, DomainError, InvalidInput, NotFound


class SubscriptionNotFound(NotFound):
    code = "subscription_not_found"


class DeviceNotFound(InvalidInput):
    """A webhook or change names a device that no live subscription holds."""

    code = "unknown_device"


class DeviceInUse(Conflict):
    code = "device_in_use"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class DeviceEventRefused(Conflict):
    code = "device_event_refused"


class OneTimeFeeAlreadyBilled(Conflict):
    """An invoice would bill a one-time fee that another invoice has billed: it is not written."""

    code = "one_time_fee_already_billed"


class WebhookSignatureInvalid(DomainError):
    status = 401
    code = "invalid_signature"
    title = "Unauthenticated"


class WebhookNotFound(NotFound):
    code = "webhook_not_found"


class PlanNotSelfService(InvalidInput):
    """An order names a plan the tenant does not offer in the portal's shop."""

    code = "plan_not_self_service"


class OrderAlreadyPlaced(Conflict):
    """The request that placed an order was sent again: ``order`` is the one it placed."""

    code = "order_already_placed"

    def __init__(self, detail: str, *, order: Any) -> None:
        super().__init__(detail)
        self.order = order


class OrderNotFound(NotFound):
    code = "order_not_found"


class SlotNotFound(NotFound):
    code = "slot_not_found"


class SlotAlreadyBound(Conflict):
    """A device was bound to the slot already: a slot takes one device, once."""

    code = "slot_already_bound"
