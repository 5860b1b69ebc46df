"""Exchange rates and usage statistics as the API reads and writes them."""

from rest_framework import serializers

from billing_platform.api.fields import DecimalString, DecimalText, QuantityString
from revrec.api.report_serializers import MonthField
from revrec.models import ExchangeRate


class ExchangeRateSerializer(serializers.ModelSerializer):
    month = MonthField(help_text="YYYY-MM.")
    rate = DecimalString(help_text="One unit of `currency` in the reporting currency during the month.")

    class Meta:
        model = ExchangeRate
        fields = ["month", "currency", "rate", "source", "entered_by", "entered_at"]
        read_only_fields = fields


class ExchangeRateInputSerializer(serializers.Serializer):
    month = serializers.CharField(max_length=20, help_text="YYYY-MM (1900-01 to 9999-12); 422 otherwise.")
    currency = serializers.CharField(
        max_length=20, help_text="ISO 4217, not the reporting currency (the tenant's); 422 otherwise."
    )
    rate = DecimalText(
        max_length=40,
        help_text="One unit of `currency` in the reporting currency: more than 0, below 10^10, at most 10 "
        "decimal places; 422 otherwise.",
    )


class ExchangeRatesPutSerializer(serializers.Serializer):
    rates = ExchangeRateInputSerializer(many=True, max_length=1000, help_text="At most 1000 rates.")  # type: ignore[call-arg]


class ExchangeRatesSerializer(serializers.Serializer):
    rates = ExchangeRateSerializer(many=True, read_only=True)


class UsageGroupSerializer(serializers.Serializer):
    group = serializers.CharField(read_only=True, help_text="The group's value; empty when unknown.")
    name = serializers.CharField(read_only=True, help_text="The customer's name when grouped by customer.")
    quantity = QuantityString()


class UsageMonthSerializer(serializers.Serializer):
    month = serializers.CharField(read_only=True, help_text="YYYY-MM.")
    quantity = QuantityString(help_text="The meter's quantity over the month, all groups.")
    groups = UsageGroupSerializer(many=True, read_only=True)


class UsageTopCustomerSerializer(serializers.Serializer):
    customer = serializers.CharField(read_only=True, help_text="The customer's external id.")
    name = serializers.CharField(read_only=True)
    quantity = QuantityString()


class UsageTopDeviceSerializer(serializers.Serializer):
    device_id = serializers.CharField(read_only=True)
    customer = serializers.CharField(read_only=True, help_text="The customer's external id.")
    quantity = QuantityString()


class UsageAnomalySerializer(serializers.Serializer):
    device_id = serializers.CharField(read_only=True)
    customer = serializers.CharField(read_only=True, help_text="The customer's external id.")
    day = serializers.DateField(read_only=True, help_text="The customer's local day.")
    quantity = QuantityString(help_text="The device's usage that day.")
    median = QuantityString(help_text="The median of its daily usage on the 30 days before (days with usage).")
    ratio = DecimalString(help_text="quantity ÷ median, 2 places.")


class UsageMeterSerializer(serializers.Serializer):
    meter = serializers.CharField(read_only=True, help_text="The meter's code.")
    name = serializers.CharField(read_only=True)
    aggregation = serializers.CharField(read_only=True)
    months = UsageMonthSerializer(many=True, read_only=True)
    top_customers = UsageTopCustomerSerializer(many=True, read_only=True)
    top_devices = UsageTopDeviceSerializer(many=True, read_only=True)
    anomalies = UsageAnomalySerializer(many=True, read_only=True)


class UsageReportSerializer(serializers.Serializer):
    from_ = serializers.CharField(source="start", read_only=True, help_text="First month, YYYY-MM.")
    to = serializers.CharField(source="end", read_only=True, help_text="Last month, YYYY-MM.")
    group_by = serializers.CharField(read_only=True)
    meters = UsageMeterSerializer(many=True, read_only=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        return {"from": fields.pop("from_"), **fields}
