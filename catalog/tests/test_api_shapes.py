"""The OpenAPI shapes of charges and plan components follow the code that reads them: a new charge
model or component field cannot be left out of the schema (catalog/api/charges.py)."""

import pytest

from catalog.api.charges import CELL_CHARGES, CHARGES, TierSerializer
from catalog.api.serializers import COMPONENT_INPUTS, COMPONENT_OUTPUTS
from catalog.charge_models.registry import CELL_MODELS, CHARGE_MODELS
from catalog.charge_models.tiers import TIER_FIELDS
from catalog.models import ProductKind
from catalog.services.plans import COMPONENT_FIELDS


def test_every_charge_model_has_its_shape_with_its_fields() -> None:
    assert set(CHARGES) == set(CHARGE_MODELS)
    assert set(CELL_CHARGES) == set(CELL_MODELS)
    for key, model in CHARGE_MODELS.items():
        shape = CHARGES[key]()
        assert set(shape.fields) == {"model", *model.fields}, key  # type: ignore[attr-defined]
        assert shape.fields["model"].choices == {key: key}
    assert set(TierSerializer().fields) == TIER_FIELDS


@pytest.mark.parametrize("kind", ProductKind.values)
def test_every_component_kind_has_its_shapes(kind: str) -> None:
    written = COMPONENT_INPUTS[kind]().fields
    assert set(written) == COMPONENT_FIELDS[ProductKind(kind)]
    assert written["kind"].choices == {kind: kind}
    read = COMPONENT_OUTPUTS[kind]().fields
    assert read["kind"].choices == {kind: kind}
    # a response names the product and the kind's own fields, never the price (it is in the versions)
    assert set(read) <= (COMPONENT_FIELDS[ProductKind(kind)] | {"position"}) - {"price", "charge"}
