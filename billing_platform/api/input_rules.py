"""The rules every input field of the API follows, whatever its serializer: no text holds a
character that no text may hold (``billing_platform.validation.refused_character``: control
characters, NUL, unpaired surrogates), a JSON field holds no such text either, and no date or
instant falls outside the years 1900 to 9999 (``date_in_range``).

``StrictSerializer`` applies them to its fields, nested serializers and list items included, so a
new input serializer cannot forget them. A text field that may span lines says so with DRF's own
textarea style (``MULTILINE``): tab and line breaks are then allowed.
"""

from typing import Any

from rest_framework import serializers

from billing_platform.validation import (
    DATE_RANGE_MESSAGE,
    EARLIEST_YEAR,
    LATEST_YEAR,
    date_in_range,
    json_refused_character,
    refused_character,
)

# ``serializers.CharField(style=MULTILINE)``: a text that may span lines (a description, a reason).
MULTILINE = {"base_template": "textarea.html"}


class TextValidator:
    def __init__(self, *, multiline: bool) -> None:
        self.multiline = multiline

    def __call__(self, value: Any) -> None:
        message = refused_character(value, multiline=self.multiline) if isinstance(value, str) else None
        if message is not None:
            raise serializers.ValidationError(message, code="control_character")


class JsonTextValidator:
    def __call__(self, value: Any) -> None:
        found = json_refused_character(value)
        if found is not None:
            path, message = found
            raise serializers.ValidationError("%s: %s" % (path, message) if path else message, code="control_character")


class DateRangeValidator:
    def __call__(self, value: Any) -> None:
        if not date_in_range(value):
            raise serializers.ValidationError(
                DATE_RANGE_MESSAGE % {"min": EARLIEST_YEAR, "max": LATEST_YEAR}, code="out_of_range"
            )


def apply_input_rules(field: serializers.Field | None) -> None:
    """Add the rules' validators to ``field`` and to the fields it holds (once per field instance)."""
    if field is None or getattr(field, "_input_rules_applied", False):
        return
    field._input_rules_applied = True  # type: ignore[attr-defined]
    if isinstance(field, serializers.ListSerializer):
        apply_input_rules(field.child)
    elif isinstance(field, serializers.Serializer):
        for child in field.fields.values():
            apply_input_rules(child)
    elif isinstance(field, serializers.ListField | serializers.DictField):
        apply_input_rules(field.child)
    elif isinstance(field, serializers.CharField):
        field.validators.append(TextValidator(multiline=field.style.get("base_template") == MULTILINE["base_template"]))
    elif isinstance(field, serializers.JSONField):
        field.validators.append(JsonTextValidator())
    elif isinstance(field, serializers.DateTimeField | serializers.DateField):
        field.validators.append(DateRangeValidator())


# The JSON type each kind of field takes, as the OpenAPI schema declares it. DRF coerces more (0 for
# false, 12 for "12", a number for a decimal string): a client generated from the schema never sends
# those, and a server that takes them lets typing mistakes through, so they are refused.
_STRING_FIELDS = (
    serializers.CharField,
    serializers.DateField,
    serializers.DateTimeField,
    serializers.TimeField,
    serializers.DurationField,
    serializers.UUIDField,
    serializers.DecimalField,  # amounts travel as strings, never as JSON numbers
)
_TYPE_NAMES = {str: "a string", bool: "true or false", int: "an integer", dict: "an object", list: "an array"}


def _expected_type(field: serializers.Field) -> type | None:
    if isinstance(field, serializers.BooleanField):
        return bool
    if isinstance(field, serializers.IntegerField):
        return int
    if isinstance(field, serializers.ChoiceField):
        choices = list(field.choices)
        return str if choices and all(isinstance(c, str) for c in choices) else None
    if isinstance(field, _STRING_FIELDS):
        return str
    if isinstance(field, serializers.DictField):
        return dict
    if isinstance(field, serializers.ListField):
        return list
    return None


def json_type_error(field: serializers.Field, value: Any) -> str | None:
    """Why ``value``, as sent in JSON, is not of the type ``field`` takes, or None. Null is left to
    the field (``allow_null``)."""
    if value is None:
        return None
    expected = _expected_type(field)
    if expected is None:
        return None
    if expected is int:
        matches = isinstance(value, int) and not isinstance(value, bool)
    else:
        matches = isinstance(value, expected)
    if not matches:
        return "Expected %s." % _TYPE_NAMES[expected]
    if isinstance(field, serializers.ListField) and isinstance(value, list):
        for index, item in enumerate(value):
            message = json_type_error(field.child, item)
            if message is not None:
                return "Item %d: %s" % (index, message)
    if isinstance(field, serializers.DictField) and isinstance(value, dict):
        for key, item in value.items():
            message = json_type_error(field.child, item)
            if message is not None:
                return "%s: %s" % (key, message)
    return None
