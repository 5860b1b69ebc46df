from collections.abc import Mapping
from typing import Any

import orjson
from django.utils import timezone
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_platform.api.serializers import StrictSerializer, problems
from billing_platform.cloud_events import BINARY_HEADERS, binary_event_read, is_binary_mode
from billing_platform.errors import FieldError, InvalidInput
from billing_platform.ratelimit import Limit, Rate, rate_limit
from tenancy.api import request_tenant
from tenancy.models import ApiKeyScope
from usage.errors import MalformedRequest, UnsupportedMediaType
from usage.ingest import MAX_BATCH, events_ingest
from usage.models import UsageSettings

JSON = "application/json"
CE_SINGLE = "application/cloudevents+json"
CE_BATCH = "application/cloudevents-batch+json"


def _from_cloudevent(ce: Any) -> Any:
    """A structured CloudEvent as a usage event: ``id`` is the transaction id, ``type`` the meter
    code, ``subject`` the device (or the subscription's external id, extension ``subscription``),
    ``time`` the timestamp and ``data`` the properties."""
    if not isinstance(ce, dict):
        return ce
    event: dict[str, Any] = {
        "transaction_id": ce.get("id"),
        "code": ce.get("type"),
        "timestamp": ce.get("time"),
        "properties": ce.get("data") if ce.get("data") is not None else {},
    }
    if isinstance(ce.get("externalsubscriptionid"), str):
        event["external_subscription_id"] = ce["externalsubscriptionid"]
    elif isinstance(ce.get("externalcustomerid"), str) and not ce.get("subject"):
        event["external_customer_id"] = ce["externalcustomerid"]
    elif ce.get("subject") is not None:
        event["device_id"] = ce.get("subject")
    return event


def _from_binary(body: bytes, content_type: str, headers: Mapping[str, str]) -> Any:
    """One CloudEvent in binary mode: its attributes in ``ce-*`` headers, its data (the event's
    properties) as a JSON body, or no body at all."""
    if content_type not in (JSON, "") and body.strip():
        raise UnsupportedMediaType("In binary mode the data of a usage event is JSON (%s)." % JSON)
    event = binary_event_read(headers, body)
    return _from_cloudevent({**event.attributes, "data": event.data})


def parse_events(body: bytes, content_type: str, headers: Mapping[str, str] | None = None) -> list[Any]:
    if headers is not None and content_type not in (CE_BATCH, CE_SINGLE) and is_binary_mode(headers):
        return [_from_binary(body, content_type, headers)]
    if content_type not in (JSON, CE_BATCH, CE_SINGLE):
        raise UnsupportedMediaType("Send %s, %s or %s." % (JSON, CE_BATCH, CE_SINGLE))
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequest("The body is not valid JSON: %s." % exc) from None
    if content_type == CE_BATCH:
        if not isinstance(payload, list):
            raise MalformedRequest("A CloudEvents batch is a JSON array of events.")
        events = [_from_cloudevent(ce) for ce in payload]
    elif content_type == CE_SINGLE:
        events = [_from_cloudevent(payload)]
    else:
        if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
            raise InvalidInput(
                'The body is {"events": [...]}.', errors=[FieldError("events", "required", "A list of events.")]
            )
        unknown = sorted(set(payload) - {"events"})
        if unknown:
            raise InvalidInput(
                'The body is {"events": [...]}; unknown field: %s.' % ", ".join(unknown),
                errors=[FieldError(name, "unknown_field", "Unknown field.") for name in unknown],
            )
        events = payload["events"]
    if not events:
        raise InvalidInput("The batch is empty.", errors=[FieldError("events", "empty", "At least one event.")])
    if len(events) > MAX_BATCH:
        raise InvalidInput(
            "At most %d events per request (got %d)." % (MAX_BATCH, len(events)),
            errors=[FieldError("events", "batch_too_large", "At most %d events." % MAX_BATCH)],
        )
    return events


class UsageEventInSerializer(StrictSerializer):
    """A usage event. Fields other than these are refused (the event is rejected, `unknown_field`)."""

    transaction_id = serializers.CharField(max_length=255, help_text="your unique id: replays count once")
    code = serializers.CharField(help_text="the meter code")
    timestamp = serializers.DateTimeField(help_text="ISO 8601 with offset")
    external_subscription_id = serializers.CharField(required=False)
    device_id = serializers.CharField(required=False)
    external_customer_id = serializers.CharField(required=False)
    properties = serializers.DictField(required=False)


class EventBatchSerializer(StrictSerializer):
    """Up to 1,000 usage events."""

    events = serializers.ListField(child=UsageEventInSerializer(), min_length=1, max_length=MAX_BATCH)


