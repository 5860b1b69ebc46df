"""What the invoicing pages show: the live panel of a bill run, an invoice's totals, its lines
grouped by leg with the usage detail stored with each usage line, its taxes, and what is left to
credit per line: local days, amounts as ``Money`` the templates print in the reader's language."""

from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils.translation import get_language, gettext_lazy
from djmoney.money import Money

from backoffice.formatting import (
    choice_label,
    currency_places,
    decimal_or_none,
    decimal_plain,
    decimals_in,
    moment,
    money_of,
    period_days,
    quantity_display,
)
from billing_platform.jobs import recovery_notes
from catalog.models import TaxCategory
from invoicing.lines import LineType, line_description
from invoicing.models import (
    BillRun,
    BillRunStatus,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoicePaymentStatus,
    InvoiceStatus,
)
from invoicing.selectors import bill_run_progress, bill_runs_totals, invoice_credit_balance
from invoicing.services import SENDABLE
from payments.models import PaymentAllocation, PaymentAttempt

OPEN = (InvoicePaymentStatus.UNPAID, InvoicePaymentStatus.PARTIALLY_PAID)
# The payment filter of the invoices list: a payment status, or "overdue" (open and past its due date).
PAYMENT_FILTERS = [
    *InvoicePaymentStatus.choices,
    ("overdue", gettext_lazy("Overdue")),
]

# A run is followed live (its progress polled every second) until it reaches another status.
IN_PROGRESS = (BillRunStatus.PENDING, BillRunStatus.RUNNING)

# The legs of an invoice, in the order the page shows them.
LEGS = (
    (LineType.HARDWARE, gettext_lazy("Hardware")),
    (LineType.SERVICE, gettext_lazy("Service")),
    (LineType.USAGE, gettext_lazy("Usage")),
    ("fees", gettext_lazy("Fees and credits")),
    ("adjustments", gettext_lazy("Adjustments")),
)
OUTCOMES = {
    "invoiced": gettext_lazy("Invoiced"),
    "existing": gettext_lazy("Already invoiced"),
    "nothing": gettext_lazy("Nothing to bill"),
    "failed": gettext_lazy("Failed"),
}


