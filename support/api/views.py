"""The support cases API: the queue (``GET /support_cases``), a case opened (``POST``), read with its
conversation, updated (status, assignee), answered (``POST .../messages``) and settled with a credit
note on its invoice (``POST .../credit_notes``). An API key speaks for the tenant's staff; a message
the tenant relays from its customer says so with ``author_type: customer``."""

import uuid
from typing import Any

from django.db.models import Q
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_platform.api.idempotency import idempotent
from billing_platform.api.pagination import LIST_PARAMETERS, CursorPagination, paginated
from billing_platform.api.serializers import problems
from billing_platform.errors import FieldError, InvalidInput, invalid
from customers.errors import CustomerNotFound
from customers.selectors import customer_get
from invoicing.api.serializers import CreditNoteInputSerializer, InvoiceOutputSerializer
from invoicing.models import Invoice
from invoicing.selectors import invoice_get
from support.api import serializers as s
from support.models import CaseStatus, SupportCase
from support.selectors import case_get, case_list, staff_member_get
from support.services import case_assign, case_credit_note_issue, case_open, case_status_set, message_add
from tenancy.api import request_actor, request_tenant
from tenancy.models import Tenant

BOOLEANS = {"true": True, "false": False}


def _invoice_of(tenant: Tenant, ref: str) -> Invoice | None:
    """An invoice (not a credit note) as the API names it: its id, or its number."""
    qs = Invoice.objects.filter(tenant=tenant, kind="invoice")
    try:
        return qs.filter(Q(pk=uuid.UUID(ref)) | Q(number=ref)).first()
    except ValueError:
        return qs.filter(number=ref).first()


def _assignee(tenant: Tenant, email: str | None, errors: list[FieldError]) -> Any:
    if not email:
        return None
    user = staff_member_get(tenant=tenant, email=email)
    if user is None:
        errors.append(FieldError("assignee", "not_a_member", "No member of the team with this e-mail."))
    return user


def _detail(request: Request, case: SupportCase, status_code: int = 200) -> Response:
    fresh = case_get(tenant=request_tenant(request), pk=str(case.pk), at=timezone.now())
    return Response(s.CaseDetailOutputSerializer(fresh).data, status=status_code)


