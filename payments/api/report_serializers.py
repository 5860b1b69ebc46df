"""The receivables report as the API writes it: amounts as strings in each currency's minor unit."""

from typing import Any

from rest_framework import serializers

from billing_platform.api.fields import MoneyAmountField


class AgingSerializer(serializers.Serializer):
    current = MoneyAmountField(help_text="Not yet due on the day (due that day or later).")
    days_1_30 = MoneyAmountField(help_text="1 to 30 days past due.")
    days_31_60 = MoneyAmountField(help_text="31 to 60 days past due.")
    days_61_90 = MoneyAmountField(help_text="61 to 90 days past due.")
    over_90 = MoneyAmountField(help_text="More than 90 days past due.")
    total = MoneyAmountField()


class CustomerAgingSerializer(serializers.Serializer):
    customer = serializers.CharField(source="external_id", read_only=True, help_text="The customer's external id.")
    name = serializers.CharField(read_only=True)
    invoices = serializers.IntegerField(read_only=True, help_text="Open invoices with something still due.")
    aging = AgingSerializer(read_only=True)


class CurrencyReceivablesSerializer(serializers.Serializer):
    currency = serializers.CharField(read_only=True)
    total = AgingSerializer(read_only=True)
    invoices = serializers.IntegerField(read_only=True)
    customers = CustomerAgingSerializer(many=True, read_only=True)
    billed = MoneyAmountField(help_text="Totals of the invoices issued in the 90 days ending on as_of.")
    collected = MoneyAmountField(help_text="What was paid on those invoices by as_of.")
    failed = MoneyAmountField(help_text="Amounts of the first failed charge attempts in the window.")
    recovered = MoneyAmountField(help_text="What later attempts on those invoices took.")
    dso = serializers.DecimalField(
        max_digits=12,
        decimal_places=1,
        coerce_to_string=True,
        read_only=True,
        allow_null=True,
        help_text="Days sales outstanding: receivables on as_of / billed x 90; null when nothing was billed.",
    )
    collection_rate = serializers.DecimalField(
        max_digits=12,
        decimal_places=4,
        coerce_to_string=True,
        read_only=True,
        allow_null=True,
        help_text="collected / billed (0.9500 is 95 %); null when nothing was billed.",
    )
    dunning_recovery = serializers.DecimalField(
        max_digits=12,
        decimal_places=4,
        coerce_to_string=True,
        read_only=True,
        allow_null=True,
        help_text="recovered / failed; null when no attempt failed.",
    )


class ReceivablesSerializer(serializers.Serializer):
    as_of = serializers.DateField(read_only=True)
    window_start = serializers.DateField(read_only=True, help_text="First day of the 90-day window of the rates.")
    currencies = CurrencyReceivablesSerializer(many=True, read_only=True)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return dict(super().to_representation(instance))