def bill_run_panel(run: BillRun) -> dict[str, Any]:
    """What the live panel of a run shows; it polls while the run is pending or running."""
    processed = run.done + run.failed
    if run.total:
        percent = min(100, processed * 100 // run.total)
    else:
        percent = 0 if run.status in IN_PROGRESS else 100
    progress = bill_run_progress(run)
    return {
        "run": run,
        "polling": run.status in IN_PROGRESS,
        "percent": percent,
        "processed": processed,
        "outcomes": [
            {"outcome": k, "label": label, "count": progress.outcomes.get(k, 0)} for k, label in OUTCOMES.items()
        ],
        "failures": progress.failures,
        "invoice_count": progress.invoice_count,
        # Its invoices (voided ones left out) added up per currency, in the database.
        "totals": bill_runs_totals([run])[run.pk],
        "tz_name": run.tenant.timezone,
        # What the jobs watchdog did when the run's worker stopped answering, in words.
        "recoveries": recovery_notes(run.recoveries, piece="chunk", fmt=lambda at: moment(at, run.tenant.timezone)),
    }


def invoices_bulk_counts(invoices: QuerySet[Invoice]) -> dict[str, int]:
    """How many of ``invoices`` the bulk actions can take, in one query: the drafts to finalize and
    send, and the finalized documents to e-mail again."""
    counts: dict[str, int] = invoices.order_by().aggregate(
        drafts=Count("pk", filter=Q(kind=InvoiceKind.INVOICE, status=InvoiceStatus.DRAFT)),
        sendable=Count("pk", filter=Q(status__in=SENDABLE) & ~Q(number="")),
    )
    return counts


def invoice_totals(invoice: Invoice) -> dict[str, Money]:
    return {
        "net": invoice.net_total,
        "tax": invoice.tax_total,
        "total": invoice.total,
        "due": invoice.amount_due,
    }


def _leg(line: InvoiceLine) -> str:
    if line.adjustment:
        return "adjustments"
    if line.type in (LineType.HARDWARE, LineType.SERVICE, LineType.USAGE):
        return line.type
    return "fees"


def _description(line: InvoiceLine) -> str:
    """The line's description in the reader's language."""
    return line_description(line.description, line.qualifiers, language=get_language())


def usage_detail(line: InvoiceLine, currency: str) -> dict[str, Any]:
    """The metering behind a usage line, from the detail stored with it: the quantity measured, the
    allowance (included per device x devices), the billable quantity and the tiers or groups priced."""
    d = line.detail if isinstance(line.detail, dict) else {}
    if line.adjustment:
        previously_billed = decimal_or_none(d.get("previously_billed"))
        return {
            "meter": d.get("meter", ""),
            "metered": quantity_display(d.get("metered_quantity")),
            "billed": quantity_display(d.get("billed_quantity")),
            "late": quantity_display(line.quantity),
            "previously_billed": money_of(previously_billed, currency),
        }
    included = decimal_or_none(d.get("included_per_device"))
    devices = decimal_or_none(d.get("devices"))
    allowance = included * devices if included is not None and devices is not None else None
    tiers = []
    for tier in d.get("tiers") or []:
        if isinstance(tier, dict):
            view = decimals_in(tier)
            unit_amount, amount, flat = (decimal_or_none(tier.get(k)) for k in ("unit_amount", "amount", "flat_amount"))
            tiers.append(
                {
                    **view,
                    "units": quantity_display(tier.get("units")),
                    "unit_amount": money_of(unit_amount, currency),
                    "amount": money_of(amount, currency),
                    "flat_amount": money_of(flat, currency) if flat else None,
                }
            )
    per_device = [
        {
            "device_id": row.get("device_id", ""),
            "quantity": quantity_display(row.get("quantity")),
            "billable": quantity_display(row.get("billable_quantity")),
            "amount": money_of(decimal_or_none(row.get("amount")) or Decimal(0), currency),
        }
        for row in d.get("per_device") or []
        if isinstance(row, dict)
    ]
    groups = [
        {
            "values": ", ".join(str(v) for v in (row.get("values") or {}).values()) or "—",
            "quantity": quantity_display(row.get("quantity")),
            "amount": money_of(decimal_or_none(row.get("amount")) or Decimal(0), currency),
        }
        for row in d.get("groups") or []
        if isinstance(row, dict)
    ]
    return {
        "meter": d.get("meter", ""),
        "metered": quantity_display(d.get("metered_quantity")),
        "included_per_device": quantity_display(included),
        "devices": quantity_display(devices),
        "allowance": quantity_display(allowance),
        "billable": quantity_display(line.quantity),
        "events": d.get("event_count"),
        "tiers": tiers,
        "per_device": per_device,
        "groups": groups,
        "clamped_to": d.get("clamped_to", ""),
    }


def line_row(line: InvoiceLine, currency: str, tz: str) -> dict[str, Any]:
    """A line of the invoice page: its description, local days, quantity, unit amount, signed
    amount, tax category, the instalment or the days it bills, and the usage detail of a usage line."""
    d = line.detail if isinstance(line.detail, dict) else {}
    first = last = None
    if line.period_start is not None and line.period_end is not None:
        first, last = period_days(line.period_start, line.period_end, tz)
    row: dict[str, Any] = {
        "line": line,
        "description": _description(line),
        "type_label": choice_label(LineType, line.type),
        "first": first,
        "last": last,
        "quantity": line.quantity,
        "unit_amount": money_of(line.unit_amount, currency),
        "amount": money_of(line.signed_amount, currency),
        "tax_category": choice_label(TaxCategory, line.tax_category),
        "usage": usage_detail(line, currency) if line.type == LineType.USAGE else None,
        "instalment": (d["instalment"], d["instalments"]) if "instalment" in d and "instalments" in d else None,
        "days": (d["days"], d["days_in_period"]) if "days" in d and "days_in_period" in d else None,
    }
    return row


def invoice_legs(invoice: Invoice, tz: str) -> list[dict[str, Any]]:
    """The lines grouped by leg (hardware, service, usage, fees and credits, adjustments), each leg
    with its subtotal; legs without a line are left out."""
    grouped: dict[str, list[InvoiceLine]] = {key: [] for key, _label in LEGS}
    for line in invoice.lines.all():
        grouped[_leg(line)].append(line)
    return [
        {
            "key": key,
            "label": label,
            "rows": [line_row(line, invoice.currency, tz) for line in grouped[key]],
            "subtotal": money_of(sum((x.signed_amount for x in grouped[key]), Decimal(0)), invoice.currency),
        }
        for key, label in LEGS
        if grouped[key]
    ]


def tax_rows(invoice: Invoice) -> list[dict[str, Any]]:
    return [
        {
            "tax": t,
            "category": choice_label(TaxCategory, t.category),
            "rate": t.rate,
            "base": money_of(t.base, invoice.currency),
            "amount": money_of(t.amount, invoice.currency),
        }
        for t in invoice.taxes.all()
    ]


def credit_rows(invoice: Invoice) -> list[dict[str, Any]]:
    """The lines of a creditable invoice with what is already credited and what is left."""
    credited = invoice_credit_balance(invoice)
    rows = []
    for line in invoice.lines.all():
        done = credited.get(line.pk, Decimal(0))
        rows.append(
            {
                "line": line,
                "description": _description(line),
                "amount": money_of(line.amount, invoice.currency),
                "credited": money_of(done, invoice.currency),
                "left": money_of(line.amount - done, invoice.currency),
                # What the amount field takes, a plain number (12.50, 12,50 in French).
                "left_number": decimal_plain(line.amount - done, currency_places(invoice.currency)),
                "open": line.amount - done > 0,
            }
        )
    return rows


def invoices_by_payment(qs: QuerySet[Invoice], payment: str, *, today: date) -> QuerySet[Invoice]:
    """Finalized invoices by payment status, or those still open after their due date (``overdue``)."""
    finalized = Q(kind="invoice", status__in=[InvoiceStatus.FINALIZED, InvoiceStatus.PAID])
    if payment == "overdue":
        return qs.filter(finalized, status=InvoiceStatus.FINALIZED, payment_status__in=OPEN, due_date__lt=today)
    return qs.filter(finalized, payment_status=payment)


def invoice_payment_panel(invoice: Invoice) -> dict[str, Any]:
    """What came in on a finalized invoice: its allocations (payments, credit balance, refunds and
    credit notes beyond what was due), signed, and its charge attempts through the gateway."""
    allocations = list(
        PaymentAllocation.objects.filter(tenant_id=invoice.tenant_id, invoice=invoice)
        .select_related("payment", "refund", "credit_note")
        .order_by("created_at", "id")
    )
    attempts = list(PaymentAttempt.objects.filter(tenant_id=invoice.tenant_id, invoice=invoice).order_by("number"))
    return {
        "status": invoice.payment_status,
        "status_label": choice_label(InvoicePaymentStatus, invoice.payment_status),
        "due_date": invoice.due_date,
        "paid": invoice.amount_paid,
        "due": invoice.amount_due,
        "allocations": allocations,
        "attempts": attempts,
    }
