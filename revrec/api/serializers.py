"""The MRR report as the API writes it: per currency, per month, amounts as strings in the
currency's minor unit."""

from rest_framework import serializers

from billing_platform.api.fields import MoneyAmountField


class _Movements(serializers.Serializer):
    start = MoneyAmountField(help_text="MRR at the end of the previous month.")
    new = MoneyAmountField(help_text="From customers whose first MRR it is.")
    expansion = MoneyAmountField(help_text="Increases of customers who had MRR at the start and still have.")
    contraction = MoneyAmountField(help_text="Decreases of customers who still have MRR at the end (positive).")
    churn = MoneyAmountField(help_text="MRR at the start of customers who have none at the end (positive).")
    reactivation = MoneyAmountField(help_text="From customers who had churned before.")
    end = MoneyAmountField(
        help_text="MRR at the end of the month: start + new + expansion - contraction - churn + reactivation."
    )
    devices = serializers.IntegerField(
        read_only=True, help_text="Devices paying a per-device fee at the end of the month."
    )


class CustomerMrrSerializer(_Movements):
    customer = serializers.CharField(source="external_id", read_only=True, help_text="The customer's external id.")
    name = serializers.CharField(read_only=True)


class MonthMrrSerializer(_Movements):
    month = serializers.CharField(read_only=True, help_text="YYYY-MM.")
    arpd = MoneyAmountField(
        allow_null=True, help_text="Average revenue per device: end ÷ devices; null without a paying device."
    )
    customers = CustomerMrrSerializer(
        many=True, read_only=True, help_text="The customers with MRR at the start or at the end of the month."
    )


class CurrencyMrrSerializer(serializers.Serializer):
    currency = serializers.CharField(read_only=True)
    months = MonthMrrSerializer(many=True, read_only=True)


class MrrReportSerializer(serializers.Serializer):
    from_ = serializers.CharField(source="start", read_only=True, help_text="First month, YYYY-MM.")
    to = serializers.CharField(source="end", read_only=True, help_text="Last month, YYYY-MM.")
    reporting_currency = serializers.CharField(read_only=True, help_text="The tenant's currency.")
    currencies = CurrencyMrrSerializer(
        many=True,
        read_only=True,
        help_text="The reporting currency first, then each other currency of the customers, never converted.",
    )

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        return {"from": fields.pop("from_"), **fields}
