"""Catalog API: products, meters, tax rates, plans, price versions, overrides and price quotes."""

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_platform.api.filters import choice_filters, choice_parameter
from billing_platform.api.idempotency import idempotent
from billing_platform.api.pagination import LIST_PARAMETERS, CursorPagination, paginated
from billing_platform.api.serializers import problems
from catalog.api import serializers as s
from catalog.models import ProductKind
from catalog.quotes import UsageInput, price_quote
from catalog.selectors import (
    meter_get,
    meter_list,
    plan_get,
    plan_list,
    price_override_list,
    price_version_list,
    product_get,
    product_list,
    tax_rate_list,
)
from catalog.services import (
    meter_create,
    meter_update,
    plan_create,
    plan_update,
    price_override_create,
    price_version_create,
    product_create,
    product_update,
    tax_rate_set,
)
from customers.selectors import customer_get
from tenancy.api import request_actor, request_tenant


def _page(request: Request, view: APIView, qs: Any, serializer: Any) -> Response:
    paginator = CursorPagination()
    page: Any = paginator.paginate_queryset(qs, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True).data)


def _validated(serializer_class: Any, request: Request, *, partial: bool = False) -> dict[str, Any]:
    serializer = serializer_class(data=request.data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class ProductListCreateApi(APIView):
    @extend_schema(
        operation_id="products_list",
        parameters=[*LIST_PARAMETERS, choice_parameter("kind", ProductKind.values)],
        responses={200: paginated(s.ProductOutputSerializer, "ProductPage"), **problems(422)},
    )
    def get(self, request: Request) -> Response:
        filters = choice_filters(request, {"kind": ProductKind.values})
        qs = product_list(tenant=request_tenant(request), kind=filters["kind"])
        return _page(request, self, qs, s.ProductOutputSerializer)

    @extend_schema(
        operation_id="products_create",
        request=s.ProductInputSerializer,
        responses={201: s.ProductOutputSerializer, **problems(400, 409, 422)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = _validated(s.ProductInputSerializer, request)
        data["ssp"] = [dict(x) for x in data["ssp"]]
        product = product_create(
            tenant=request_tenant(request), actor=request_actor(request), at=timezone.now(), **data
        )
        return Response(s.ProductOutputSerializer(product).data, status=status.HTTP_201_CREATED)


class ProductDetailApi(APIView):
    @extend_schema(operation_id="products_retrieve", responses={200: s.ProductOutputSerializer, **problems(404)})
    def get(self, request: Request, code: str) -> Response:
        return Response(s.ProductOutputSerializer(product_get(tenant=request_tenant(request), code=code)).data)

    @extend_schema(
        operation_id="products_update",
        request=s.ProductPatchSerializer,
        responses={200: s.ProductOutputSerializer, **problems(400, 404, 422)},
    )
    def patch(self, request: Request, code: str) -> Response:
        tenant = request_tenant(request)
        product_get(tenant=tenant, code=code)  # 404 before validating the body
        changes = _validated(s.ProductPatchSerializer, request, partial=True)
        if "ssp" in changes:
            changes["ssp"] = [dict(x) for x in changes["ssp"]]
        product = product_update(
            tenant=tenant, actor=request_actor(request), at=timezone.now(), code=code, changes=changes
        )
        return Response(s.ProductOutputSerializer(product_get(tenant=tenant, code=product.code)).data)


class MeterListCreateApi(APIView):
    @extend_schema(
        operation_id="meters_list",
        parameters=LIST_PARAMETERS,
        responses={200: paginated(s.MeterOutputSerializer, "MeterPage"), **problems(422)},
    )
    def get(self, request: Request) -> Response:
        return _page(request, self, meter_list(tenant=request_tenant(request)), s.MeterOutputSerializer)

    @extend_schema(
        operation_id="meters_create",
        request=s.MeterInputSerializer,
        responses={201: s.MeterOutputSerializer, **problems(400, 409, 422)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = _validated(s.MeterInputSerializer, request)
        meter = meter_create(tenant=request_tenant(request), actor=request_actor(request), at=timezone.now(), **data)
        return Response(s.MeterOutputSerializer(meter).data, status=status.HTTP_201_CREATED)


class MeterDetailApi(APIView):
    @extend_schema(operation_id="meters_retrieve", responses={200: s.MeterOutputSerializer, **problems(404)})
    def get(self, request: Request, code: str) -> Response:
        return Response(s.MeterOutputSerializer(meter_get(tenant=request_tenant(request), code=code)).data)

    @extend_schema(
        operation_id="meters_update",
        request=s.MeterPatchSerializer,
        responses={200: s.MeterOutputSerializer, **problems(400, 404, 422)},
    )
    def patch(self, request: Request, code: str) -> Response:
        tenant = request_tenant(request)
        meter_get(tenant=tenant, code=code)
        changes = _validated(s.MeterPatchSerializer, request, partial=True)
        meter = meter_update(tenant=tenant, actor=request_actor(request), at=timezone.now(), code=code, changes=changes)
        return Response(s.MeterOutputSerializer(meter).data)


class TaxRateListCreateApi(APIView):
    @extend_schema(
        operation_id="tax_rates_list",
        parameters=[*LIST_PARAMETERS, OpenApiParameter("country", str)],
        responses={200: paginated(s.TaxRateOutputSerializer, "TaxRatePage"), **problems(422)},
    )
    def get(self, request: Request) -> Response:
        qs = tax_rate_list(tenant=request_tenant(request), country=request.query_params.get("country"))
        return _page(request, self, qs, s.TaxRateOutputSerializer)

    @extend_schema(
        operation_id="tax_rates_create",
        description="Creates the rate of a (country, tax category) over a period of days (`valid_from` to "
        "`valid_to`, both included; no `valid_to`: open-ended), or changes the period starting on `valid_from` "
        "when it exists. An invoice takes the rate in force on its issue date. A period sharing a day with "
        "another of the same country and category is refused (409, `tax_rate_period_overlap`): end the "
        "earlier period first by posting it again with its `valid_to`.",
        request=s.TaxRateInputSerializer,
        responses={201: s.TaxRateOutputSerializer, **problems(400, 409, 422)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = _validated(s.TaxRateInputSerializer, request)
        rate = tax_rate_set(tenant=request_tenant(request), actor=request_actor(request), at=timezone.now(), **data)
        return Response(s.TaxRateOutputSerializer(rate).data, status=status.HTTP_201_CREATED)


class PlanListCreateApi(APIView):
    @extend_schema(
        operation_id="plans_list",
        parameters=LIST_PARAMETERS,
        responses={200: paginated(s.PlanOutputSerializer, "PlanPage"), **problems(422)},
    )
    def get(self, request: Request) -> Response:
        return _page(request, self, plan_list(tenant=request_tenant(request)), s.PlanOutputSerializer)

    @extend_schema(
        operation_id="plans_create",
        request=s.PlanInputSerializer,
        responses={201: s.PlanOutputSerializer, **problems(400, 409, 422)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = _validated(s.PlanInputSerializer, request)
        tenant = request_tenant(request)
        plan = plan_create(tenant=tenant, actor=request_actor(request), at=timezone.now(), **data)
        return Response(
            s.PlanOutputSerializer(plan_get(tenant=tenant, code=plan.code)).data, status=status.HTTP_201_CREATED
        )


class PlanDetailApi(APIView):
    @extend_schema(operation_id="plans_retrieve", responses={200: s.PlanOutputSerializer, **problems(404)})
    def get(self, request: Request, code: str) -> Response:
        return Response(s.PlanOutputSerializer(plan_get(tenant=request_tenant(request), code=code)).data)

    @extend_schema(
        operation_id="plans_update",
        description="Offers the plan in the customer portal's shop, or stops offering it (`self_service`); "
        "offers it to partners for their customers, or stops (`partner_visible`). A field left out is left "
        "as it is. Components and prices change by price versions, never here.",
        request=s.PlanUpdateInputSerializer,
        responses={200: s.PlanOutputSerializer, **problems(400, 404, 422)},
    )
    def patch(self, request: Request, code: str) -> Response:
        tenant = request_tenant(request)
        plan_get(tenant=tenant, code=code)  # 404 before validating the body
        data = _validated(s.PlanUpdateInputSerializer, request)
        plan_update(tenant=tenant, actor=request_actor(request), at=timezone.now(), code=code, **data)
        return Response(s.PlanOutputSerializer(plan_get(tenant=tenant, code=code)).data)


class PriceVersionListCreateApi(APIView):
    @extend_schema(
        operation_id="price_versions_list",
        parameters=LIST_PARAMETERS,
        responses={200: paginated(s.PriceVersionOutputSerializer, "PriceVersionPage"), **problems(404, 422)},
    )
    def get(self, request: Request, code: str) -> Response:
        tenant = request_tenant(request)
        qs = price_version_list(tenant=tenant, plan=plan_get(tenant=tenant, code=code))
        return _page(request, self, qs, s.PriceVersionOutputSerializer)

    @extend_schema(
        operation_id="price_versions_create",
        description="Schedules a price change: the new version prices every period that starts on or after "
        "`effective_from`. Versions are never edited. With a `price_book`, the version is part of that partner "
        "price book: it prices the customers of partners with this `price_book` (before the region and default "
        "books), and no one else.",
        request=s.PriceVersionInputSerializer,
        responses={201: s.PriceVersionOutputSerializer, **problems(400, 404, 409, 422)},
    )
    @idempotent
    def post(self, request: Request, code: str) -> Response:
        tenant = request_tenant(request)
        plan = plan_get(tenant=tenant, code=code)
        data = _validated(s.PriceVersionInputSerializer, request)
        version = price_version_create(
            tenant=tenant, actor=request_actor(request), at=timezone.now(), plan=plan, data=data
        )
        version = price_version_list(tenant=tenant, plan=plan).get(pk=version.pk)
        return Response(s.PriceVersionOutputSerializer(version).data, status=status.HTTP_201_CREATED)


class PriceOverrideListCreateApi(APIView):
    @extend_schema(
        operation_id="price_overrides_list",
        parameters=LIST_PARAMETERS,
        responses={200: paginated(s.PriceOverrideOutputSerializer, "PriceOverridePage"), **problems(404, 422)},
    )
    def get(self, request: Request, code: str) -> Response:
        tenant = request_tenant(request)
        plan = plan_get(tenant=tenant, code=code)
        qs = price_override_list(tenant=tenant, plan=plan)
        return _page(request, self, qs, s.PriceOverrideOutputSerializer)

    @extend_schema(
        operation_id="price_overrides_create",
        description="A price negotiated with one customer for one component of the plan, in the customer's "
        "currency. It beats the region and default price books.",
        request=s.PriceOverrideInputSerializer,
        responses={201: s.PriceOverrideOutputSerializer, **problems(400, 404, 409, 422)},
    )
    @idempotent
    def post(self, request: Request, code: str) -> Response:
        tenant = request_tenant(request)
        plan = plan_get(tenant=tenant, code=code)
        data = _validated(s.PriceOverrideInputSerializer, request)
        customer = customer_get(tenant=tenant, external_id=data.pop("customer"))
        override = price_override_create(
            tenant=tenant, actor=request_actor(request), at=timezone.now(), customer=customer, plan=plan, data=data
        )
        return Response(s.PriceOverrideOutputSerializer(override).data, status=status.HTTP_201_CREATED)


class PriceQuoteApi(APIView):
    # A quote has no side effects: read-only keys may ask for one.
    write_scopes = frozenset({"full", "read"})

    @extend_schema(
        operation_id="price_quotes_create",
        description="The price calculator: the lines and total one billing period of a plan would cost. "
        "No side effects.",
        request=s.PriceQuoteInputSerializer,
        responses={200: s.PriceQuoteOutputSerializer, **problems(400, 404, 422)},
    )
    def post(self, request: Request) -> Response:
        tenant = request_tenant(request)
        data = _validated(s.PriceQuoteInputSerializer, request)
        customer = customer_get(tenant=tenant, external_id=data["customer"]) if data["customer"] else None
        quote = price_quote(
            tenant=tenant,
            plan=plan_get(tenant=tenant, code=data["plan"]),
            currency=data["currency"].upper(),
            country=data["region"].upper() if data["region"] else None,
            devices=data["devices"],
            usage=[
                UsageInput(u["meter"], u["quantity"].normalize(), u["dimensions"], u["events"]) for u in data["usage"]
            ],
            at=data["at"] or timezone.now(),
            customer=customer,
        )
        return Response(s.PriceQuoteOutputSerializer(quote).data)
