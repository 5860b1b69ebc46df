import logging

from celery import Task, group, shared_task
from django.utils import timezone

from billing_platform.tasks import TenantTask
from invoicing.models import BillRun, Invoice
from tenancy.dispatch import for_each_tenant
from tenancy.models import Tenant

logger = logging.getLogger(__name__)


@shared_task(base=TenantTask, bind=True, max_retries=3, acks_late=True)
def bill_run_execute_task(self: Task, run_id: str, *, tenant_id: str) -> int:
    """Plan the run, then fan its customer chunks out to the workers, each under the run's tenant."""
    from invoicing.services import bill_run_plan

    run = BillRun.objects.select_related("tenant").get(pk=run_id)
    chunks = bill_run_plan(run=run, at=timezone.now())
    if chunks:
        group(bill_run_chunk_task.s(run_id, chunk, tenant_id=tenant_id) for chunk in chunks).apply_async()
    return len(chunks)


@shared_task(base=TenantTask, bind=True, max_retries=5, acks_late=True)
def bill_run_chunk_task(self: Task, run_id: str, customer_ids: list[str], *, tenant_id: str) -> None:
    """Invoice one chunk; safe to run twice (customers already handled are skipped, invoices are unique)."""
    from invoicing.services import bill_run_chunk

    try:
        bill_run_chunk(run_id=run_id, customer_ids=customer_ids, at=timezone.now())
    except Exception as exc:
        raise self.retry(exc=exc, countdown=10) from exc


@shared_task
def bill_runs_scheduled_task() -> int:
    """Scheduled by beat: one task per tenant starts the bill runs that are due in that tenant.
    Returns how many tenants were queued."""
    return for_each_tenant(bill_runs_start_due_task)


@shared_task(base=TenantTask)
def bill_runs_start_due_task(*, tenant_id: str) -> int:
    from invoicing.services import bill_runs_start_due

    return bill_runs_start_due(tenant=Tenant.objects.get(pk=tenant_id), at=timezone.now())


@shared_task(base=TenantTask, bind=True, max_retries=5, acks_late=True)
def invoice_render_task(self: Task, invoice_id: str, *, tenant_id: str) -> None:
    """Render the PDF (with its Factur-X XML) of a finalized invoice and e-mail it."""
    from invoicing.documents import invoice_render_and_send

    invoice = Invoice.objects.filter(pk=invoice_id).first()
    if invoice is None:
        return
    try:
        invoice_render_and_send(invoice=invoice)
    except Exception as exc:
        logger.warning("rendering invoice %s failed: %s", invoice_id, exc)
        raise self.retry(exc=exc, countdown=30) from exc


@shared_task(base=TenantTask, bind=True, max_retries=5, acks_late=True)
def invoice_send_again_task(self: Task, invoice_id: str, *, tenant_id: str) -> None:
    """E-mail a finalized invoice or credit note again, as a writer asked (``invoices_send``)."""
    from invoicing.documents import invoice_send_again

    invoice = Invoice.objects.filter(pk=invoice_id, tenant_id=tenant_id).first()
    if invoice is None:
        return
    try:
        invoice_send_again(invoice=invoice)
    except Exception as exc:
        logger.warning("e-mailing invoice %s again failed: %s", invoice_id, exc)
        raise self.retry(exc=exc, countdown=30) from exc
