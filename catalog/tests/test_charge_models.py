"""The charge models against every worked example of specs/pricing.md, and their validation errors.

Pure functions: no database, no fixtures. Amounts are compared as strings so the currency exponent
("33.00", not "33.000" or "33") is checked too.
"""

from decimal import Decimal
from typing import Any

import pytest

from billing_platform.errors import InvalidInput
from catalog.charge_models import (
    CHARGE_MODELS,
    UnpricedMatrixGroup,
    Usage,
    apply_allowance,
    price,
    rate_charge,
    validate_charge,
)

# specs/pricing.md, "Worked examples": T = [{1000, 0}, {10000, 0.002}, {null, 0.001}]
T: list[dict[str, Any]] = [
    {"up_to": 1000, "unit_amount": "0"},
    {"up_to": 10000, "unit_amount": "0.002"},
    {"up_to": None, "unit_amount": "0.001"},
]
T_WITH_FLAT: list[dict[str, Any]] = [
    {"up_to": 1000, "unit_amount": "0"},
    {"up_to": 10000, "unit_amount": "0.002", "flat_amount": "5"},
    {"up_to": None, "unit_amount": "0.001"},
]
PACKAGE: dict[str, Any] = {"model": "package", "package_size": 100, "package_amount": "4.00"}
# billing.md, Smart Fleet's data-overage component
SMART_FLEET_DATA: dict[str, Any] = {
    "model": "graduated",
    "tiers": [{"up_to": 10000, "unit_amount": "0.010"}, {"up_to": None, "unit_amount": "0.005"}],
}
MATRIX: dict[str, Any] = {
    "model": "matrix",
    "dimensions": ["device_type", "region"],
    "cells": [
        {"match": {"device_type": "tracker", "region": "EU"}, "charge": {"model": "per_unit", "unit_amount": "0.0010"}},
        {"match": {"device_type": "tracker", "region": "US"}, "charge": {"model": "per_unit", "unit_amount": "0.0012"}},
        {"match": {"device_type": "camera", "region": "*"}, "charge": {"model": "per_unit", "unit_amount": "0.0030"}},
    ],
    "default": {"model": "per_unit", "unit_amount": "0.0015"},
}


def usage(quantity: str, event_count: int = 0) -> Usage:
    return Usage(quantity=Decimal(quantity), event_count=event_count)


@pytest.mark.parametrize(
    ("charge", "quantity", "event_count", "currency", "expected"),
    [
        # 1000 × 0 + 9000 × 0.002 + 15000 × 0.001 = 33
        pytest.param({"model": "graduated", "tiers": T}, "25000", 0, "EUR", "33.00", id="graduated-T-25000"),
        pytest.param({"model": "graduated", "tiers": T}, "1000", 0, "EUR", "0.00", id="graduated-T-1000"),
        # 0.5 × 0.002 = 0.001 -> 0.00
        pytest.param({"model": "graduated", "tiers": T}, "1000.5", 0, "EUR", "0.00", id="graduated-T-1000.5"),
        # 25000 × 0.001
        pytest.param({"model": "volume", "tiers": T}, "25000", 0, "EUR", "25.00", id="volume-T-25000"),
        # 10000 × 0.002: 10000 is the top of tier 2
        pytest.param({"model": "volume", "tiers": T}, "10000", 0, "EUR", "20.00", id="volume-T-10000"),
        # 10001 × 0.001 = 10.001: the cliff
        pytest.param({"model": "volume", "tiers": T}, "10001", 0, "EUR", "10.00", id="volume-T-10001"),
        # 0 + 1 × 0.002 + 5 (tier 2 entered, so its flat fee is due) = 5.002
        pytest.param({"model": "graduated", "tiers": T_WITH_FLAT}, "1001", 0, "EUR", "5.00", id="graduated-flat-1001"),
        # ceil(250 / 100) = 3 × 4.00
        pytest.param(PACKAGE, "250", 0, "EUR", "12.00", id="package-250"),
        pytest.param(PACKAGE, "100", 0, "EUR", "4.00", id="package-100"),
        pytest.param(PACKAGE, "101", 0, "EUR", "8.00", id="package-101"),
        pytest.param(PACKAGE, "0", 0, "EUR", "0.00", id="package-0"),
        # 0.015 × (100 + 250.50 + 19.99 = 370.49) + 3 × 0.10 = 5.55735 + 0.30 = 5.85735
        pytest.param(
            {"model": "percentage", "rate": "1.5", "fixed_per_event": "0.10"},
            "370.49",
            3,
            "EUR",
            "5.86",
            id="percentage-3-events",
        ),
        # 333 × 0.0125 = 4.1625
        pytest.param({"model": "per_unit", "unit_amount": "0.0125"}, "333", 0, "EUR", "4.16", id="per-unit-333"),
        # 5 × 0.7 = 3.5 -> 4: JPY has no minor unit, and half-up
        pytest.param({"model": "per_unit", "unit_amount": "0.7"}, "5", 0, "JPY", "4", id="per-unit-jpy"),
        # pitfalls #10: 55 × 0.067 = 3.685 -> 3.69 half-up (banker's rounding would give 3.68)
        pytest.param({"model": "per_unit", "unit_amount": "0.067"}, "55", 0, "EUR", "3.69", id="pitfall-10-eur"),
        # pitfalls #10: CLP has no minor unit either; 3 × 12.5 = 37.5 -> 38
        pytest.param({"model": "per_unit", "unit_amount": "12.5"}, "3", 0, "CLP", "38", id="pitfall-10-clp"),
        pytest.param({"model": "per_unit", "unit_amount": "0.067"}, "55", 0, "CLP", "4", id="pitfall-10-clp-small"),
        # KWD has three decimals: 1.2345 -> 1.235
        pytest.param({"model": "per_unit", "unit_amount": "1.2345"}, "1", 0, "KWD", "1.235", id="kwd-three-places"),
        # Smart Fleet's platform fee, A and B in April: 2 devices × 25.00
        pytest.param({"model": "flat", "amount": "25.00"}, "2", 0, "EUR", "50.00", id="flat-per-device"),
    ],
)
def test_worked_examples_of_pricing_md(
    charge: dict[str, Any], quantity: str, event_count: int, currency: str, expected: str
) -> None:
    priced = price(charge=charge, usage=usage(quantity, event_count), currency=currency)

    assert str(priced.amount) == expected


