from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_platform.api.idempotency import idempotent
from billing_platform.api.pagination import CursorPagination, paginated
from billing_platform.api.serializers import problems
from billing_platform.errors import invalid
from tenancy.api import request_actor, request_tenant
from webhooks.api import serializers as s
from webhooks.models import DeliveryStatus
from webhooks.selectors import webhook_delivery_get, webhook_delivery_list, webhook_endpoint_get, webhook_endpoint_list
from webhooks.services import (
    webhook_delivery_replay,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
)

LIST_PARAMS = [OpenApiParameter("cursor", str), OpenApiParameter("limit", int, description="1 to 500, default 50")]
SECRET_SHOWN_ONCE = (
    "The answer holds the signing secret (`secret`), shown this once; a replay of the request with the same "
    "Idempotency-Key answers it as null."
)


def _with_secret(endpoint: Any, secret: str) -> dict[str, Any]:
    return {**s.EndpointOutputSerializer(endpoint).data, "secret": secret}


class WebhookEndpointListCreateApi(APIView):
    idempotency_redact = ("secret",)

    @extend_schema(
        operation_id="webhook_endpoints_list",
        parameters=LIST_PARAMS,
        responses={200: paginated(s.EndpointOutputSerializer, "WebhookEndpointPage"), **problems(422)},
    )
    def get(self, request: Request) -> Response:
        paginator = CursorPagination()
        page: Any = paginator.paginate_queryset(webhook_endpoint_list(tenant=request_tenant(request)), request, self)
        return paginator.get_paginated_response(s.EndpointOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="webhook_endpoints_create",
        description="A new endpoint, signed per Standard Webhooks. The URL must be https and resolve to public "
        "addresses only (422 `https_required`, `private_address`, `unresolvable_host`). " + SECRET_SHOWN_ONCE,
        request=s.EndpointInputSerializer,
        responses={201: s.EndpointWithSecretSerializer, **problems(400, 409, 422)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        serializer = s.EndpointInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint, secret = webhook_endpoint_create(
            tenant=request_tenant(request),
            actor=request_actor(request),
            at=timezone.now(),
            **serializer.validated_data,
        )
        return Response(_with_secret(endpoint, secret), status=status.HTTP_201_CREATED)


class WebhookEndpointDetailApi(APIView):
    @extend_schema(
        operation_id="webhook_endpoints_retrieve", responses={200: s.EndpointOutputSerializer, **problems(404)}
    )
    def get(self, request: Request, pk: str) -> Response:
        endpoint = webhook_endpoint_get(tenant=request_tenant(request), pk=pk)
        return Response(s.EndpointOutputSerializer(endpoint).data)

    @extend_schema(
        operation_id="webhook_endpoints_update",
        description="Change the URL, the event types or the description; `enabled: false` disables the endpoint "
        "(its pending deliveries fail), `enabled: true` enables it again.",
        request=s.EndpointPatchSerializer,
        responses={200: s.EndpointOutputSerializer, **problems(400, 404, 422)},
    )
    def patch(self, request: Request, pk: str) -> Response:
        endpoint = webhook_endpoint_get(tenant=request_tenant(request), pk=pk)
        serializer = s.EndpointPatchSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        endpoint = webhook_endpoint_update(
            endpoint=endpoint, actor=request_actor(request), at=timezone.now(), changes=dict(serializer.validated_data)
        )
        return Response(s.EndpointOutputSerializer(endpoint).data)

    @extend_schema(
        operation_id="webhook_endpoints_destroy",
        description="Delete the endpoint with its deliveries and their tries.",
        responses={204: OpenApiResponse(description="Deleted."), **problems(404)},
    )
    def delete(self, request: Request, pk: str) -> Response:
        endpoint = webhook_endpoint_get(tenant=request_tenant(request), pk=pk)
        webhook_endpoint_delete(endpoint=endpoint, actor=request_actor(request), at=timezone.now())
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookEndpointRotateSecretApi(APIView):
    idempotency_redact = ("secret",)

    @extend_schema(
        operation_id="webhook_endpoints_rotate_secret",
        description="A new signing secret. For 24 hours messages carry two signatures, with the new secret and "
        "the old one, so the receiver can switch without losing a message; then the new one only. " + SECRET_SHOWN_ONCE,
        request=None,
        responses={200: s.EndpointWithSecretSerializer, **problems(404, 409)},
    )
    @idempotent
    def post(self, request: Request, pk: str) -> Response:
        endpoint = webhook_endpoint_get(tenant=request_tenant(request), pk=pk)
        endpoint, secret = webhook_endpoint_rotate_secret(
            endpoint=endpoint, actor=request_actor(request), at=timezone.now()
        )
        return Response(_with_secret(endpoint, secret))


class WebhookEndpointDeliveriesApi(APIView):
    @extend_schema(
        operation_id="webhook_endpoints_deliveries_list",
        description="The endpoint's deliveries, newest first, each with its event and every try.",
        parameters=[*LIST_PARAMS, OpenApiParameter("status", str, enum=DeliveryStatus.values)],
        responses={200: paginated(s.DeliveryOutputSerializer, "WebhookDeliveryPage"), **problems(404, 422)},
    )
    def get(self, request: Request, pk: str) -> Response:
        tenant = request_tenant(request)
        endpoint = webhook_endpoint_get(tenant=tenant, pk=pk)
        wanted = request.query_params.get("status")
        if wanted and wanted not in DeliveryStatus.values:
            raise invalid("status", "invalid_choice", "status is one of: %s." % ", ".join(DeliveryStatus.values))
        paginator = CursorPagination()
        qs = webhook_delivery_list(tenant=tenant, endpoint=endpoint, status=wanted or None)
        page: Any = paginator.paginate_queryset(qs, request, self)
        return paginator.get_paginated_response(s.DeliveryOutputSerializer(page, many=True).data)


class WebhookDeliveryReplayApi(APIView):
    @extend_schema(
        operation_id="webhook_deliveries_replay",
        description="Send the delivery again now, with the same webhook-id and body, and a new round of tries on "
        "the retry schedule. The endpoint must be enabled (409 `webhook_endpoint_disabled`).",
        request=None,
        responses={202: s.DeliveryOutputSerializer, **problems(404, 409)},
    )
    @idempotent
    def post(self, request: Request, pk: str) -> Response:
        tenant = request_tenant(request)
        delivery = webhook_delivery_replay(
            delivery=webhook_delivery_get(tenant=tenant, pk=pk), actor=request_actor(request), at=timezone.now()
        )
        fresh = webhook_delivery_list(tenant=tenant, endpoint=delivery.endpoint).get(pk=delivery.pk)
        return Response(s.DeliveryOutputSerializer(fresh).data, status=status.HTTP_202_ACCEPTED)
