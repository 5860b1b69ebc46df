"""Catalog writes. Each service validates everything first (all field errors at once), then writes
inside one transaction and appends to the audit log."""

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction

from billing_platform.errors import FieldError, InvalidInput, invalid
from billing_platform.money import UNIT_PRICE_PLACES, is_known_currency
from billing_platform.validation import validate_country
from catalog.charge_models.registry import validate_charge
from catalog.errors import CodeTaken, PriceOverrideExists, PriceVersionExists
from catalog.models import (
    DEFAULT_REVENUE_TREATMENT,
    Aggregation,
    BillOn,
    ComponentPrice,
    Interval,
    Meter,
    Plan,
    PlanComponent,
    PriceOverride,
    PriceVersion,
    Product,
    ProductKind,
    ProductSsp,
    RevenueTreatment,
    StartsOn,
    TaxCategory,
    TaxRate,
)
from customers.models import Customer
from tenancy.actors import Actor
from tenancy.models import Tenant
from tenancy.services import audit_record

CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
OFF_PEAK = "off_peak"


class Errors:
    """Collects field errors so that one response lists them all."""

    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def add(self, field: str, code: str, message: str) -> None:
        self.items.append(FieldError(field, code, message))

    def extend(self, exc: InvalidInput, prefix: str) -> None:
        for e in exc.errors or [FieldError("", exc.code, exc.detail)]:
            path = f"{prefix}.{e.field}" if e.field and not e.field.startswith("[") else f"{prefix}{e.field}"
            self.items.append(FieldError(path, e.code, e.message))

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidInput("; ".join(f"{e.field}: {e.message}" for e in self.items[:5]), errors=self.items)


def _decimal(value: Any, field: str, errors: Errors, *, places: int = UNIT_PRICE_PLACES) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool):
        errors.add(field, "invalid", 'Must be a decimal number written as a string, e.g. "12.50".')
        return None
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        errors.add(field, "invalid", 'Must be a decimal number written as a string, e.g. "12.50".')
        return None
    if not amount.is_finite():
        errors.add(field, "invalid", "Must be a finite number.")
        return None
    if amount < 0:
        errors.add(field, "negative", "Must not be negative.")
        return None
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        errors.add(field, "too_many_decimals", "At most %d decimal places." % places)
        return None
    if amount.adjusted() >= 15:
        errors.add(field, "too_large", "Too large.")
        return None
    return amount


def _check_code(code: str, field: str, errors: Errors) -> None:
    if not CODE_RE.match(code or ""):
        errors.add(
            field, "invalid_format", "Use 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit."
        )


def _check_choice(value: str, choices: Sequence[str], field: str, errors: Errors) -> None:
    if value not in choices:
        errors.add(field, "invalid_choice", "Must be one of: %s." % ", ".join(choices))


def _audit(
    tenant: Tenant, actor: Actor, at: datetime, action: str, object_type: str, object_id: str, after: Any
) -> None:
    audit_record(
        tenant=tenant, actor=actor, action=action, object_type=object_type, object_id=object_id, at=at, after=after
    )


# --- products -------------------------------------------------------------------------------


def _validate_ssp(ssp: Sequence[Mapping[str, Any]], errors: Errors) -> list[tuple[str, Decimal]]:
    out: list[tuple[str, Decimal]] = []
    seen: set[str] = set()
    for i, item in enumerate(ssp):
        currency = str(item.get("currency", "")).upper()
        if not is_known_currency(currency):
            errors.add(f"ssp[{i}].currency", "unknown_currency", "Unknown ISO 4217 currency: %s." % currency)
        elif currency in seen:
            errors.add(f"ssp[{i}].currency", "duplicate", "One SSP per currency.")
        seen.add(currency)
        amount = _decimal(item.get("amount"), f"ssp[{i}].amount", errors)
        if item.get("amount") is None:
            errors.add(f"ssp[{i}].amount", "required", "This field is required.")
        if amount is not None:
            out.append((currency, amount))
    return out