def test_percentage_example_keeps_the_precise_amount() -> None:
    # given: three events of 100, 250.50 and 19.99
    events = [Decimal("100"), Decimal("250.50"), Decimal("19.99")]
    charge = {"model": "percentage", "rate": "1.5", "fixed_per_event": "0.10"}
    # when
    priced = price(charge=charge, usage=Usage(quantity=sum(events, Decimal(0)), event_count=3), currency="EUR")
    # then: 0.015 × 370.49 = 5.55735, + 3 × 0.10 = 5.85735, rounded once to 5.86
    assert priced.precise_amount == Decimal("5.85735")
    assert str(priced.amount) == "5.86"
    assert priced.details["percentage_amount"] == "5.55735"
    assert priced.details["fixed_amount"] == "0.30"


def test_graduated_details_show_each_tier() -> None:
    priced = price(charge={"model": "graduated", "tiers": T}, usage=usage("25000"), currency="EUR")

    assert priced.details["model"] == "graduated"
    rows = priced.details["tiers"]
    assert [(r["tier"], r["from"], r["up_to"], r["units"]) for r in rows] == [
        (1, "0", "1000", "1000"),
        (2, "1000", "10000", "9000"),
        (3, "10000", None, "15000"),
    ]
    # 1000 × 0, 9000 × 0.002, 15000 × 0.001
    assert [Decimal(r["amount"]) for r in rows] == [Decimal("0"), Decimal("18"), Decimal("15")]


def test_graduated_flat_amount_only_for_tiers_the_quantity_enters() -> None:
    # 1000 stays in tier 1, so tier 2's flat 5 is not due; 0 enters no tier at all
    charge = {"model": "graduated", "tiers": T_WITH_FLAT}

    assert str(price(charge=charge, usage=usage("1000"), currency="EUR").amount) == "0.00"
    assert str(price(charge=charge, usage=usage("0"), currency="EUR").amount) == "0.00"
    rows = price(charge=charge, usage=usage("1001"), currency="EUR").details["tiers"]
    assert [r["flat_amount"] for r in rows] == ["0", "5", "0"]


def test_volume_prices_nothing_at_zero_even_with_a_flat_fee() -> None:
    tiers = [{"up_to": 10, "unit_amount": "1", "flat_amount": "3"}, {"up_to": None, "unit_amount": "0.5"}]

    zero = price(charge={"model": "volume", "tiers": tiers}, usage=usage("0"), currency="EUR")
    ten = price(charge={"model": "volume", "tiers": tiers}, usage=usage("10"), currency="EUR")

    assert str(zero.amount) == "0.00"
    # 10 × 1 + 3
    assert str(ten.amount) == "13.00"
    assert ten.details["tiers"][0]["tier"] == 1


