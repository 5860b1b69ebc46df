"""The API a partner's own systems call with a partner API key (scope ``partner``), under
``/api/v1/partner/`` (specs/partners.md: "Partner API keys reach only the partner's routes and
customers"):

- ``GET/POST /partner/customers``, ``GET /partner/customers/{id}`` and its ``/current_usage``: the
  partner's customers; a customer created here is the partner's;
- ``GET /partner/plans``: the plans the tenant offers to partners (``partner_visible``);
- ``POST /partner/subscriptions``, ``GET /partner/subscriptions/{id}`` and
  ``POST /partner/subscriptions/{id}/devices/{slot}/bind``: subscriptions of its customers, on those
  plans, and the device ids it ships;
- ``GET /partner/statements`` (``?month=YYYY-MM``), ``GET /partner/statements/{id}`` and its ``/pdf``
  and ``/csv``: its commission statements, as the staff statements API answers them.

Every lookup is filtered by the key's partner: another partner's object, or a direct customer's, is
answered exactly as an unknown one (404). Such a key reaches no other route (``tenancy.permissions``),
and no other key reaches these. The audit log names the key as the actor."""

import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import QuerySet
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_platform.api.idempotency import idempotent
from billing_platform.api.pagination import LIST_PARAMETERS, CursorPagination, paginated
from billing_platform.api.serializers import problems
from billing_platform.content_security import pdf_policy
from billing_platform.errors import FieldError, InvalidInput, invalid
from catalog.api.serializers import PlanOutputSerializer, PriceVersionOutputSerializer
from catalog.models import Plan
from catalog.selectors import plan_list_partner_visible
from customers.api.views import (
    CustomerListCreateApi,
    CustomerOutputSerializer,
    address_flattened,
    country_errors_named_as_sent,
)
from customers.errors import CustomerNotFound
from customers.models import Customer, Partner, PartnerStatus
from customers.selectors import customer_list
from customers.services import customer_create
from invoicing.api.views import CurrentUsageSerializer
from invoicing.usage_cache import current_usage_data
from partners.api.statements import (
    STATEMENT_CSV_RESPONSES,
    STATEMENT_PDF_RESPONSES,
    StatementOutputSerializer,
    statement_csv_response,
    statement_data,
    statement_pdf_response,
    statement_with_lines,
    statements_page,
)
from subscriptions.api.orders import SlotBindInputSerializer
from subscriptions.api.serializers import DeviceOutputSerializer, SubscriptionDetailOutputSerializer
from subscriptions.api.serializers import SubscriptionInputSerializer as StaffSubscriptionInput
from subscriptions.errors import SlotNotFound, SubscriptionNotFound
from subscriptions.models import Device, Subscription
from subscriptions.orders import slot_bind
from subscriptions.selectors import subscription_get
from subscriptions.services import subscription_create
from tenancy.api import request_actor, request_tenant
from tenancy.models import ApiKey, ApiKeyScope

PARTNER_SCOPES = frozenset({ApiKeyScope.PARTNER})


class PartnerApiView(APIView):
    """A route of the partner API: only a partner's key, of a partner still active, reaches it."""

    read_scopes = PARTNER_SCOPES
    write_scopes = PARTNER_SCOPES

    def check_permissions(self, request: Request) -> None:
        super().check_permissions(request)
        api_key = request.auth
        partner = api_key.partner if isinstance(api_key, ApiKey) else None
        if partner is None or partner.status != PartnerStatus.ACTIVE:
            self.permission_denied(request, message="This API key's partner is not active.")


def request_partner(request: Request) -> Partner:
    api_key = request.auth
    assert isinstance(api_key, ApiKey)
    partner = api_key.partner
    assert isinstance(partner, Partner)
    return partner


def partner_customers(request: Request) -> QuerySet[Customer]:
    return customer_list(tenant=request_tenant(request)).filter(partner=request_partner(request))


def partner_customer_get(request: Request, external_id: str) -> Customer:
    """The partner's customer ``external_id``: another partner's, a direct customer or an unknown id
    read the same."""
    customer = partner_customers(request).filter(external_id=external_id).first()
    if customer is None:
        raise CustomerNotFound(f"No customer with external_id {external_id}.")
    return customer


def partner_subscription_get(request: Request, external_id: str) -> Subscription:
    subscription = subscription_get(tenant=request_tenant(request), external_id=external_id)
    if subscription.customer.partner_id != request_partner(request).pk:
        raise SubscriptionNotFound("No subscription with external_id %s." % external_id)
    return subscription


# --- customers ------------------------------------------------------------------------------------


@extend_schema_serializer(component_name="PartnerCustomerInput")
class PartnerCustomerInputSerializer(CustomerListCreateApi.InputSerializer):
    """A customer of the partner: the body of ``POST /customers`` without ``partner`` (it is the
    key's), nor ``collection`` and ``payment_terms_days``: the tenant's defaults apply, a partner sets
    neither (either in the body is a 422 ``unknown_field``)."""

    partner = None  # type: ignore[assignment]
    reseller = None  # type: ignore[assignment]
    collection = None  # type: ignore[assignment]
    payment_terms_days = None  # type: ignore[assignment]


