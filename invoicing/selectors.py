from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db.models import Count, F, Prefetch, Q, QuerySet, Sum
from djmoney.money import Money

from invoicing.errors import BillRunNotFound, InvoiceNotFound
from invoicing.models import (
    BillRun,
    BillRunCustomer,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoicePaymentStatus,
    InvoiceStatus,
)
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
        Prefetch("lines", queryset=InvoiceLine.objects.select_related("subscription").order_by("position")),
        "taxes",
        "payment_attempts",
    )


def invoice_search(
    *,
    tenant: Tenant,
    text: str | None = None,
    bill_run: BillRun | None = None,
    status: str | None = None,
    kind: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    customer: str | None = None,
) -> QuerySet[Invoice]:
    """``invoice_list`` without its lines and taxes, narrowed to a part of the customer's name or
    external ID or of the number (``text``), to one customer by its exact external ID (``customer``),
    and to the invoices of ``bill_run``."""
    qs = invoice_list(tenant=tenant, status=status, kind=kind, date_from=date_from, date_to=date_to)
    qs = qs.prefetch_related(None)
    if customer:
        qs = qs.filter(customer__external_id=customer)
    if text:
        qs = qs.filter(
            Q(customer__name__icontains=text) | Q(customer__external_id__icontains=text) | Q(number__icontains=text)
        )
    if bill_run is not None:
        qs = qs.filter(_bill_run_invoices(bill_run))
    return qs


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


def invoice_credit_notes(invoice: Invoice) -> list[Invoice]:
    """The credit notes of an invoice, void ones included, oldest first (without their PDFs)."""
    return list(invoice.credit_notes.defer("pdf").order_by("created_at", "id"))


def invoice_credit_balance(invoice: Invoice) -> dict[int, Decimal]:
    """What the invoice's credit notes (void ones left out) have credited so far, per line id: what
    is left to credit on a line is its amount minus this, the limit ``credit_note_create`` applies."""
    credited: dict[int, Decimal] = {}
    for line in InvoiceLine.objects.filter(invoice__credited_invoice=invoice).exclude(
        invoice__status=InvoiceStatus.VOID
    ):
        key = int(line.detail.get("credited_line", 0))
        credited[key] = credited.get(key, Decimal(0)) + line.amount
    return credited


def _bill_run_invoices(run: BillRun) -> Q:
    """The invoices a run created, and those it found already made for its date (a re-run)."""
    found = BillRunCustomer.objects.filter(bill_run=run, invoice__isnull=False).values("invoice_id")
    return Q(bill_run=run) | Q(pk__in=found)


@dataclass(frozen=True)
class BillRunProgress:
    """Where a run stands beyond its own counters: its customers per outcome (invoiced, existing,
    nothing, failed), the failed ones by customer name, and the invoices it created or found."""

    outcomes: dict[str, int]
    failures: list[BillRunCustomer]
    invoice_count: int


def bill_run_progress(run: BillRun) -> BillRunProgress:
    outcomes = dict(
        BillRunCustomer.objects.filter(bill_run=run).order_by().values_list("outcome").annotate(n=Count("pk"))
    )
    failures = (
        BillRunCustomer.objects.filter(bill_run=run, outcome="failed")
        .select_related("customer")
        .order_by("customer__name", "customer__external_id")
    )
    invoice_count = Invoice.objects.filter(tenant_id=run.tenant_id).filter(_bill_run_invoices(run)).count()
    return BillRunProgress(outcomes=outcomes, failures=list(failures), invoice_count=invoice_count)


@dataclass(frozen=True)
class InvoiceWorkCounts:
    """Invoices waiting for someone: drafts to review and finalize, and finalized invoices still
    open after their due date."""

    drafts: int
    overdue: int


