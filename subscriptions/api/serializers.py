from typing import Any

from django.db import models
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing_platform.api.fields import AmountString, DecimalString, MetadataField, QuantityString
from billing_platform.api.serializers import OutputModelSerializer, RowWriter, StrictSerializer
from subscriptions.models import (
    ChangeAction,
    ChangeStatus,
    Device,
    DeviceCloudWebhook,
    Subscription,
    SubscriptionEvent,
)
from subscriptions.periods import subscription_end
from subscriptions.selectors import SubscriptionRows
from subscriptions.services import DEVICE_EVENT_TYPES


class DeviceInputSerializer(StrictSerializer):
    device_id = serializers.CharField(max_length=200)
    device_type = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    region = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


class SubscriptionInputSerializer(StrictSerializer):
    external_id = serializers.CharField(max_length=200)
    customer = serializers.CharField(help_text="the customer's external_id")
    plan = serializers.CharField(help_text="the plan's code")
    signed_at = serializers.DateTimeField()
    devices = DeviceInputSerializer(many=True, required=False, default=list)
    starts_on = serializers.DateField(
        required=False,
        allow_null=True,
        default=None,
        help_text="local date in the customer's time zone; default: the signature day",
    )
    price_locked = serializers.BooleanField(required=False, default=False)
    auto_renew = serializers.BooleanField(
        required=False,
        default=True,
        help_text="true: the subscription goes on after the end of its commitment; false: it ends then",
    )
    metadata = MetadataField(required=False, default=dict)


class SubscriptionPatchSerializer(StrictSerializer):
    metadata = MetadataField(removals=True)


class DeviceOutputSerializer(OutputModelSerializer):
    class Meta:
        model = Device
        fields = [
            "id",
            "device_id",
            "device_type",
            "region",
            "added_at",
            "shipped_at",
            "activated_at",
            "deactivated_at",
            "removed_at",
        ]


@extend_schema_field({"type": "object", "additionalProperties": {}}, component_name="SubscriptionEventData")
class EventDataField(serializers.JSONField):
    """What else a subscription event records, by its type (the plan changed from and to, a reason)."""


class SubscriptionEventOutputSerializer(OutputModelSerializer):
    # ``data`` as an EventDataField (a field of that name cannot be declared: Serializer.data).
    serializer_field_mapping = {**OutputModelSerializer.serializer_field_mapping, models.JSONField: EventDataField}

    class Meta:
        model = SubscriptionEvent
        fields = ["at", "type", "device_id", "from_status", "to_status", "actor_type", "actor_label", "data"]


class SubscriptionEndField(serializers.DateTimeField):
    def get_attribute(self, instance: Subscription) -> Any:
        return subscription_end(instance)


class SubscriptionOutputSerializer(OutputModelSerializer):
    customer = serializers.CharField(source="customer.external_id")
    metadata = MetadataField(read_only=True)
    plan = serializers.CharField(source="plan.code")
    devices = DeviceOutputSerializer(many=True)
    ends_at = SubscriptionEndField(
        read_only=True,
        allow_null=True,
        help_text="when the subscription ends or ended: a cancellation at a period end, or the end of its "
        "commitment when it does not renew (auto_renew false); null while it renews",
    )

    class Meta:
        model = Subscription
        fields = [
            "id",
            "external_id",
            "customer",
            "plan",
            "status",
            "signed_at",
            "starts_at",
            "trial_ends_at",
            "commitment_ends_at",
            "auto_renew",
            "price_locked",
            "cancel_at",
            "cancelled_at",
            "ended_at",
            "ends_at",
            "devices",
            "metadata",
            "created_at",
        ]


class SubscriptionDetailOutputSerializer(SubscriptionOutputSerializer):
    events = SubscriptionEventOutputSerializer(many=True)

    class Meta(SubscriptionOutputSerializer.Meta):
        fields = [*SubscriptionOutputSerializer.Meta.fields, "events"]


# GET /subscriptions/{external_id}: SubscriptionDetailOutputSerializer's output written from rows
# (subscription_rows_get), with no model instance per device or event.
SUBSCRIPTION_WRITER = RowWriter(SubscriptionDetailOutputSerializer, computed=("ends_at", "devices", "events"))
DEVICE_WRITER = RowWriter(DeviceOutputSerializer)
EVENT_WRITER = RowWriter(SubscriptionEventOutputSerializer)
END_COLUMNS = ("ended_at", "cancel_at", "auto_renew", "commitment_ends_at")


def subscription_detail_data(rows: SubscriptionRows) -> dict[str, Any]:
    """What ``SubscriptionDetailOutputSerializer(subscription).data`` is, from ``rows``."""
    row = rows.subscription
    ends_at = subscription_end(Subscription(**{name: row[name] for name in END_COLUMNS}))
    return SUBSCRIPTION_WRITER.write(
        row,
        ends_at=None if ends_at is None else SUBSCRIPTION_WRITER.field("ends_at").to_representation(ends_at),
        devices=DEVICE_WRITER.write_all(rows.devices),
        events=EVENT_WRITER.write_all(rows.events),
    )