def product_create(
    *,
    tenant: Tenant,
    actor: Actor,
    at: datetime,
    code: str,
    name: str,
    kind: str,
    tax_category: str = TaxCategory.STANDARD,
    revenue_treatment: str | None = None,
    ssp: Sequence[Mapping[str, Any]] = (),
    description: str = "",
    requires_shipment: bool | None = None,
    requires_activation: bool | None = None,
) -> Product:
    errors = Errors()
    _check_code(code, "code", errors)
    _check_choice(kind, ProductKind.values, "kind", errors)
    _check_choice(tax_category, TaxCategory.values, "tax_category", errors)
    if revenue_treatment is not None:
        _check_choice(revenue_treatment, RevenueTreatment.values, "revenue_treatment", errors)
    ssps = _validate_ssp(ssp, errors)
    errors.raise_if_any()
    is_hardware = kind == ProductKind.HARDWARE
    try:
        with transaction.atomic():
            product = Product.objects.create(
                tenant=tenant,
                code=code,
                name=name.strip(),
                kind=kind,
                description=description,
                tax_category=tax_category,
                revenue_treatment=revenue_treatment or DEFAULT_REVENUE_TREATMENT[ProductKind(kind)],
                requires_shipment=is_hardware if requires_shipment is None else requires_shipment,
                requires_activation=is_hardware if requires_activation is None else requires_activation,
            )
            ProductSsp.objects.bulk_create(
                [ProductSsp(tenant=tenant, product=product, currency=c, amount=a) for c, a in ssps]
            )
            _audit(tenant, actor, at, "product.created", "product", code, product_snapshot(product, ssps))
    except IntegrityError:
        raise CodeTaken(
            "A product with code %s already exists." % code, errors=[FieldError("code", "taken", "Taken.")]
        ) from None
    return product


def product_snapshot(product: Product, ssps: Sequence[tuple[str, Decimal]] | None = None) -> dict[str, Any]:
    if ssps is None:
        ssps = [(s.currency, s.amount) for s in product.ssps.all()]
    return {
        "code": product.code,
        "name": product.name,
        "kind": product.kind,
        "revenue_treatment": product.revenue_treatment,
        "tax_category": product.tax_category,
        "ssp": [{"currency": c, "amount": str(a)} for c, a in ssps],
    }


def product_update(*, tenant: Tenant, actor: Actor, at: datetime, code: str, changes: Mapping[str, Any]) -> Product:
    """Name, description, tax category, revenue treatment and SSPs can change; code and kind cannot
    (invoices and revenue schedules refer to them)."""
    from catalog.selectors import product_get

    errors = Errors()
    for field in sorted(set(changes) - {"name", "description", "tax_category", "revenue_treatment", "ssp"}):
        errors.add(field, "not_editable", "%s cannot be changed." % field)
    if "tax_category" in changes:
        _check_choice(changes["tax_category"], TaxCategory.values, "tax_category", errors)
    if "revenue_treatment" in changes:
        _check_choice(changes["revenue_treatment"], RevenueTreatment.values, "revenue_treatment", errors)
    ssps = _validate_ssp(changes["ssp"], errors) if "ssp" in changes else None
    errors.raise_if_any()
    with transaction.atomic():
        product = product_get(tenant=tenant, code=code)
        before = product_snapshot(product)
        for field in ("name", "description", "tax_category", "revenue_treatment"):
            if field in changes:
                setattr(product, field, changes[field])
        product.save()
        if ssps is not None:
            ProductSsp.objects.filter(product=product).delete()
            ProductSsp.objects.bulk_create(
                [ProductSsp(tenant=tenant, product=product, currency=c, amount=a) for c, a in ssps]
            )
        after = product_snapshot(product, ssps)
        audit_record(
            tenant=tenant,
            actor=actor,
            action="product.updated",
            object_type="product",
            object_id=code,
            at=at,
            before=before,
            after=after,
        )
    return product


# --- meters ---------------------------------------------------------------------------------


