from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Literal

from djmoney.money import Money
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import build_choice_field
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing_platform.errors import FieldError, InvalidInput
from billing_platform.money import is_known_currency, round_minor
from billing_platform.validation import (
    METADATA_KEY_MAX_LENGTH,
    METADATA_MAX_KEYS,
    METADATA_VALUE_MAX_LENGTH,
    is_country,
    metadata_errors,
    validate_timezone,
)


def decimal_str(value: Decimal | None) -> str | None:
    """A stored decimal as an API string: no trailing zeros past the second place ("240.00", "0.0125")."""
    if value is None:
        return None
    text = format(value.normalize(), "f")
    if "." not in text:
        return text + ".00"
    whole, frac = text.split(".")
    return f"{whole}.{frac.ljust(2, '0')}"


class DecimalString(serializers.Field):
    """Read-only decimal amount rendered as a string, never a JSON float."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, value: Decimal) -> str | None:
        return decimal_str(value)


class DecimalStringSchema(OpenApiSerializerFieldExtension):
    target_class = "billing_platform.api.fields.DecimalString"

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        return {"type": "string", "format": "decimal", "example": "12.50"}


class AmountString(DecimalString):
    """An amount already rounded to its currency's minor unit, rendered as is ("33.00", JPY "4")."""

    def to_representation(self, value: Decimal) -> str | None:
        return None if value is None else str(value)


class QuantityString(DecimalString):
    """A quantity without trailing zeros ("1752", "1000.5")."""

    def to_representation(self, value: Decimal) -> str | None:
        return None if value is None else format(value.normalize(), "f")


class AmountStringSchema(DecimalStringSchema):
    target_class = "billing_platform.api.fields.AmountString"


class QuantityStringSchema(DecimalStringSchema):
    target_class = "billing_platform.api.fields.QuantityString"


class MoneyAmount(serializers.Field):
    """A stored amount rendered with its currency's exponent ("60.00", JPY "4"), never a float.

    ``MoneyAmount("amount", currency="invoice.currency")`` reads both from the object.
    """

    def __init__(self, attr: str, *, currency: str = "currency", **kwargs: Any) -> None:
        kwargs["source"] = "*"
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)
        self.attr, self.currency_path = attr, currency

    def to_representation(self, value: Any) -> str | None:
        amount = getattr(value, self.attr)
        if amount is None:
            return None
        currency: Any = value
        for part in self.currency_path.split("."):
            currency = getattr(currency, part)
        return str(round_minor(Decimal(amount), currency))


class MoneyAmountSchema(DecimalStringSchema):
    target_class = "billing_platform.api.fields.MoneyAmount"


class MoneyAmountField(serializers.Field):
    """A ``Money`` as the API writes an amount: its amount as a string, never a float, next to the
    object's ``currency`` field (the currency is not repeated). ``places`` says how the amount is
    written:

    - ``"minor"``: at the currency's minor unit ("24.00", JPY "4"), for stored amounts (4 places);
    - ``"exact"``: as computed ("239.64", or "0" for an empty sum), for totals summed from lines
      already rounded to the minor unit;
    - ``"price"``: without trailing zeros past the second place ("240.00", "0.0125"), for prices.
    """

    def __init__(self, *, places: Literal["minor", "exact", "price"] = "minor", **kwargs: Any) -> None:
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)
        self.places = places

    def to_representation(self, value: Money | None) -> str | None:
        if value is None:
            return None
        if self.places == "minor":
            return str(round_minor(value.amount, value.currency.code))
        if self.places == "price":
            return decimal_str(value.amount)
        return str(value.amount)


class MoneyAmountFieldSchema(DecimalStringSchema):
    target_class = "billing_platform.api.fields.MoneyAmountField"


