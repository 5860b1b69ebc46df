from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_platform.api.filters import choice_filters, choice_parameter
from billing_platform.api.idempotency import idempotent
from billing_platform.api.pagination import LIST_PARAMETERS, CursorPagination, paginated
from billing_platform.api.serializers import PROBLEM_SCHEMA, problems
from billing_platform.cloud_events import BINARY_HEADERS
from billing_platform.errors import FieldError, InvalidInput
from billing_platform.rls import tenant_activate
from catalog.errors import PlanNotFound
from catalog.selectors import plan_get
from customers.errors import CustomerNotFound
from customers.selectors import customer_get
from subscriptions.api import serializers as s
from subscriptions.changes import subscription_change
from subscriptions.models import SubscriptionStatus, WebhookStatus
from subscriptions.selectors import (
    subscription_get,
    subscription_list,
    subscription_rows_get,
    webhook_get,
    webhook_list,
)
from subscriptions.services import subscription_create, subscription_update
from subscriptions.webhooks import (
    WEBHOOK_ID_MAX_LENGTH,
    signature_refuse_unknown_tenant,
    webhook_receive,
    webhook_replay,
)
from tenancy.api import request_actor, request_tenant
from tenancy.models import ApiKey, ApiKeyScope, Tenant
from tenancy.throttling import ApiRateThrottle


