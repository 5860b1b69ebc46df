from typing import Any

from django.conf import settings
from rest_framework import serializers

from billing_platform.api.fields import DecimalString, MetadataField, MoneyAmount, MoneyAmountField, QuantityString
from billing_platform.api.serializers import StrictSerializer
from invoicing.lines import API_LANGUAGE, line_description
from invoicing.models import BillRun, Invoice, InvoiceLine, InvoiceTax


class BillRunInputSerializer(StrictSerializer):
    billing_date = serializers.DateField()


class ProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField()
    total = serializers.IntegerField()
    failed = serializers.IntegerField()


class BillRunOutputSerializer(serializers.ModelSerializer):
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

    def get_progress(self, run: BillRun) -> dict[str, int]:
        return {"done": run.done, "total": run.total, "failed": run.failed}

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


class InvoiceLineSerializer(serializers.ModelSerializer):
    # A plain string, not the model's choices: the API's schema lists no enum of line types.
    type = serializers.CharField(max_length=16)
    description = LineDescription(max_length=300)
    subscription = serializers.CharField(source="subscription.external_id", allow_null=True, default=None)
    quantity = QuantityString()
    unit_amount = DecimalString()
    amount = MoneyAmount("amount", currency="invoice.currency")

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
            "devices",
            "detail",
            "adjustment",
        ]


class InvoiceTaxSerializer(serializers.ModelSerializer):
    rate = DecimalString()
    base = MoneyAmount("base", currency="invoice.currency")
    amount = MoneyAmount("amount", currency="invoice.currency")

    class Meta:
        model = InvoiceTax
        fields = ["category", "rate", "base", "amount"]


class InvoiceOutputSerializer(serializers.ModelSerializer):
    customer = serializers.CharField(source="customer.external_id")
    credited_invoice = serializers.CharField(source="credited_invoice.number", allow_null=True, default=None)
    lines = InvoiceLineSerializer(many=True)
    taxes = InvoiceTaxSerializer(many=True)
    net_total = MoneyAmountField()
    tax_total = MoneyAmountField()
    total = MoneyAmountField()
    amount_due = MoneyAmountField()
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
            "credited_invoice",
            "reason",
            "metadata",
            "created_at",
            "finalized_at",
            "voided_at",
            "sent_at",
        ]


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
