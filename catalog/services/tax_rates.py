"""Tax rates by country and tax category, each over a period of days.

A rate applies from ``valid_from`` to ``valid_to``, both included; an empty ``valid_to`` leaves it
open. A VAT change is two calls: end the current period (the same ``valid_from`` with a
``valid_to``), then give the new rate from the next day. Periods of one (country, category) never
overlap: a period that would is refused (``TaxRatePeriodOverlap``, 409), never silently shortened.
Invoices store the rates they used, so changing a rate never alters an invoice already written.
"""

from datetime import date, datetime
from typing import Any

from django.db import IntegrityError, transaction

from billing_platform.errors import FieldError, InvalidInput
from billing_platform.validation import FieldErrors, validate_country, validate_year
from catalog.errors import TaxRatePeriodOverlap
from catalog.models import TAX_RATE_SINCE_ALWAYS, TaxCategory, TaxRate
from catalog.services._validation import check_choice, decimal_field
from tenancy.actors import Actor
from tenancy.models import Tenant
from tenancy.services import audit_record


def tax_rate_set(
    *,
    tenant: Tenant,
    actor: Actor,
    at: datetime,
    country: str,
    tax_category: str,
    rate: Any,
    valid_from: date | None = None,
    valid_to: date | None = None,
) -> TaxRate:
    """Create or change the rate of a (country, tax category) over a period.

    With ``valid_from``, the period starting that day is created, or changed when it exists (its
    rate and its end). Without it (the API before rates had periods), the one period of the
    (country, category) is changed, or one "since always" (1900-01-01) is created; when there are
    several, ``valid_from`` must say which.
    """
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
    for field, day in (("valid_from", valid_from), ("valid_to", valid_to)):
        if day is not None and day != TAX_RATE_SINCE_ALWAYS:
            try:
                validate_year(day, field=field)
            except InvalidInput as exc:
                errors.absorb(exc)
    if valid_from is not None and valid_to is not None and valid_to < valid_from:
        errors.add("valid_to", "before_valid_from", "valid_to is the last day of the period: on or after valid_from.")
    errors.raise_if_any()
    assert value is not None
    with transaction.atomic():
        periods = list(
            TaxRate.objects.select_for_update()
            .filter(tenant=tenant, country=country, tax_category=tax_category)
            .order_by("valid_from")
        )
        if valid_from is None:
            if len(periods) > 1:
                raise InvalidInput(
                    "%s %s has several periods: say which with valid_from." % (country, tax_category),
                    errors=[FieldError("valid_from", "required", "Give the first day of the period to change.")],
                )
            valid_from = periods[0].valid_from if periods else TAX_RATE_SINCE_ALWAYS
            if valid_to is None and periods:
                valid_to = periods[0].valid_to
        existing = next((p for p in periods if p.valid_from == valid_from), None)
        overlapping = [p for p in periods if p is not existing and _overlap(p, valid_from, valid_to)]
        if overlapping:
            raise _overlap_error(country, tax_category, overlapping[0])
        before = _snapshot(existing) if existing else None
        try:
            with transaction.atomic():
                tax_rate, _ = TaxRate.objects.update_or_create(
                    tenant=tenant,
                    country=country,
                    tax_category=tax_category,
                    valid_from=valid_from,
                    defaults={"rate": value, "valid_to": valid_to},
                )
        except IntegrityError:
            # A period written meanwhile by another request overlaps this one.
            clash = (
                TaxRate.objects.filter(tenant=tenant, country=country, tax_category=tax_category)
                .exclude(valid_from=valid_from)
                .order_by("valid_from")
            )
            other = next((p for p in clash if _overlap(p, valid_from, valid_to)), None)
            if other is None:
                raise
            raise _overlap_error(country, tax_category, other) from None
        audit_record(
            tenant=tenant,
            actor=actor,
            action="tax_rate.set",
            object_type="tax_rate",
            object_id=f"{country}/{tax_category}/{valid_from.isoformat()}",
            at=at,
            before=before,
            after=_snapshot(tax_rate),
        )
    return tax_rate


def _overlap(period: TaxRate, valid_from: date, valid_to: date | None) -> bool:
    """Do the period and [valid_from, valid_to] (both included, None: open) share a day?"""
    starts_before_end = valid_to is None or period.valid_from <= valid_to
    ends_after_start = period.valid_to is None or period.valid_to >= valid_from
    return starts_before_end and ends_after_start


def _overlap_error(country: str, tax_category: str, other: TaxRate) -> TaxRatePeriodOverlap:
    until = other.valid_to.isoformat() if other.valid_to else "open-ended"
    message = (
        "The period overlaps the %s %s rate of %s%% valid from %s to %s: end that period first (the same "
        "valid_from with a valid_to), or choose days it does not cover."
        % (country, tax_category, format(other.rate.normalize(), "f"), other.valid_from.isoformat(), until)
    )
    return TaxRatePeriodOverlap(
        message,
        errors=[FieldError("valid_from", "overlap", message)],
        extra={
            "overlapping": {
                "valid_from": other.valid_from.isoformat(),
                "valid_to": other.valid_to.isoformat() if other.valid_to else None,
                "rate": str(other.rate),
            }
        },
    )


def _snapshot(tax_rate: TaxRate) -> dict[str, Any]:
    return {
        "rate": str(tax_rate.rate),
        "valid_from": tax_rate.valid_from.isoformat(),
        "valid_to": tax_rate.valid_to.isoformat() if tax_rate.valid_to else None,
    }
