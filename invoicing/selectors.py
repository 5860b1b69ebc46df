from datetime import date

from django.db.models import Prefetch, QuerySet

from invoicing.errors import BillRunNotFound, InvoiceNotFound
from invoicing.models import BillRun, Invoice, InvoiceLine
from tenancy.models import Tenant


def invoice_list(
    *,
    tenant: Tenant,
    customer: str | None = None,
    status: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    kind: str | None = None,
) -> QuerySet[Invoice]:
    qs = Invoice.objects.filter(tenant=tenant).select_related("customer", "credited_invoice").defer("pdf")
    if customer:
        qs = qs.filter(customer__external_id=customer)
    if status:
        qs = qs.filter(status=status)
    if kind:
        qs = qs.filter(kind=kind)
    if date_from:
        qs = qs.filter(issue_date__gte=date_from)
    if date_to:
        qs = qs.filter(issue_date__lte=date_to)
    return qs.prefetch_related(
        Prefetch("lines", queryset=InvoiceLine.objects.select_related("subscription").order_by("position")), "taxes"
    )


def invoice_get(*, tenant: Tenant, pk: str) -> Invoice:
    try:
        invoice = invoice_list(tenant=tenant).filter(pk=pk).first()
    except Exception:  # not a UUID
        invoice = None
    if invoice is None:
        raise InvoiceNotFound("No such invoice.")
    return invoice


def bill_run_get(*, tenant: Tenant, pk: str) -> BillRun:
    try:
        run = BillRun.objects.filter(tenant=tenant, pk=pk).first()
    except Exception:
        run = None
    if run is None:
        raise BillRunNotFound("No such bill run.")
    return run


def bill_run_list(*, tenant: Tenant) -> QuerySet[BillRun]:
    return BillRun.objects.filter(tenant=tenant)
