"""Celery tasks of the back-office: long CSV exports written in the background, and their files
deleted once expired."""

from celery import shared_task
from django.utils import timezone

from billing_platform.tasks import LONG_TASK_LIMITS, TenantTask
from tenancy.dispatch import for_each_tenant
from tenancy.models import Tenant

# A long CSV may take longer than the 300 s of other tasks: past the soft limit it fails with its
# reason (data_export_run catches SoftTimeLimitExceeded like any error). The watchdog waits for the
# hard limit and a minute (backoffice.apps) before it writes one again.
EXPORT_SOFT_TIME_LIMIT = LONG_TASK_LIMITS["soft_time_limit"]
EXPORT_TIME_LIMIT = LONG_TASK_LIMITS["time_limit"]


@shared_task(base=TenantTask, acks_late=True, soft_time_limit=EXPORT_SOFT_TIME_LIMIT, time_limit=EXPORT_TIME_LIMIT)
def data_export_run_task(export_id: str, *, tenant_id: str) -> str:
    """Write a queued export's file; delivered again, it is written again or left done. Returns its status."""
    from backoffice.exports.services import data_export_run

    return str(data_export_run(export_id=export_id, at=timezone.now(), finished=timezone.now).status)


@shared_task(base=TenantTask)
def data_exports_purge_tenant_task(*, tenant_id: str) -> int:
    from backoffice.exports.services import data_exports_purge

    return data_exports_purge(tenant=Tenant.objects.get(pk=tenant_id), at=timezone.now())


@shared_task
def data_exports_purge_task() -> int:
    """Beat, hourly: each tenant's expired exports are deleted. Returns how many tenants were queued."""
    return for_each_tenant(data_exports_purge_tenant_task)
