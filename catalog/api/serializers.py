from typing import Any

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from billing_platform.api.fields import (
    AmountString,
    ChoiceText,
    CountryField,
    DecimalString,
    DecimalText,
    DetailField,
    MoneyAmountField,
    NumberText,
    QuantityString,
    decimal_str,
)
from billing_platform.api.input_rules import MULTILINE
from billing_platform.api.serializers import OutputModelSerializer, Shape, StrictSerializer
from catalog.api.charges import ChargeField
from catalog.models import (
    Aggregation,
    BillOn,
    Interval,
    Meter,
    Plan,
    PlanComponent,
    PriceVersion,
    Product,
    ProductKind,
    RevenueTreatment,
    StartsOn,
    TaxCategory,
    TaxRate,
)
from catalog.services import price_override_is_end

EARLY_TERMINATION_CHOICES = Plan._meta.get_field("early_termination").choices or []


def _empty_list() -> Any:
    return []


class SspSerializer(serializers.Serializer):
    currency = serializers.CharField()
    amount = serializers.CharField(help_text='Decimal string, e.g. "199.00"')


class ProductInputSerializer(StrictSerializer):
    code = serializers.CharField(max_length=100)
    name = serializers.CharField(max_length=200)
    kind = ChoiceText(choices=ProductKind.choices)
    revenue_treatment = ChoiceText(
        choices=RevenueTreatment.choices,
        required=False,
        help_text="Default by kind: hardware and fee point_in_time, service ratable, usage as_consumed.",
    )
    tax_category = ChoiceText(choices=TaxCategory.choices, required=False, default="standard")
    ssp = SspSerializer(many=True, required=False, default=list)
    description = serializers.CharField(required=False, allow_blank=True, default="", style=MULTILINE)
    requires_shipment = serializers.BooleanField(required=False, allow_null=True, default=None)
    requires_activation = serializers.BooleanField(required=False, allow_null=True, default=None)


class ProductPatchSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True, style=MULTILINE)
    revenue_treatment = ChoiceText(choices=RevenueTreatment.choices, required=False)
    tax_category = ChoiceText(choices=TaxCategory.choices, required=False)
    ssp = SspSerializer(many=True, required=False)


class ProductOutputSerializer(OutputModelSerializer):
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

    @extend_schema_field(SspSerializer(many=True))
    def get_ssp(self, product: Product) -> list[dict[str, str | None]]:
        return [{"currency": s.currency, "amount": decimal_str(s.amount.amount)} for s in product.ssps.all()]


ACCEPTS_NEGATIVE_HELP = (
    "Whether events may carry a negative value in the meter's field (sum, max and latest meters). "
    "When false (the default), such an event is rejected with reason negative_value."
)


FILTERS_HELP = "Only events whose property equals the value count: {property: value}."
DIMENSIONS_HELP = "Event properties pricing may depend on (a matrix charge's dimensions)."
TIME_BANDS_HELP = (
    'Named bands of the day in the customer\'s time zone, e.g. {"peak": ["08:00", "20:00"]} (start included, '
    "end excluded); any time outside every band is off_peak. They add the dimension time_band."
)


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {"oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]},
        "example": {"network": "lte"},
    },
    component_name="MeterFilters",
)
class MeterFiltersField(serializers.JSONField):
    pass


@extend_schema_field({"type": "array", "items": {"type": "string"}, "example": ["device_type", "region"]})
class NamesField(serializers.JSONField):
    """A list of names (a meter's dimensions, a price version's regions), read as JSON and checked by
    the service."""


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {
            "type": "array",
            "items": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
            "minItems": 2,
            "maxItems": 2,
        },
        "example": {"peak": ["08:00", "20:00"]},
    },
    component_name="TimeBands",
)
class TimeBandsField(serializers.JSONField):
    pass


