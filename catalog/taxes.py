"""Taxes on priced lines, next to the tenant's ``TaxRate`` rows: the rates by country and category
(``tax_rates``), and VAT per category as EN 16931 computes it (``taxes_for``), for a quote, a
projected invoice or an invoice alike. Also the line a quote is made of (``QuoteLine``) and the tax
line (``TaxLine``).

``taxes_for`` needs of a line only its ``tax_category`` and ``signed_amount`` (``Taxable``), so any
app's line (an invoice's draft lines: ``invoicing.lines.DraftLine``) can be taxed here without
catalog knowing its shape.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from billing_platform.errors import FieldError
from billing_platform.money import round_minor
from catalog.errors import MissingTaxRate
from catalog.models import TaxRate
from tenancy.models import Tenant


@dataclass(frozen=True)
class QuoteLine:
    type: str
    product: str
    description: str
    quantity: Decimal
    unit_amount: Decimal | None
    amount: Decimal
    tax_category: str
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def signed_amount(self) -> Decimal:
        """A quote bills one period of a plan: it has no credit line, every amount adds."""
        return self.amount


@dataclass(frozen=True)
class TaxLine:
    category: str
    rate: Decimal
    base: Decimal
    amount: Decimal


class Taxable(Protocol):
    """What a line needs to be taxed: its tax category and its amount, negative for a credit."""

    @property
    def tax_category(self) -> str: ...

    @property
    def signed_amount(self) -> Decimal: ...


def tax_rates(*, tenant: Tenant, countries: Iterable[str] | None = None) -> dict[str, dict[str, Decimal]]:
    """The tenant's tax rates by country and category (every country when ``countries`` is None)."""
    rates: dict[str, dict[str, Decimal]] = defaultdict(dict)
    query = TaxRate.objects.filter(tenant=tenant)
    if countries is not None:
        query = query.filter(country__in=set(countries))
    for country, category, rate in query.values_list("country", "tax_category", "rate"):
        rates[country][category] = rate
    return rates


def taxes_for(
    *,
    tenant: Tenant,
    country: str,
    lines: Sequence[Taxable],
    currency: str,
    strict: bool = True,
    rates: Mapping[str, Decimal] | None = None,
) -> tuple[list[TaxLine], list[str]]:
    """EN 16931: VAT per category = rate x sum of the category's rounded net lines, rounded once
    (never a sum of per-line taxes: pitfall #9). ``rates`` are the country's rates by category
    when already read (``tax_rates``); else they are read here."""
    bases: dict[str, Decimal] = defaultdict(Decimal)
    for line in lines:
        bases[line.tax_category] += line.signed_amount
    if rates is None:
        rates = tax_rates(tenant=tenant, countries=[country]).get(country, {})
    missing = sorted(c for c in bases if c not in rates and c != "exempt")
    if missing and not strict:
        warnings = ["No %s tax rate for %s: tax not included." % (c, country) for c in missing]
        bases = defaultdict(Decimal, {c: b for c, b in bases.items() if c not in missing})
        return _tax_lines(bases, rates, currency), warnings
    if missing:
        raise MissingTaxRate(
            "No tax rate for %s in %s." % (", ".join(missing), country),
            errors=[FieldError("country", "missing_tax_rate", "Add a %s rate for %s." % (c, country)) for c in missing],
        )
    return _tax_lines(bases, rates, currency), []


def _tax_lines(bases: Mapping[str, Decimal], rates: Mapping[str, Decimal], currency: str) -> list[TaxLine]:
    return [
        TaxLine(
            category,
            rates.get(category, Decimal(0)),
            base,
            round_minor(base * rates.get(category, Decimal(0)) / 100, currency),
        )
        for category, base in sorted(bases.items())
    ]


__all__ = ["QuoteLine", "TaxLine", "Taxable", "tax_rates", "taxes_for"]