def test_package_takes_a_started_package_in_full_for_decimal_quantities() -> None:
    # 100.0001 units -> 2 packages × 4.00
    assert str(price(charge=PACKAGE, usage=usage("100.0001"), currency="EUR").amount) == "8.00"


def test_matrix_example_prices_each_group_by_its_cell() -> None:
    # given: the data_mb events of specs/pricing.md, grouped by (device_type, region)
    groups: dict[tuple[str, ...], Usage] = {
        ("tracker", "EU"): usage("10000", 4),
        ("tracker", "US"): usage("5000", 2),
        ("camera", "EU"): usage("2000", 1),
        ("sensor", "APAC"): usage("1000", 1),
    }
    # when
    priced = price(charge=MATRIX, usage=Usage(quantity=Decimal(18000), event_count=8, groups=groups), currency="EUR")
    # then: 10000 × 0.0010 + 5000 × 0.0012 + 2000 × 0.0030 + 1000 × 0.0015 = 10 + 6 + 6 + 1.5 = 23.50
    assert str(priced.amount) == "23.50"
    rows = priced.details["groups"]
    assert [(r["values"], r["cell"], Decimal(r["amount"])) for r in rows] == [
        ({"device_type": "tracker", "region": "EU"}, 0, Decimal("10.00")),
        ({"device_type": "tracker", "region": "US"}, 1, Decimal("6.00")),
        ({"device_type": "camera", "region": "EU"}, 2, Decimal("6.00")),
        ({"device_type": "sensor", "region": "APAC"}, "default", Decimal("1.50")),
    ]
    assert [r["quantity"] for r in rows] == ["10000", "5000", "2000", "1000"]


def test_matrix_first_matching_cell_wins() -> None:
    charge = {
        "model": "matrix",
        "dimensions": ["device_type"],
        "cells": [
            {"match": {"device_type": "*"}, "charge": {"model": "per_unit", "unit_amount": "1"}},
            {"match": {"device_type": "camera"}, "charge": {"model": "per_unit", "unit_amount": "2"}},
        ],
    }
    priced = price(charge=charge, usage=Usage(quantity=Decimal(3), groups={("camera",): usage("3")}), currency="EUR")

    assert str(priced.amount) == "3.00"
    assert priced.details["groups"][0]["cell"] == 0


def test_matrix_group_with_no_cell_and_no_default_is_an_error_never_free() -> None:
    # given: the example matrix without its default
    charge = {key: value for key, value in MATRIX.items() if key != "default"}
    groups: dict[tuple[str, ...], Usage] = {("tracker", "EU"): usage("10000"), ("sensor", "APAC"): usage("1000")}
    # when / then
    with pytest.raises(UnpricedMatrixGroup, match=r"device_type=sensor, region=APAC") as caught:
        price(charge=charge, usage=Usage(quantity=Decimal(11000), groups=groups), currency="EUR")
    exc = caught.value
    assert isinstance(exc, InvalidInput)
    assert exc.status == 422
    assert exc.code == "unpriced_matrix_group"
    assert exc.extra == {"groups": [{"device_type": "sensor", "region": "APAC"}]}
    assert [(e.field, e.code) for e in exc.errors] == [("cells", "unpriced_matrix_group")]


def test_matrix_group_values_must_follow_the_dimensions() -> None:
    with pytest.raises(ValueError, match="one value per dimension"):
        rate_charge(MATRIX, Usage(quantity=Decimal(1), groups={("tracker",): usage("1")}))


@pytest.mark.parametrize(
    ("raw_mb", "devices", "billable", "expected"),
    [
        # March: 3800 − 2 × 1024 = 1752 MB × 0.010 = 17.52
        pytest.param("3800", 2, "1752", "17.52", id="smart-fleet-march"),
        # April: 14000 − 3 × 1024 = 10928 MB -> 10000 × 0.010 + 928 × 0.005 = 100 + 4.64 = 104.64
        pytest.param("14000", 3, "10928", "104.64", id="smart-fleet-april"),
        # under the allowance: nothing billable, nothing billed
        pytest.param("1000", 1, "0", "0.00", id="within-allowance"),
    ],
)
def test_smart_fleet_data_usage_after_the_pooled_allowance(
    raw_mb: str, devices: int, billable: str, expected: str
) -> None:
    # given / when: the allowance is deducted once, before the charge model
    billable_mb, used = apply_allowance(quantity=Decimal(raw_mb), included_per_device=Decimal(1024), devices=devices)
    priced = price(charge=SMART_FLEET_DATA, usage=Usage(quantity=billable_mb), currency="EUR")
    # then
    assert billable_mb == Decimal(billable)
    assert used == min(Decimal(raw_mb), Decimal(1024 * devices))
    assert str(priced.amount) == expected