class PartnerCustomerListCreateApi(PartnerApiView):
    @extend_schema(
        operation_id="partner_customers_list",
        description="The partner's customers, newest first.",
        parameters=[*LIST_PARAMETERS],
        responses={200: paginated(CustomerOutputSerializer, "PartnerCustomerPage"), **problems(422)},
    )
    def get(self, request: Request) -> Response:
        paginator = CursorPagination()
        page = paginator.paginate_queryset(partner_customers(request), request, view=self)
        return paginator.get_paginated_response(CustomerOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="partner_customers_create",
        description="A new customer of the partner, as `POST /customers` makes one: its `partner` is the key's.",
        request=PartnerCustomerInputSerializer,
        responses={201: CustomerOutputSerializer, **problems(400, 409, 422)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        serializer = PartnerCustomerInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = address_flattened(serializer.validated_data)
        if "country" not in fields:
            raise invalid("country", "required", "Give the customer's country, as country or address.country.")
        with country_errors_named_as_sent(serializer.validated_data):
            customer = customer_create(
                tenant=request_tenant(request),
                actor=request_actor(request),
                at=timezone.now(),
                partner=request_partner(request),
                **fields,
            )
        return Response(CustomerOutputSerializer(customer).data, status=status.HTTP_201_CREATED)


class PartnerCustomerDetailApi(PartnerApiView):
    @extend_schema(
        operation_id="partner_customers_retrieve", responses={200: CustomerOutputSerializer, **problems(404)}
    )
    def get(self, request: Request, external_id: str) -> Response:
        return Response(CustomerOutputSerializer(partner_customer_get(request, external_id)).data)


class PartnerCustomerCurrentUsageApi(PartnerApiView):
    @extend_schema(
        operation_id="partner_customers_current_usage",
        description="The customer's usage in its open periods, priced, and the invoice they close on, as "
        "`GET /customers/{external_id}/current_usage` gives them.",
        responses={200: CurrentUsageSerializer, **problems(404)},
    )
    def get(self, request: Request, external_id: str) -> Response:
        customer = partner_customer_get(request, external_id)  # another partner's customer: 404
        at = timezone.now()
        return Response(current_usage_data(tenant=request_tenant(request), external_id=customer.external_id, at=at))


# --- plans ----------------------------------------------------------------------------------------


@extend_schema_serializer(component_name="PartnerPlan")
class PartnerPlanSerializer(PlanOutputSerializer):
    price_versions = serializers.SerializerMethodField(  # type: ignore[assignment]
        help_text="the default and regional price versions, and those of the partner's price book"
    )

    @extend_schema_field(PriceVersionOutputSerializer(many=True))
    def get_price_versions(self, plan: Plan) -> list[Any]:
        book = self.context["partner"].price_book
        versions = [v for v in plan.price_versions.all() if v.price_book in ("", book)]
        return list(PriceVersionOutputSerializer(versions, many=True).data)


class PartnerPlanListApi(PartnerApiView):
    @extend_schema(
        operation_id="partner_plans_list",
        description="The plans the tenant offers to its partners, on which the partner subscribes its customers.",
        parameters=[*LIST_PARAMETERS],
        responses={200: paginated(PartnerPlanSerializer, "PartnerPlanPage"), **problems(422)},
    )
    def get(self, request: Request) -> Response:
        qs = plan_list_partner_visible(tenant=request_tenant(request))
        paginator = CursorPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        context = {"partner": request_partner(request)}
        return paginator.get_paginated_response(PartnerPlanSerializer(page, many=True, context=context).data)


# --- subscriptions -----------------------------------------------------------------------------------


@extend_schema_serializer(component_name="PartnerSubscriptionInput")
class PartnerSubscriptionInputSerializer(StaffSubscriptionInput):
    """The body of ``POST /subscriptions`` without ``price_locked`` (a 422 ``unknown_field``): a
    partner locks no price. ``signed_at`` and ``starts_on`` are today or later in the customer's time
    zone: a partner backdates nothing."""

    customer = serializers.CharField(help_text="the external_id of one of the partner's customers")
    plan = serializers.CharField(help_text="the code of a plan offered to partners (GET /partner/plans)")
    signed_at = serializers.DateTimeField(help_text="now or later: not before today in the customer's time zone")
    starts_on = serializers.DateField(
        required=False,
        allow_null=True,
        default=None,
        help_text="local date in the customer's time zone, today or later; default: the signature day",
    )
    price_locked = None  # type: ignore[assignment]


def _not_backdated(data: dict[str, Any], customer: Customer, now: datetime) -> list[FieldError]:
    """``signed_at`` and ``starts_on`` before today in the customer's time zone, named."""
    zone = ZoneInfo(customer.timezone)
    today = now.astimezone(zone).date()
    errors = []
    if data["signed_at"].astimezone(zone).date() < today:
        errors.append(FieldError("signed_at", "in_the_past", "Give a signature date of today or later."))
    if data.get("starts_on") is not None and data["starts_on"] < today:
        errors.append(FieldError("starts_on", "in_the_past", "Give a start date of today or later."))
    return errors


class PartnerSubscriptionCreateApi(PartnerApiView):
    @extend_schema(
        operation_id="partner_subscriptions_create",
        description="A subscription of one of the partner's customers on a plan offered to partners, as "
        "`POST /subscriptions` makes one. Another customer, or another plan, is a 422.",
        request=PartnerSubscriptionInputSerializer,
        responses={201: SubscriptionDetailOutputSerializer, **problems(400, 409, 422)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        tenant = request_tenant(request)
        now = timezone.now()
        serializer = PartnerSubscriptionInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        errors: list[FieldError] = []
        customer_id, plan_code = data.pop("customer"), data.pop("plan")
        customer = partner_customers(request).filter(external_id=customer_id).first()
        if customer is None:
            errors.append(FieldError("customer", "unknown_customer", "No customer with external_id %s." % customer_id))
        else:
            errors.extend(_not_backdated(data, customer, now))
        plan = plan_list_partner_visible(tenant=tenant).filter(code=plan_code).first()
        if plan is None:
            errors.append(FieldError("plan", "unknown_plan", "No plan offered to partners with code %s." % plan_code))
        if errors or customer is None or plan is None:
            raise InvalidInput("; ".join(e.message for e in errors), errors=errors)
        subscription = subscription_create(
            tenant=tenant,
            actor=request_actor(request),
            at=now,
            customer=customer,
            plan=plan,
            devices=[dict(d) for d in data.pop("devices")],
            **data,
        )
        subscription = subscription_get(tenant=tenant, external_id=subscription.external_id)
        return Response(SubscriptionDetailOutputSerializer(subscription).data, status=status.HTTP_201_CREATED)


class PartnerSubscriptionDetailApi(PartnerApiView):
    @extend_schema(
        operation_id="partner_subscriptions_retrieve",
        responses={200: SubscriptionDetailOutputSerializer, **problems(404)},
    )
    def get(self, request: Request, external_id: str) -> Response:
        return Response(SubscriptionDetailOutputSerializer(partner_subscription_get(request, external_id)).data)


# --- commission statements ---------------------------------------------------------------------------


class PartnerOwnStatementListApi(PartnerApiView):
    @extend_schema(
        operation_id="partner_own_statements_list",
        description="The partner's commission statements, newest first: one per month and currency, as "
        "`GET /partners/{code}/statements` answers them.",
        parameters=[*LIST_PARAMETERS, OpenApiParameter("month", str, description="YYYY-MM: that month's only")],
        responses={200: paginated(StatementOutputSerializer, "PartnerOwnStatementPage"), **problems(422)},
    )
    def get(self, request: Request) -> Response:
        return statements_page(self, request, request_partner(request))


class PartnerOwnStatementDetailApi(PartnerApiView):
    @extend_schema(
        operation_id="partner_own_statements_retrieve",
        description="One of the partner's statements with its lines; another partner's is a 404.",
        responses={200: StatementOutputSerializer, **problems(404)},
    )
    def get(self, request: Request, pk: str) -> Response:
        return Response(statement_data(statement_with_lines(request, pk, request_partner(request))))


class PartnerOwnStatementPdfApi(PartnerApiView):
    @extend_schema(operation_id="partner_own_statements_pdf", responses=STATEMENT_PDF_RESPONSES)
    @pdf_policy
    def get(self, request: Request, pk: str) -> HttpResponse:
        return statement_pdf_response(statement_with_lines(request, pk, request_partner(request)))


class PartnerOwnStatementCsvApi(PartnerApiView):
    @extend_schema(operation_id="partner_own_statements_csv", responses=STATEMENT_CSV_RESPONSES)
    def get(self, request: Request, pk: str) -> HttpResponse:
        return statement_csv_response(statement_with_lines(request, pk, request_partner(request)))


class PartnerSlotBindApi(PartnerApiView):
    @extend_schema(
        operation_id="partner_subscriptions_devices_bind",
        description="Binds a shipped device's id to a slot of one of the partner's subscriptions (`device` is the "
        "slot's `id`), as `POST /subscriptions/{external_id}/devices/{device}/bind` does.",
        request=SlotBindInputSerializer,
        responses={200: DeviceOutputSerializer, **problems(400, 404, 409, 422)},
    )
    @idempotent
    def post(self, request: Request, external_id: str, device: str) -> Response:
        tenant = request_tenant(request)
        subscription = partner_subscription_get(request, external_id)
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