class MeterInputSerializer(StrictSerializer):
    code = serializers.CharField(max_length=100)
    name = serializers.CharField(max_length=200)
    aggregation = ChoiceText(choices=Aggregation.choices)
    field = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=100,
        help_text="The event property aggregated; none for count.",
    )
    filters = MeterFiltersField(required=False, default=dict, help_text=FILTERS_HELP)
    dimensions = NamesField(required=False, default=_empty_list, help_text=DIMENSIONS_HELP)
    time_bands = TimeBandsField(required=False, default=dict, help_text=TIME_BANDS_HELP)
    accepts_negative = serializers.BooleanField(required=False, default=False, help_text=ACCEPTS_NEGATIVE_HELP)


class MeterPatchSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False)
    accepts_negative = serializers.BooleanField(required=False, help_text=ACCEPTS_NEGATIVE_HELP)


class MeterOutputSerializer(OutputModelSerializer):
    filters = MeterFiltersField(help_text=FILTERS_HELP)
    dimensions = NamesField(help_text=DIMENSIONS_HELP)
    time_bands = TimeBandsField(help_text=TIME_BANDS_HELP)

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
    tax_category = ChoiceText(choices=TaxCategory.choices)
    rate = serializers.CharField(help_text='Percent, as a decimal string: "20.0"')
    valid_from = serializers.DateField(
        required=False,
        help_text="The first day the rate applies. Omitted: the (country, tax_category)'s one period is "
        "changed, or one valid since always (1900-01-01) is created.",
    )
    valid_to = serializers.DateField(
        required=False, allow_null=True, help_text="The last day the rate applies (included); null: open-ended."
    )


class TaxRateOutputSerializer(OutputModelSerializer):
    rate = DecimalString()

    class Meta:
        model = TaxRate
        fields = ["country", "tax_category", "rate", "valid_from", "valid_to", "created_at", "updated_at"]


class ComponentPriceOutputSerializer(serializers.Serializer):
    """A component's price in a version: `price` for hardware and fees, `charge` for services and
    usage (with `min_amount`/`max_amount` for usage); the others are null."""

    product = serializers.CharField(source="component.product.code")
    price = DecimalString(allow_null=True)
    charge = ChargeField(allow_null=True, read_only=True)
    min_amount = DecimalString(allow_null=True)
    max_amount = DecimalString(allow_null=True)


PRICE_BOOK_OUT_HELP = (
    "The partner price book the version belongs to (a partner's `price_book`); empty for the tenant's own "
    "region and default books."
)
PRICE_BOOK_HELP = (
    "A partner price book's code (`^[a-z0-9][a-z0-9_-]{0,63}$`): the version prices only the customers of "
    "partners with this `price_book`. Empty or none: the tenant's own region and default books."
)
PARTNER_VISIBLE_HELP = "Offered to partners: they may subscribe their customers to it."


class PriceVersionOutputSerializer(OutputModelSerializer):
    components = ComponentPriceOutputSerializer(source="prices", many=True)
    regions = NamesField(help_text="ISO 3166 country codes; empty for the default book of the currency.")
    price_book = serializers.CharField(help_text=PRICE_BOOK_OUT_HELP)

    class Meta:
        model = PriceVersion
        fields = ["id", "currency", "price_book", "regions", "effective_from", "created_at", "components"]


# A plan's components as the API writes them: the fields of their kind only (pricing.md).
class _ComponentSerializer(OutputModelSerializer):
    product = serializers.CharField(source="product.code")

    class Meta:
        model = PlanComponent
        fields = ["product", "kind", "position"]


def _kind(kind: str) -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=[kind], read_only=True)


class HardwareComponentSerializer(_ComponentSerializer):
    """Hardware: its price per device, billed in `instalments` from `bill_on`."""

    kind = _kind("hardware")

    class Meta(_ComponentSerializer.Meta):
        fields = [*_ComponentSerializer.Meta.fields, "instalments", "bill_on"]


class ServiceComponentSerializer(_ComponentSerializer):
    """A recurring service, billed in advance: per device or per subscription, from `starts_on`."""

    kind = _kind("service")

    class Meta(_ComponentSerializer.Meta):
        fields = [*_ComponentSerializer.Meta.fields, "per_device", "starts_on"]


