import functools
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing_platform.api.fields import (
    DecimalString,
    DetailField,
    MetadataField,
    MoneyAmount,
    MoneyAmountField,
    QuantityString,
)
from billing_platform.api.serializers import OutputModelSerializer, RowWriter, StrictSerializer
from billing_platform.money import round_minor
from catalog.models import TaxCategory
from invoicing.lines import API_LANGUAGE, LineType, line_description
from invoicing.models import BillRun, Invoice, InvoiceLine, InvoiceTax
from invoicing.selectors import InvoiceColumns


class BillRunInputSerializer(StrictSerializer):
    billing_date = serializers.DateField()


class BillRunProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField(help_text="customers processed")
    total = serializers.IntegerField(help_text="customers due")
    failed = serializers.IntegerField()


class BillRunFailureSerializer(serializers.Serializer):
    customer = serializers.CharField(help_text="the customer's external_id")
    error = serializers.CharField()


class BillRunOutputSerializer(OutputModelSerializer):
    progress = serializers.SerializerMethodField()
    failures = serializers.SerializerMethodField()

    class Meta:
        model = BillRun
        fields = [
            "id",
            "billing_date",
            "status",
            "progress",
            "created",
            "failures",
            "created_at",
            "started_at",
            "finished_at",
        ]

    @extend_schema_field(BillRunProgressSerializer)
    def get_progress(self, run: BillRun) -> dict[str, int]:
        return {"done": run.done, "total": run.total, "failed": run.failed}

    @extend_schema_field(BillRunFailureSerializer(many=True, help_text="the first 100 customers that failed"))
    def get_failures(self, run: BillRun) -> list[dict[str, str]]:
        return [
            {"customer": c.customer.external_id, "error": c.error}
            for c in run.customers.filter(outcome="failed").select_related("customer")[:100]
        ]


