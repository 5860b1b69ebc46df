"""Products: what is sold (hardware, a service, metered usage, a fee), with its standalone selling prices."""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from djmoney.money import Money

from billing_platform.errors import FieldError
from billing_platform.money import is_known_currency
from billing_platform.validation import FieldErrors
from catalog.errors import CodeTaken
from catalog.models import (
    DEFAULT_REVENUE_TREATMENT,
    Product,
    ProductKind,
    ProductSsp,
    RevenueTreatment,
    TaxCategory,
)
from catalog.services._validation import audit, check_choice, check_code, decimal_field
from tenancy.actors import Actor
from tenancy.models import Tenant
from tenancy.services import audit_record


def _validate_ssp(ssp: Sequence[Mapping[str, Any]], errors: FieldErrors) -> list[Money]:
    """The standalone selling prices asked for, one ``Money`` per currency."""
    out: list[Money] = []
    seen: set[str] = set()
    for i, item in enumerate(ssp):
        currency = str(item.get("currency", "")).upper()
        known = is_known_currency(currency)
        if not known:
            errors.add(f"ssp[{i}].currency", "unknown_currency", "Unknown ISO 4217 currency: %s." % currency)
        elif currency in seen:
            errors.add(f"ssp[{i}].currency", "duplicate", "One SSP per currency.")
        seen.add(currency)
        amount = decimal_field(item.get("amount"), f"ssp[{i}].amount", errors)
        if item.get("amount") is None:
            errors.add(f"ssp[{i}].amount", "required", "This field is required.")
        if amount is not None and known:
            out.append(Money(amount, currency))
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
    errors = FieldErrors()
    check_code(code, "code", errors)
    check_choice(kind, ProductKind.values, "kind", errors)
    check_choice(tax_category, TaxCategory.values, "tax_category", errors)
    if revenue_treatment is not None:
        check_choice(revenue_treatment, RevenueTreatment.values, "revenue_treatment", errors)
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
            ProductSsp.objects.bulk_create([ProductSsp(tenant=tenant, product=product, amount=m) for m in ssps])
            audit(tenant, actor, at, "product.created", "product", code, product_snapshot(product, ssps))
    except IntegrityError:
        raise CodeTaken(
            "A product with code %s already exists." % code, errors=[FieldError("code", "taken", "Taken.")]
        ) from None
    return product


def product_snapshot(product: Product, ssps: Sequence[Money] | None = None) -> dict[str, Any]:
    if ssps is None:
        ssps = [s.amount for s in product.ssps.all()]
    return {
        "code": product.code,
        "name": product.name,
        "kind": product.kind,
        "revenue_treatment": product.revenue_treatment,
        "tax_category": product.tax_category,
        "ssp": [{"currency": m.currency.code, "amount": str(m.amount)} for m in ssps],
    }


def product_update(*, tenant: Tenant, actor: Actor, at: datetime, code: str, changes: Mapping[str, Any]) -> Product:
    """Name, description, tax category, revenue treatment and SSPs can change; code and kind cannot
    (invoices and revenue schedules refer to them)."""
    from catalog.selectors import product_get

    errors = FieldErrors()
    for field in sorted(set(changes) - {"name", "description", "tax_category", "revenue_treatment", "ssp"}):
        errors.add(field, "not_editable", "%s cannot be changed." % field)
    if "tax_category" in changes:
        check_choice(changes["tax_category"], TaxCategory.values, "tax_category", errors)
    if "revenue_treatment" in changes:
        check_choice(changes["revenue_treatment"], RevenueTreatment.values, "revenue_treatment", errors)
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
            ProductSsp.objects.bulk_create([ProductSsp(tenant=tenant, product=product, amount=m) for m in ssps])
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
