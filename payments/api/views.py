from typing import Any

from django.utils import timezone
from djmoney.money import Money
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_platform.api.idempotency import idempotent
from billing_platform.api.pagination import LIST_PARAMETERS, CursorPagination, paginated
from billing_platform.api.serializers import problems
from billing_platform.errors import FieldError, InvalidInput
from customers.errors import CustomerNotFound
from customers.selectors import customer_get
from payments.api import serializers as s
from payments.ledger import payment_record
from payments.refunds import payment_refund
from payments.selectors import balance_transaction_list, invoice_lookup, payment_get, payment_list
from tenancy.api import request_actor, request_tenant


class PaymentListCreateApi(APIView):
    @extend_schema(
        operation_id="payments_list",
        parameters=[
            *LIST_PARAMETERS,
            OpenApiParameter("customer", str, description="the customer's external_id"),
            OpenApiParameter("invoice", str, description="an invoice's id or number: the payments allocated to it"),
        ],
        responses={200: paginated(s.PaymentOutputSerializer, "PaymentPage"), **problems(422)},
    )
    def get(self, request: Request) -> Response:
        qs = payment_list(
            tenant=request_tenant(request),
            customer=request.query_params.get("customer"),
            invoice=request.query_params.get("invoice"),
        )
        paginator = CursorPagination()
        page: Any = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(s.PaymentOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="payments_create",
        description="Record money received outside a gateway (transfer, cheque, cash). It is allocated to `invoice` "
        "(at most what it still owes) or to the customer's open invoices, oldest due first; the rest goes to the "
        "customer's credit balance, or is refunded when the tenant's settings say so. A payment in another currency "
        "than the customer's or the invoice's is refused (422 `payment_currency_mismatch`).",
        request=s.PaymentInputSerializer,
        responses={201: s.PaymentOutputSerializer, **problems(400, 409, 422)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        tenant = request_tenant(request)
        serializer = s.PaymentInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        errors = []
        customer = invoice = None
        try:
            customer = customer_get(tenant=tenant, external_id=data["customer"])
        except CustomerNotFound as exc:
            errors.append(FieldError("customer", "unknown_customer", exc.detail))
        if data.get("invoice"):
            invoice = invoice_lookup(tenant=tenant, ref=data["invoice"]).select_related("customer").first()
            if invoice is None:
                errors.append(FieldError("invoice", "unknown_invoice", "No invoice with this id or number."))
        if errors or customer is None:
            raise InvalidInput("; ".join(e.message for e in errors), errors=errors)
        payment = payment_record(
            customer=customer,
            amount=Money(data["amount"], data["currency"]),
            method=data["method"],
            received_at=data["received_at"],
            actor=request_actor(request),
            at=timezone.now(),
            invoice=invoice,
            reference=data["reference"],
        )
        fresh = payment_get(tenant=tenant, pk=str(payment.pk))
        return Response(s.PaymentOutputSerializer(fresh).data, status=status.HTTP_201_CREATED)


class PaymentDetailApi(APIView):
    @extend_schema(operation_id="payments_retrieve", responses={200: s.PaymentOutputSerializer, **problems(404)})
    def get(self, request: Request, pk: str) -> Response:
        return Response(s.PaymentOutputSerializer(payment_get(tenant=request_tenant(request), pk=pk)).data)


class PaymentRefundCreateApi(APIView):
    @extend_schema(
        operation_id="payments_refunds_create",
        description="Give back part or all of what the payment still holds (its amount less what was refunded: "
        "more is refused, 422 `refund_exceeds_payment`), in the payment's currency: taken first from what it left "
        "on the customer's balance, then from its invoices, newest first. A gateway's payment is refunded through "
        "the gateway (422 `stripe_keys_invalid` when Stripe refuses the tenant's keys, 502 `stripe_unavailable` "
        "when it fails or cannot be reached). Send an Idempotency-Key: a retry of a request whose refund timed out "
        "finds the refund it made at Stripe instead of refunding again.",
        request=s.RefundInputSerializer,
        responses={201: s.RefundOutputSerializer, **problems(400, 404, 409, 422, 502)},
    )
    @idempotent
    def post(self, request: Request, pk: str) -> Response:
        payment = payment_get(tenant=request_tenant(request), pk=pk)
        serializer = s.RefundInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        refund = payment_refund(
            payment=payment,
            amount=Money(serializer.validated_data["amount"], payment.currency),
            reason=serializer.validated_data["reason"],
            actor=request_actor(request),
            at=timezone.now(),
            request_key=(request.headers.get("Idempotency-Key") or "").strip(),
        )
        return Response(s.RefundOutputSerializer(refund).data, status=status.HTTP_201_CREATED)


class CustomerBalanceTransactionListApi(APIView):
    @extend_schema(
        operation_id="customers_balance_transactions_list",
        description="The movements of the customer's credit balance, newest first: overpayments and credit notes "
        "add, amounts applied to invoices and refunds use it.",
        parameters=LIST_PARAMETERS,
        responses={
            200: paginated(s.BalanceTransactionOutputSerializer, "BalanceTransactionPage"),
            **problems(404, 422),
        },
    )
    def get(self, request: Request, external_id: str) -> Response:
        tenant = request_tenant(request)
        customer = customer_get(tenant=tenant, external_id=external_id)
        paginator = CursorPagination()
        page: Any = paginator.paginate_queryset(
            balance_transaction_list(tenant=tenant, customer_id=customer.pk), request, view=self
        )
        return paginator.get_paginated_response(s.BalanceTransactionOutputSerializer(page, many=True).data)