class UsageCloudEventSerializer(serializers.Serializer):
    """A usage event as a structured CloudEvent (extension attributes are allowed)."""

    specversion = serializers.ChoiceField(choices=["1.0"])
    id = serializers.CharField(max_length=255, help_text="the transaction id: replays count once")
    source = serializers.CharField(help_text="a URI naming the sender")  # type: ignore[assignment]
    type = serializers.CharField(help_text="the meter code")
    subject = serializers.CharField(required=False, help_text="the device id")
    time = serializers.DateTimeField(help_text="RFC 3339 with offset")
    datacontenttype = serializers.CharField(required=False)
    data = serializers.DictField(required=False, help_text="the event's properties")  # type: ignore[assignment]
    externalsubscriptionid = serializers.CharField(required=False, help_text="extension: the subscription")
    externalcustomerid = serializers.CharField(required=False, help_text="extension: the customer")


class EventIngestJsonBody(serializers.Serializer):
    """The JSON body of ``POST /events``: a batch, or in CloudEvents binary mode one event's data."""


class EventIngestJsonBodySchema(OpenApiSerializerExtension):
    target_class = EventIngestJsonBody

    def get_name(self, auto_schema: Any, direction: Any) -> str:
        return "EventIngestJson"

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        batch = auto_schema.resolve_serializer(EventBatchSerializer, direction).ref
        return {
            "anyOf": [
                batch,
                {
                    "type": "object",
                    "title": "UsageEventProperties",
                    "description": "CloudEvents binary mode (`ce-*` headers): the event's properties.",
                },
            ]
        }


BINARY_MODE_PARAMETERS = [
    OpenApiParameter(
        name,
        # ce-time is a string in the schema (an RFC 3339 instant, its description says): generated
        # clients cannot put a typed date-time in a header (openapi-python-client drops the operation)
        {"type": "string", "enum": ["1.0"]} if name == "ce-specversion" else {"type": "string", "minLength": 1},
        OpenApiParameter.HEADER,
        description="CloudEvents binary mode: %s." % text,
    )
    for name, text in BINARY_HEADERS.items()
]


OUTCOME = inline_serializer(
    "EventOutcome",
    fields={
        "transaction_id": serializers.CharField(),
        "status": serializers.ChoiceField(choices=["accepted", "duplicate", "rejected"]),
        "reason": serializers.CharField(required=False),
        "detail": serializers.CharField(required=False),
    },
)
BATCH_RESULT = inline_serializer(
    "EventBatchResult",
    fields={
        "results": OUTCOME.__class__(many=True),
        "accepted": serializers.IntegerField(),
        "duplicates": serializers.IntegerField(),
        "rejected": serializers.IntegerField(),
    },
)


class EventIngestApi(APIView):
    read_scopes: frozenset[str] = frozenset()
    write_scopes = frozenset({ApiKeyScope.FULL, ApiKeyScope.INGEST})
    # Ingestion has its own limits: per tenant TRIPOD_RATE_LIMITS["ingest"], per key each tenant's
    # usage setting (below), both higher than the rest of the API's.
    rate_limit_scope = "ingest"

    @extend_schema(
        operation_id="events_ingest",
        description=(
            'Up to 1,000 usage events: `{"events": [{transaction_id, code, timestamp, external_subscription_id? | '
            "device_id? | external_customer_id?, properties}]}`, a CloudEvents batch "
            "(`application/cloudevents-batch+json`, a JSON array), one structured CloudEvent "
            "(`application/cloudevents+json`), or one CloudEvent in binary mode, as the CloudEvents SDKs send "
            "by default: its attributes in `ce-*` headers (`ce-id` the transaction id, `ce-type` the meter code, "
            "`ce-subject` the device, `ce-time` the timestamp; extensions `ce-externalsubscriptionid`, "
            "`ce-externalcustomerid`) and its data, the event's properties, as the JSON body. "
            "Deduplicated by transaction_id. One outcome per event; rejected events never block accepted ones."
        ),
        parameters=BINARY_MODE_PARAMETERS,
        request={
            JSON: EventIngestJsonBody,
            CE_BATCH: UsageCloudEventSerializer(many=True),
            CE_SINGLE: UsageCloudEventSerializer,
        },
        responses={202: BATCH_RESULT, **problems(400, 415, 422, 429)},
    )
    def post(self, request: Request) -> Response:
        tenant = request_tenant(request)
        settings, _ = UsageSettings.objects.get_or_create(tenant=tenant)
        per_second = Rate(settings.rate_limit_per_second, 1)
        rate_limit(request._request, [Limit("ingest:key:%s" % request.auth.pk, per_second, "this API key")])
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        events = parse_events(request.body, content_type, request.headers)
        result = events_ingest(tenant=tenant, events=events, received_at=timezone.now(), settings=settings)
        body = {
            "results": [r.as_dict() for r in result.results],
            "accepted": result.count("accepted"),
            "duplicates": result.count("duplicate"),
            "rejected": result.count("rejected"),
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)