def _validate_meter_fields(
    *, aggregation: str, field: str, filters: Any, dimensions: Any, time_bands: Any, errors: Errors
) -> None:
    _check_choice(aggregation, Aggregation.values, "aggregation", errors)
    if aggregation == Aggregation.COUNT and field:
        errors.add("field", "not_allowed", "A count meter counts events; it has no field.")
    if aggregation in Aggregation.values and aggregation != Aggregation.COUNT and not field:
        errors.add("field", "required", "A %s meter needs the event property to aggregate." % aggregation)
    if not isinstance(filters, dict) or not all(
        isinstance(k, str) and isinstance(v, str | int | float | bool) for k, v in filters.items()
    ):
        errors.add("filters", "invalid", 'Filters are {"property": "value"} pairs.')
    if not isinstance(dimensions, list) or not all(isinstance(d, str) and d for d in dimensions):
        errors.add("dimensions", "invalid", "Dimensions are a list of event property names.")
    elif len(set(dimensions)) != len(dimensions):
        errors.add("dimensions", "duplicate", "Each dimension once.")
    elif "time_band" in dimensions:
        errors.add("dimensions", "reserved", "time_band is derived from time_bands; do not list it.")
    if not isinstance(time_bands, dict):
        errors.add("time_bands", "invalid", 'Time bands are {"peak": ["08:00", "20:00"]}.')
        return
    for name, band in time_bands.items():
        if name == OFF_PEAK:
            errors.add(f"time_bands.{name}", "reserved", "off_peak is every time outside the bands.")
        elif not (
            isinstance(band, list) and len(band) == 2 and all(isinstance(t, str) and TIME_RE.match(t) for t in band)
        ):
            errors.add(f"time_bands.{name}", "invalid", 'A band is ["HH:MM", "HH:MM"], start included, end excluded.')
        elif band[0] == band[1]:
            errors.add(f"time_bands.{name}", "empty", "A band's start and end differ.")


def meter_create(
    *,
    tenant: Tenant,
    actor: Actor,
    at: datetime,
    code: str,
    name: str,
    aggregation: str,
    field: str = "",
    filters: Any = None,
    dimensions: Any = None,
    time_bands: Any = None,
) -> Meter:
    filters = {} if filters is None else filters
    dimensions = [] if dimensions is None else dimensions
    time_bands = {} if time_bands is None else time_bands
    errors = Errors()
    _check_code(code, "code", errors)
    _validate_meter_fields(
        aggregation=aggregation,
        field=field,
        filters=filters,
        dimensions=dimensions,
        time_bands=time_bands,
        errors=errors,
    )
    errors.raise_if_any()
    try:
        with transaction.atomic():
            meter = Meter.objects.create(
                tenant=tenant,
                code=code,
                name=name.strip(),
                aggregation=aggregation,
                field=field,
                filters=filters,
                dimensions=dimensions,
                time_bands=time_bands,
            )
            _audit(tenant, actor, at, "meter.created", "meter", code, meter_snapshot(meter))
    except IntegrityError:
        raise CodeTaken(
            "A meter with code %s already exists." % code, errors=[FieldError("code", "taken", "Taken.")]
        ) from None
    return meter


def meter_snapshot(meter: Meter) -> dict[str, Any]:
    return {
        "code": meter.code,
        "name": meter.name,
        "aggregation": meter.aggregation,
        "field": meter.field,
        "filters": meter.filters,
        "dimensions": meter.dimensions,
        "time_bands": meter.time_bands,
    }


def meter_update(*, tenant: Tenant, actor: Actor, at: datetime, code: str, changes: Mapping[str, Any]) -> Meter:
    """Only the name can change: the aggregation, field, filters and dimensions define quantities that
    invoices were built from. A different measure is a new meter."""
    from catalog.selectors import meter_get

    errors = Errors()
    for field in sorted(set(changes) - {"name"}):
        errors.add(field, "not_editable", "%s cannot be changed; create a new meter." % field)
    errors.raise_if_any()
    with transaction.atomic():
        meter = meter_get(tenant=tenant, code=code)
        before = meter_snapshot(meter)
        meter.name = str(changes.get("name", meter.name)).strip()
        meter.save()
        audit_record(
            tenant=tenant,
            actor=actor,
            action="meter.updated",
            object_type="meter",
            object_id=code,
            at=at,
            before=before,
            after=meter_snapshot(meter),
        )
    return meter


# --- tax rates ------------------------------------------------------------------------------


def tax_rate_set(*, tenant: Tenant, actor: Actor, at: datetime, country: str, tax_category: str, rate: Any) -> TaxRate:
    """Create or change the rate of a (country, tax category)."""
    errors = Errors()
    country = str(country).upper()
    try:
        validate_country(country, field="country")
    except InvalidInput as exc:
        errors.items.extend(exc.errors)
    _check_choice(tax_category, TaxCategory.values, "tax_category", errors)
    value = _decimal(rate, "rate", errors, places=4)
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


