"""Catalog writes, one module per thing sold or priced. Each service validates everything first (all
field errors at once, ``billing_platform.validation.FieldErrors``), then writes inside one
transaction and appends to the audit log."""

from catalog.services._validation import require_valid
from catalog.services.meters import meter_create, meter_snapshot, meter_update
from catalog.services.plans import (
    plan_create,
    plan_update,
    price_override_create,
    price_override_end,
    price_override_is_end,
    price_version_create,
)
from catalog.services.products import product_create, product_snapshot, product_update
from catalog.services.tax_rates import tax_rate_set

__all__ = [
    "meter_create",
    "meter_snapshot",
    "meter_update",
    "plan_create",
    "plan_update",
    "price_override_create",
    "price_override_end",
    "price_override_is_end",
    "price_version_create",
    "product_create",
    "product_snapshot",
    "product_update",
    "require_valid",
    "tax_rate_set",
]