class WebhookOutputSerializer(OutputModelSerializer):
    type = serializers.CharField(source="event_type")

    class Meta:
        model = DeviceCloudWebhook
        fields = [
            "id",
            "webhook_id",
            "type",
            "device_id",
            "occurred_at",
            "received_at",
            "status",
            "outcome",
            "attempts",
            "applied_at",
        ]


class ChangeInputSerializer(StrictSerializer):
    action = serializers.ChoiceField(choices=ChangeAction.choices)
    effective_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="default: now for upgrades and removals, period end for downgrades and cancellations",
    )
    preview = serializers.BooleanField(required=False, default=False)
    devices = DeviceInputSerializer(many=True, required=False, help_text="add_devices")
    device_ids = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, help_text="remove_devices"
    )
    plan = serializers.CharField(required=False, help_text="change_plan: the new plan's code")
    at_period_end = serializers.BooleanField(required=False, help_text="cancel: default true")


# The line types a change produces (charge_line_type): a subset of the invoice's.
CHANGE_LINE_TYPES = ["service", "fee", "credit"]
CHANGE_STATUSES = [*ChangeStatus.values, "preview"]


class ChangeLineSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=CHANGE_LINE_TYPES)
    product = serializers.CharField()
    description = serializers.CharField()
    devices = serializers.ListField(child=serializers.CharField())
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()
    quantity = serializers.IntegerField()
    unit_amount = DecimalString()
    fraction = QuantityString()
    amount = AmountString()


class ChangeOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="change.id", allow_null=True, help_text="null for a preview")
    action = serializers.ChoiceField(choices=ChangeAction.choices)
    status = serializers.ChoiceField(choices=CHANGE_STATUSES)
    outcome = serializers.ChoiceField(
        choices=ChangeStatus.choices,
        allow_blank=True,
        help_text="for a preview: applied or scheduled, what applying would do; empty otherwise",
    )
    effective_at = serializers.DateTimeField()
    lines = ChangeLineSerializer(many=True)
    total = AmountString(help_text="charges minus credits, on the next invoice")


# The device-cloud webhook's bodies, for the OpenAPI schema (the webhook reads its raw body itself:
# the signature covers its bytes). Not strict: senders may add fields, CloudEvents extensions.
DEVICE_EVENT_TYPE_CHOICES = list(DEVICE_EVENT_TYPES)


class DeviceEventDataSerializer(serializers.Serializer):
    device_id = serializers.CharField(max_length=200)
    occurred_at = serializers.DateTimeField(help_text="ISO 8601 with offset")


class DeviceEventSerializer(serializers.Serializer):
    """A device-cloud event (Standard Webhooks payload)."""

    type = serializers.ChoiceField(choices=DEVICE_EVENT_TYPE_CHOICES)
    data = DeviceEventDataSerializer()  # type: ignore[assignment]  # a field named data, as the payload has


class DeviceCloudEventDataSerializer(serializers.Serializer):
    """A CloudEvent's data: each field may come from the event's ``subject`` and ``time`` instead."""

    device_id = serializers.CharField(max_length=200, required=False)
    occurred_at = serializers.DateTimeField(required=False, help_text="ISO 8601 with offset")


class DeviceCloudEventSerializer(serializers.Serializer):
    """A device-cloud event as a structured CloudEvent."""

    specversion = serializers.ChoiceField(choices=["1.0"])
    id = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]  # the CloudEvents attribute
    type = serializers.ChoiceField(choices=DEVICE_EVENT_TYPE_CHOICES)
    subject = serializers.CharField(required=False, help_text="the device id, when data.device_id is absent")
    time = serializers.DateTimeField(required=False, help_text="the instant, when data.occurred_at is absent")
    datacontenttype = serializers.CharField(required=False)
    data = DeviceCloudEventDataSerializer(required=False)  # type: ignore[assignment]  # the attribute


class DeviceWebhookJsonBody(serializers.Serializer):
    """The JSON body of the device-cloud webhook: the event, or in CloudEvents binary mode its data."""


class DeviceWebhookJsonBodySchema(OpenApiSerializerExtension):
    target_class = DeviceWebhookJsonBody

    def get_name(self, auto_schema: Any, direction: Any) -> str:
        return "DeviceWebhookJson"

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        event = auto_schema.resolve_serializer(DeviceEventSerializer, direction).ref
        data = auto_schema.resolve_serializer(DeviceCloudEventDataSerializer, direction).ref
        return {"anyOf": [event, data]}
