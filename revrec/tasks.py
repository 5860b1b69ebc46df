"""Celery tasks of revenue recognition: a recognition run (by chunks of contracts, in
``revrec.periods``), and the monthly schedule that runs every tenant's previous month."""

import time

from celery import shared_task
from django.utils import timezone

from billing_platform.tasks import TenantTask
from tenancy.dispatch import for_each_tenant
from tenancy.models import Tenant

# A run works this long per task, then queues its continuation: every task stays well within the
# hard time limit (300 s, settings.CELERY_TASK_TIME_LIMIT) that sizes the broker's visibility timeout.
SLICE_SECONDS = 240


@shared_task(base=TenantTask, acks_late=True)
def recognition_run_execute_task(run_id: str, *, tenant_id: str) -> str:
    """Do a queued run, ``SLICE_SECONDS`` at a time; delivered again, it resumes after its last
    committed chunk. Returns its status."""
    from revrec.periods import recognition_run_execute

    run = recognition_run_execute(run_id=run_id, at=timezone.now(), until=time.monotonic() + SLICE_SECONDS)
    if run.status == "running":
        recognition_run_execute_task.delay(run_id, tenant_id=tenant_id)
    return str(run.status)


@shared_task(base=TenantTask)
def recognition_runs_start_scheduled_task(*, tenant_id: str) -> str | None:
    from revrec.periods import recognition_runs_start_scheduled

    run = recognition_runs_start_scheduled(tenant=Tenant.objects.get(pk=tenant_id), at=timezone.now())
    return str(run.pk) if run is not None else None


@shared_task
def recognition_runs_scheduled_task() -> int:
    """Beat, hourly: one task per tenant runs its previous month once it has ended in the tenant's time
    zone, early on the 1st (once). Returns how many tenants were queued."""
    return for_each_tenant(recognition_runs_start_scheduled_task)
