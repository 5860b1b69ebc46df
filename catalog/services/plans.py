"""Plans, their components, and their price versions and per-customer price overrides. Published
versions are never edited: a price change is a new version with its own effective date."""

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from django.db import IntegrityError, transaction

from billing_platform.errors import FieldError, InvalidInput
from billing_platform.money import is_known_currency
from billing_platform.validation import FieldErrors, validate_country, validate_date_range
from catalog.charge_models.registry import validate_charge
from catalog.errors import CodeTaken, PlanNotFound, PriceOverrideExists, PriceVersionExists
from catalog.models import (
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
    StartsOn,
)
from catalog.services._validation import audit, check_choice, check_code, decimal_field
from customers.models import Customer
from tenancy.actors import Actor
from tenancy.models import Tenant
from tenancy.services import audit_record

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
    ProductKind.FEE: {"product", "kind", "price", "per_device", "starts_on"},
}
PRICE_FIELDS = {"price", "charge", "min_amount", "max_amount"}
# A price book's code, as partners name it (``Partner.price_book``).
PRICE_BOOK_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class VersionInput(NamedTuple):
    """A price version entry, validated."""

    currency: str
    price_book: str
    regions: list[str]
    effective_from: datetime | None
    prices: dict[str, dict[str, Any]]


def _validate_price(
    kind: str, data: Mapping[str, Any], path: str, errors: FieldErrors, meter: Meter | None
) -> dict[str, Any] | None:
    """A component's price in a version: ``price`` for hardware and fees, ``charge`` for services and
    usage (with optional ``min_amount``/``max_amount`` for usage). Returns None when nothing is given."""
    if not any(k in data for k in PRICE_FIELDS):
        return None
    out: dict[str, Any] = {"price": None, "charge": None, "min_amount": None, "max_amount": None}
    if kind in (ProductKind.HARDWARE, ProductKind.FEE):
        if "charge" in data:
            errors.add(f"{path}.charge", "not_allowed", "A %s component has a price, not a charge." % kind)
        out["price"] = decimal_field(data.get("price"), f"{path}.price", errors)
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
        errors.absorb(exc, f"{path}.charge")
        return out
    if kind == ProductKind.USAGE:
        out["min_amount"] = decimal_field(data.get("min_amount"), f"{path}.min_amount", errors, places=4)
        out["max_amount"] = decimal_field(data.get("max_amount"), f"{path}.max_amount", errors, places=4)
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
    tenant: Tenant, components: Any, errors: FieldErrors
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
            check_choice(bill_on, BillOn.values, f"{path}.bill_on", errors)
            fields.update(instalments=instalments, bill_on=bill_on)
        elif kind == ProductKind.SERVICE:
            per_device = data.get("per_device", True)
            if not isinstance(per_device, bool):
                errors.add(f"{path}.per_device", "invalid", "per_device is true or false.")
            starts_on = data.get("starts_on", StartsOn.ACTIVATION if per_device else StartsOn.SUBSCRIPTION_START)
            check_choice(starts_on, StartsOn.values, f"{path}.starts_on", errors)
            fields.update(per_device=per_device, starts_on=starts_on)
        elif kind == ProductKind.FEE:
            # Billed once: per subscription unless per device, from the signature unless from the
            # (first) activation (pricing.md).
            per_device = data.get("per_device", False)
            if not isinstance(per_device, bool):
                errors.add(f"{path}.per_device", "invalid", "per_device is true or false.")
            starts_on = data.get("starts_on", StartsOn.SUBSCRIPTION_START)
            check_choice(starts_on, StartsOn.values, f"{path}.starts_on", errors)
            fields.update(per_device=per_device, starts_on=starts_on)
        elif kind == ProductKind.USAGE:
            meter = meters.get(data["meter"]) if isinstance(data.get("meter"), str) else None
            if meter is None:
                errors.add(f"{path}.meter", "unknown_meter", "No meter with code %s." % data.get("meter"))
            pooled = data.get("pooled", True)
            if not isinstance(pooled, bool):
                errors.add(f"{path}.pooled", "invalid", "pooled is true or false.")
            included = decimal_field(data.get("included_per_device"), f"{path}.included_per_device", errors)
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