class UsageComponentSerializer(_ComponentSerializer):
    """Usage of a meter, billed in arrears, pooled across devices or per device."""

    kind = _kind("usage")
    meter = serializers.CharField(source="meter.code", read_only=True)
    included_per_device = DecimalString(
        allow_null=True, help_text="Allowance per device active in the period, deducted before the charge."
    )

    class Meta(_ComponentSerializer.Meta):
        fields = [*_ComponentSerializer.Meta.fields, "meter", "pooled", "included_per_device"]


class FeeComponentSerializer(_ComponentSerializer):
    """A one-time fee, billed once per subscription or per device, after `starts_on`."""

    kind = _kind("fee")

    class Meta(_ComponentSerializer.Meta):
        fields = [*_ComponentSerializer.Meta.fields, "per_device", "starts_on"]


COMPONENT_OUTPUTS: dict[str, Any] = {
    "hardware": HardwareComponentSerializer,
    "service": ServiceComponentSerializer,
    "usage": UsageComponentSerializer,
    "fee": FeeComponentSerializer,
}


@extend_schema_field(
    PolymorphicProxySerializer(
        component_name="PlanComponent", serializers=COMPONENT_OUTPUTS, resource_type_field_name="kind"
    )
)
class PlanComponentField(serializers.Field):
    """A component with the fields of its kind."""

    def to_representation(self, value: PlanComponent) -> dict[str, Any]:
        return dict(COMPONENT_OUTPUTS[value.kind](value).data)


# What a plan's components and prices are written as in a request; plan_create checks them.
class _ComponentInputSerializer(Shape):
    product = serializers.CharField(help_text="The product's code; the component's kind is the product's.")


@extend_schema_serializer(component_name="HardwareComponent")
class HardwareComponentInputSerializer(_ComponentInputSerializer):
    """Hardware: its price per device, billed in `instalments` from `bill_on`."""

    kind = serializers.ChoiceField(choices=["hardware"])
    price = DecimalText(required=False, help_text="Per device; here or in a price version's components.")
    instalments = serializers.IntegerField(required=False, min_value=1, max_value=120, default=1)
    bill_on = serializers.ChoiceField(choices=BillOn.choices, required=False, default=BillOn.SIGNATURE)


@extend_schema_serializer(component_name="ServiceComponent")
class ServiceComponentInputSerializer(_ComponentInputSerializer):
    """A recurring service, billed in advance: per device or per subscription, from `starts_on`."""

    kind = serializers.ChoiceField(choices=["service"])
    per_device = serializers.BooleanField(required=False, default=True)
    starts_on = serializers.ChoiceField(
        choices=StartsOn.choices,
        required=False,
        help_text="Default: activation for a per-device fee, else subscription_start.",
    )
    charge = ChargeField(required=False, help_text="Here or in a price version's components; usually flat.")


@extend_schema_serializer(component_name="UsageComponent")
class UsageComponentInputSerializer(_ComponentInputSerializer):
    """Usage of a meter, billed in arrears, pooled across devices or per device."""

    kind = serializers.ChoiceField(choices=["usage"])
    meter = serializers.CharField(help_text="The meter's code.")
    pooled = serializers.BooleanField(required=False, default=True)
    included_per_device = NumberText(
        required=False, allow_null=True, help_text="Allowance per device active in the period, pooled."
    )
    charge = ChargeField(required=False, help_text="Here or in a price version's components.")
    min_amount = DecimalText(required=False, allow_null=True, help_text="Per period.")
    max_amount = DecimalText(required=False, allow_null=True, help_text="Per period.")


@extend_schema_serializer(component_name="FeeComponent")
class FeeComponentInputSerializer(_ComponentInputSerializer):
    """A one-time fee, billed once per subscription or per device, after `starts_on`."""

    kind = serializers.ChoiceField(choices=["fee"])
    price = DecimalText(required=False, help_text="Here or in a price version's components.")
    per_device = serializers.BooleanField(required=False, default=False)
    starts_on = serializers.ChoiceField(choices=StartsOn.choices, required=False, default=StartsOn.SUBSCRIPTION_START)