def test_apply_allowance_refuses_negative_inputs() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        apply_allowance(quantity=Decimal(1), included_per_device=Decimal(-1), devices=1)


@pytest.mark.parametrize(
    ("min_amount", "max_amount", "expected", "precise", "clamped_to"),
    [
        # 55 × 0.067 = 3.685: inside the bounds, rounded once
        pytest.param("1.00", "10.00", "3.69", "3.685", None, id="inside"),
        pytest.param("5.00", None, "5.00", "5.00", "min_amount", id="raised-to-min"),
        pytest.param(None, "3.00", "3.00", "3.00", "max_amount", id="capped-at-max"),
        # the clamp works on the precise amount: a max of 3.6849 rounds to 3.68, not 3.69
        pytest.param(None, "3.6849", "3.68", "3.6849", "max_amount", id="clamp-before-rounding"),
    ],
)
def test_min_and_max_clamp_the_precise_amount_before_rounding(
    min_amount: str | None, max_amount: str | None, expected: str, precise: str, clamped_to: str | None
) -> None:
    priced = price(
        charge={"model": "per_unit", "unit_amount": "0.067"},
        usage=usage("55"),
        currency="EUR",
        min_amount=None if min_amount is None else Decimal(min_amount),
        max_amount=None if max_amount is None else Decimal(max_amount),
    )

    assert str(priced.amount) == expected
    assert priced.precise_amount == Decimal(precise)
    assert priced.details["rated_amount"] == "3.685"
    assert priced.details.get("clamped_to") == clamped_to


def test_min_above_max_is_refused() -> None:
    with pytest.raises(InvalidInput, match="max_amount must not be less than min_amount") as caught:
        price(
            charge={"model": "flat", "amount": "1"},
            usage=usage("1"),
            currency="EUR",
            min_amount=Decimal(5),
            max_amount=Decimal(4),
        )
    assert [(e.field, e.code) for e in caught.value.errors] == [("max_amount", "less_than_min")]


def test_registry_keys_match_the_models() -> None:
    assert sorted(CHARGE_MODELS) == ["flat", "graduated", "matrix", "package", "per_unit", "percentage", "volume"]
    assert all(model.key == key for key, model in CHARGE_MODELS.items())


def test_usage_refuses_floats_and_negative_quantities() -> None:
    with pytest.raises(TypeError, match="must be a Decimal"):
        Usage(quantity=0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-negative"):
        Usage(quantity=Decimal(-1))


# --- validation -----------------------------------------------------------------------------------


def test_validate_charge_normalises_amounts_and_tiers() -> None:
    charge = {
        "model": "graduated",
        "tiers": [{"up_to": 1000, "unit_amount": 0.1}, {"up_to": None, "unit_amount": 2, "flat_amount": "1.50"}],
    }

    assert validate_charge(charge) == {
        "model": "graduated",
        "tiers": [
            # a float goes through str(): 0.1, not 0.1000000000000000055511151231257827
            {"up_to": "1000", "unit_amount": "0.1", "flat_amount": "0"},
            {"up_to": None, "unit_amount": "2", "flat_amount": "1.50"},
        ],
    }


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("0.0125", "0.0125"),
        (12, "12"),
        ("1e-3", "0.001"),
        ("1E+3", "1000"),
        ("0.0000000001", "0.0000000001"),  # 10 places: the limit
        ("0.100000000000000", "0.1000000000"),  # only zeros past the 10th place
    ],
)
def test_amount_forms_that_are_accepted(raw: object, normalised: str) -> None:
    assert validate_charge({"model": "per_unit", "unit_amount": raw}) == {
        "model": "per_unit",
        "unit_amount": normalised,
    }


def test_validated_charge_validates_again_to_itself() -> None:
    once = validate_charge(MATRIX)

    assert validate_charge(once) == once
    assert once["cells"][2]["match"] == {"device_type": "camera", "region": "*"}