def _regions(value: Any, path: str, errors: FieldErrors) -> list[str]:
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
            errors.absorb(exc)
    return regions


def _parse_effective_from(value: Any, path: str, errors: FieldErrors) -> datetime | None:
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
    try:
        validate_date_range(parsed, field=path)
    except InvalidInput as exc:
        errors.absorb(exc)
        return None
    return parsed


def _create_version(
    *,
    tenant: Tenant,
    plan: Plan,
    components: Sequence[PlanComponent],
    currency: str,
    price_book: str,
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
                price_book=price_book,
                regions=regions,
                regions_key=",".join(regions),
                effective_from=effective_from,
            )
    except IntegrityError:
        where = ",".join(regions) or ("all its customers" if price_book else "the default book")
        book = " in price book %s" % price_book if price_book else ""
        raise PriceVersionExists(
            "Plan %s already has a %s version%s for %s from %s."
            % (plan.code, currency, book, where, effective_from or "the start")
        ) from None
    ComponentPrice.objects.bulk_create(
        [ComponentPrice(tenant=tenant, version=version, component=c, **prices[c.product.code]) for c in components]
    )
    return version


def _price_book(value: Any, path: str, errors: FieldErrors) -> str:
    """A price book's code (``wholesale``), or "" (null or absent) for the tenant's own books."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or not PRICE_BOOK_RE.match(value):
        errors.add(
            path,
            "invalid_format",
            "A price book code is 1 to 64 lowercase letters, digits, _ and -, starting with a letter or digit.",
        )
        return ""
    return value


def _version_input(
    entry: Any, path: str, components: Sequence[tuple[dict[str, Any], dict[str, Any] | None]], errors: FieldErrors
) -> VersionInput | None:
    """Validates one price version entry; its component prices are its own ``components`` list or,
    when absent, the prices written inline on the plan's components."""
    if not isinstance(entry, Mapping):
        errors.add(path, "invalid", "A price version is an object.")
        return None
    for field in sorted(set(entry) - {"currency", "price_book", "regions", "effective_from", "components"}):
        errors.add(f"{path}.{field}", "unknown_field", "Unknown field.")
    currency = str(entry.get("currency", "")).upper()
    if not is_known_currency(currency):
        errors.add(f"{path}.currency", "unknown_currency", "Unknown ISO 4217 currency: %s." % entry.get("currency"))
    price_book = _price_book(entry.get("price_book"), f"{path}.price_book", errors)
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
    return VersionInput(currency, price_book, regions, effective_from, prices)


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
    self_service: bool = False,
    partner_visible: bool = False,
) -> Plan:
    """Create a plan with its components and price versions in one go.

    Prices written inline on components form the version named by the single ``prices`` entry that
    has no ``components`` of its own (api.md's Smart Fleet example: ``"prices": [{"currency": "EUR"}]``).
    """
    errors = FieldErrors()
    check_code(code, "code", errors)
    check_choice(interval, Interval.values, "interval", errors)
    check_choice(early_termination, ["none", "remaining_fees"], "early_termination", errors)
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
                self_service=self_service,
                partner_visible=partner_visible,
            )
            created = [PlanComponent(tenant=tenant, plan=plan, **fields) for fields, _ in validated]
            PlanComponent.objects.bulk_create(created)
            for entry in versions:
                assert entry is not None
                _create_version(tenant=tenant, plan=plan, components=created, **entry._asdict())
            audit(
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


def plan_update(
    *,
    tenant: Tenant,
    actor: Actor,
    at: datetime,
    code: str,
    self_service: bool | None = None,
    partner_visible: bool | None = None,
) -> Plan:
    """Offer a plan in the customer portal's shop, or stop offering it (``self_service``); offer it
    to partners for their customers, or stop (``partner_visible``). None leaves a flag as it is. A
    plan's components and prices never change here: they change by price versions."""
    with transaction.atomic():
        plan = Plan.objects.select_for_update().filter(tenant=tenant, code=code).first()
        if plan is None:
            raise PlanNotFound("No plan with code %s." % code)
        wanted = {"self_service": self_service, "partner_visible": partner_visible}
        changed = {name: value for name, value in wanted.items() if value is not None and getattr(plan, name) != value}
        if changed:
            before = {name: getattr(plan, name) for name in changed}
            for name, value in changed.items():
                setattr(plan, name, value)
            plan.save(update_fields=[*changed, "updated_at"])
            audit_record(
                tenant=tenant,
                actor=actor,
                action="plan.updated",
                object_type="plan",
                object_id=code,
                at=at,
                before=before,
                after=changed,
            )
    return plan


def price_version_create(
    *, tenant: Tenant, actor: Actor, at: datetime, plan: Plan, data: Mapping[str, Any]
) -> PriceVersion:
    """Schedule a price change: a new version that prices every period starting on/after
    ``effective_from``. Published versions are never edited."""
    errors = FieldErrors()
    components = list(plan.components.select_related("product", "meter"))
    validated = [({"product": c.product, "kind": c.kind, "meter": c.meter}, None) for c in components]
    entry = _version_input(dict(data), "", validated, errors)
    if "components" not in data:
        errors.add("components", "required", "List the price of every component.")
    for e in errors.items:
        object.__setattr__(e, "field", e.field.lstrip("."))
    errors.raise_if_any()
    assert entry is not None
    currency, price_book, regions, effective_from, prices = entry
    with transaction.atomic():
        version = _create_version(tenant=tenant, plan=plan, components=components, **entry._asdict())
        audit(
            tenant,
            actor,
            at,
            "price_version.created",
            "plan",
            plan.code,
            {
                "currency": currency,
                "price_book": price_book,
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
    errors = FieldErrors()
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
            audit(
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


def price_override_is_end(override: PriceOverride) -> bool:
    """An override row with neither price nor charge ends the customer's negotiated price from its
    ``effective_from``: the price books apply again. History is kept: the override before it still
    prices the periods that started earlier."""
    return override.price is None and override.charge is None


def price_override_end(
    *,
    tenant: Tenant,
    actor: Actor,
    at: datetime,
    customer: Customer,
    plan: Plan,
    product: str,
    effective_from: Any,
) -> PriceOverride:
    """End the customer's override of ``product`` on ``plan``: every period that starts at or after
    ``effective_from`` is priced by the books again (``catalog.versions``). Refused when no override
    of that component starts before that instant, or when it is already ended then."""
    errors = FieldErrors()
    component = plan.components.select_related("product").filter(product__code=product).first()
    if component is None:
        errors.add("product", "unknown_component", "Product %s is not a component of plan %s." % (product, plan.code))
    ends = _parse_effective_from(effective_from, "effective_from", errors)
    if ends is None and not errors.items:
        errors.add("effective_from", "required", "Give the instant from which the books' price applies again.")
    errors.raise_if_any()
    assert component is not None
    assert ends is not None
    earlier = [
        o
        for o in PriceOverride.objects.filter(
            tenant=tenant, customer=customer, component=component, currency=customer.currency
        )
        if o.effective_from is None or o.effective_from < ends
    ]
    latest = max(earlier, key=lambda o: (o.effective_from is not None, o.effective_from or o.created_at), default=None)
    if latest is None or price_override_is_end(latest):
        raise InvalidInput(
            "No negotiated price of %s is in effect before that instant." % product,
            errors=[FieldError("effective_from", "no_override", "No negotiated price is in effect before this date.")],
        )
    try:
        with transaction.atomic():
            ended = PriceOverride.objects.create(
                tenant=tenant, customer=customer, component=component, currency=customer.currency, effective_from=ends
            )
            audit(
                tenant,
                actor,
                at,
                "price_override.ended",
                "customer",
                customer.external_id,
                {"plan": plan.code, "product": component.product.code, "effective_from": ends.isoformat()},
            )
    except IntegrityError:
        raise PriceOverrideExists("This customer already has an override for this component from that date.") from None
    return ended