COMPONENT_INPUTS: dict[str, Any] = {
    "hardware": HardwareComponentInputSerializer,
    "service": ServiceComponentInputSerializer,
    "usage": UsageComponentInputSerializer,
    "fee": FeeComponentInputSerializer,
}


@extend_schema_field(
    PolymorphicProxySerializer(
        component_name="PlanComponent", serializers=COMPONENT_INPUTS, resource_type_field_name="kind", many=True
    )
)
class PlanComponentsField(serializers.JSONField):
    """The components of a new plan, read as JSON and checked by ``plan_create``."""


class ComponentPriceInputSerializer(Shape):
    """A component's price in a price version: `price` for hardware and fees, `charge` for services and
    usage, with optional `min_amount`/`max_amount` for usage."""

    product = serializers.CharField(help_text="The component's product code.")
    price = DecimalText(required=False)
    charge = ChargeField(required=False)
    min_amount = DecimalText(required=False, allow_null=True)
    max_amount = DecimalText(required=False, allow_null=True)


@extend_schema_field(ComponentPriceInputSerializer(many=True))
class ComponentPricesField(serializers.JSONField):
    """The component prices of a price version, read as JSON and checked by the catalog service."""


REGIONS_HELP = "ISO 3166 country codes the version prices; none for the currency's default book."
EFFECTIVE_FROM_HELP = "ISO 8601 instant with its offset; none: from the start."


class PlanPriceVersionInputSerializer(Shape):
    """A price version of a new plan. Without `components`, it takes the prices written on the
    plan's components (one such entry at most)."""

    currency = serializers.CharField(min_length=3, max_length=3)
    price_book = serializers.CharField(required=False, allow_blank=True, allow_null=True, help_text=PRICE_BOOK_HELP)
    regions = NamesField(required=False, allow_null=True, help_text=REGIONS_HELP)
    effective_from = serializers.DateTimeField(required=False, allow_null=True, help_text=EFFECTIVE_FROM_HELP)
    components = ComponentPricesField(required=False)


@extend_schema_field(PlanPriceVersionInputSerializer(many=True))
class PlanPricesField(serializers.JSONField):
    """The price versions of a new plan, read as JSON and checked by ``plan_create``."""


class PlanInputSerializer(StrictSerializer):
    code = serializers.CharField(max_length=100)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="", style=MULTILINE)
    interval = ChoiceText(choices=Interval.choices, required=False, default="month")
    trial_days = serializers.IntegerField(required=False, default=0, min_value=0, max_value=3650)
    commitment_months = serializers.IntegerField(required=False, default=0, min_value=0, max_value=240)
    early_termination = ChoiceText(
        choices=EARLY_TERMINATION_CHOICES,
        required=False,
        default="none",
        help_text="remaining_fees: cancelling inside the commitment bills the committed service fees left.",
    )
    self_service = serializers.BooleanField(
        required=False, default=False, help_text="Offered in the customer portal's shop, for customers to order."
    )
    partner_visible = serializers.BooleanField(required=False, default=False, help_text=PARTNER_VISIBLE_HELP)
    components = PlanComponentsField(help_text="The fields of each component's kind, with its price or charge inline.")
    prices = PlanPricesField(required=False, default=_empty_list)


class PlanUpdateInputSerializer(StrictSerializer):
    self_service = serializers.BooleanField(
        required=False, help_text="Offered in the customer portal's shop, for customers to order."
    )
    partner_visible = serializers.BooleanField(required=False, help_text=PARTNER_VISIBLE_HELP)


class PlanOutputSerializer(OutputModelSerializer):
    components = serializers.ListField(child=PlanComponentField(), source="components.all", read_only=True)
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
            "self_service",
            "partner_visible",
            "components",
            "price_versions",
            "created_at",
        ]


