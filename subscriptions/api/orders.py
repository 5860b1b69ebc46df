"""Shop orders for the tenant's staff and the device cloud: the orders placed in the customer
portal's shop (``GET /api/v1/orders``, ``GET /api/v1/orders/{id}``), and binding a shipped device's
id to a slot of the order's subscription
(``POST /api/v1/subscriptions/{external_id}/devices/{device}/bind``)."""

import uuid
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_platform.api.filters import choice_filters, choice_parameter
from billing_platform.api.idempotency import idempotent
from billing_platform.api.pagination import LIST_PARAMETERS, CursorPagination, paginated
from billing_platform.api.serializers import OutputModelSerializer, StrictSerializer, problems
from customers.models import Customer
from subscriptions.api.serializers import DeviceOutputSerializer
from subscriptions.errors import OrderNotFound, SlotNotFound
from subscriptions.models import Device, Order, OrderStatus
from subscriptions.orders import order_get, order_list, order_slots, order_subscription_get, slot_bind
from tenancy.api import request_actor, request_tenant
from tenancy.models import ApiKeyScope


class ShippingAddressSerializer(serializers.Serializer):
    name = serializers.CharField()
    line1 = serializers.CharField()
    line2 = serializers.CharField(allow_blank=True)
    postal_code = serializers.CharField()
    city = serializers.CharField()
    country = serializers.CharField(help_text="ISO 3166-1 alpha-2")


class OrderOutputSerializer(OutputModelSerializer):
    number = serializers.CharField(help_text="ORD-000001: per tenant, from 1")
    customer = serializers.CharField(source="customer.external_id")
    subscription = serializers.CharField(source="subscription.external_id")
    plan = serializers.CharField(source="plan.code")
    shipping_address = ShippingAddressSerializer()
    slots = serializers.SerializerMethodField(
        help_text="The subscription's devices: slots not shipped yet (device_id empty) and those bound"
    )

    class Meta:
        model = Order
        fields = [
            "id",
            "number",
            "status",
            "customer",
            "subscription",
            "plan",
            "quantity",
            "shipping_address",
            "placed_by",
            "placed_at",
            "fulfilled_at",
            "cancelled_at",
            "slots",
        ]

    @extend_schema_field(DeviceOutputSerializer(many=True))
    def get_slots(self, order: Order) -> list[dict[str, Any]]:
        return list(DeviceOutputSerializer(order_slots(order), many=True).data)


class SlotBindInputSerializer(StrictSerializer):
    device_id = serializers.CharField(max_length=200, help_text="The id the device cloud knows the device by")
    device_type = serializers.CharField(max_length=100, required=False)
    region = serializers.CharField(max_length=100, required=False)
    shipped_at = serializers.DateTimeField(required=False, help_text="When it shipped; default: not recorded")


def _order_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise OrderNotFound("No order %s." % value) from None


class OrderListApi(APIView):
    @extend_schema(
        operation_id="orders_list",
        description="The orders placed in the customer portal's shop, newest first.",
        parameters=[
            *LIST_PARAMETERS,
            choice_parameter("status", OrderStatus.values),
            OpenApiParameter("customer", str, description="the customer's external_id"),
        ],
        responses={200: paginated(OrderOutputSerializer, "OrderPage"), **problems(422)},
    )
    def get(self, request: Request) -> Response:
        tenant = request_tenant(request)
        filters = choice_filters(request, {"status": OrderStatus.values})
        qs = order_list(tenant=tenant, status=filters["status"])
        customer = request.query_params.get("customer")
        if customer:
            qs = qs.filter(customer__in=Customer.objects.filter(tenant=tenant, external_id=customer))
        paginator = CursorPagination()
        page: Any = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(OrderOutputSerializer(page, many=True).data)


class OrderDetailApi(APIView):
    @extend_schema(operation_id="orders_retrieve", responses={200: OrderOutputSerializer, **problems(404)})
    def get(self, request: Request, pk: str) -> Response:
        order = order_get(tenant=request_tenant(request), order_id=_order_id(pk))
        return Response(OrderOutputSerializer(order).data)


class SlotBindApi(APIView):
    # The device cloud binds the devices it ships, as the staff do.
    write_scopes = frozenset({ApiKeyScope.FULL, ApiKeyScope.DEVICE_CLOUD})

    @extend_schema(
        operation_id="subscriptions_devices_bind",
        description="Binds a shipped device's id to a slot of the subscription (a device ordered in the shop, "
        "no id yet; `device` is the slot's `id`). The device cloud then activates it by that id "
        "(`device.activated`), and its service starts then. The order is fulfilled once every slot is bound.",
        request=SlotBindInputSerializer,
        responses={200: DeviceOutputSerializer, **problems(400, 404, 409, 422)},
    )
    @idempotent
    def post(self, request: Request, external_id: str, device: str) -> Response:
        tenant = request_tenant(request)
        subscription = order_subscription_get(tenant=tenant, external_id=external_id)
        try:
            slot_id = uuid.UUID(device)
        except ValueError:
            raise SlotNotFound("Subscription %s has no slot %s." % (external_id, device)) from None
        if not Device.objects.filter(tenant=tenant, subscription=subscription, pk=slot_id).exists():
            raise SlotNotFound("Subscription %s has no slot %s." % (external_id, device))
        serializer = SlotBindInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        bound = slot_bind(
            tenant=tenant,
            subscription=subscription,
            slot_id=slot_id,
            actor=request_actor(request),
            at=timezone.now(),
            **serializer.validated_data,
        )
        return Response(DeviceOutputSerializer(bound).data)
