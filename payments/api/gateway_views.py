from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_platform.api.idempotency import idempotent
from billing_platform.api.serializers import problems
from billing_platform.rls import tenant_activate
from customers.selectors import customer_get
from invoicing.selectors import invoice_get
from payments.api import gateway_serializers as s
from payments.charging import invoice_charge
from payments.gateway import payment_method_attach
from payments.gateway_errors import WebhookSignatureInvalid
from payments.stripe_webhooks import SIGNATURE_REJECTED, stripe_event_receive
from tenancy.api import request_tenant
from tenancy.models import ApiKey, Tenant
from tenancy.throttling import ApiRateThrottle


class InvoicePayApi(APIView):
    @extend_schema(
        operation_id="invoices_pay",
        request=None,
        description="Charge what the invoice still owes with the customer's default payment method, off-session, "
        "through the tenant's Stripe account. Answers 202 with the attempt (`created`): its outcome follows "
        "asynchronously (`GET /invoices/{id}` shows the attempts). At most one attempt per invoice is open at a "
        "time (409 `attempt_in_progress`); an attempt whose outcome is unknown is first reconciled with Stripe, "
        "and nothing new is charged while Stripe cannot say (409 `attempt_outcome_unknown`).",
        responses={202: s.AttemptOutputSerializer, **problems(404, 409, 422)},
    )
    @idempotent
    def post(self, request: Request, pk: str) -> Response:
        invoice = invoice_get(tenant=request_tenant(request), pk=pk)
        attempt = invoice_charge(invoice_id=invoice.pk, trigger="api", at=timezone.now())
        return Response(s.AttemptOutputSerializer(attempt).data, status=status.HTTP_202_ACCEPTED)


class CustomerPaymentMethodApi(APIView):
    @extend_schema(
        operation_id="customers_payment_method_set",
        request=s.PaymentMethodInputSerializer,
        description="Attach a Stripe PaymentMethod (`pm_…`, made with the tenant's publishable key) to the "
        "customer at Stripe and make it the one charged off-session. The Stripe customer is created when first "
        "needed.",
        responses={200: s.PaymentMethodOutputSerializer, **problems(404, 422, 502)},
    )
    @idempotent
    def post(self, request: Request, external_id: str) -> Response:
        customer = customer_get(tenant=request_tenant(request), external_id=external_id)
        serializer = s.PaymentMethodInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        found = payment_method_attach(customer=customer, payment_method=serializer.validated_data["payment_method"])
        return Response(s.PaymentMethodOutputSerializer(found).data)


class StripeWebhookPermission(permissions.BasePermission):
    """Stripe calls without an API key, naming the tenant with ``?tenant=<slug>``; the signature,
    checked in the view, authenticates it. An API key has no business here."""

    message = "Stripe webhooks are not sent with an API key."

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method not in view.allowed_methods:
            return True  # answered 405 by the view, whoever asks
        return not isinstance(request.auth, ApiKey) and bool(request.query_params.get("tenant"))


class StripeWebhookThrottle(ApiRateThrottle):
    """Counted against the tenant named by ``?tenant=``; an unknown slug under its own name, so that
    a 429 does not tell which slugs exist."""

    def tenant_ident(self, request: Request, api_key: ApiKey | None) -> str:
        slug = request.query_params.get("tenant", "")[:63]
        tenant_id = Tenant.objects.filter(slug=slug).values_list("pk", flat=True).first()
        return str(tenant_id) if tenant_id is not None else "slug:%s" % slug


class StripeWebhookApi(APIView):
    read_scopes: frozenset[str] = frozenset()
    write_scopes: frozenset[str] = frozenset()
    permission_classes = [StripeWebhookPermission]
    throttle_classes = [StripeWebhookThrottle]
    rate_limit_scope = "webhooks"

    @extend_schema(
        operation_id="webhooks_stripe",
        description="Events of the tenant's Stripe account, signed by Stripe (`Stripe-Signature`, verified with "
        "the tenant's webhook signing secret). Stored first and acknowledged with 200, applied asynchronously; "
        "an event id received before answers 200 and changes nothing. A bad or missing signature, or an unknown "
        "tenant, is a 400.",
        auth=[{}],  # type: ignore[list-item]  # no API key: the signature authenticates
        parameters=[
            OpenApiParameter("tenant", str, required=True, description="the tenant's slug"),
            OpenApiParameter("Stripe-Signature", str, OpenApiParameter.HEADER, required=True),
        ],
        request={"application/json": {"type": "object", "description": "a Stripe event"}},
        responses={
            200: OpenApiResponse(s.StripeEventOutputSerializer, description="stored (or known already)"),
            **problems(400),
        },
    )
    def post(self, request: Request) -> Response:
        tenant = Tenant.objects.filter(slug=request.query_params.get("tenant", "")).first()
        if tenant is None:
            raise WebhookSignatureInvalid(SIGNATURE_REJECTED)
        tenant_activate(tenant)  # the database's row-level security: this tenant's rows from here on
        event, created = stripe_event_receive(
            tenant=tenant, payload=request.body, signature=request.headers.get("Stripe-Signature", "")
        )
        return Response({"id": event.event_id, "type": event.type, "duplicate": not created})
