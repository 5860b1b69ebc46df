"""``matrix``: usage split by dimension values, each group priced by its own charge."""

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar

from billing_platform.errors import FieldError, InvalidInput
from billing_platform.validation import FieldErrors

from .base import ChargeModel, Rated, Usage, decimal_str, exact_arithmetic
from .properties import charge_invalid, check_unknown_fields, item, join

WILDCARD = "*"


class UnpricedMatrixGroup(InvalidInput):
    """Usage fell in a group that no cell and no default prices.

    Billing it as 0 would hand out free usage nobody agreed to, so rating stops and names the group.
    """

    code = "unpriced_matrix_group"

    def __init__(self, *, dimensions: Sequence[str], groups: Sequence[tuple[str, ...]]) -> None:
        described = [", ".join("%s=%s" % pair for pair in zip(dimensions, values, strict=True)) for values in groups]
        message = "No matrix cell or default prices the usage group %s." % "; ".join("(%s)" % d for d in described)
        super().__init__(
            message,
            errors=[FieldError("cells", self.code, message)],
            extra={"groups": [dict(zip(dimensions, values, strict=True)) for values in groups]},
        )
        self.groups = list(groups)


class MatrixCharge:
    """Σ over groups of the charge of the first cell whose ``match`` fits the group, else ``default``.

    Cells for data_mb by (device_type, region): {tracker, EU} 0.0010, {tracker, US} 0.0012,
    {camera, *} 0.0030, default 0.0015. tracker/EU 10000 MB × 0.0010 = 10.00, tracker/US 5000 ×
    0.0012 = 6.00, camera/EU 2000 × 0.0030 = 6.00 (by the wildcard cell), sensor/APAC 1000 × 0.0015
    = 1.50 (by the default): 23.50 in all, with one detail row per group.

    A cell's charge may use any model except ``matrix``: the models it may use are injected by the
    registry, which keeps this module free of a circular import and of nested matrices.
    """

    key: ClassVar[str] = "matrix"
    fields: ClassVar[frozenset[str]] = frozenset({"dimensions", "cells", "default"})
    cell_fields: ClassVar[frozenset[str]] = frozenset({"match", "charge"})

    def __init__(self, *, cell_models: Mapping[str, ChargeModel]) -> None:
        self.cell_models = cell_models

    def validate_properties(self, properties: Mapping[str, Any]) -> dict[str, Any]:
        errors = FieldErrors()
        check_unknown_fields(properties, allowed=self.fields, model=self.key, errors=errors)
        dimensions = self._validate_dimensions(properties, errors)
        cells = self._validate_cells(properties, dimensions, errors)
        default = None
        if properties.get("default") is not None:
            default = self._validate_cell_charge(properties["default"], path="default", errors=errors)
        errors.raise_if_any(charge_invalid)
        return {"dimensions": dimensions or [], "cells": cells, "default": default}

    def _validate_dimensions(self, properties: Mapping[str, Any], errors: FieldErrors) -> list[str] | None:
        """The dimension names, or None when the list itself is unusable (cells are then not matched)."""
        if "dimensions" not in properties:
            errors.add("dimensions", "required", "This field is required.")
            return None
        raw = properties["dimensions"]
        if isinstance(raw, str | bytes) or not isinstance(raw, Sequence):
            errors.add("dimensions", "invalid", "Must be a list of event property names.")
            return None
        if not raw:
            errors.add("dimensions", "empty", "At least one dimension is required.")
            return None
        dimensions: list[str] = []
        for index, name in enumerate(raw):
            if not isinstance(name, str) or not name:
                errors.add(item("dimensions", index), "invalid", "Must be a non-empty string.")
            elif name in dimensions:
                errors.add(item("dimensions", index), "duplicate", "Dimension %s is listed twice." % name)
            else:
                dimensions.append(name)
        return dimensions

    def _validate_cells(
        self, properties: Mapping[str, Any], dimensions: list[str] | None, errors: FieldErrors
    ) -> list[dict[str, Any]]:
        if "cells" not in properties:
            errors.add("cells", "required", "This field is required.")
            return []
        raw = properties["cells"]
        if isinstance(raw, str | bytes) or not isinstance(raw, Sequence):
            errors.add("cells", "invalid", "Must be a list of cells.")
            return []
        if not raw:
            errors.add("cells", "empty", "At least one cell is required.")
            return []
        cells: list[dict[str, Any]] = []
        for index, cell in enumerate(raw):
            path = item("cells", index)
            if not isinstance(cell, Mapping):
                errors.add(path, "invalid", "Each cell must be an object with match and charge.")
                continue
            check_unknown_fields(cell, allowed=self.cell_fields, model=self.key, errors=errors, prefix=path)
            match = self._validate_match(cell, dimensions, path=path, errors=errors)
            charge = None
            if "charge" not in cell:
                errors.add(join(path, "charge"), "required", "This field is required.")
            else:
                charge = self._validate_cell_charge(cell["charge"], path=join(path, "charge"), errors=errors)
            cells.append({"match": match, "charge": charge})
        return cells

    def _validate_match(
        self, cell: Mapping[str, Any], dimensions: list[str] | None, *, path: str, errors: FieldErrors
    ) -> dict[str, str]:
        field = join(path, "match")
        if "match" not in cell:
            errors.add(field, "required", "This field is required.")
            return {}
        raw = cell["match"]
        if not isinstance(raw, Mapping):
            errors.add(field, "invalid", 'Must be an object of dimension: value (or "*").')
            return {}
        if dimensions is None:
            return dict(raw)  # reported on "dimensions" already; checking names against nothing is noise
        for name, value in raw.items():
            if name not in dimensions:
                errors.add(
                    join(field, str(name)),
                    "unknown_dimension",
                    "Not one of the matrix dimensions (%s)." % ", ".join(dimensions),
                )
            elif not isinstance(value, str) or not value:
                errors.add(join(field, name), "invalid", 'Must be a non-empty string, or "*" for any value.')
        # A dimension left out of match matches anything; written out so the stored cell is explicit.
        return {name: str(raw.get(name, WILDCARD)) for name in dimensions}

    def _validate_cell_charge(self, charge: object, *, path: str, errors: FieldErrors) -> dict[str, Any] | None:
        if not isinstance(charge, Mapping):
            errors.add(path, "invalid", "Must be a charge object with a model.")
            return None
        model_key = charge.get("model")
        model_path = join(path, "model")
        if model_key is None:
            errors.add(model_path, "required", "This field is required.")
            return None
        if model_key == self.key:
            errors.add(model_path, "nested_matrix", "A matrix cell cannot itself be priced by a matrix.")
            return None
        model = self.cell_models.get(model_key) if isinstance(model_key, str) else None
        if model is None:
            errors.add(
                model_path,
                "unknown_charge_model",
                "Unknown charge model; expected one of: %s." % ", ".join(sorted(self.cell_models)),
            )
            return None
        try:
            normalised = model.validate_properties({k: v for k, v in charge.items() if k != "model"})
        except InvalidInput as exc:
            errors.absorb(exc, prefix=path)
            return None
        return {"model": model_key, **normalised}

    def rate(self, *, usage: Usage, properties: Mapping[str, Any]) -> Rated:
        dimensions: list[str] = list(properties["dimensions"])
        rows: list[dict[str, Any]] = []
        unpriced: list[tuple[str, ...]] = []
        total = Decimal(0)
        for values, group in usage.groups.items():
            if len(values) != len(dimensions):
                # The meter and the matrix disagree on the dimensions: a bug upstream, not bad input.
                raise ValueError("group %r does not have one value per dimension %r" % (values, dimensions))
            found = self._find_charge(values, properties, dimensions)
            if found is None:
                unpriced.append(values)
                continue
            cell, charge = found
            model = self.cell_models[charge["model"]]
            rated = model.rate(usage=group, properties={k: v for k, v in charge.items() if k != "model"})
            with exact_arithmetic():
                total += rated.amount
            rows.append(
                {
                    "values": dict(zip(dimensions, values, strict=True)),
                    "quantity": decimal_str(group.quantity),
                    "event_count": group.event_count,
                    "cell": cell,
                    "model": charge["model"],
                    "amount": decimal_str(rated.amount),
                    "details": rated.details,
                }
            )
        if unpriced:
            raise UnpricedMatrixGroup(dimensions=dimensions, groups=unpriced)
        return Rated(amount=total, details={"dimensions": dimensions, "groups": rows, "amount": decimal_str(total)})

    @staticmethod
    def _find_charge(
        values: tuple[str, ...], properties: Mapping[str, Any], dimensions: list[str]
    ) -> tuple[int | str, Mapping[str, Any]] | None:
        """(cell index or "default", its charge) for the first cell that fits; cell order decides ties."""
        for index, cell in enumerate(properties["cells"]):
            match = cell["match"]
            if all(
                match.get(name, WILDCARD) in (WILDCARD, value) for name, value in zip(dimensions, values, strict=True)
            ):
                return index, cell["charge"]
        default = properties.get("default")
        if default is not None:
            return "default", default
        return None
