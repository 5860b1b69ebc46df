from typing import Any

from rest_framework import serializers

from billing_platform.api.fields import (
    AmountString,
    CountryField,
    DecimalString,
    MoneyAmountField,
    QuantityString,
    decimal_str,
)
from billing_platform.api.input_rules import MULTILINE
from billing_platform.api.serializers import StrictSerializer
from catalog.models import Meter, Plan, PlanComponent, PriceVersion, Product, TaxRate


def _empty_list() -> Any:
    return []


class SspSerializer(serializers.Serializer):
    currency = serializers.CharField()
    amount = serializers.CharField(help_text='Decimal string, e.g. "199.00"')


class ProductInputSerializer(StrictSerializer):
    code = serializers.CharField(max_length=100)
    name = serializers.CharField(max_length=200)
    kind = serializers.CharField(help_text="hardware | service | usage | fee")
    revenue_treatment = serializers.CharField(required=False, help_text="point_in_time | ratable | as_consumed")
    tax_category = serializers.CharField(
        required=False, default="standard", help_text="standard | reduced | zero | exempt"
    )
    ssp = SspSerializer(many=True, required=False, default=list)
    description = serializers.CharField(required=False, allow_blank=True, default="", style=MULTILINE)
    requires_shipment = serializers.BooleanField(required=False, allow_null=True, default=None)
    requires_activation = serializers.BooleanField(required=False, allow_null=True, default=None)


class ProductPatchSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True, style=MULTILINE)
    revenue_treatment = serializers.CharField(required=False)
    tax_category = serializers.CharField(required=False)
    ssp = SspSerializer(many=True, required=False)


class ProductOutputSerializer(serializers.ModelSerializer):
    ssp = serializers.SerializerMethodField()

    class Meta:
        model = Product
        fields = [
            "id",
            "code",
            "name",
            "description",
            "kind",
            "revenue_treatment",
            "tax_category",
            "requires_shipment",
            "requires_activation",
            "ssp",
            "created_at",
            "updated_at",
        ]

    def get_ssp(self, product: Product) -> list[dict[str, str | None]]:
        return [{"currency": s.currency, "amount": decimal_str(s.amount.amount)} for s in product.ssps.all()]


ACCEPTS_NEGATIVE_HELP = (
    "Whether events may carry a negative value in the meter's field (sum, max and latest meters). "
    "When false (the default), such an event is rejected with reason negative_value."
)


class MeterInputSerializer(StrictSerializer):
    code = serializers.CharField(max_length=100)
    name = serializers.CharField(max_length=200)
    aggregation = serializers.CharField(help_text="count | sum | max | unique_count | latest")
    field = serializers.CharField(required=False, allow_blank=True, default="", max_length=100)
    filters = serializers.JSONField(required=False, default=dict)
    dimensions = serializers.JSONField(required=False, default=_empty_list)
    time_bands = serializers.JSONField(required=False, default=dict, help_text='e.g. {"peak": ["08:00", "20:00"]}')
    accepts_negative = serializers.BooleanField(required=False, default=False, help_text=ACCEPTS_NEGATIVE_HELP)


class MeterPatchSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False)
    accepts_negative = serializers.BooleanField(required=False, help_text=ACCEPTS_NEGATIVE_HELP)


class MeterOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Meter
        fields = [
            "id",
            "code",
            "name",
            "aggregation",
            "field",
            "filters",
            "dimensions",
            "time_bands",
            "accepts_negative",
            "created_at",
        ]


class TaxRateInputSerializer(StrictSerializer):
    country = CountryField()
    tax_category = serializers.CharField()
    rate = serializers.CharField(help_text='Percent, as a decimal string: "20.0"')


class TaxRateOutputSerializer(serializers.ModelSerializer):
    rate = DecimalString()

    class Meta:
        model = TaxRate
        fields = ["country", "tax_category", "rate", "created_at", "updated_at"]


class ComponentPriceOutputSerializer(serializers.Serializer):
    product = serializers.CharField(source="component.product.code")
    price = DecimalString()
    charge = serializers.JSONField()
    min_amount = DecimalString()
    max_amount = DecimalString()


class PriceVersionOutputSerializer(serializers.ModelSerializer):
    components = ComponentPriceOutputSerializer(source="prices", many=True)

    class Meta:
        model = PriceVersion
        fields = ["id", "currency", "regions", "effective_from", "created_at", "components"]


