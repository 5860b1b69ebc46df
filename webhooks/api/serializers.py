import json
from datetime import datetime
from typing import Any

from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers

from billing_platform.api.input_rules import MULTILINE
from billing_platform.api.serializers import StrictSerializer
from webhooks.events import EVENT_TYPES
from webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint

EVENTS_HELP = 'Event types to receive ({}), or ["*"] for all of them, present and future.'.format(
    ", ".join(EVENT_TYPES)
)


class EndpointInputSerializer(StrictSerializer):
    url = serializers.CharField(max_length=2000, help_text="https only; its host must resolve to public addresses")
    events = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        max_length=len(EVENT_TYPES) + 1,
        help_text=EVENTS_HELP,
    )
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        max_length=len(EVENT_TYPES) + 1,
        help_text="The same as `events` (the name api.md gives it); give one of the two.",
    )
    description = serializers.CharField(max_length=300, required=False, allow_blank=True, default="", style=MULTILINE)
    secret = serializers.CharField(
        max_length=100,
        required=False,
        help_text="Your own signing secret, whsec_ + base64 of 24 to 64 random bytes; by default Tripod makes one.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return _one_events_field(attrs, required=True)


class EndpointPatchSerializer(StrictSerializer):
    url = serializers.CharField(max_length=2000, required=False)
    events = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        max_length=len(EVENT_TYPES) + 1,
        help_text=EVENTS_HELP,
    )
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=len(EVENT_TYPES) + 1
    )
    description = serializers.CharField(max_length=300, required=False, allow_blank=True, style=MULTILINE)
    enabled = serializers.BooleanField(
        required=False, help_text="false disables the endpoint (its pending deliveries fail); true enables it again"
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return _one_events_field(attrs, required=False)


def _one_events_field(attrs: dict[str, Any], *, required: bool) -> dict[str, Any]:
    events, aliased = attrs.pop("events", None), attrs.pop("event_types", None)
    if events is not None and aliased is not None and events != aliased:
        raise serializers.ValidationError({"event_types": ["Give events or event_types, not both."]}, code="conflict")
    chosen = events if events is not None else aliased
    if chosen is None:
        if required:
            raise serializers.ValidationError(
                {"events": ['List the event types to receive, or ["*"] for all of them.']}, code="required"
            )
        return attrs
    return {**attrs, "events": chosen}


class EndpointOutputSerializer(serializers.ModelSerializer):
    events = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text='Event types, or ["*"] for all.'
    )
    event_types = serializers.ListField(source="events", child=serializers.CharField(), read_only=True)
    enabled = serializers.BooleanField(read_only=True)
    previous_secret_expires_at = serializers.SerializerMethodField(
        help_text="Until then, messages carry a second signature made with the secret before the last rotation."
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "events",
            "event_types",
            "description",
            "enabled",
            "disabled_at",
            "disabled_reason",
            "failing_since",
            "last_success_at",
            "previous_secret_expires_at",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_previous_secret_expires_at(self, endpoint: WebhookEndpoint) -> datetime | None:
        if not endpoint.previous_signing_secret:
            return None
        return endpoint.previous_signing_secret_expires_at


class EndpointWithSecretSerializer(EndpointOutputSerializer):
    secret = serializers.CharField(
        allow_null=True,
        read_only=True,
        help_text="whsec_…, shown this once: keep it to verify signatures. Null in a replay of the request "
        "(same Idempotency-Key): rotate the secret if it was lost.",
    )

    class Meta(EndpointOutputSerializer.Meta):
        fields = [*EndpointOutputSerializer.Meta.fields, "secret"]


class TrySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["attempted_at", "status_code", "duration_ms", "response_excerpt", "error"]


# The event as the endpoint receives it, with its webhook-id. Inline: a serializer field cannot be
# called "data" (it would shadow Serializer.data).
EVENT_SCHEMA = inline_serializer(
    name="WebhookEvent",
    fields={
        "id": serializers.CharField(help_text="the webhook-id header: deduplicate by it"),
        "type": serializers.CharField(),
        "timestamp": serializers.DateTimeField(),
        "data": serializers.JSONField(),
    },
)


class DeliveryOutputSerializer(serializers.ModelSerializer):
    endpoint = serializers.UUIDField(source="endpoint_id", read_only=True)
    event = serializers.SerializerMethodField()
    tries = TrySerializer(many=True, read_only=True)
    status = serializers.ChoiceField(choices=DeliveryStatus.choices, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "endpoint",
            "event",
            "status",
            "attempts",
            "next_attempt_at",
            "last_attempt_at",
            "last_status_code",
            "last_error",
            "delivered_at",
            "created_at",
            "tries",
        ]

    @extend_schema_field(EVENT_SCHEMA)
    def get_event(self, delivery: WebhookDelivery) -> dict[str, Any]:
        body = json.loads(delivery.event.body)
        return {"id": delivery.event.webhook_id, **body}