class ChoiceText(serializers.CharField):
    """Text with a fixed set of values, listed as an enum in the OpenAPI schema. The service checks
    the value, so a wrong choice is reported with the request's other field errors, in one answer.

    ``choices`` are ``(value, label)`` pairs, as a model's ``TextChoices.choices``: the schema then
    shares the enum the model's output fields already name (``ProductKindEnum``).
    """

    def __init__(self, *, choices: Iterable[tuple[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.choices = list(choices)


class ChoiceTextSchema(OpenApiSerializerFieldExtension):
    target_class = "billing_platform.api.fields.ChoiceText"

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        return build_choice_field(serializers.ChoiceField(choices=self.target.choices))


class NumberText(serializers.Field):
    """A decimal quantity the API writes as a string ("1024") and reads as a string or a JSON number
    (``"included_per_device": 1024`` in api.md). Only describes a shape for the schema: the service
    that reads the request checks the value."""


class NumberTextSchema(OpenApiSerializerFieldExtension):
    target_class = "billing_platform.api.fields.NumberText"

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        text = {"type": "string", "format": "decimal", "example": "1024"}
        if direction == "request":
            return {"oneOf": [text, {"type": "number"}]}
        return text


class DecimalText(serializers.CharField):
    """A decimal amount written as a string ("0.0125") in a JSON object the API reads and writes (a
    charge's amounts). Only describes a shape for the schema: the service that reads the request
    checks the value."""


class DecimalTextSchema(OpenApiSerializerFieldExtension):
    target_class = "billing_platform.api.fields.DecimalText"

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        return {"type": "string", "format": "decimal", "example": "12.50"}


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {},
        "description": "How the amount was computed, by line type and charge model: instalment k of n, "
        "proration days, tiers, matrix groups, allowance, the price book it came from.",
    },
    component_name="LineDetail",
)
class DetailField(serializers.JSONField):
    """A line's detail: an object whose keys depend on the line's type and charge model."""


def _field_errors_to_drf(errors: list[FieldError], field: str) -> serializers.ValidationError:
    """Field errors of ``billing_platform.validation`` as a DRF error of one field: the field's own
    errors as a list, the errors of its keys (``metadata.erp_id``) as a dict keyed by the key."""
    own = [serializers.ErrorDetail(e.message, code=e.code) for e in errors if e.field == field]
    nested: dict[str, list[serializers.ErrorDetail]] = {}
    for e in errors:
        if e.field != field:
            nested.setdefault(e.field[len(field) + 1 :], []).append(serializers.ErrorDetail(e.message, code=e.code))
    if own and nested:
        nested["non_field_errors"] = own
    return serializers.ValidationError(nested or own)


class CountryField(serializers.CharField):
    """An ISO 3166-1 alpha-2 country as assigned ("FR"; "ZZ", "EU", "XK" refused), read in either case."""

    # No length validators: the schema's enum (CountryCode) says it all, and they would wrap its $ref.

    def to_internal_value(self, data: Any) -> str:
        value = str(super().to_internal_value(data)).upper()
        if not is_country(value):
            raise serializers.ValidationError("Unknown ISO 3166-1 alpha-2 country: %s." % value, code="unknown_country")
        return value


class CurrencyField(serializers.CharField):
    """An ISO 4217 alphabetic currency ("EUR"), read in either case."""

    def to_internal_value(self, data: Any) -> str:
        value = str(super().to_internal_value(data)).upper()
        if not is_known_currency(value):
            raise serializers.ValidationError("Unknown ISO 4217 currency: %s." % value, code="unknown_currency")
        return value


class TimezoneField(serializers.CharField):
    """An IANA time zone ("Europe/Paris")."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 64)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = str(super().to_internal_value(data))
        try:
            validate_timezone(value, field=self.field_name or "")
        except InvalidInput as exc:
            raise serializers.ValidationError(exc.detail, code="unknown_timezone") from None
        return value


class MetadataField(serializers.Field):
    """Metadata: the client's own string keys and string values (``billing_platform.validation``:
    at most 50 keys of 1 to 40 characters, values of at most 500). ``removals=True`` (a PATCH): a key
    given null is removed, the others given are set, the rest kept."""

    def __init__(self, *, removals: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.removals = removals

    def to_internal_value(self, data: Any) -> dict[str, str | None]:
        name = self.field_name or "metadata"
        errors = metadata_errors(data, field=name, removals=self.removals)
        if errors:
            raise _field_errors_to_drf(errors, name)
        return dict(data)

    def to_representation(self, value: Any) -> dict[str, str]:
        return dict(value or {})


def _ref(component: str) -> dict[str, Any]:
    return {"$ref": "#/components/schemas/%s" % component}


class CountryFieldSchema(OpenApiSerializerFieldExtension):
    target_class = "billing_platform.api.fields.CountryField"

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        return _ref("CountryCode")


class CurrencyFieldSchema(OpenApiSerializerFieldExtension):
    target_class = "billing_platform.api.fields.CurrencyField"

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        return _ref("CurrencyCode")


class TimezoneFieldSchema(OpenApiSerializerFieldExtension):
    target_class = "billing_platform.api.fields.TimezoneField"

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        return {"type": "string", "maxLength": 64, "example": "Europe/Paris", "description": "an IANA time zone"}


class MetadataFieldSchema(OpenApiSerializerFieldExtension):
    target_class = "billing_platform.api.fields.MetadataField"

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        value: dict[str, Any] = {"type": "string", "maxLength": METADATA_VALUE_MAX_LENGTH}
        text = (
            "Your own string keys and values (at most %d keys of 1 to %d characters without square brackets, "
            "values of at most %d characters); Tripod never reads them."
            % (METADATA_MAX_KEYS, METADATA_KEY_MAX_LENGTH, METADATA_VALUE_MAX_LENGTH)
        )
        if direction == "request" and self.target.removals:
            value["nullable"] = True
            text += " On PATCH the keys given are set, a key given null is removed, the others are kept."
        return {
            "type": "object",
            "additionalProperties": value,
            "maxProperties": METADATA_MAX_KEYS,
            "description": text,
            "example": {"erp_id": "C-0042"},
        }