# --- plans, components and price versions ---------------------------------------------------

COMPONENT_FIELDS = {
    ProductKind.HARDWARE: {"product", "kind", "price", "instalments", "bill_on"},
    ProductKind.SERVICE: {"product", "kind", "per_device", "starts_on", "charge"},
    ProductKind.USAGE: {
        "product",
        "kind",
        "meter",
        "pooled",
        "included_per_device",
        "charge",
        "min_amount",
        "max_amount",
    },
    ProductKind.FEE: {"product", "kind", "price"},
}
PRICE_FIELDS = {"price", "charge", "min_amount", "max_amount"}


def _validate_price(
    kind: str, data: Mapping[str, Any], path: str, errors: Errors, meter: Meter | None
) -> dict[str, Any] | None:
    """A component's price in a version: ``price`` for hardware and fees, ``charge`` for services and
    usage (with optional ``min_amount``/``max_amount`` for usage). Returns None when nothing is given."""
    if not any(k in data for k in PRICE_FIELDS):
        return None
    out: dict[str, Any] = {"price": None, "charge": None, "min_amount": None, "max_amount": None}
    if kind in (ProductKind.HARDWARE, ProductKind.FEE):
        if "charge" in data:
            errors.add(f"{path}.charge", "not_allowed", "A %s component has a price, not a charge." % kind)
        out["price"] = _decimal(data.get("price"), f"{path}.price", errors)
        if data.get("price") is None:
            errors.add(f"{path}.price", "required", "This field is required.")
        return out
    if "price" in data:
        errors.add(f"{path}.price", "not_allowed", "A %s component has a charge, not a price." % kind)
    charge = data.get("charge")
    if not isinstance(charge, Mapping):
        errors.add(f"{path}.charge", "required", 'A charge is required, e.g. {"model": "flat", "amount": "25.00"}.')
        return out
    try:
        out["charge"] = validate_charge(charge)
    except InvalidInput as exc:
        errors.extend(exc, f"{path}.charge")
        return out
    if kind == ProductKind.USAGE:
        out["min_amount"] = _decimal(data.get("min_amount"), f"{path}.min_amount", errors, places=4)
        out["max_amount"] = _decimal(data.get("max_amount"), f"{path}.max_amount", errors, places=4)
        if out["min_amount"] is not None and out["max_amount"] is not None and out["min_amount"] > out["max_amount"]:
            errors.add(f"{path}.max_amount", "less_than_min", "max_amount must be at least min_amount.")
        if meter is not None and out["charge"] and out["charge"].get("model") == "matrix":
            allowed = set(meter.dimensions) | ({"time_band"} if meter.time_bands else set())
            for dim in out["charge"].get("dimensions", []):
                if dim not in allowed:
                    errors.add(
                        f"{path}.charge.dimensions",
                        "unknown_dimension",
                        "Meter %s has no dimension %s (it has: %s)."
                        % (meter.code, dim, ", ".join(sorted(allowed)) or "none"),
                    )
    elif "min_amount" in data or "max_amount" in data:
        errors.add(f"{path}.min_amount", "not_allowed", "Minimum and maximum amounts apply to usage components.")
    return out


