"""The charge models Tripod knows, by key. A new model is one module and one line here.

A plain dict rather than dynamic loading: readers and mypy can follow every ``CHARGE_MODELS[key]``.
"""

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from billing_platform.errors import FieldError

from .base import ChargeModel, Rated, Usage
from .flat import FlatCharge
from .graduated import GraduatedCharge
from .matrix import MatrixCharge
from .package import PackageCharge
from .per_unit import PerUnitCharge
from .percentage import PercentageCharge
from .properties import charge_invalid
from .volume import VolumeCharge

# Everything a matrix cell may use: every model but the matrix itself.
CELL_MODELS: dict[str, ChargeModel] = {
    model.key: model
    for model in (FlatCharge(), PerUnitCharge(), GraduatedCharge(), VolumeCharge(), PackageCharge(), PercentageCharge())
}

CHARGE_MODELS: dict[str, ChargeModel] = {**CELL_MODELS, MatrixCharge.key: MatrixCharge(cell_models=CELL_MODELS)}


def _model_for(charge: Mapping[str, Any]) -> ChargeModel:
    key = charge.get("model")
    if key is None:
        raise charge_invalid([FieldError("model", "required", "This field is required.")])
    model = CHARGE_MODELS.get(key) if isinstance(key, str) else None
    if model is None:
        message = "Unknown charge model; expected one of: %s." % ", ".join(sorted(CHARGE_MODELS))
        raise charge_invalid([FieldError("model", "unknown_charge_model", message)])
    return model


def _properties(charge: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in charge.items() if name != "model"}


def validate_charge(charge: Mapping[str, Any]) -> dict[str, Any]:
    """``{"model": key, **normalised properties}``, or ``InvalidInput`` listing every problem.

    >>> validate_charge({"model": "per_unit", "unit_amount": 0.1})
    {'model': 'per_unit', 'unit_amount': '0.1'}
    """
    if not isinstance(charge, Mapping):
        raise charge_invalid([FieldError("", "invalid", "A charge must be an object with a model.")])
    model = _model_for(charge)
    return {"model": model.key, **model.validate_properties(_properties(charge))}


def rate_charge(charge: Mapping[str, Any], usage: Usage) -> Rated:
    """Rate ``usage`` with a charge, validating it first.

    The charge usually comes back from the database already normalised; validating again is cheap
    and idempotent, and a charge stored by an older release or edited by hand then fails with a
    422 naming the field instead of being rated on a guess.
    """
    normalised = _validated_cached(json.dumps(charge, sort_keys=True, default=str))
    model = CHARGE_MODELS[normalised["model"]]
    rated = model.rate(usage=usage, properties=_properties(normalised))
    return Rated(amount=rated.amount, details={"model": model.key, **rated.details})


@lru_cache(maxsize=4096)
def _validated_cached(charge_json: str) -> dict[str, Any]:
    # A bill run rates the same few stored charges thousands of times: validate each once.
    # Callers never mutate the returned dict.
    return validate_charge(json.loads(charge_json))
