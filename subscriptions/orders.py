"""Orders from the customer portal's shop (portal.md, "Shop"): a customer orders a self-service
plan with a number of devices and a shipping address; the order signs a subscription holding that
many **device slots** (devices with no id yet) and announces itself with ``order.created``. At
shipment, the device cloud or the staff binds a device id to each slot (``slot_bind``); the order is
fulfilled once every slot has its device. Service then starts at each device's activation, as for
any device (``device.activated``).

The hardware due at signature is invoiced at once by ``invoicing.services.orders``, which sits
above this app."""

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Prefetch, QuerySet

from billing_platform.errors import FieldError, InvalidInput
from billing_platform.validation import find_refused_character, is_country, postal_code_error
from catalog.models import Plan
from customers.models import Customer
from subscriptions.devices import device_billing_triggers
from subscriptions.errors import (
    DeviceInUse,
    InvalidTransition,
    OrderAlreadyPlaced,
    OrderNotFound,
    PlanNotSelfService,
    SlotAlreadyBound,
    SlotNotFound,
    SubscriptionNotFound,
)
from subscriptions.events import devices_billing_started_emit
from subscriptions.models import Device, Order, OrderStatus, Subscription, SubscriptionEvent, SubscriptionStatus
from subscriptions.services import check_device_fields, check_instant, subscription_create
from tenancy.actors import Actor
from tenancy.models import Tenant
from tenancy.services import audit_record
from webhooks.outbox import events_emit, instant

logger = logging.getLogger(__name__)

# A shop order ships at most this many devices; larger fleets are sold by the tenant's staff.
MAX_QUANTITY = 500
# The shipping address's fields: (name, required, max length).
ADDRESS_FIELDS = (
    ("name", True, 200),
    ("line1", True, 200),
    ("line2", False, 200),
    ("postal_code", True, 16),
    ("city", True, 100),
    ("country", True, 2),
)


def shipping_address_clean(value: Mapping[str, Any], *, field: str = "shipping_address") -> dict[str, str]:
    """The shipping address, trimmed (postal code and country upper-cased), with every problem at
    once: required fields, lengths, an ISO country and a postal code of that country."""
    errors: list[FieldError] = []
    address: dict[str, str] = {}
    for name, required, limit in ADDRESS_FIELDS:
        raw = value.get(name)
        text = raw.strip() if isinstance(raw, str) else ""
        if name in ("postal_code", "country"):
            text = text.upper()
        path = "%s.%s" % (field, name)
        if raw is not None and not isinstance(raw, str):
            errors.append(FieldError(path, "invalid", "Must be a string."))
        elif required and not text:
            errors.append(FieldError(path, "required", "This field is required."))
        elif len(text) > limit:
            errors.append(FieldError(path, "too_long", "At most %d characters." % limit))
        elif find_refused_character(text) is not None:
            errors.append(FieldError(path, "invalid_character", "Control characters are not allowed."))
        address[name] = text
    if address.get("country") and not any(e.field.endswith(".country") for e in errors):
        if not is_country(address["country"]):
            errors.append(FieldError(field + ".country", "unknown_country", "Unknown country."))
        elif address.get("postal_code") and not any(e.field.endswith(".postal_code") for e in errors):
            problem = postal_code_error(address["postal_code"], address["country"])
            if problem:
                errors.append(FieldError(field + ".postal_code", "invalid", problem))
    if errors:
        raise InvalidInput("; ".join("%s: %s" % (e.field, e.message) for e in errors), errors=errors)
    return address


def _next_sequence(tenant: Tenant) -> int:
    """The next order number, past any subscription already named like one (``ORD-000007`` made by
    hand or through the API): the order's subscription takes its number as external id."""
    last = Order.objects.filter(tenant=tenant).order_by("-sequence").values_list("sequence", flat=True).first()
    sequence = (last or 0) + 1
    taken = set(
        Subscription.objects.filter(tenant=tenant, external_id__startswith="ORD-").values_list("external_id", flat=True)
    )
    while "ORD-%06d" % sequence in taken:
        sequence += 1
    return sequence