def _validate_components(
    tenant: Tenant, components: Any, errors: Errors
) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """Returns (component fields, inline price or None) for each component."""
    if not isinstance(components, list) or not components:
        errors.add("components", "required", "A plan needs at least one component.")
        return []
    codes = [c.get("product") for c in components if isinstance(c, Mapping)]
    products = {
        p.code: p for p in Product.objects.filter(tenant=tenant, code__in=[c for c in codes if isinstance(c, str)])
    }
    meter_codes = [c.get("meter") for c in components if isinstance(c, Mapping) and isinstance(c.get("meter"), str)]
    meters = {m.code: m for m in Meter.objects.filter(tenant=tenant, code__in=meter_codes)}
    out: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    seen: set[str] = set()
    for i, data in enumerate(components):
        path = f"components[{i}]"
        if not isinstance(data, Mapping):
            errors.add(path, "invalid", "A component is an object.")
            continue
        product = products.get(data["product"]) if isinstance(data.get("product"), str) else None
        if product is None:
            errors.add(f"{path}.product", "unknown_product", "No product with code %s." % data.get("product"))
            continue
        if product.code in seen:
            errors.add(f"{path}.product", "duplicate", "Product %s is already a component of this plan." % product.code)
        seen.add(product.code)
        kind = data.get("kind", product.kind)
        if kind != product.kind:
            errors.add(f"{path}.kind", "kind_mismatch", "Product %s is a %s product." % (product.code, product.kind))
            continue
        for field in sorted(set(data) - COMPONENT_FIELDS[ProductKind(kind)]):
            errors.add(f"{path}.{field}", "unknown_field", "Not a field of a %s component." % kind)
        fields: dict[str, Any] = {"product": product, "kind": kind, "position": i}
        meter = None
        if kind == ProductKind.HARDWARE:
            instalments = data.get("instalments", 1)
            if not isinstance(instalments, int) or isinstance(instalments, bool) or not 1 <= instalments <= 120:
                errors.add(f"{path}.instalments", "invalid", "instalments is a whole number from 1 to 120.")
            bill_on = data.get("bill_on", BillOn.SIGNATURE)
            _check_choice(bill_on, BillOn.values, f"{path}.bill_on", errors)
            fields.update(instalments=instalments, bill_on=bill_on)
        elif kind == ProductKind.SERVICE:
            per_device = data.get("per_device", True)
            if not isinstance(per_device, bool):
                errors.add(f"{path}.per_device", "invalid", "per_device is true or false.")
            starts_on = data.get("starts_on", StartsOn.ACTIVATION if per_device else StartsOn.SUBSCRIPTION_START)
            _check_choice(starts_on, StartsOn.values, f"{path}.starts_on", errors)
            fields.update(per_device=per_device, starts_on=starts_on)
        elif kind == ProductKind.USAGE:
            meter = meters.get(data["meter"]) if isinstance(data.get("meter"), str) else None
            if meter is None:
                errors.add(f"{path}.meter", "unknown_meter", "No meter with code %s." % data.get("meter"))
            pooled = data.get("pooled", True)
            if not isinstance(pooled, bool):
                errors.add(f"{path}.pooled", "invalid", "pooled is true or false.")
            included = _decimal(data.get("included_per_device"), f"{path}.included_per_device", errors)
            fields.update(meter=meter, pooled=pooled, included_per_device=included)
        price = _validate_price(kind, data, path, errors, meter)
        if (
            price
            and price.get("charge", {})
            and price["charge"].get("model") == "matrix"
            and fields.get("included_per_device")
        ):
            errors.add(
                f"{path}.included_per_device", "not_supported", "An allowance cannot be combined with a matrix charge."
            )
        out.append((fields, price))
    return out


def _regions(value: Any, path: str, errors: Errors) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        errors.add(path, "invalid", "regions is a list of ISO 3166 country codes.")
        return []
    regions = sorted({r.upper() for r in value})
    for region in regions:
        try:
            validate_country(region, field=path)
        except InvalidInput as exc:
            errors.items.extend(exc.errors)
    return regions


def _parse_effective_from(value: Any, path: str, errors: Errors) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            errors.add(path, "invalid", "An ISO 8601 instant with its offset, e.g. 2026-06-01T00:00:00+02:00.")
            return None
    if parsed.tzinfo is None:
        errors.add(path, "naive_datetime", "Give the offset (e.g. +02:00 or Z): a price change happens at an instant.")
        return None
    return parsed


def _create_version(
    *,
    tenant: Tenant,
    plan: Plan,
    components: Sequence[PlanComponent],
    currency: str,
    regions: list[str],
    effective_from: datetime | None,
    prices: Mapping[str, dict[str, Any]],
) -> PriceVersion:
    try:
        with transaction.atomic():
            version = PriceVersion.objects.create(
                tenant=tenant,
                plan=plan,
                currency=currency,
                regions=regions,
                regions_key=",".join(regions),
                effective_from=effective_from,
            )
    except IntegrityError:
        raise PriceVersionExists(
            "Plan %s already has a %s version for %s from %s."
            % (plan.code, currency, ",".join(regions) or "the default book", effective_from or "the start")
        ) from None
    ComponentPrice.objects.bulk_create(
        [ComponentPrice(tenant=tenant, version=version, component=c, **prices[c.product.code]) for c in components]
    )
    return version


