"""Celery tasks of revenue recognition: a recognition run (by chunks of contracts, in
``revrec.periods``), and the monthly schedule that runs every tenant's previous month."""

from celery import shared_task
from django.utils import timezone

from billing_platform.tasks import TenantTask
from tenancy.dispatch import for_each_tenant
from tenancy.models import Tenant


@shared_task(base=TenantTask, acks_late=True)
def recognition_run_execute_task(run_id: str, *, tenant_id: str) -> str:
    """Do a queued run; delivered again, it resumes after its last committed chunk. Returns its status."""
    from revrec.periods import recognition_run_execute

    return str(recognition_run_execute(run_id=run_id, at=timezone.now()).status)


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
