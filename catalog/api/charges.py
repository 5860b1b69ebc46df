"""Charges as the API reads and writes them: one object per model of ``catalog.charge_models``,
told apart by ``model`` (a discriminated union in the OpenAPI schema).

These serializers describe the shapes for the schema; the models validate and normalise a charge
(``validate_charge``), so its errors keep their paths (``charge.tiers[1].up_to``). A charge in a
response is the stored, normalised one: every field is there (``flat_amount`` "0" when none was
given, ``fixed_per_event`` "0", a matrix's ``default`` null).
"""

from typing import Any

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from billing_platform.api.fields import DecimalText, NumberText
from billing_platform.api.serializers import Shape


def _model(key: str) -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=[key])


class TierSerializer(Shape):
    up_to = NumberText(
        allow_null=True,
        help_text="Highest quantity of the tier, included; null for the last tier, which is open. Tier i covers "
        "(up_to[i-1], up_to[i]].",
    )
    unit_amount = DecimalText()
    flat_amount = DecimalText(required=False, help_text='Charged once when the quantity enters the tier; "0" if none.')


class FlatChargeSerializer(Shape):
    """`amount` per unit billed: per device for a per-device component, else once."""

    model = _model("flat")
    amount = DecimalText()


class PerUnitChargeSerializer(Shape):
    """quantity × `unit_amount`."""

    model = _model("per_unit")
    unit_amount = DecimalText()


class GraduatedChargeSerializer(Shape):
    """Each tier prices the units inside it, plus the `flat_amount` of every tier the quantity enters."""

    model = _model("graduated")
    tiers = TierSerializer(many=True)


class VolumeChargeSerializer(Shape):
    """The tier that contains the quantity prices every unit, plus that tier's `flat_amount`."""

    model = _model("volume")
    tiers = TierSerializer(many=True)


class PackageChargeSerializer(Shape):
    """ceil(quantity / `package_size`) × `package_amount`."""

    model = _model("package")
    package_size = serializers.IntegerField(min_value=1)
    package_amount = DecimalText()


class PercentageChargeSerializer(Shape):
    """`rate` / 100 × the summed value + `fixed_per_event` × the number of events."""

    model = _model("percentage")
    rate = DecimalText(help_text="Percent, 0 to 100.")
    fixed_per_event = DecimalText(required=False)


# Every model but the matrix itself, which a matrix cell cannot use.
# The variants of a union by their discriminator value (``PolymorphicProxySerializer`` wants a plain
# dict of serializer classes).
CELL_CHARGES: dict[str, Any] = {
    "flat": FlatChargeSerializer,
    "per_unit": PerUnitChargeSerializer,
    "graduated": GraduatedChargeSerializer,
    "volume": VolumeChargeSerializer,
    "package": PackageChargeSerializer,
    "percentage": PercentageChargeSerializer,
}


@extend_schema_field(
    PolymorphicProxySerializer(component_name="CellCharge", serializers=CELL_CHARGES, resource_type_field_name="model")
)
class CellChargeField(serializers.JSONField):
    """The charge of a matrix cell (any model but ``matrix``)."""


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "example": {"device_type": "tracker", "region": "*"},
    },
    component_name="MatrixMatch",
)
class MatrixMatchField(serializers.JSONField):
    """The dimension values a matrix cell prices."""


class MatrixCellSerializer(Shape):
    match = MatrixMatchField(
        help_text='Dimension: value, or "*" for any value. A dimension left out matches any value.',
    )
    charge = CellChargeField()


class MatrixChargeSerializer(Shape):
    """Usage split by the values of `dimensions`; each group is priced by the first cell whose `match`
    fits it, else by `default`. A group that nothing prices is an error, never free."""

    model = _model("matrix")
    dimensions = serializers.ListField(child=serializers.CharField(), help_text="The meter's dimensions priced.")
    cells = MatrixCellSerializer(many=True)
    default = CellChargeField(required=False, allow_null=True)


CHARGES: dict[str, Any] = {**CELL_CHARGES, "matrix": MatrixChargeSerializer}

CHARGE_SCHEMA: Any = PolymorphicProxySerializer(
    component_name="Charge", serializers=CHARGES, resource_type_field_name="model"
)


@extend_schema_field(CHARGE_SCHEMA)
class ChargeField(serializers.JSONField):
    """A charge, ``{"model": ..., its fields}``: read as JSON, checked by the charge models."""