def _version_input(
    entry: Any, path: str, components: Sequence[tuple[dict[str, Any], dict[str, Any] | None]], errors: Errors
) -> tuple[str, list[str], datetime | None, dict[str, dict[str, Any]]] | None:
    """Validates one price version entry; its component prices are its own ``components`` list or,
    when absent, the prices written inline on the plan's components."""
    if not isinstance(entry, Mapping):
        errors.add(path, "invalid", "A price version is an object.")
        return None
    for field in sorted(set(entry) - {"currency", "regions", "effective_from", "components"}):
        errors.add(f"{path}.{field}", "unknown_field", "Unknown field.")
    currency = str(entry.get("currency", "")).upper()
    if not is_known_currency(currency):
        errors.add(f"{path}.currency", "unknown_currency", "Unknown ISO 4217 currency: %s." % entry.get("currency"))
    regions = _regions(entry.get("regions"), f"{path}.regions", errors)
    effective_from = _parse_effective_from(entry.get("effective_from"), f"{path}.effective_from", errors)
    by_code = {fields["product"].code: (fields, inline) for fields, inline in components}
    prices: dict[str, dict[str, Any]] = {}
    if "components" in entry:
        items = entry["components"]
        if not isinstance(items, list):
            errors.add(f"{path}.components", "invalid", "A list of component prices.")
            return None
        for i, item in enumerate(items):
            ipath = f"{path}.components[{i}]"
            code = item.get("product") if isinstance(item, Mapping) else None
            if not isinstance(code, str) or code not in by_code:
                errors.add(
                    f"{ipath}.product", "unknown_component", "Product %s is not a component of this plan." % code
                )
                continue
            for field in sorted(set(item) - PRICE_FIELDS - {"product"}):
                errors.add(f"{ipath}.{field}", "unknown_field", "Unknown field.")
            fields = by_code[code][0]
            price = _validate_price(fields["kind"], item, ipath, errors, fields.get("meter"))
            if price is None:
                errors.add(ipath, "required", "Give this component's price or charge.")
            else:
                prices[code] = price
    else:
        for code, (_, inline) in by_code.items():
            if inline is not None:
                prices[code] = inline
    missing = [code for code in by_code if code not in prices]
    if missing:
        errors.add(
            f"{path}.components",
            "missing_component_price",
            "Every component needs a price; missing: %s." % ", ".join(missing),
        )
    return currency, regions, effective_from, prices


def plan_create(
    *,
    tenant: Tenant,
    actor: Actor,
    at: datetime,
    code: str,
    name: str,
    components: Any,
    interval: str = Interval.MONTH,
    trial_days: int = 0,
    commitment_months: int = 0,
    prices: Any = None,
    description: str = "",
    early_termination: str = "none",
) -> Plan:
    """Create a plan with its components and price versions in one go.

    Prices written inline on components form the version named by the single ``prices`` entry that
    has no ``components`` of its own (api.md's Smart Fleet example: ``"prices": [{"currency": "EUR"}]``).
    """
    errors = Errors()
    _check_code(code, "code", errors)
    _check_choice(interval, Interval.values, "interval", errors)
    _check_choice(early_termination, ["none", "remaining_fees"], "early_termination", errors)
    validated = _validate_components(tenant, components, errors)
    has_inline = any(inline is not None for _, inline in validated)
    entries = prices if prices is not None else []
    if not isinstance(entries, list):
        errors.add("prices", "invalid", "prices is a list of price versions.")
        entries = []
    if has_inline and not any(isinstance(e, Mapping) and "components" not in e for e in entries):
        errors.add(
            "prices",
            "required",
            'Name the currency of the prices written on the components: "prices": [{"currency": "EUR"}].',
        )
    if sum(1 for e in entries if isinstance(e, Mapping) and "components" not in e) > 1:
        errors.add("prices", "ambiguous", "Only one price entry can use the prices written on the components.")
    versions = [_version_input(e, f"prices[{i}]", validated, errors) for i, e in enumerate(entries)]
    errors.raise_if_any()
    try:
        with transaction.atomic():
            plan = Plan.objects.create(
                tenant=tenant,
                code=code,
                name=name.strip(),
                description=description,
                interval=interval,
                trial_days=trial_days,
                commitment_months=commitment_months,
                early_termination=early_termination,
            )
            created = [PlanComponent(tenant=tenant, plan=plan, **fields) for fields, _ in validated]
            PlanComponent.objects.bulk_create(created)
            for entry in versions:
                assert entry is not None
                currency, regions, effective_from, component_prices = entry
                _create_version(
                    tenant=tenant,
                    plan=plan,
                    components=created,
                    currency=currency,
                    regions=regions,
                    effective_from=effective_from,
                    prices=component_prices,
                )
            _audit(
                tenant,
                actor,
                at,
                "plan.created",
                "plan",
                code,
                {"name": name, "components": [c.product.code for c in created]},
            )
    except IntegrityError:
        raise CodeTaken(
            "A plan with code %s already exists." % code, errors=[FieldError("code", "taken", "Taken.")]
        ) from None
    return plan


