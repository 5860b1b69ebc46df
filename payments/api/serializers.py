from decimal import Decimal
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing_platform.api.fields import CurrencyField, MoneyAmountField
from billing_platform.api.serializers import OutputModelSerializer, StrictSerializer
from payments.models import BalanceKind, BalanceTransaction, Payment, PaymentMethod, Refund


class PaymentInputSerializer(StrictSerializer):
    customer = serializers.CharField(max_length=200, help_text="the customer's external_id")
    invoice = serializers.CharField(
        max_length=64,
        required=False,
        allow_null=True,
        help_text="the invoice's id or number; omit to pay the customer's open invoices oldest first",
    )
    amount = serializers.DecimalField(
        max_digits=settings.MONEY_MAX_DIGITS, decimal_places=settings.MONEY_DECIMAL_PLACES, min_value=Decimal("0.0001")
    )
    currency = CurrencyField(help_text="the customer's currency (and the invoice's)")
    method = serializers.ChoiceField(choices=PaymentMethod.choices)
    received_at = serializers.DateTimeField()
    reference = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class RefundInputSerializer(StrictSerializer):
    amount = serializers.DecimalField(
        max_digits=settings.MONEY_MAX_DIGITS, decimal_places=settings.MONEY_DECIMAL_PLACES, min_value=Decimal("0.0001")
    )
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class AllocationSerializer(serializers.Serializer):
    invoice = serializers.CharField(help_text="the invoice's number")
    invoice_id = serializers.UUIDField()
    amount = serializers.CharField(help_text="net of refunds and credit moved to the balance")


class RefundOutputSerializer(OutputModelSerializer):
    payment = serializers.UUIDField(source="payment_id")
    amount = MoneyAmountField()

    class Meta:
        model = Refund
        fields = ["id", "payment", "amount", "currency", "reason", "status", "gateway_id", "created_at"]


class PaymentOutputSerializer(OutputModelSerializer):
    customer = serializers.CharField(source="customer.external_id")
    amount = MoneyAmountField()
    amount_refunded = MoneyAmountField()
    allocations = serializers.SerializerMethodField()
    refunds = RefundOutputSerializer(many=True)

    class Meta:
        model = Payment
        fields = [
            "id",
            "customer",
            "amount",
            "amount_refunded",
            "currency",
            "method",
            "status",
            "received_at",
            "reference",
            "gateway",
            "gateway_id",
            "allocations",
            "refunds",
            "created_at",
        ]

    @extend_schema_field(AllocationSerializer(many=True))
    def get_allocations(self, payment: Payment) -> list[dict[str, Any]]:
        from billing_platform.money import round_minor

        found: dict[Any, dict[str, Any]] = {}
        for row in payment.allocations.all():
            entry = found.setdefault(
                row.invoice_id, {"invoice": row.invoice.number, "invoice_id": str(row.invoice_id), "amount": Decimal(0)}
            )
            entry["amount"] += row.amount.amount
        return [{**x, "amount": str(round_minor(x["amount"], payment.currency))} for x in found.values()]


class BalanceTransactionOutputSerializer(OutputModelSerializer):
    amount = MoneyAmountField(help_text="positive adds credit, negative uses it")
    kind = serializers.ChoiceField(choices=BalanceKind.choices)
    payment = serializers.UUIDField(source="payment_id", allow_null=True)
    invoice = serializers.CharField(source="invoice.number", allow_null=True, help_text="the invoice's number")
    refund = serializers.UUIDField(source="refund_id", allow_null=True)

    class Meta:
        model = BalanceTransaction
        fields = ["id", "kind", "amount", "currency", "payment", "invoice", "refund", "description", "created_at"]