class LineDescription(serializers.CharField):
    """A stored line's description as the API has always given it: its name and qualifiers, in
    English (``invoicing.lines.line_description``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="*", **kwargs)

    def to_representation(self, value: Any) -> str:
        line: InvoiceLine = value  # source="*": the line itself
        return line_description(line.description, line.qualifiers, language=API_LANGUAGE)


@extend_schema_field({"type": "array", "items": {"type": "string"}, "example": ["A", "B"]})
class DeviceIdsField(serializers.JSONField):
    """The device ids a line bills."""


class InvoiceLineSerializer(OutputModelSerializer):
    type = serializers.ChoiceField(choices=LineType.choices)
    description = LineDescription(max_length=300)
    subscription = serializers.CharField(source="subscription.external_id", allow_null=True)
    quantity = QuantityString()
    unit_amount = DecimalString(allow_null=True, help_text="null for usage, priced by its charge as a whole")
    amount = MoneyAmount("amount", currency="invoice.currency")
    tax_category = serializers.ChoiceField(choices=TaxCategory.choices)
    devices = DeviceIdsField()
    detail = DetailField()

    class Meta:
        model = InvoiceLine
        fields = [
            "id",
            "type",
            "product",
            "description",
            "subscription",
            "period_start",
            "period_end",
            "quantity",
            "unit_amount",
            "amount",
            "tax_category",
            "vat_category",
            "devices",
            "detail",
            "adjustment",
        ]


class InvoiceTaxSerializer(OutputModelSerializer):
    category = serializers.ChoiceField(choices=TaxCategory.choices)
    rate = DecimalString()
    base = MoneyAmount("base", currency="invoice.currency")
    amount = MoneyAmount("amount", currency="invoice.currency")
    vat_category = serializers.CharField(
        help_text="EN 16931 VAT category code: S, Z, E, AE (reverse charge), K (intra-community supply), G "
        "(export), O (not subject to VAT)"
    )
    exemption_reason_code = serializers.CharField(help_text="VATEX code, e.g. VATEX-EU-AE; empty for S, Z and E")
    exemption_reason = serializers.CharField(help_text="the legal mention, in the invoice's language; empty for S, Z")

    class Meta:
        model = InvoiceTax
        fields = ["category", "rate", "base", "amount", "vat_category", "exemption_reason_code", "exemption_reason"]


class PaymentAttemptSerializer(serializers.Serializer):
    """A try at charging the invoice through the gateway (read from its ``payment_attempts``)."""

    invoice = serializers.UUIDField(help_text="the invoice charged (its id)")
    number = serializers.IntegerField()
    idempotency_key = serializers.CharField(
        help_text="the key the charge was sent to the gateway with: one per attempt, never charged twice"
    )
    status = serializers.CharField(help_text="created, processing, succeeded, failed or unknown")
    amount = DecimalString()
    gateway_id = serializers.CharField(
        help_text="the gateway's id of the charge (a Stripe PaymentIntent); empty before"
    )
    failure_code = serializers.CharField()
    next_retry_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class InvoiceOutputSerializer(OutputModelSerializer):
    customer = serializers.CharField(source="customer.external_id")
    credited_invoice = serializers.CharField(
        source="credited_invoice.number", allow_null=True, help_text="a credit note's invoice number"
    )
    lines = InvoiceLineSerializer(many=True)
    taxes = InvoiceTaxSerializer(many=True)
    net_total = MoneyAmountField()
    tax_total = MoneyAmountField()
    total = MoneyAmountField()
    amount_due = MoneyAmountField()
    amount_paid = MoneyAmountField(help_text="payments and credit balance applied, net of refunds")
    attempts = serializers.SerializerMethodField()
    metadata = MetadataField(read_only=True)

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "kind",
            "status",
            "customer",
            "issue_date",
            "currency",
            "lines",
            "net_total",
            "taxes",
            "tax_total",
            "total",
            "amount_due",
            "amount_paid",
            "payment_status",
            "due_date",
            "attempts",
            "credited_invoice",
            "reason",
            "metadata",
            "created_at",
            "finalized_at",
            "voided_at",
            "sent_at",
        ]

    @extend_schema_field(PaymentAttemptSerializer(many=True))
    def get_attempts(self, invoice: Invoice) -> list[dict[str, Any]]:
        # The payments app's rows, read through the reverse relation: invoicing does not import payments.
        rows = sorted(invoice.payment_attempts.all(), key=lambda x: x.number)
        return [
            {
                "invoice": row.invoice_id,
                "number": row.number,
                "idempotency_key": row.idempotency_key,
                "status": row.status,
                "amount": str(round_minor(row.amount.amount, row.currency)),
                "gateway_id": row.gateway_id,
                "failure_code": row.failure_code,
                "next_retry_at": row.next_retry_at,
                "created_at": row.created_at,
            }
            for row in rows
        ]


# The invoice reads (the list, an invoice) written from rows, as InvoiceOutputSerializer writes
# model instances: no model instance per invoice, line, tax or attempt, and none of the
# serializers' per-instance work. The amounts and descriptions that a serializer field computes
# from the whole object (its currency, a line's qualifiers) are computed here the same way.
_MONEY = ("net_total", "tax_total", "total", "amount_due", "amount_paid")
INVOICE_WRITER = RowWriter(InvoiceOutputSerializer, computed=("lines", "taxes", "attempts", *_MONEY))
LINE_WRITER = RowWriter(InvoiceLineSerializer, computed=("description", "amount"))
TAX_WRITER = RowWriter(InvoiceTaxSerializer, computed=("base", "amount"))
ATTEMPT_COLUMNS = (
    "number",
    "idempotency_key",
    "status",
    "amount",
    "currency",
    "gateway_id",
    "failure_code",
    "next_retry_at",
    "created_at",
)


@functools.cache
def invoice_columns() -> InvoiceColumns:
    """The columns of an invoice row and of its parts' rows that ``invoices_write`` writes
    (``invoice_rows_list``)."""
    return InvoiceColumns(
        invoice=(*INVOICE_WRITER.columns, *_MONEY),
        lines=(*LINE_WRITER.columns, "description", "qualifiers", "amount"),
        taxes=(*TAX_WRITER.columns, "base", "amount"),
        attempts=("invoice_id", *ATTEMPT_COLUMNS),
    )


def invoices_write(invoices: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Invoices read as rows with their parts (``invoice_rows_list`` of ``invoice_columns``),
    written as the serializer writes them."""
    written = []
    for invoice in invoices:
        currency = invoice["currency"]
        written.append(
            INVOICE_WRITER.write(
                invoice,
                lines=[
                    LINE_WRITER.write(
                        line,
                        description=line_description(line["description"], line["qualifiers"], language=API_LANGUAGE),
                        amount=_minor(line["amount"], currency),
                    )
                    for line in invoice["lines_rows"]
                ],
                taxes=[
                    TAX_WRITER.write(tax, base=_minor(tax["base"], currency), amount=_minor(tax["amount"], currency))
                    for tax in invoice["taxes_rows"]
                ],
                attempts=[
                    {
                        "invoice": row["invoice_id"],
                        "number": row["number"],
                        "idempotency_key": row["idempotency_key"],
                        "status": row["status"],
                        "amount": str(round_minor(row["amount"], row["currency"])),
                        "gateway_id": row["gateway_id"],
                        "failure_code": row["failure_code"],
                        "next_retry_at": row["next_retry_at"],
                        "created_at": row["created_at"],
                    }
                    for row in invoice["attempts_rows"]
                ],
                **{name: _minor(invoice[name], currency) for name in _MONEY},
            )
        )
    return written


def _minor(amount: Decimal | None, currency: str) -> str | None:
    """A stored amount at its currency's minor unit, as ``MoneyAmount`` and ``MoneyAmountField`` write it."""
    return None if amount is None else str(round_minor(amount, currency))


class InvoicePatchSerializer(StrictSerializer):
    metadata = MetadataField(removals=True)


class VoidInputSerializer(StrictSerializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=300)


class CreditLineInputSerializer(StrictSerializer):
    line = serializers.IntegerField()
    amount = serializers.DecimalField(
        max_digits=settings.MONEY_MAX_DIGITS, decimal_places=settings.MONEY_DECIMAL_PLACES, required=False
    )


class CreditNoteInputSerializer(StrictSerializer):
    lines = CreditLineInputSerializer(many=True, required=False, help_text="omit for a full credit note")
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=300)