class ComponentOutputSerializer(serializers.ModelSerializer):
    product = serializers.CharField(source="product.code")
    meter = serializers.CharField(source="meter.code", allow_null=True, default=None)
    included_per_device = DecimalString()

    class Meta:
        model = PlanComponent
        fields = [
            "product",
            "kind",
            "position",
            "instalments",
            "bill_on",
            "per_device",
            "starts_on",
            "meter",
            "pooled",
            "included_per_device",
        ]

    def to_representation(self, instance: PlanComponent) -> dict[str, Any]:
        data = super().to_representation(instance)
        keep = {
            "hardware": {"instalments", "bill_on"},
            "service": {"per_device", "starts_on"},
            "usage": {"meter", "pooled", "included_per_device"},
            "fee": {"per_device", "starts_on"},
        }[instance.kind] | {"product", "kind", "position"}
        return {k: v for k, v in data.items() if k in keep}


class PlanInputSerializer(StrictSerializer):
    code = serializers.CharField(max_length=100)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="", style=MULTILINE)
    interval = serializers.CharField(required=False, default="month", help_text="month | quarter | year")
    trial_days = serializers.IntegerField(required=False, default=0, min_value=0, max_value=3650)
    commitment_months = serializers.IntegerField(required=False, default=0, min_value=0, max_value=240)
    early_termination = serializers.CharField(
        required=False, default="none", help_text="none | remaining_fees (the committed service fees left)"
    )
    components = serializers.JSONField(help_text="See pricing.md: kind-specific fields, inline price or charge")
    prices = serializers.JSONField(
        required=False,
        default=_empty_list,
        help_text="[{currency, regions?, effective_from?, components?}]",
    )


class PlanOutputSerializer(serializers.ModelSerializer):
    components = ComponentOutputSerializer(many=True)
    price_versions = PriceVersionOutputSerializer(many=True)

    class Meta:
        model = Plan
        fields = [
            "id",
            "code",
            "name",
            "description",
            "interval",
            "trial_days",
            "commitment_months",
            "early_termination",
            "components",
            "price_versions",
            "created_at",
        ]


class PriceVersionInputSerializer(StrictSerializer):
    currency = serializers.CharField()
    regions = serializers.JSONField(required=False, default=None)
    effective_from = serializers.CharField(required=False, default=None, allow_null=True)
    components = serializers.JSONField(help_text="[{product, price? | charge?, min_amount?, max_amount?}]")


class PriceOverrideInputSerializer(StrictSerializer):
    customer = serializers.CharField(help_text="the customer's external_id")
    product = serializers.CharField()
    price = serializers.CharField(required=False)
    charge = serializers.JSONField(required=False)
    min_amount = serializers.CharField(required=False)
    max_amount = serializers.CharField(required=False)
    effective_from = serializers.CharField(required=False, allow_null=True)


class PriceOverrideOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    customer = serializers.CharField(source="customer.external_id")
    product = serializers.CharField(source="component.product.code")
    currency = serializers.CharField()
    price = MoneyAmountField(places="price")
    charge = serializers.JSONField()
    min_amount = MoneyAmountField(places="price")
    max_amount = MoneyAmountField(places="price")
    effective_from = serializers.DateTimeField(allow_null=True)


class UsageQuantitySerializer(StrictSerializer):
    meter = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=28, decimal_places=10, min_value=0)
    dimensions = serializers.DictField(child=serializers.CharField(), required=False, default=dict)
    events = serializers.IntegerField(
        required=False, default=0, min_value=0, help_text="number of events (percentage charges)"
    )


class PriceQuoteInputSerializer(StrictSerializer):
    plan = serializers.CharField()
    currency = serializers.CharField(min_length=3, max_length=3)
    region = CountryField(
        required=False, allow_null=True, default=None, help_text="the country whose prices and taxes apply"
    )
    devices = serializers.IntegerField(min_value=0, max_value=10_000_000)
    usage = UsageQuantitySerializer(many=True, required=False, default=list)
    customer = serializers.CharField(required=False, allow_null=True, default=None)
    at = serializers.DateTimeField(required=False, allow_null=True, default=None, help_text="price as of; default now")


class QuoteLineSerializer(serializers.Serializer):
    type = serializers.CharField()
    product = serializers.CharField()
    description = serializers.CharField()
    quantity = QuantityString()
    unit_amount = DecimalString()
    amount = AmountString()
    tax_category = serializers.CharField()
    detail = serializers.JSONField()


class TaxLineSerializer(serializers.Serializer):
    category = serializers.CharField()
    rate = DecimalString()
    base = AmountString()
    amount = AmountString()


class PriceQuoteOutputSerializer(serializers.Serializer):
    plan = serializers.CharField()
    currency = serializers.CharField()
    country = serializers.CharField(allow_null=True)
    devices = serializers.IntegerField()
    price_source = serializers.CharField(help_text="override | region | default")
    price_version_id = serializers.CharField()
    lines = QuoteLineSerializer(many=True)
    net_total = MoneyAmountField(places="exact")
    taxes = TaxLineSerializer(many=True)
    total = MoneyAmountField(places="exact")
    warnings = serializers.ListField(child=serializers.CharField())
