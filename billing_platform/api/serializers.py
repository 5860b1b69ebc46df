from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from billing_platform.api.input_rules import apply_input_rules, json_type_error


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know: a misspelt ``billingday`` is a 422, not silently ignored;
    and values of another JSON type than the schema's (``0`` for ``false``, a number for a string).

    They are reported together with the other field errors, so one round trip shows all.
    """

    # Every field follows the API's input rules (billing_platform.api.input_rules): no control
    # characters in texts, no dates outside 1900-9999. (A comment: the docstring is the schema's
    # description of the serializers that have none of their own.)
    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        for field in fields.values():
            apply_input_rules(field)
        return fields

    def to_internal_value(self, data: Any) -> Any:
        refused: dict[str, Any] = {}
        if isinstance(data, dict):
            refused = {
                name: [serializers.ErrorDetail("Unknown field.", code="unknown_field")]
                for name in sorted(set(data) - set(self.fields))
            }
            for name, field in self.fields.items():
                message = json_type_error(field, data[name]) if name in data and not field.read_only else None
                if message is not None:
                    refused[name] = [serializers.ErrorDetail(message, code="invalid_type")]
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if refused and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**exc.detail, **refused}) from None
            raise
        if refused:
            raise serializers.ValidationError(refused)
        return value


# A JSON object the API reads and writes inside a request or a response (a charge, a tier, a plan
# component), declared field by field for the OpenAPI schema; the service that receives it checks
# it. In a response every field is present (``null`` when the field allows it); in a request the
# fields declared ``required=False`` may be left out. (A comment, not a docstring: a docstring
# would become the schema's description of every shape that has none of its own.)
class Shape(serializers.Serializer):
    pass


class ShapeSchema(OpenApiSerializerExtension):
    target_class = "billing_platform.api.serializers.Shape"
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema: dict[str, Any] = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction == "response" and schema.get("properties"):
            schema["required"] = list(schema["properties"])
        return schema


# A model as a response writes it. Its model fields are read-only, so the schema lists each as
# required: the server always sends it, null when the column allows it. (A comment: a docstring
# would describe every output in the schema.)
class OutputModelSerializer(serializers.ModelSerializer):
    def get_extra_kwargs(self) -> dict[str, Any]:
        extra: dict[str, Any] = super().get_extra_kwargs()
        for name in getattr(self.Meta, "fields", ()):
            extra[name] = {**extra.get(name, {}), "read_only": True}
        return extra


class ProblemErrorSerializer(serializers.Serializer):
    field = serializers.CharField()
    code = serializers.CharField()
    message = serializers.CharField()


# RFC 9457 problem details, as every error of the API is returned. Built inline because a
# serializer field cannot be called "errors" (it would shadow Serializer.errors).
PROBLEM_SCHEMA = inline_serializer(
    name="Problem",
    fields={
        "type": serializers.URLField(),
        "title": serializers.CharField(),
        "status": serializers.IntegerField(),
        "detail": serializers.CharField(),
        "code": serializers.CharField(),
        "errors": ProblemErrorSerializer(many=True, required=False),
    },
)


def problems(*statuses: int) -> dict[int, Any]:
    """OpenAPI responses for the given error statuses (401 and 403 are always possible)."""
    return dict.fromkeys(sorted({401, 403, *statuses}), PROBLEM_SCHEMA)