ERROR_CASES = [
    pytest.param({}, [("model", "required", "This field is required.")], id="model-required"),
    pytest.param(
        {"model": "tiered"},
        [
            (
                "model",
                "unknown_charge_model",
                "Unknown charge model; expected one of: flat, graduated, matrix, package, per_unit, percentage, "
                "volume.",
            )
        ],
        id="unknown-model",
    ),
    pytest.param({"model": "flat"}, [("amount", "required", "This field is required.")], id="flat-amount-required"),
    pytest.param(
        {"model": "flat", "amount": "-25.00"}, [("amount", "negative", "Must not be negative.")], id="flat-negative"
    ),
    pytest.param(
        {"model": "per_unit", "unit_amount": "-0.01"},
        [("unit_amount", "negative", "Must not be negative.")],
        id="unit-amount-negative",
    ),
    pytest.param(
        {"model": "per_unit", "unit_amount": "0.00000000001"},
        [("unit_amount", "too_many_decimals", "At most 10 decimal places are allowed.")],
        id="eleven-places",
    ),
    pytest.param(
        {"model": "per_unit", "unit_amount": "1e18"},
        [("unit_amount", "too_large", "Must have at most 18 digits before the decimal point.")],
        id="too-large",
    ),
    *[
        pytest.param(
            {"model": "per_unit", "unit_amount": bad},
            [
                (
                    "unit_amount",
                    "invalid_decimal",
                    'Must be a decimal number, preferably as a string such as "0.0125".',
                )
            ],
            id="not-a-decimal-%r" % (bad,),
        )
        for bad in ["abc", "NaN", "Infinity", "1_000", " 1", "", None, True, [1], float("nan")]
    ],
    pytest.param(
        {"model": "per_unit", "unit_amount": "1", "unit_ammount": "2"},
        [("unit_ammount", "unknown_field", "Unknown field for the per_unit charge model; allowed: unit_amount.")],
        id="unknown-field",
    ),
    pytest.param({"model": "graduated"}, [("tiers", "required", "This field is required.")], id="tiers-required"),
    pytest.param(
        {"model": "graduated", "tiers": []},
        [("tiers", "empty", "At least one tier is required.")],
        id="tiers-empty",
    ),
    pytest.param(
        {"model": "volume", "tiers": "0.01"}, [("tiers", "invalid", "Must be a list of tiers.")], id="tiers-not-a-list"
    ),
    pytest.param(
        {
            "model": "graduated",
            "tiers": [
                {"up_to": 1000, "unit_amount": "0"},
                {"up_to": 1000, "unit_amount": "0.002"},
                {"up_to": None, "unit_amount": "0.001"},
            ],
        },
        [
            (
                "tiers[1].up_to",
                "tiers_not_increasing",
                "Must be greater than the up_to of every earlier tier (1000).",
            )
        ],
        id="tiers-not-increasing",
    ),
    pytest.param(
        {
            "model": "volume",
            "tiers": [{"up_to": 1000, "unit_amount": "0"}, {"up_to": 10000, "unit_amount": "0.002"}],
        },
        [
            (
                "tiers[1].up_to",
                "last_tier_must_be_open",
                "The last tier must have up_to: null so every quantity is priced.",
            )
        ],
        id="last-tier-must-be-open",
    ),
    pytest.param(
        {
            "model": "graduated",
            "tiers": [{"up_to": None, "unit_amount": "0"}, {"up_to": None, "unit_amount": "0.002"}],
        },
        [("tiers[0].up_to", "only_last_tier_open", "Only the last tier may be open-ended (up_to: null).")],
        id="only-last-tier-open",
    ),
    pytest.param(
        {"model": "graduated", "tiers": [{"unit_amount": "0"}]},
        [("tiers[0].up_to", "required", "This field is required (null for the last tier).")],
        id="up-to-required",
    ),
    pytest.param(
        {"model": "graduated", "tiers": [{"up_to": 0, "unit_amount": "0"}, {"up_to": None, "unit_amount": "1"}]},
        [("tiers[0].up_to", "not_positive", "Must be greater than 0.")],
        id="up-to-zero",
    ),
    pytest.param(
        {"model": "graduated", "tiers": [{"up_to": None, "unit_amount": "1", "flat_amount": "-5"}]},
        [("tiers[0].flat_amount", "negative", "Must not be negative.")],
        id="flat-amount-negative",
    ),
    pytest.param(
        {"model": "graduated", "tiers": [{"up_to": None, "unit_amount": "1", "flat": "5"}]},
        [
            (
                "tiers[0].flat",
                "unknown_field",
                "Unknown field for the graduated charge model; allowed: flat_amount, unit_amount, up_to.",
            )
        ],
        id="tier-unknown-field",
    ),
    pytest.param(
        {"model": "package", "package_size": 0, "package_amount": "4.00"},
        [("package_size", "not_positive_integer", "Must be a whole number greater than 0.")],
        id="package-size-zero",
    ),
    pytest.param(
        {"model": "package", "package_size": "2.5", "package_amount": "4.00"},
        [("package_size", "not_positive_integer", "Must be a whole number greater than 0.")],
        id="package-size-fraction",
    ),
    pytest.param(
        {"model": "package", "package_size": 100},
        [("package_amount", "required", "This field is required.")],
        id="package-amount-required",
    ),
    pytest.param(
        {"model": "percentage", "rate": "100.01"},
        [("rate", "out_of_range", "Must be a percentage between 0 and 100.")],
        id="rate-above-100",
    ),
    pytest.param(
        {"model": "percentage", "rate": "-1"}, [("rate", "negative", "Must not be negative.")], id="rate-negative"
    ),
    pytest.param(
        {"model": "percentage", "rate": "1", "fixed_per_event": "-0.10"},
        [("fixed_per_event", "negative", "Must not be negative.")],
        id="fixed-per-event-negative",
    ),
    pytest.param(
        {
            **MATRIX,
            "cells": [{"match": {"device_type": "tracker"}, "charge": {"model": "per_unit", "unit_amount": "-1"}}],
        },
        [("cells[0].charge.unit_amount", "negative", "Must not be negative.")],
        id="matrix-cell-charge-negative",
    ),
    pytest.param(
        {**MATRIX, "cells": [{"match": {"device_type": "tracker"}, "charge": {**MATRIX}}]},
        [("cells[0].charge.model", "nested_matrix", "A matrix cell cannot itself be priced by a matrix.")],
        id="matrix-in-matrix",
    ),
    pytest.param(
        {**MATRIX, "cells": [{"match": {"colour": "red"}, "charge": {"model": "flat", "amount": "1"}}]},
        [("cells[0].match.colour", "unknown_dimension", "Not one of the matrix dimensions (device_type, region).")],
        id="matrix-unknown-dimension",
    ),
    pytest.param(
        {**MATRIX, "default": {"model": "volume", "tiers": []}},
        [("default.tiers", "empty", "At least one tier is required.")],
        id="matrix-default-invalid",
    ),
    pytest.param(
        {"model": "matrix", "cells": MATRIX["cells"]},
        [("dimensions", "required", "This field is required.")],
        id="matrix-dimensions-required",
    ),
]