class PriceVersionInputSerializer(StrictSerializer):
    currency = serializers.CharField()
    price_book = serializers.CharField(
        required=False, default="", allow_blank=True, allow_null=True, help_text=PRICE_BOOK_HELP
    )
    regions = NamesField(required=False, default=None, allow_null=True, help_text=REGIONS_HELP)
    effective_from = serializers.CharField(required=False, default=None, allow_null=True, help_text=EFFECTIVE_FROM_HELP)
    components = ComponentPricesField()


class PriceOverrideInputSerializer(StrictSerializer):
    customer = serializers.CharField(help_text="the customer's external_id")
    product = serializers.CharField()
    price = DecimalText(required=False, help_text="For a hardware or fee component.")
    charge = ChargeField(required=False, help_text="For a service or usage component.")
    min_amount = DecimalText(required=False, allow_null=True, help_text="For a usage component, per period.")
    max_amount = DecimalText(required=False, allow_null=True, help_text="For a usage component, per period.")
    effective_from = serializers.CharField(required=False, allow_null=True, help_text=EFFECTIVE_FROM_HELP)


class PriceOverrideOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    customer = serializers.CharField(source="customer.external_id")
    product = serializers.CharField(source="component.product.code")
    currency = serializers.CharField()
    price = MoneyAmountField(places="price", allow_null=True)
    charge = ChargeField(allow_null=True, read_only=True)
    min_amount = MoneyAmountField(places="price", allow_null=True)
    max_amount = MoneyAmountField(places="price", allow_null=True)
    effective_from = serializers.DateTimeField(allow_null=True)
    ended = serializers.SerializerMethodField(
        help_text="True for the row that ends the customer's negotiated price (made in the back-office): "
        "from its effective_from the price books apply again; it has neither price nor charge."
    )

    def get_ended(self, override: Any) -> bool:
        return price_override_is_end(override)


@extend_schema_field(
    {"type": "object", "additionalProperties": {"type": "string"}, "example": {"device_type": "tracker"}},
    component_name="DimensionValues",
)
class DimensionValuesField(serializers.DictField):
    """Dimension: value pairs (``{"device_type": "tracker", "region": "EU"}``)."""


class UsageQuantitySerializer(StrictSerializer):
    meter = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=28, decimal_places=10, min_value=0)
    dimensions = DimensionValuesField(child=serializers.CharField(), required=False, default=dict)
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


PRICE_SOURCES = ["override", "region", "default"]


class QuoteLineSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=ProductKind.choices, help_text="The kind of the component it prices.")
    product = serializers.CharField()
    description = serializers.CharField()
    quantity = QuantityString()
    unit_amount = DecimalString(allow_null=True, help_text="null for usage, priced by its charge as a whole.")
    amount = AmountString()
    tax_category = serializers.ChoiceField(choices=TaxCategory.choices)
    vat_category = serializers.CharField(help_text="EN 16931 VAT category code the tax rules give the line")
    detail = DetailField()


class TaxLineSerializer(serializers.Serializer):
    category = serializers.ChoiceField(choices=TaxCategory.choices)
    rate = DecimalString()
    base = AmountString()
    amount = AmountString()
    vat_category = serializers.CharField(help_text="EN 16931 VAT category code: S, Z, E, AE, K, G, O")
    exemption_reason_code = serializers.CharField(help_text="VATEX code, e.g. VATEX-EU-AE; empty for S, Z and E")
    exemption_reason = serializers.CharField(help_text="the legal mention; empty for S and Z")


class PriceQuoteOutputSerializer(serializers.Serializer):
    plan = serializers.CharField()
    currency = serializers.CharField()
    country = serializers.CharField(allow_null=True)
    devices = serializers.IntegerField()
    price_source = serializers.ChoiceField(
        choices=PRICE_SOURCES, help_text="The book the prices came from: a customer override, a region's, the default."
    )
    price_version_id = serializers.CharField()
    lines = QuoteLineSerializer(many=True)
    net_total = MoneyAmountField(places="exact")
    taxes = TaxLineSerializer(many=True)
    total = MoneyAmountField(places="exact")
    warnings = serializers.ListField(child=serializers.CharField())
