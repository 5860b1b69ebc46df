"""The MRR report as the API writes it: per currency, per month, amounts as strings in the
currency's minor unit."""

from rest_framework import serializers

from billing_platform.api.fields import AmountString, DecimalString, MoneyAmountField


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


class MissingRateSerializer(serializers.Serializer):
    month = serializers.CharField(read_only=True, help_text="YYYY-MM.")
    currency = serializers.CharField(read_only=True)


class ReportingMonthSerializer(serializers.Serializer):
    month = serializers.CharField(read_only=True, help_text="YYYY-MM.")
    start = AmountString(allow_null=True, help_text="MRR at the start, at this month's rate; null: a rate is missing.")
    new = AmountString(allow_null=True)
    expansion = AmountString(allow_null=True)
    contraction = AmountString(allow_null=True)
    churn = AmountString(allow_null=True)
    reactivation = AmountString(allow_null=True)
    end = AmountString(allow_null=True, help_text="MRR at the end, at this month's rate; null: a rate is missing.")
    devices = serializers.IntegerField(read_only=True, help_text="Devices paying a per-device fee, all currencies.")
    arpd = AmountString(allow_null=True, help_text="end ÷ devices; null without a device or a rate.")
    nrr = DecimalString(
        allow_null=True,
        help_text="Net revenue retention of the month, percent with 2 places: the MRR at the end of the customers "
        "who had MRR at the start ÷ their MRR at the start; null when none had any, or a rate is missing.",
    )
    missing_currencies = serializers.ListField(
        child=serializers.CharField(), source="missing", read_only=True, help_text="Currencies without a rate."
    )


class RetentionSerializer(serializers.Serializer):
    start = AmountString(allow_null=True, help_text="MRR at the start of the first month of its customers.")
    expansion = AmountString(allow_null=True)
    contraction = AmountString(allow_null=True)
    churn = AmountString(allow_null=True)
    reactivation = AmountString(allow_null=True)
    end = AmountString(allow_null=True, help_text="Their MRR at the end of the last month.")
    nrr = DecimalString(allow_null=True, help_text="end ÷ start, percent with 2 places.")


class ReportingSerializer(serializers.Serializer):
    currency = serializers.CharField(read_only=True, help_text="The reporting currency: the tenant's.")
    months = ReportingMonthSerializer(many=True, read_only=True)
    retention = RetentionSerializer(
        read_only=True,
        help_text="NRR over the months: the customers with MRR at the start of the first month, each currency "
        "converted at the last month's rate.",
    )


class MrrReportWithRatesSerializer(MrrReportSerializer):
    reporting = ReportingSerializer(
        read_only=True, help_text="Every currency converted at each month's rate into the reporting currency."
    )
    missing_rates = MissingRateSerializer(
        many=True,
        read_only=True,
        help_text="The months and currencies in use without an exchange rate: their converted totals are null.",
    )
