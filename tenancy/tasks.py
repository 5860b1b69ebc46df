"""Celery tasks that concern every tenant's jobs: the watchdog of long jobs (``billing_platform.jobs``),
one task per tenant, each under its tenant's row-level security."""

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from billing_platform.jobs import jobs_watchdog
from billing_platform.tasks import TenantTask
from tenancy.dispatch import for_each_tenant


@shared_task(base=TenantTask)
def jobs_watchdog_tenant_task(*, tenant_id: str) -> dict[str, int]:
    """The tenant's stalled runs and exports taken up again. Returns how many of each kind."""
    return jobs_watchdog(at=timezone.now())


@shared_task
def jobs_watchdog_task() -> int:
    """Beat, every JOB_WATCHDOG_INTERVAL_SECONDS: one watchdog task per tenant, dropped if still
    queued when the next one comes (a backlog does not pile them up). Returns how many."""
    return for_each_tenant(jobs_watchdog_tenant_task, expires=settings.JOB_WATCHDOG_INTERVAL_SECONDS)
