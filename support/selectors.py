"""Reads of support cases: the queue with its filters, one case with its conversation, and whether a
case is overdue, computed by the database from the tenant's first-response target."""

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import BooleanField, Count, ExpressionWrapper, Q, QuerySet

from customers.models import Customer
from support.errors import SupportCaseNotFound
from support.models import DEFAULT_FIRST_RESPONSE_HOURS, CaseStatus, SupportCase, SupportSettings
from tenancy.models import Membership, Tenant


def first_response_hours(*, tenant: Tenant) -> int:
    """The tenant's first-response target in hours (24 when never set)."""
    row = SupportSettings.objects.filter(tenant=tenant).only("first_response_hours").first()
    return row.first_response_hours if row is not None else DEFAULT_FIRST_RESPONSE_HOURS


def overdue_condition(*, tenant: Tenant, at: datetime) -> Q:
    """Not resolved, no staff answer yet, and opened longer ago than the target: with a 24 h target, a
    case opened on 1 June at 09:00 is overdue from 2 June 09:00 on (opened before ``at`` − 24 h)."""
    cutoff = at - timedelta(hours=first_response_hours(tenant=tenant))
    return Q(first_response_at__isnull=True, created_at__lt=cutoff) & ~Q(status=CaseStatus.RESOLVED)


def case_list(
    *,
    tenant: Tenant,
    at: datetime,
    status: str | None = None,
    customer: Customer | None = None,
    assignee: Any = None,
    unassigned: bool = False,
    overdue: bool | None = None,
    opened_before: datetime | None = None,
    opened_after: datetime | None = None,
) -> QuerySet[SupportCase]:
    """The tenant's cases, newest first, each with ``overdue`` (as of ``at``) and ``message_count``
    annotated, its customer, invoice and assignee joined."""
    qs = (
        SupportCase.objects.filter(tenant=tenant)
        .select_related("customer", "invoice", "assignee")
        .annotate(
            overdue=ExpressionWrapper(overdue_condition(tenant=tenant, at=at), output_field=BooleanField()),
            message_count=Count("messages"),
        )
    )
    if status:
        qs = qs.filter(status=status)
    if customer is not None:
        qs = qs.filter(customer=customer)
    if unassigned:
        qs = qs.filter(assignee__isnull=True)
    elif assignee is not None:
        qs = qs.filter(assignee=assignee)
    if overdue is not None:
        qs = qs.filter(overdue=overdue)
    if opened_before is not None:
        qs = qs.filter(created_at__lt=opened_before)
    if opened_after is not None:
        qs = qs.filter(created_at__gte=opened_after)
    return qs.order_by("-created_at", "-id")


def case_get(*, tenant: Tenant, pk: str, at: datetime, customer: Customer | None = None) -> SupportCase:
    """One case (of ``customer`` when given: another customer's case is not found either)."""
    try:
        key = uuid.UUID(str(pk))
    except ValueError:
        raise SupportCaseNotFound("No such support case.") from None
    qs = case_list(tenant=tenant, at=at, customer=customer).filter(pk=key)
    case = qs.first()
    if case is None:
        raise SupportCaseNotFound("No such support case.")
    return case


def case_messages(*, case: SupportCase) -> list[Any]:
    return list(case.messages.order_by("at", "id"))


def case_credit_notes(*, case: SupportCase) -> list[Any]:
    """The credit notes issued from the case, oldest first."""
    return [link.credit_note for link in case.credit_note_links.select_related("credit_note").order_by("created_at")]


def open_cases_of_customer(*, tenant: Tenant, customer: Customer, at: datetime, limit: int = 10) -> list[SupportCase]:
    """The customer's cases not resolved, newest first (the customer's page shows them)."""
    return list(case_list(tenant=tenant, at=at, customer=customer).exclude(status=CaseStatus.RESOLVED)[:limit])


def staff_members(*, tenant: Tenant) -> QuerySet[Any]:
    """The tenant's team, who a case can be assigned to, by e-mail."""
    return (
        get_user_model()
        .objects.filter(memberships__tenant=tenant)
        .order_by("email", "pk")
        .only("pk", "email", "username")
    )


def staff_member_get(*, tenant: Tenant, email: str) -> Any:
    """A member of the tenant's team by e-mail, or None."""
    return staff_members(tenant=tenant).filter(email__iexact=email).first() if email else None


def is_staff_member(*, tenant: Tenant, user: Any) -> bool:
    return Membership.objects.filter(tenant=tenant, user=user).exists()
