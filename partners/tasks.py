"""Celery tasks of partners: the monthly commission statements, built on the 1st for the month
before, in each tenant's time zone (and any recent month missed, on the next pass)."""

from celery import shared_task
from django.utils import timezone

from billing_platform.tasks import LONG_TASK_LIMITS, TenantTask
from tenancy.dispatch import for_each_tenant
from tenancy.models import Tenant


@shared_task(base=TenantTask, acks_late=True, **LONG_TASK_LIMITS)
def commission_statements_build_task(*, tenant_id: str) -> int:
    """Build the tenant's statements of the previous month when it is the 1st there, and of any of
    the last months still without one; returns how many statements those months have."""
    from partners.statements import statements_build_scheduled

    return len(statements_build_scheduled(tenant=Tenant.objects.get(pk=tenant_id), at=timezone.now()))


@shared_task
def commission_statements_scheduled_task() -> int:
    """Beat, hourly: one task per tenant; each builds on its own 1st (local time), or catches up a
    month missed. Returns how many tenants were queued."""
    return for_each_tenant(commission_statements_build_task)