def invoice_work_counts(*, tenant: Tenant, today: date) -> InvoiceWorkCounts:
    """The drafts (invoices, not credit notes) and the overdue invoices (finalized, unpaid or partly
    paid, due before ``today``): the rows of the invoice list filtered on ``status=draft&kind=invoice``
    and on ``payment=overdue``. One query."""
    counts = Invoice.objects.filter(tenant=tenant, kind=InvoiceKind.INVOICE).aggregate(
        drafts=Count("pk", filter=Q(status=InvoiceStatus.DRAFT)),
        overdue=Count(
            "pk",
            filter=Q(
                status=InvoiceStatus.FINALIZED,
                payment_status__in=[InvoicePaymentStatus.UNPAID, InvoicePaymentStatus.PARTIALLY_PAID],
                due_date__lt=today,
            ),
        ),
    )
    return InvoiceWorkCounts(drafts=counts["drafts"], overdue=counts["overdue"])


def bill_run_last(*, tenant: Tenant) -> BillRun | None:
    """The tenant's latest bill run (the first of the bill runs page), or None before the first."""
    return bill_run_list(tenant=tenant).order_by("-created_at", "-id").first()


@dataclass(frozen=True)
class CurrencyTotals:
    """Invoices of one currency added up in the database: how many (and how many still drafts), and
    their amounts excluding tax, tax and total."""

    currency: str
    count: int
    drafts: int
    net: Money
    tax: Money
    total: Money


_SUMS = ("n", "drafts", "net", "tax", "total")


def _sums(prefix: str = "") -> dict[str, Any]:
    """The aggregates of ``CurrencyTotals``, over invoices reached through ``prefix``."""
    return {
        "n": Count("pk"),
        "drafts": Count("pk", filter=Q(**{prefix + "status": InvoiceStatus.DRAFT})),
        "net": Sum(prefix + "net_total"),
        "tax": Sum(prefix + "tax_total"),
        "total": Sum(prefix + "total"),
    }


def _totals(currency: str, row: Mapping[str, Any]) -> CurrencyTotals:
    return CurrencyTotals(
        currency=currency,
        count=int(row["n"]),
        drafts=int(row["drafts"]),
        net=Money(row["net"] or Decimal(0), currency),
        tax=Money(row["tax"] or Decimal(0), currency),
        total=Money(row["total"] or Decimal(0), currency),
    )


def invoices_totals(invoices: QuerySet[Invoice]) -> list[CurrencyTotals]:
    """``invoices`` added up per currency in one query, currencies in alphabetical order."""
    rows = invoices.order_by().values("currency").annotate(**_sums()).order_by("currency")
    return [_totals(row["currency"], row) for row in rows]


def bill_runs_totals(runs: list[BillRun]) -> dict[UUID, list[CurrencyTotals]]:
    """The invoices of each run (those it created and those it found made for its date by an earlier
    run, as ``invoice_search(bill_run=...)`` lists them), voided ones left out, added up per currency:
    two grouped queries whatever the number of runs."""
    ids = [run.pk for run in runs]
    created = (
        Invoice.objects.filter(bill_run_id__in=ids, kind=InvoiceKind.INVOICE)
        .exclude(status=InvoiceStatus.VOID)
        .order_by()
        .values("bill_run_id", "currency")
        .annotate(**_sums())
    )
    # A customer a run found already invoiced for its date: that invoice counts for this run too.
    found = (
        BillRunCustomer.objects.filter(bill_run_id__in=ids, invoice__isnull=False)
        .exclude(invoice__bill_run_id=F("bill_run_id"))
        .exclude(invoice__status=InvoiceStatus.VOID)
        .order_by()
        .values("bill_run_id", currency=F("invoice__currency"))
        .annotate(**_sums("invoice__"))
    )
    sums: dict[tuple[UUID, str], dict[str, Any]] = {}
    rows: list[Mapping[str, Any]] = [*created, *found]
    for row in rows:
        into = sums.setdefault((row["bill_run_id"], row["currency"]), dict.fromkeys(_SUMS, 0))
        for name in _SUMS:
            into[name] += row[name] or 0
    totals: dict[UUID, list[CurrencyTotals]] = {run_id: [] for run_id in ids}
    for (run_id, currency), row in sorted(sums.items(), key=lambda item: item[0][1]):
        totals[run_id].append(_totals(currency, row))
    return totals
