from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_platform.api.idempotency import idempotent
from billing_platform.api.serializers import problems
from customers.selectors import customer_get
from payments.api import dunning_serializers as s
from payments.dunning import dunning_run
from payments.models import DunningPolicy
from payments.policies import (
    DunningPolicyNotFound,
    bill_while_suspended_get,
    customer_policy_delete,
    customer_policy_get,
    customer_policy_set,
    tenant_policy_get,
    tenant_policy_set,
)
from tenancy.api import request_actor, request_tenant
from tenancy.models import Tenant

POLICY_RULES = "Days are whole numbers, sorted and each once; write-off no sooner than suspension; 422 otherwise."


def _tenant_policy(tenant: Tenant) -> dict[str, Any]:
    pay_url = (
        DunningPolicy.objects.filter(tenant=tenant, customer__isnull=True).values_list("pay_url", flat=True).first()
    )
    return {
        **tenant_policy_get(tenant=tenant).as_dict(),
        "bill_while_suspended": bill_while_suspended_get(tenant=tenant),
        "pay_url": pay_url or "",
    }


class DunningPolicyApi(APIView):
    @extend_schema(
        operation_id="dunning_policy_retrieve",
        description="The tenant's dunning policy (the defaults until it is set: retries on days 3, 5 and 7, "
        "reminders 3 days before and 7 days after the due date, suspension at 21 days, write-off at 60).",
        responses={200: s.TenantPolicySerializer},
    )
    def get(self, request: Request) -> Response:
        return Response(_tenant_policy(request_tenant(request)))

    @extend_schema(
        operation_id="dunning_policy_update",
        description="Replace the tenant's dunning policy. " + POLICY_RULES,
        request=s.TenantPolicySerializer,
        responses={200: s.TenantPolicySerializer, **problems(400, 422)},
    )
    def put(self, request: Request) -> Response:
        tenant = request_tenant(request)
        serializer = s.TenantPolicySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = dict(serializer.validated_data)
        bill_while_suspended = values.pop("bill_while_suspended")
        pay_url = values.pop("pay_url", None)
        tenant_policy_set(
            tenant=tenant,
            values=values,
            actor=request_actor(request),
            at=timezone.now(),
            bill_while_suspended=bill_while_suspended,
            pay_url=pay_url,
        )
        return Response(_tenant_policy(tenant))


class CustomerDunningPolicyApi(APIView):
    @extend_schema(
        operation_id="customers_dunning_policy_retrieve",
        description="The customer's own dunning policy; 404 `dunning_policy_not_found` when it follows the tenant's.",
        responses={200: s.CustomerPolicySerializer, **problems(404)},
    )
    def get(self, request: Request, external_id: str) -> Response:
        customer = customer_get(tenant=request_tenant(request), external_id=external_id)
        policy = customer_policy_get(customer=customer)
        if policy is None:
            raise DunningPolicyNotFound("Customer %s follows the tenant's dunning policy." % external_id)
        return Response({**policy.as_dict(), "customer": customer.external_id})

    @extend_schema(
        operation_id="customers_dunning_policy_update",
        description="Give the customer its own dunning policy, replacing the tenant's for its invoices. "
        + POLICY_RULES,
        request=s.PolicySerializer,
        responses={200: s.CustomerPolicySerializer, **problems(400, 404, 422)},
    )
    def put(self, request: Request, external_id: str) -> Response:
        customer = customer_get(tenant=request_tenant(request), external_id=external_id)
        serializer = s.PolicySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        policy = customer_policy_set(
            customer=customer, values=serializer.validated_data, actor=request_actor(request), at=timezone.now()
        )
        return Response({**policy.as_dict(), "customer": customer.external_id})

    @extend_schema(
        operation_id="customers_dunning_policy_destroy",
        description="The customer follows the tenant's policy again.",
        responses={204: OpenApiResponse(description="Removed."), **problems(404)},
    )
    def delete(self, request: Request, external_id: str) -> Response:
        customer = customer_get(tenant=request_tenant(request), external_id=external_id)
        customer_policy_delete(customer=customer, actor=request_actor(request), at=timezone.now())
        return Response(status=status.HTTP_204_NO_CONTENT)


class DunningRunApi(APIView):
    @extend_schema(
        operation_id="dunning_runs_create",
        description="Run the dunning pass for the tenant now (beat runs it every hour) and answer what it did. "
        "Each step happens once: a second run the same day does nothing more.",
        request=None,
        responses={200: s.DunningReportSerializer},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        report = dunning_run(tenant_id=request_tenant(request).pk, at=timezone.now())
        return Response(report.as_dict())
