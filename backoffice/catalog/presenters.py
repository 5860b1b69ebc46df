"""What the catalog pages show, computed from what the catalog selectors and ``price_quote`` return:
stored charges with their numbers as Decimals, the price versions of a plan grouped into books, the
starting point of a price change, and the lines and taxes of a quote."""

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from djmoney.money import Money

from backoffice.formatting import choice_label, decimal_plain, decimals_in
from catalog.models import Plan, PriceOverride, PriceVersion, Product, ProductKind, TaxCategory
from catalog.quotes import Quote, UsageInput
from catalog.selectors import meter_list, product_list
from invoicing.lines import LineType
from tenancy.models import Tenant


def charge_view(charge: Any, currency: str) -> Any:
    """A stored charge ready to print: numbers as Decimals (the template prints its prices in
    ``currency``, with their own places), and each tier with its lower bound (tier i covers
    (up_to[i-1], up_to[i]]), matrix cells included."""
    if not isinstance(charge, dict):
        return charge
    view = decimals_in(charge)
    if isinstance(view.get("tiers"), list):
        lower: Any = Decimal(0)
        for tier in view["tiers"]:
            if isinstance(tier, dict):
                tier["from"] = lower
                lower = tier.get("up_to") if tier.get("up_to") is not None else lower
    if isinstance(view.get("cells"), list):
        view["cells"] = [
            {**cell, "charge": charge_view(charge["cells"][i].get("charge"), currency)}
            if isinstance(cell, dict)
            else cell
            for i, cell in enumerate(view["cells"])
        ]
    if isinstance(view.get("default"), dict):
        view["default"] = charge_view(charge["default"], currency)
    return view


# --- products -------------------------------------------------------------------------------


def product_ssps(product: Product) -> list[Money]:
    """The standalone selling prices of a product, one per currency."""
    return [s.amount for s in product.ssps.all()]


# --- plans ----------------------------------------------------------------------------------


def plan_books(plan: Plan) -> list[tuple[str, str, str]]:
    """The (currency, partner price book, regions) of the plan's price books, in the order of its
    versions (the partner price book "" for the tenant's own)."""
    seen: dict[tuple[str, str, str], None] = {}
    for version in plan.price_versions.all():
        seen.setdefault((version.currency, version.price_book, version.regions_key), None)
    return list(seen)


def example_plan(tenant: Tenant) -> dict[str, Any]:
    """api.md's Smart Fleet offer, with the tenant's own product and meter codes where it has them."""
    codes: dict[str, str] = {}
    for product in product_list(tenant=tenant):
        codes.setdefault(product.kind, product.code)
    for code, kind in (("eld-200", "hardware"), ("fleet-platform", "service"), ("data-overage", "usage")):
        if product_list(tenant=tenant, kind=kind).filter(code=code).exists():
            codes[kind] = code
    meter = meter_list(tenant=tenant).filter(code="data_mb").first() or meter_list(tenant=tenant).first()
    return {
        "code": "smart-fleet",
        "name": "Smart Fleet",
        "interval": "month",
        "commitment_months": 12,
        "components": [
            {
                "product": codes.get(ProductKind.HARDWARE, "eld-200"),
                "kind": "hardware",
                "price": "240.00",
                "instalments": 12,
                "bill_on": "signature",
            },
            {
                "product": codes.get(ProductKind.SERVICE, "fleet-platform"),
                "kind": "service",
                "per_device": True,
                "starts_on": "activation",
                "charge": {"model": "flat", "amount": "25.00"},
            },
            {
                "product": codes.get(ProductKind.USAGE, "data-overage"),
                "kind": "usage",
                "meter": meter.code if meter else "data_mb",
                "pooled": True,
                "included_per_device": 1024,
                "charge": {
                    "model": "graduated",
                    "tiers": [{"up_to": 10000, "unit_amount": "0.010"}, {"up_to": None, "unit_amount": "0.005"}],
                },
            },
        ],
        "prices": [{"currency": tenant.default_currency}],
    }


def _effective_key(version: PriceVersion) -> tuple[bool, Any]:
    # As catalog/versions.py orders them: a version without effective_from is in effect from the start.
    return (version.effective_from is not None, version.effective_from or version.created_at)


def component_price(price: Any, currency: str) -> dict[str, Any]:
    """A component's price in a version or an override, ready to print."""
    return {
        "component": price.component,
        "price": price.price,
        "charge": charge_view(price.charge, currency),
        "min_amount": price.min_amount,
        "max_amount": price.max_amount,
    }


def price_books(versions: Iterable[PriceVersion], now: datetime) -> list[dict[str, Any]]:
    """The versions grouped by (currency, partner price book, regions), oldest first, each marked
    scheduled (not yet in effect), current (the latest in effect) or superseded."""
    groups: dict[tuple[str, str, str], list[PriceVersion]] = {}
    for version in versions:
        groups.setdefault((version.currency, version.price_book, version.regions_key), []).append(version)
    books = []
    for (currency, price_book, regions_key), items in groups.items():
        items.sort(key=_effective_key)
        in_effect = [v for v in items if v.effective_from is None or v.effective_from <= now]
        current = in_effect[-1] if in_effect else None
        rows = []
        for version in items:
            if version.effective_from is not None and version.effective_from > now:
                status = "scheduled"
            elif version is current:
                status = "current"
            else:
                status = "superseded"
            prices = sorted(version.prices.all(), key=lambda p: p.component.position)
            rows.append(
                {"version": version, "status": status, "prices": [component_price(p, currency) for p in prices]}
            )
        books.append(
            {
                "currency": currency,
                "price_book": price_book,
                "regions": regions_key.split(",") if regions_key else [],
                "rows": rows,
            }
        )
    return books


def override_row(override: PriceOverride) -> dict[str, Any]:
    """A price negotiated with a customer, in the customer's currency, ready to print."""
    currency = override.currency
    return {
        "override": override,
        "price": override.price,
        "charge": charge_view(override.charge, currency),
        "min_amount": override.min_amount,
        "max_amount": override.max_amount,
    }


# --- price calculator -----------------------------------------------------------------------


def quote_lines(quote: Quote, usage: list[UsageInput]) -> list[dict[str, Any]]:
    """The lines of a quote, each with its detail as numbers and, for usage, what was entered."""
    used: dict[str, Decimal] = {}
    for u in usage:
        used[u.meter] = used.get(u.meter, Decimal(0)) + u.quantity
    lines = []
    for line in quote.lines:
        detail = decimals_in(line.detail)
        if line.type == LineType.USAGE:
            # What was entered for the meter, before the allowance (the line's quantity is after it).
            detail["used"] = decimal_plain(used.get(str(detail.get("meter")), Decimal(0)), 0)
        lines.append(
            {
                "line": line,
                "type_label": choice_label(LineType, line.type),
                "quantity": line.quantity,
                "unit_amount": line.unit_amount,
                "detail": detail,
            }
        )
    return lines


def quote_taxes(quote: Quote) -> list[dict[str, Any]]:
    return [
        {
            "tax": t,
            "label": TaxCategory(t.category).label if t.category in TaxCategory.values else t.category,
            "rate": t.rate,
        }
        for t in quote.taxes
    ]