def order_place(
    *,
    customer: Customer,
    plan: Plan,
    quantity: int,
    shipping_address: Mapping[str, Any],
    actor: Actor,
    at: datetime,
    request_key: str = "",
    channel: str = "shop",
) -> Order:
    """Place an order: sign a subscription of ``customer`` to ``plan`` at ``at`` with ``quantity``
    device slots, record the order and emit ``order.created``, in one transaction. Only a plan
    offered in the shop (``self_service``), or for the ``partner`` channel a plan offered to
    partners (``partner_visible``) ordered for a partner's customer, priced in the customer's
    currency and region may be ordered; anything else is refused before anything is written. An
    order placed already with
    ``request_key`` (a confirmation sent twice) is refused with ``OrderAlreadyPlaced``, which names
    it: the caller answers with that order."""
    tenant = customer.tenant
    request_key = request_key[:64]
    if request_key:
        placed = order_for_request_key(customer=customer, request_key=request_key)
        if placed is not None:
            raise OrderAlreadyPlaced("Order %s was placed by this request already." % placed.number, order=placed)
    check_instant(at, "at")
    errors: list[FieldError] = []
    if channel == "partner":
        if plan.tenant_id != customer.tenant_id or not plan.partner_visible or customer.partner_id is None:
            raise InvalidInput(
                "Plan %s is not offered to partners." % plan.code,
                errors=[FieldError("plan", "plan_not_partner_visible", "This plan is not offered to partners.")],
            )
    elif plan.tenant_id != customer.tenant_id or not plan.self_service:
        raise PlanNotSelfService(
            "Plan %s is not offered in the shop." % plan.code,
            errors=[FieldError("plan", "plan_not_self_service", "This plan is not offered in the shop.")],
        )
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
        errors.append(FieldError("quantity", "out_of_range", "From 1 to %d devices." % MAX_QUANTITY))
    try:
        address = shipping_address_clean(shipping_address)
    except InvalidInput as exc:
        errors += exc.errors
    if errors:
        raise InvalidInput("; ".join("%s: %s" % (e.field, e.message) for e in errors), errors=errors)
    for attempt in range(3):
        try:
            with transaction.atomic():
                return _order_write(customer, plan, quantity, address, actor, at, request_key)
        except DeviceInUse as exc:
            # Another order took the same number a moment before: its subscription has the name.
            if exc.code != "subscription_external_id_taken" or attempt == 2:
                raise
            logger.info("order number taken, retrying", extra={"tenant_id": str(tenant.pk)})
        except IntegrityError as exc:
            if "order_unique_request_key" in str(exc):
                placed = order_for_request_key(customer=customer, request_key=request_key)
                assert placed is not None
                raise OrderAlreadyPlaced(
                    "Order %s was placed by this request already." % placed.number, order=placed
                ) from None
            # Two orders of the tenant took the same number at once: take the next one.
            if "order_unique_sequence" not in str(exc) or attempt == 2:
                raise
            logger.info("order number taken, retrying", extra={"tenant_id": str(tenant.pk)})
    raise AssertionError("unreachable")


