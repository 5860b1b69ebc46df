"""Tax rates by country and tax category."""

from datetime import datetime
from typing import Any

from django.db import transaction

from billing_platform.errors import InvalidInput
from billing_platform.validation import FieldErrors, validate_country
from catalog.models import TaxCategory, TaxRate
from catalog.services._validation import check_choice, decimal_field
from tenancy.actors import Actor
from tenancy.models import Tenant
from tenancy.services import audit_record


def tax_rate_set(*, tenant: Tenant, actor: Actor, at: datetime, country: str, tax_category: str, rate: Any) -> TaxRate:
    """Create or change the rate of a (country, tax category)."""
    errors = FieldErrors()
    country = str(country).upper()
    try:
        validate_country(country, field="country")
    except InvalidInput as exc:
        errors.absorb(exc)
    check_choice(tax_category, TaxCategory.values, "tax_category", errors)
    value = decimal_field(rate, "rate", errors, places=4)
    if value is not None and value > 100:
        errors.add("rate", "out_of_range", "A rate is a percentage between 0 and 100.")
    errors.raise_if_any()
    assert value is not None
    with transaction.atomic():
        existing = (
            TaxRate.objects.select_for_update()
            .filter(tenant=tenant, country=country, tax_category=tax_category)
            .first()
        )
        before = {"rate": str(existing.rate)} if existing else None
        tax_rate, _ = TaxRate.objects.update_or_create(
            tenant=tenant, country=country, tax_category=tax_category, defaults={"rate": value}
        )
        audit_record(
            tenant=tenant,
            actor=actor,
            action="tax_rate.set",
            object_type="tax_rate",
            object_id=f"{country}/{tax_category}",
            at=at,
            before=before,
            after={"rate": str(value)},
        )
    return tax_rate
