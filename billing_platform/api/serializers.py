import copy
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
    # The fields ModelSerializer builds from the model (its field mapping, the model's options) are
    # the same for every instance of a class: built once per class, each serializer gets copies.
    _built_fields: dict[str, serializers.Field] | None = None

    def get_fields(self) -> dict[str, serializers.Field]:
        cls = type(self)
        built = cls.__dict__.get("_built_fields")
        if built is None:
            built = super().get_fields()
            cls._built_fields = built
        return {name: copy.deepcopy(field) for name, field in built.items()}

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


class RowWriter:
    """Writes rows read with ``values()`` as ``serializer_class`` writes model instances: the same
    keys in the same order, each value through the serializer's own field (``to_representation``),
    ``None`` as ``None``, as DRF does. For the large reads (a subscription's devices): no model
    instance per row, and none of the serializer's per-instance work.

    Every field must read one column (``source`` a model field, or a foreign key's field as
    ``customer.external_id``, read as ``customer__external_id``), except those named in
    ``computed``, which the caller gives as they are written (a nested list it wrote itself).
    ``columns`` is what to pass to ``values()``. The fields are built once, on first use."""

    def __init__(self, serializer_class: type[serializers.Serializer], *, computed: tuple[str, ...] = ()) -> None:
        self.serializer_class = serializer_class
        self.computed = computed
        self._fields: list[tuple[str, str | None, Any]] | None = None
        self._declared: dict[str, serializers.Field] = {}

    def field(self, name: str) -> serializers.Field:
        """The serializer's field ``name`` (to write a computed value as it would)."""
        self._build()
        return self._declared[name]

    def _build(self) -> list[tuple[str, str | None, Any]]:
        if self._fields is None:
            built: list[tuple[str, str | None, Any]] = []
            self._declared = dict(self.serializer_class().fields.items())
            for name, field in self._declared.items():
                if name in self.computed:
                    built.append((name, None, None))
                    continue
                source = field.source
                if (
                    isinstance(field, (serializers.BaseSerializer, serializers.SerializerMethodField))
                    or not source
                    or source == "*"
                    or type(field).get_attribute is not serializers.Field.get_attribute
                ):
                    raise TypeError("%s.%s does not read one column" % (self.serializer_class.__name__, name))
                built.append((name, source.replace(".", "__"), field.to_representation))
            missing = set(self.computed) - {name for name, _, _ in built}
            if missing:
                raise TypeError("%s has no field %s" % (self.serializer_class.__name__, ", ".join(sorted(missing))))
            self._fields = built
        return self._fields

    @property
    def columns(self) -> list[str]:
        return [column for _, column, _ in self._build() if column is not None]

    def write(self, row: dict[str, Any], **computed: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, column, represent in self._build():
            if column is None:
                out[name] = computed[name]
            else:
                value = row[column]
                out[name] = None if value is None else represent(value)
        return out

    def write_all(self, rows: Any) -> list[dict[str, Any]]:
        fields = self._build()
        if any(column is None for _, column, _ in fields):
            raise TypeError("rows with computed fields are written one by one")
        return [
            {name: None if (value := row[column]) is None else represent(value) for name, column, represent in fields}
            for row in rows
        ]