@pytest.mark.parametrize(("charge", "expected"), ERROR_CASES)
def test_validation_errors_name_the_field_code_and_message(
    charge: dict[str, Any], expected: list[tuple[str, str, str]]
) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_charge(charge)

    exc = caught.value
    assert exc.status == 422
    assert exc.code == "invalid_input"
    assert [(e.field, e.code, e.message) for e in exc.errors] == expected
    assert exc.detail == "Invalid charge: " + "; ".join("%s: %s" % (field, msg) for field, _, msg in expected)


def test_all_errors_of_one_charge_are_reported_at_once() -> None:
    charge = {
        "model": "graduated",
        "tiers": [
            {"up_to": 1000, "unit_amount": "-1"},
            {"up_to": 500, "unit_amount": "0.00000000001", "flat_amount": "x"},
            {"up_to": 2000, "unit_amount": "0.5"},
        ],
        "currency": "EUR",
    }

    with pytest.raises(InvalidInput) as caught:
        validate_charge(charge)

    assert [(e.field, e.code) for e in caught.value.errors] == [
        ("currency", "unknown_field"),
        ("tiers[0].unit_amount", "negative"),
        ("tiers[1].unit_amount", "too_many_decimals"),
        ("tiers[1].flat_amount", "invalid_decimal"),
        ("tiers[1].up_to", "tiers_not_increasing"),
        ("tiers[2].up_to", "last_tier_must_be_open"),
    ]


def test_rate_charge_validates_a_stored_charge_before_rating() -> None:
    with pytest.raises(InvalidInput) as caught:
        rate_charge({"model": "per_unit", "unit_amount": "-1"}, usage("1"))

    assert [(e.field, e.code) for e in caught.value.errors] == [("unit_amount", "negative")]


def test_a_charge_must_be_an_object() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_charge(["per_unit"])  # type: ignore[arg-type]

    assert [(e.field, e.code) for e in caught.value.errors] == [("", "invalid")]
