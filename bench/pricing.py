"""Rating-engine benchmark: how fast the charge models price usage, against a baseline measured in
the same run (the same graduated arithmetic written inline with Decimal, no validation or details).

    .venv/bin/python bench/pricing.py [--n 100000]

Prints charges/s for graduated, volume, package and matrix pricing through ``price()`` (validation
of the stored charge, exact arithmetic, detail rows, one rounding) and the ratio to the baseline.
"""

import argparse
import os
import sys
import time
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_platform.settings")

from catalog.charge_models.base import Usage  # noqa: E402
from catalog.charge_models.pricing import price  # noqa: E402
from catalog.charge_models.registry import validate_charge  # noqa: E402

TIERS = [
    {"up_to": 1000, "unit_amount": "0"},
    {"up_to": 10000, "unit_amount": "0.002"},
    {"up_to": None, "unit_amount": "0.001"},
]


def baseline(quantities: list[Decimal]) -> float:
    bounds = [
        (Decimal(0), Decimal(1000), Decimal("0")),
        (Decimal(1000), Decimal(10000), Decimal("0.002")),
        (Decimal(10000), None, Decimal("0.001")),
    ]
    started = time.perf_counter()
    for q in quantities:
        total = Decimal(0)
        for lower, upper, unit in bounds:
            if q > lower:
                top = q if upper is None else min(q, upper)
                total += (top - lower) * unit
        total.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return time.perf_counter() - started


def engine(charge: dict[str, Any], usages: list[Usage]) -> float:
    stored = validate_charge(charge)
    started = time.perf_counter()
    for usage in usages:
        price(charge=stored, usage=usage, currency="EUR")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    n = parser.parse_args().n
    quantities = [Decimal(i * 37 % 50_000) for i in range(n)]
    usages = [Usage(quantity=q) for q in quantities]
    base = baseline(quantities)
    print(f"baseline (inline Decimal graduated): {n / base:12,.0f} charges/s")
    cases: dict[str, dict[str, Any]] = {
        "graduated": {"model": "graduated", "tiers": TIERS},
        "volume": {"model": "volume", "tiers": TIERS},
        "package": {"model": "package", "package_size": 100, "package_amount": "4.00"},
    }
    for name, charge in cases.items():
        elapsed = engine(charge, usages)
        print(f"{name:>10} via price(): {n / elapsed:12,.0f} charges/s ({elapsed / base:4.1f}x baseline time)")
    matrix = {
        "model": "matrix",
        "dimensions": ["device_type", "region"],
        "cells": [
            {
                "match": {"device_type": "tracker", "region": "EU"},
                "charge": {"model": "per_unit", "unit_amount": "0.0010"},
            },
            {
                "match": {"device_type": "tracker", "region": "US"},
                "charge": {"model": "per_unit", "unit_amount": "0.0012"},
            },
            {
                "match": {"device_type": "camera", "region": "*"},
                "charge": {"model": "per_unit", "unit_amount": "0.0030"},
            },
        ],
        "default": {"model": "per_unit", "unit_amount": "0.0015"},
    }
    groups: dict[tuple[str, ...], Usage] = {
        ("tracker", "EU"): Usage(quantity=Decimal(10000)),
        ("tracker", "US"): Usage(quantity=Decimal(5000)),
        ("camera", "EU"): Usage(quantity=Decimal(2000)),
        ("sensor", "APAC"): Usage(quantity=Decimal(1000)),
    }
    matrix_usages = [Usage(quantity=Decimal(18000), groups=groups)] * (n // 10)
    elapsed = engine(matrix, matrix_usages)
    print(f"{'matrix':>10} (4 groups) via price():  {len(matrix_usages) / elapsed:12,.0f} charges/s")


if __name__ == "__main__":
    main()