def _order_write(
    customer: Customer,
    plan: Plan,
    quantity: int,
    address: dict[str, str],
    actor: Actor,
    at: datetime,
    request_key: str,
) -> Order:
    tenant = customer.tenant
    sequence = _next_sequence(tenant)
    number = "ORD-%06d" % sequence
    # The subscription refuses a plan with no price in the customer's currency and region (422 on
    # ``plan``), so a customer is never sold what cannot be billed.
    subscription = subscription_create(
        tenant=tenant,
        actor=actor,
        at=at,
        external_id=number,
        customer=customer,
        plan=plan,
        signed_at=at,
        metadata={"order": number},
    )
    slots = Device.objects.bulk_create(
        [Device(tenant=tenant, subscription=subscription, device_id="", added_at=at) for _ in range(quantity)]
    )
    order = Order.objects.create(
        tenant=tenant,
        sequence=sequence,
        customer=customer,
        subscription=subscription,
        plan=plan,
        quantity=quantity,
        shipping_name=address["name"],
        shipping_line1=address["line1"],
        shipping_line2=address["line2"],
        shipping_postal_code=address["postal_code"],
        shipping_city=address["city"],
        shipping_country=address["country"],
        placed_by=actor.label,
        request_key=request_key,
        placed_at=at,
    )
    SubscriptionEvent.objects.create(
        tenant=tenant,
        subscription=subscription,
        at=at,
        type="order.placed",
        actor_type=actor.type,
        actor_label=actor.label,
        data={"order": number, "quantity": quantity},
    )
    audit_record(
        tenant=tenant,
        actor=actor,
        action="order.placed",
        object_type="order",
        object_id=number,
        at=at,
        after={"customer": customer.external_id, "plan": plan.code, "quantity": quantity, "shipping": address},
    )
    events_emit(tenant=tenant, events=[("order.created", order_event_data(order, slots))], at=at)
    return order


def order_event_data(order: Order, slots: list[Device]) -> dict[str, Any]:
    """An order as ``order.created`` carries it: what to ship where, and the slots the device ids
    are bound to at shipment (``POST /api/v1/subscriptions/{external_id}/devices/{slot}/bind``)."""
    return {
        "id": str(order.pk),
        "number": order.number,
        "status": order.status,
        "placed_at": instant(order.placed_at),
        "placed_by": order.placed_by,
        "customer": {
            "external_id": order.customer.external_id,
            "name": order.customer.name,
            "email": order.customer.email,
        },
        "subscription": order.subscription.external_id,
        "plan": order.plan.code,
        "quantity": order.quantity,
        "shipping_address": order.shipping_address,
        "slots": [str(s.pk) for s in sorted(slots, key=lambda s: str(s.pk))],
    }


def slot_bind(
    *,
    tenant: Tenant,
    subscription: Subscription,
    slot_id: Any,
    device_id: str,
    actor: Actor,
    at: datetime,
    device_type: str | None = None,
    region: str | None = None,
    shipped_at: datetime | None = None,
) -> Device:
    """Bind a device id to a slot of ``subscription`` at shipment (with its type, region and the
    instant it shipped, when given). The device cloud then activates it by the id, as any device,
    and its service starts then. The order is fulfilled once no slot is left."""
    if subscription.status in (SubscriptionStatus.CANCELLED, SubscriptionStatus.ENDED):
        raise InvalidTransition(
            "Subscription %s is %s: its slots take no device." % (subscription.external_id, subscription.status)
        )
    device_id = (device_id or "").strip()
    fields = {"device_id": device_id, "device_type": device_type or "", "region": region or ""}
    if not device_id:
        raise InvalidInput(
            "device_id is required.", errors=[FieldError("device_id", "required", "This field is required.")]
        )
    check_device_fields([fields], prefix="device")
    if shipped_at is not None:
        check_instant(shipped_at, "shipped_at")
    try:
        with transaction.atomic():
            slot = (
                Device.objects.select_for_update()
                .filter(tenant=tenant, subscription=subscription, pk=slot_id, removed_at__isnull=True)
                .first()
            )
            if slot is None:
                raise SlotNotFound("Subscription %s has no slot %s." % (subscription.external_id, slot_id))
            if slot.device_id:
                raise SlotAlreadyBound(
                    "Device %s is bound to this slot already." % slot.device_id,
                    errors=[FieldError("device_id", "slot_already_bound", "This slot has its device.")],
                )
            slot.device_id = device_id
            if device_type is not None:
                slot.device_type = device_type
            if region is not None:
                slot.region = region
            if shipped_at is not None:
                slot.shipped_at = shipped_at
            slot.save(update_fields=["device_id", "device_type", "region", "shipped_at"])
            SubscriptionEvent.objects.create(
                tenant=tenant,
                subscription=subscription,
                at=at,
                type="device.bound",
                device_id=device_id,
                actor_type=actor.type,
                actor_label=actor.label,
                data={"slot": str(slot.pk), **({"shipped_at": shipped_at.isoformat()} if shipped_at else {})},
            )
            audit_record(
                tenant=tenant,
                actor=actor,
                action="device.bound",
                object_type="subscription",
                object_id=subscription.external_id,
                at=at,
                after={"slot": str(slot.pk), "device_id": device_id},
            )
            # Its billing started at signature (hardware) or at a shipment given now: say so, now
            # that the device cloud can tell which device it is.
            triggers = device_billing_triggers(subscription.plan.components.all())
            devices_billing_started_emit(subscription, [slot], triggers, at=at)
            _order_fulfil_if_complete(subscription, actor=actor, at=at)
    except IntegrityError as exc:
        if "device_unique_live_id" not in str(exc):
            raise
        raise DeviceInUse(
            "Device %s already belongs to a live subscription." % device_id,
            errors=[FieldError("device_id", "device_in_use", "Already on a live subscription.")],
        ) from None
    return slot