class SubscriptionListCreateApi(APIView):
    @extend_schema(
        operation_id="subscriptions_list",
        parameters=[
            *LIST_PARAMETERS,
            choice_parameter("status", SubscriptionStatus.values),
            OpenApiParameter("customer", str),
            OpenApiParameter("plan", str),
        ],
        responses={200: paginated(s.SubscriptionOutputSerializer, "SubscriptionPage"), **problems(422)},
    )
    def get(self, request: Request) -> Response:
        filters = choice_filters(request, {"status": SubscriptionStatus.values})
        qs = subscription_list(
            tenant=request_tenant(request),
            status=filters["status"],
            customer=request.query_params.get("customer"),
            plan=request.query_params.get("plan"),
        )
        paginator = CursorPagination()
        page: Any = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(s.SubscriptionOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="subscriptions_create",
        request=s.SubscriptionInputSerializer,
        responses={201: s.SubscriptionDetailOutputSerializer, **problems(400, 409, 422)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        tenant = request_tenant(request)
        serializer = s.SubscriptionInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        errors = []
        try:
            customer = customer_get(tenant=tenant, external_id=data.pop("customer"))
        except CustomerNotFound as exc:
            errors.append(FieldError("customer", "unknown_customer", exc.detail))
        try:
            plan = plan_get(tenant=tenant, code=data.pop("plan"))
        except PlanNotFound as exc:
            errors.append(FieldError("plan", "unknown_plan", exc.detail))
        if errors:
            raise InvalidInput("; ".join(e.message for e in errors), errors=errors)
        subscription = subscription_create(
            tenant=tenant,
            actor=request_actor(request),
            at=timezone.now(),
            customer=customer,
            plan=plan,
            devices=[dict(d) for d in data.pop("devices")],
            **data,
        )
        subscription = subscription_get(tenant=tenant, external_id=subscription.external_id)
        return Response(s.SubscriptionDetailOutputSerializer(subscription).data, status=status.HTTP_201_CREATED)


class SubscriptionDetailApi(APIView):
    @extend_schema(
        operation_id="subscriptions_retrieve", responses={200: s.SubscriptionDetailOutputSerializer, **problems(404)}
    )
    def get(self, request: Request, external_id: str) -> Response:
        rows = subscription_rows_get(
            tenant=request_tenant(request),
            external_id=external_id,
            columns=s.SUBSCRIPTION_WRITER.columns + list(s.END_COLUMNS),
            device_columns=s.DEVICE_WRITER.columns,
            event_columns=s.EVENT_WRITER.columns,
        )
        return Response(s.subscription_detail_data(rows))

    @extend_schema(
        operation_id="subscriptions_update",
        description="Changes a subscription's metadata: the keys given are set, a key given null is removed, "
        "the others are kept. Devices, plan and cancellation change through `/changes`, which prorates.",
        request=s.SubscriptionPatchSerializer,
        responses={200: s.SubscriptionDetailOutputSerializer, **problems(400, 404, 422)},
    )
    def patch(self, request: Request, external_id: str) -> Response:
        tenant = request_tenant(request)
        subscription_get(tenant=tenant, external_id=external_id)  # 404 before validating the body
        serializer = s.SubscriptionPatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription_update(
            tenant=tenant,
            actor=request_actor(request),
            at=timezone.now(),
            external_id=external_id,
            metadata=serializer.validated_data["metadata"],
        )
        return Response(
            s.SubscriptionDetailOutputSerializer(subscription_get(tenant=tenant, external_id=external_id)).data
        )


class DeviceCloudPermission(permissions.BasePermission):
    """A ``device_cloud`` (or ``full``) key names the tenant; without a key, ``?tenant=<slug>`` does.
    Either way the signature, checked in the view, is what authenticates the webhook."""

    message = "This API key's scope does not allow this operation."

    def has_permission(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, ApiKey):
            return request.auth.scope in view.write_scopes
        return bool(request.query_params.get("tenant"))


class DeviceCloudThrottle(ApiRateThrottle):
    """Webhooks count against their tenant's limit, named by the API key or by ``?tenant=<slug>``.
    A slug that no tenant has is counted the same way, under its own name: a 429 must not tell
    which slugs exist."""

    def tenant_ident(self, request: Request, api_key: ApiKey | None) -> str:
        if api_key is not None:
            return str(api_key.tenant_id)
        slug = request.query_params.get("tenant", "")[:63]
        tenant_id = Tenant.objects.filter(slug=slug).values_list("pk", flat=True).first()
        return str(tenant_id) if tenant_id is not None else "slug:%s" % slug


class DeviceCloudWebhookApi(APIView):
    read_scopes: frozenset[str] = frozenset()
    write_scopes = frozenset({ApiKeyScope.DEVICE_CLOUD, ApiKeyScope.FULL})
    permission_classes = [DeviceCloudPermission]
    throttle_classes = [DeviceCloudThrottle]
    rate_limit_scope = "webhooks"
    # A refused webhook is stored with its outcome (staff can replay it) and answered 422: the
    # error must not roll it back (billing_platform.middleware.ApiTransactionMiddleware).
    keeps_writes_on_error = True

    @extend_schema(
        operation_id="webhooks_device_cloud",
        description=(
            "Signed per Standard Webhooks: headers `webhook-id`, `webhook-timestamp`, `webhook-signature` "
            "(`v1,` + base64 HMAC-SHA256 of `id.timestamp.body` with the tenant's device-cloud secret); a "
            "timestamp more than 5 minutes away or a bad signature is a 401. "
            "Body `{type: device.activated|device.shipped|device.deactivated, data: {device_id, occurred_at}}`, "
            "a structured CloudEvent (`application/cloudevents+json`) with the same `type`, or a CloudEvent in "
            "binary mode, as the CloudEvents SDKs send by default: `ce-type`, `ce-id`, `ce-source`, "
            "`ce-specversion` (and `ce-subject`, `ce-time`) headers, the body its data `{device_id?, occurred_at?}` "
            "(or `ce-subject` and `ce-time`). The signature covers the body only. The tenant is the API key's "
            "(scope `device_cloud`) or `?tenant=<slug>`. Stored at once, applied asynchronously; a replayed "
            "`webhook-id` answers 200 with the stored outcome."
        ),
        # An API key, or none (``?tenant=``): the signature authenticates. The stubs type auth as names.
        auth=[{"ApiKey": []}, {}],  # type: ignore[list-item]
        parameters=[
            OpenApiParameter("tenant", str, description="tenant slug, when no API key is sent"),
            OpenApiParameter(
                "webhook-id",
                {"type": "string", "minLength": 1, "maxLength": WEBHOOK_ID_MAX_LENGTH},
                OpenApiParameter.HEADER,
                required=True,
                description="the message id: a replay with the same id counts once",
            ),
            OpenApiParameter(
                "webhook-timestamp",
                {"type": "string", "pattern": "^[0-9]{1,12}$"},
                OpenApiParameter.HEADER,
                required=True,
                description="seconds since the epoch, within 5 minutes of now",
            ),
            OpenApiParameter(
                "webhook-signature",
                {"type": "string", "minLength": 1},
                OpenApiParameter.HEADER,
                required=True,
                description="`v1,<base64 HMAC-SHA256>`; several separated by spaces during a secret's rotation",
            ),
            *[
                OpenApiParameter(
                    name, {"type": "string"}, OpenApiParameter.HEADER, description="CloudEvents binary mode: %s." % text
                )
                for name, text in BINARY_HEADERS.items()
            ],
        ],
        request={
            "application/json": s.DeviceWebhookJsonBody,
            "application/cloudevents+json": s.DeviceCloudEventSerializer,
        },
        responses={
            202: s.WebhookOutputSerializer,
            200: OpenApiResponse(s.WebhookOutputSerializer, description="a replay: the stored webhook"),
            401: PROBLEM_SCHEMA,
            403: PROBLEM_SCHEMA,
            422: PROBLEM_SCHEMA,
        },
    )
    def post(self, request: Request) -> Response:
        tenant = self._tenant(request)
        if tenant is None:
            signature_refuse_unknown_tenant(body=request.body, headers=dict(request.headers))
        webhook, created = webhook_receive(
            tenant=tenant,
            body=request.body,
            headers=dict(request.headers),
            content_type=(request.content_type or "").split(";")[0].strip(),
            at=timezone.now(),
        )
        body = s.WebhookOutputSerializer(webhook).data
        if webhook.status == WebhookStatus.REJECTED:
            code = "unknown_device" if webhook.outcome.startswith("Unknown device") else "invalid_event"
            raise InvalidInput(
                webhook.outcome,
                code=code,
                errors=[FieldError("body", code, webhook.outcome)],
                extra={"webhook": body},
            )
        return Response(body, status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK)

    @staticmethod
    def _tenant(request: Request) -> Tenant | None:
        if isinstance(request.auth, ApiKey):
            return request.auth.tenant
        tenant = Tenant.objects.filter(slug=request.query_params.get("tenant", "")).first()
        if tenant is not None:
            tenant_activate(tenant)  # the database's row-level security: this tenant's rows from here on
        return tenant


class WebhookListApi(APIView):
    @extend_schema(
        operation_id="device_cloud_webhooks_list",
        parameters=[*LIST_PARAMETERS, choice_parameter("status", WebhookStatus.values)],
        responses={200: paginated(s.WebhookOutputSerializer, "WebhookPage"), **problems(422)},
    )
    def get(self, request: Request) -> Response:
        filters = choice_filters(request, {"status": WebhookStatus.values})
        qs = webhook_list(tenant=request_tenant(request), status=filters["status"])
        paginator = CursorPagination()
        paginator.ordering = ("-received_at", "-id")
        page: Any = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(s.WebhookOutputSerializer(page, many=True).data)


class WebhookReplayApi(APIView):
    @extend_schema(
        operation_id="device_cloud_webhooks_replay",
        request=None,
        responses={202: s.WebhookOutputSerializer, **problems(404)},
    )
    def post(self, request: Request, pk: str) -> Response:
        tenant = request_tenant(request)
        webhook = webhook_replay(
            tenant=tenant, webhook=webhook_get(tenant=tenant, pk=pk), actor=request_actor(request), at=timezone.now()
        )
        return Response(s.WebhookOutputSerializer(webhook).data, status=status.HTTP_202_ACCEPTED)


class SubscriptionChangeApi(APIView):
    @extend_schema(
        operation_id="subscriptions_changes_create",
        description="Add or remove devices, change plan or cancel, prorated by calendar days in the customer's "
        "time zone. With `preview: true` the credit and charge lines are returned and nothing is applied.",
        request=s.ChangeInputSerializer,
        responses={200: s.ChangeOutputSerializer, 201: s.ChangeOutputSerializer, **problems(400, 404, 409, 422)},
    )
    @idempotent
    def post(self, request: Request, external_id: str) -> Response:
        tenant = request_tenant(request)
        subscription = subscription_get(tenant=tenant, external_id=external_id)
        serializer = s.ChangeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        params = {k: v for k, v in data.items() if k in ("device_ids", "plan", "at_period_end")}
        if "devices" in data:
            params["devices"] = [dict(d) for d in data["devices"]]
        result = subscription_change(
            subscription=subscription,
            action=data["action"],
            params=params,
            actor=request_actor(request),
            at=timezone.now(),
            effective_at=data["effective_at"],
            preview=data["preview"],
        )
        body = s.ChangeOutputSerializer(result).data
        return Response(body, status=status.HTTP_200_OK if data["preview"] else status.HTTP_201_CREATED)