def price_version_create(
    *, tenant: Tenant, actor: Actor, at: datetime, plan: Plan, data: Mapping[str, Any]
) -> PriceVersion:
    """Schedule a price change: a new version that prices every period starting on/after
    ``effective_from``. Published versions are never edited."""
    errors = Errors()
    components = list(plan.components.select_related("product", "meter"))
    validated = [({"product": c.product, "kind": c.kind, "meter": c.meter}, None) for c in components]
    entry = _version_input(dict(data), "", validated, errors)
    if "components" not in data:
        errors.add("components", "required", "List the price of every component.")
    for e in errors.items:
        object.__setattr__(e, "field", e.field.lstrip("."))
    errors.raise_if_any()
    assert entry is not None
    currency, regions, effective_from, prices = entry
    with transaction.atomic():
        version = _create_version(
            tenant=tenant,
            plan=plan,
            components=components,
            currency=currency,
            regions=regions,
            effective_from=effective_from,
            prices=prices,
        )
        _audit(
            tenant,
            actor,
            at,
            "price_version.created",
            "plan",
            plan.code,
            {
                "currency": currency,
                "regions": regions,
                "effective_from": effective_from.isoformat() if effective_from else None,
                "prices": {
                    code: {k: str(v) if isinstance(v, Decimal) else v for k, v in p.items()}
                    for code, p in prices.items()
                },
            },
        )
    return version


def price_override_create(
    *, tenant: Tenant, actor: Actor, at: datetime, customer: Customer, plan: Plan, data: Mapping[str, Any]
) -> PriceOverride:
    """A negotiated price for one customer and one component, in the customer's currency."""
    errors = Errors()
    for field in sorted(set(data) - PRICE_FIELDS - {"product", "effective_from"}):
        errors.add(field, "unknown_field", "Unknown field.")
    component = plan.components.select_related("product", "meter").filter(product__code=data.get("product")).first()
    if component is None:
        errors.add(
            "product",
            "unknown_component",
            "Product %s is not a component of plan %s." % (data.get("product"), plan.code),
        )
        errors.raise_if_any()
    assert component is not None
    price = _validate_price(component.kind, data, "", errors, component.meter)
    if price is None:
        errors.add("price", "required", "Give the negotiated price or charge.")
    effective_from = _parse_effective_from(data.get("effective_from"), "effective_from", errors)
    for e in errors.items:
        object.__setattr__(e, "field", e.field.lstrip("."))
    errors.raise_if_any()
    assert price is not None
    try:
        with transaction.atomic():
            override = PriceOverride.objects.create(
                tenant=tenant,
                customer=customer,
                component=component,
                currency=customer.currency,
                effective_from=effective_from,
                **price,
            )
            _audit(
                tenant,
                actor,
                at,
                "price_override.created",
                "customer",
                customer.external_id,
                {
                    "plan": plan.code,
                    "product": component.product.code,
                    **{k: str(v) if isinstance(v, Decimal) else v for k, v in price.items()},
                },
            )
    except IntegrityError:
        raise PriceOverrideExists("This customer already has an override for this component from that date.") from None
    return override


def require_valid(condition: bool, field: str, code: str, message: str) -> None:
    if not condition:
        raise invalid(field, code, message)
