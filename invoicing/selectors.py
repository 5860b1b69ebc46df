from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import connection, models
from django.db.models import Count, F, Prefetch, Q, QuerySet, Sum
from django.db.models.expressions import RawSQL
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
    InvoiceTax,
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
    qs = _invoices_filtered(
        tenant=tenant, customer=customer, status=status, date_from=date_from, date_to=date_to, kind=kind
    )
    return (
        qs.select_related("customer", "credited_invoice")
        .defer("pdf")
        .prefetch_related(
            Prefetch("lines", queryset=InvoiceLine.objects.select_related("subscription").order_by("position")),
            "taxes",
            "payment_attempts",
        )
    )


def invoice_rows_list(
    *,
    tenant: Tenant,
    columns: "InvoiceColumns",
    customer: str | None = None,
    status: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    kind: str | None = None,
) -> QuerySet[Invoice, dict[str, Any]]:
    """The invoices ``invoice_list`` finds, as rows of ``columns.invoice`` and their ``id``, each
    with its lines (by position), taxes (by category and VAT category) and payment attempts (by
    number) as lists of rows of ``columns.lines``, ``.taxes`` and ``.attempts`` under
    ``lines_rows``, ``taxes_rows`` and ``attempts_rows``. One query whatever the number of invoices
    and of their parts, and no model instance."""
    qs = _invoices_filtered(
        tenant=tenant, customer=customer, status=status, date_from=date_from, date_to=date_to, kind=kind
    )
    attempt_model = Invoice.payment_attempts.rel.related_model  # invoicing does not import payments
    return qs.values(
        "id",
        *columns.invoice,
        lines_rows=_PartRows(InvoiceLine, columns.lines, ("position",)),
        taxes_rows=_PartRows(InvoiceTax, columns.taxes, ("category", "vat_category")),
        attempts_rows=_PartRows(attempt_model, columns.attempts, ("number",)),
    )


def invoice_row_get(*, tenant: Tenant, pk: str, columns: "InvoiceColumns") -> dict[str, Any]:
    """``invoice_get`` as a row of ``columns`` with its parts (``invoice_rows_list``)."""
    try:
        row = invoice_rows_list(tenant=tenant, columns=columns).filter(pk=pk).first()
    except Exception:  # not a UUID
        row = None
    if row is None:
        raise InvoiceNotFound("No such invoice.")
    return row


@dataclass(frozen=True)
class InvoiceColumns:
    """The columns an invoice read as rows returns (``values()`` names, a related field as
    ``customer__external_id``): the invoice's, and its lines', taxes' and payment attempts'."""

    invoice: tuple[str, ...]
    lines: tuple[str, ...]
    taxes: tuple[str, ...]
    attempts: tuple[str, ...]


def _column(model: type[models.Model], name: str) -> "models.Field[Any, Any]":
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field):
        raise TypeError("%s.%s is not a column" % (model.__name__, name))
    return field


def _quoted_column(field: "models.Field[Any, Any]") -> str:
    if field.column is None:
        raise TypeError("%s has no column" % field)
    return connection.ops.quote_name(field.column)


class _PartRows(RawSQL):
    """An invoice's rows of ``model`` (its ``invoice`` foreign key), in ``order``, as a list of
    dicts of ``columns`` (``values()`` names; a related field, one level, as
    ``subscription__external_id``) with the types ``values()`` gives: one JSON aggregate,
    a subquery of the invoice's query. Decimals travel as text (a JSON number would be a float)
    and timestamps as ISO 8601 text, both read back into ``Decimal`` and ``datetime``."""

    def __init__(self, model: type[models.Model], columns: Sequence[str], order: Sequence[str]) -> None:
        quote = connection.ops.quote_name
        table = quote(model._meta.db_table)
        pairs, joins = [], []
        self.converters: list[tuple[str, Callable[[Any], Any]]] = []
        for column in columns:
            name, _, related = column.partition("__")
            field = _column(model, name)
            source = table
            if related:
                target = field.related_model
                if not isinstance(target, type):
                    raise TypeError("%s.%s is not a foreign key" % (model.__name__, name))
                source = quote("part_" + name)
                joins.append(
                    "LEFT JOIN %s %s ON %s.%s = %s.%s"
                    % (
                        quote(target._meta.db_table),
                        source,
                        source,
                        _quoted_column(_column(target, target._meta.pk.name)),
                        table,
                        _quoted_column(field),
                    )
                )
                field = _column(target, related)
            sql = "%s.%s" % (source, _quoted_column(field))
            if isinstance(field, models.DecimalField):
                sql += "::text"
                self.converters.append((column, Decimal))
            elif isinstance(field, models.DateTimeField):
                self.converters.append((column, datetime.fromisoformat))
            elif isinstance(field, models.DateField):
                self.converters.append((column, date.fromisoformat))
            elif isinstance(field, models.UUIDField):
                self.converters.append((column, UUID))
            pairs.append("'%s', %s" % (column, sql))
        super().__init__(
            "SELECT jsonb_agg(json_build_object(%s) ORDER BY %s) FROM %s %s WHERE %s.%s = %s.%s"
            % (
                ", ".join(pairs),
                ", ".join("%s.%s" % (table, _quoted_column(_column(model, name))) for name in order),
                table,
                " ".join(joins),
                table,
                _quoted_column(_column(model, "invoice")),
                quote(Invoice._meta.db_table),
                _quoted_column(_column(Invoice, "id")),
            ),
            (),
            output_field=models.JSONField(),
        )

    def get_db_converters(self, connection: Any) -> list[Any]:
        return [*super().get_db_converters(connection), self._convert]

    def _convert(self, value: Any, expression: Any, connection: Any) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = value or []
        for row in rows:
            for column, convert in self.converters:
                if row[column] is not None:
                    row[column] = convert(row[column])
        return rows


def _invoices_filtered(
    *,
    tenant: Tenant,
    customer: str | None,
    status: str | None,
    date_from: date | None,
    date_to: date | None,
    kind: str | None,
) -> QuerySet[Invoice]:
    qs = Invoice.objects.filter(tenant=tenant)
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
    return qs


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