def _order_fulfil_if_complete(subscription: Subscription, *, actor: Actor, at: datetime) -> None:
    order = Order.objects.select_for_update().filter(subscription=subscription, status=OrderStatus.PLACED).first()
    if order is None:
        return
    if Device.objects.filter(subscription=subscription, removed_at__isnull=True, device_id="").exists():
        return
    order.status = OrderStatus.FULFILLED
    order.fulfilled_at = at
    order.save(update_fields=["status", "fulfilled_at"])
    audit_record(
        tenant=subscription.tenant,
        actor=actor,
        action="order.fulfilled",
        object_type="order",
        object_id=order.number,
        at=at,
        after={"status": order.status},
    )


# --- reads ---------------------------------------------------------------------------------------


def order_list(*, tenant: Tenant, status: str | None = None, customer: Customer | None = None) -> QuerySet[Order]:
    qs = (
        Order.objects.filter(tenant=tenant)
        .select_related("customer", "plan", "subscription")
        # A page of orders reads its slots in one query, not one per order (``order_slots``).
        .prefetch_related(
            Prefetch(
                "subscription__devices",
                queryset=Device.objects.filter(removed_at__isnull=True).order_by("added_at", "pk"),
                to_attr="live_devices",
            )
        )
    )
    if status:
        qs = qs.filter(status=status)
    if customer is not None:
        qs = qs.filter(customer=customer)
    return qs


def order_for_request_key(*, customer: Customer, request_key: str) -> Order | None:
    """The order ``customer`` placed with ``request_key``, if any."""
    return order_list(tenant=customer.tenant, customer=customer).filter(request_key=request_key).first()


def order_get(*, tenant: Tenant, order_id: Any) -> Order:
    order = order_list(tenant=tenant).filter(pk=order_id).first()
    if order is None:
        raise OrderNotFound("No order %s." % order_id)
    return order


def order_slots(order: Order) -> list[Device]:
    """The order's devices in the order they were made: slots still open, and those bound."""
    prefetched = getattr(order.subscription, "live_devices", None)
    if prefetched is not None:
        return list(prefetched)
    return list(
        Device.objects.filter(subscription=order.subscription, removed_at__isnull=True).order_by("added_at", "pk")
    )


def order_subscription_get(*, tenant: Tenant, external_id: str) -> Subscription:
    subscription = (
        Subscription.objects.filter(tenant=tenant, external_id=external_id).select_related("customer", "plan").first()
    )
    if subscription is None:
        raise SubscriptionNotFound("No subscription with external_id %s." % external_id)
    return subscription