class CaseListCreateApi(APIView):
    @extend_schema(
        operation_id="support_cases_list",
        description="The tenant's support cases, newest first.",
        parameters=[
            *LIST_PARAMETERS,
            OpenApiParameter("status", str, enum=CaseStatus.values),
            OpenApiParameter("customer", str, description="the customer's external_id"),
            OpenApiParameter("assignee", str, description="a team member's e-mail, or `none` for unassigned cases"),
            OpenApiParameter("overdue", bool, description="past the first-response target without a staff answer"),
        ],
        responses={200: paginated(s.CaseOutputSerializer, "SupportCasePage"), **problems(404, 422)},
    )
    def get(self, request: Request) -> Response:
        tenant = request_tenant(request)
        params = request.query_params
        status_filter = params.get("status") or None
        if status_filter is not None and status_filter not in CaseStatus.values:
            raise invalid("status", "invalid", "One of open, waiting_on_customer, resolved.")
        overdue = params.get("overdue")
        if overdue is not None and overdue not in BOOLEANS:
            raise invalid("overdue", "invalid", "true or false.")
        customer = None
        if params.get("customer"):
            customer = customer_get(tenant=tenant, external_id=params["customer"])
        assignee_param = params.get("assignee") or ""
        assignee = None
        if assignee_param and assignee_param != "none":
            assignee = staff_member_get(tenant=tenant, email=assignee_param[:254])
            if assignee is None:
                raise invalid("assignee", "not_a_member", "No member of the team with this e-mail.")
        qs = case_list(
            tenant=tenant,
            at=timezone.now(),
            status=status_filter,
            customer=customer,
            assignee=assignee,
            unassigned=assignee_param == "none",
            overdue=BOOLEANS[overdue] if overdue is not None else None,
        )
        paginator = CursorPagination()
        page: Any = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(s.CaseOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="support_cases_create",
        description="Open a case for a customer with its first message, about one of its invoices when `invoice` "
        "is given. From staff (the default) the first message counts as the first answer and the case waits on "
        "the customer; relayed from the customer (`author_type: customer`) it is open and the team is e-mailed.",
        request=s.CaseOpenInputSerializer,
        responses={201: s.CaseDetailOutputSerializer, **problems(400, 409, 422)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        tenant = request_tenant(request)
        serializer = s.CaseOpenInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        errors: list[FieldError] = []
        customer = invoice = None
        try:
            customer = customer_get(tenant=tenant, external_id=data["customer"])
        except CustomerNotFound as exc:
            errors.append(FieldError("customer", "unknown_customer", exc.detail))
        if data.get("invoice"):
            invoice = _invoice_of(tenant, data["invoice"])
            if invoice is None:
                errors.append(FieldError("invoice", "unknown_invoice", "No invoice with this id or number."))
        assignee = _assignee(tenant, data.get("assignee"), errors)
        if errors or customer is None:
            raise InvalidInput("; ".join(e.message for e in errors), errors=errors)
        case = case_open(
            customer=customer,
            subject=data["subject"],
            body=data["body"],
            actor=request_actor(request),
            author_type=data["author_type"],
            at=timezone.now(),
            invoice=invoice,
            assignee=assignee,
        )
        return _detail(request, case, status.HTTP_201_CREATED)


class CaseDetailApi(APIView):
    @extend_schema(
        operation_id="support_cases_retrieve",
        description="A case with its conversation, oldest message first, and the credit notes issued from it.",
        responses={200: s.CaseDetailOutputSerializer, **problems(404)},
    )
    def get(self, request: Request, pk: str) -> Response:
        case = case_get(tenant=request_tenant(request), pk=pk, at=timezone.now())
        return Response(s.CaseDetailOutputSerializer(case).data)

    @extend_schema(
        operation_id="support_cases_update",
        description="Assign the case (`assignee`: a team member's e-mail, null for nobody) or set its status: "
        "`resolved`, or `open` to reopen it. A resolved case can only be reopened (409).",
        request=s.CaseUpdateInputSerializer,
        responses={200: s.CaseDetailOutputSerializer, **problems(400, 404, 409, 422)},
    )
    def patch(self, request: Request, pk: str) -> Response:
        tenant = request_tenant(request)
        case = case_get(tenant=tenant, pk=pk, at=timezone.now())
        serializer = s.CaseUpdateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        actor, now = request_actor(request), timezone.now()
        errors: list[FieldError] = []
        assignee = _assignee(tenant, data.get("assignee"), errors)
        if errors:
            raise InvalidInput(errors[0].message, errors=errors)
        if "assignee" in data:
            case = case_assign(case=case, assignee=assignee, actor=actor, at=now)
        if "status" in data:
            case = case_status_set(case=case, status=data["status"], actor=actor, at=now)
        return _detail(request, case)


class CaseMessageCreateApi(APIView):
    @extend_schema(
        operation_id="support_cases_messages_create",
        description="Add a message to the conversation; the other side is e-mailed. A staff message answers "
        "the case (the first one is its first response) and leaves it waiting on the customer; a customer's "
        "message puts it back open. Either reopens a resolved case.",
        request=s.MessageInputSerializer,
        responses={201: s.MessageOutputSerializer, **problems(400, 404, 409, 422)},
    )
    @idempotent
    def post(self, request: Request, pk: str) -> Response:
        case = case_get(tenant=request_tenant(request), pk=pk, at=timezone.now())
        serializer = s.MessageInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        message = message_add(
            case=case,
            body=serializer.validated_data["body"],
            actor=request_actor(request),
            author_type=serializer.validated_data["author_type"],
            at=timezone.now(),
        )
        return Response(s.MessageOutputSerializer(message).data, status=status.HTTP_201_CREATED)


class CaseCreditNoteCreateApi(APIView):
    @extend_schema(
        operation_id="support_cases_credit_notes_create",
        description="A credit note on the case's invoice, in full or for some lines (as "
        "`POST /invoices/{id}/credit_notes`), linked to the case. A case about no invoice has none (409).",
        request=CreditNoteInputSerializer,
        responses={201: InvoiceOutputSerializer, **problems(404, 409, 422)},
    )
    @idempotent
    def post(self, request: Request, pk: str) -> Response:
        tenant = request_tenant(request)
        case = case_get(tenant=tenant, pk=pk, at=timezone.now())
        serializer = CreditNoteInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lines = serializer.validated_data.get("lines")
        note = case_credit_note_issue(
            case=case,
            actor=request_actor(request),
            at=timezone.now(),
            lines=[dict(x) for x in lines] if lines is not None else None,
            reason=serializer.validated_data["reason"],
        )
        return Response(
            InvoiceOutputSerializer(invoice_get(tenant=tenant, pk=str(note.pk))).data, status=status.HTTP_201_CREATED
        )
