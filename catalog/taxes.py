"""Taxes on priced lines, next to the tenant's ``TaxRate`` rows: the rates in force on a day by
country and category (``tax_rates``, ``TaxRateTable``), and VAT per category as EN 16931 computes
it (``taxes_for``), for a quote, a projected invoice or an invoice alike. Which category and which
country's rate a line takes is decided by ``catalog.vat``. Also the line a quote is made of
(``QuoteLine``) and the tax line (``TaxLine``).

``taxes_for`` needs of a line only its type, its ``tax_category`` and its ``signed_amount``
(``Taxable``), so any app's line (an invoice's draft lines: ``invoicing.lines.DraftLine``) can be
taxed here without catalog knowing its shape.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from django.db.models import Q

from billing_platform.errors import FieldError
from billing_platform.money import round_minor
from catalog.errors import MissingTaxRate
from catalog.models import TaxCategory, TaxRate
from catalog.vat import WITH_EXEMPTION_REASON, TaxDecision, TaxParties, tax_decision, tax_parties, tenant_seller_country
from customers.models import Customer
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
    # The EN 16931 category the tax decision gave the line (``catalog.vat``).
    vat_category: str = ""

    @property
    def signed_amount(self) -> Decimal:
        """A quote bills one period of a plan: it has no credit line, every amount adds."""
        return self.amount


@dataclass(frozen=True)
class TaxLine:
    """One VAT breakdown of a document: the lines of a (product tax category, EN 16931 category,
    rate), their base and the tax on it; the exemption reason of the 0 % and exempt categories."""

    category: str
    rate: Decimal
    base: Decimal
    amount: Decimal
    vat_category: str = ""
    exemption_reason_code: str = ""
    exemption_reason: str = ""


@dataclass(frozen=True)
class LineTax:
    """How one line is taxed: its EN 16931 category, its rate (None: the table has none), and the
    exemption reason of its category."""

    vat_category: str
    rate: Decimal | None
    exemption_reason_code: str = ""
    exemption_reason: str = ""


class Taxable(Protocol):
    """What a line needs to be taxed: what it sells, its tax category and its amount, negative for
    a credit."""

    @property
    def type(self) -> str: ...

    @property
    def tax_category(self) -> str: ...

    @property
    def signed_amount(self) -> Decimal: ...


@dataclass(frozen=True)
class TaxRateTable:
    """The tenant's rates of some countries, every period: ``on(country, day)`` gives the rates by
    category in force that day (a period includes its first and last days)."""

    periods: Mapping[str, Sequence[tuple[str, date, date | None, Decimal]]]  # by country

    def on(self, country: str, day: date) -> dict[str, Decimal]:
        return {
            category: rate
            for category, start, end, rate in self.periods.get(country, ())
            if start <= day and (end is None or day <= end)
        }


def tax_rate_table(*, tenant: Tenant, countries: Iterable[str] | None = None) -> TaxRateTable:
    """Every period of the tenant's rates of ``countries`` (every country when None), in one query."""
    periods: dict[str, list[tuple[str, date, date | None, Decimal]]] = defaultdict(list)
    query = TaxRate.objects.filter(tenant=tenant)
    if countries is not None:
        query = query.filter(country__in=set(countries))
    for country, category, start, end, rate in query.order_by("valid_from").values_list(
        "country", "tax_category", "valid_from", "valid_to", "rate"
    ):
        periods[country].append((category, start, end, rate))
    return TaxRateTable(periods)


def tax_rates(*, tenant: Tenant, on: date, countries: Iterable[str] | None = None) -> dict[str, dict[str, Decimal]]:
    """The tenant's tax rates in force on ``on`` by country and category (every country when
    ``countries`` is None)."""
    rates: dict[str, dict[str, Decimal]] = defaultdict(dict)
    query = TaxRate.objects.filter(tenant=tenant, valid_from__lte=on).filter(
        Q(valid_to__isnull=True) | Q(valid_to__gte=on)
    )
    if countries is not None:
        query = query.filter(country__in=set(countries))
    for country, category, rate in query.values_list("country", "tax_category", "rate"):
        rates[country][category] = rate
    return rates


def decided_line_tax(
    decision: TaxDecision, rates: Mapping[str, Decimal], *, language: str | None
) -> Callable[[Taxable], LineTax]:
    """How each line of a document is taxed under ``decision``, at ``rates`` (the rate country's
    rates in force on the document's date, by tax category): its category from the decision, the
    rate of its tax category where the category is rated (an exempt product needs no rate: 0 %),
    the exemption reason of its category in ``language``."""
    reasons: dict[str, str] = {}

    def line_tax(line: Taxable) -> LineTax:
        treatment = decision.treatment(line_type=line.type, tax_category=line.tax_category)
        code = treatment.vat_category
        if code in WITH_EXEMPTION_REASON and code not in reasons:
            reasons[code] = decision.exemption_reason(code, language=language)
        if not treatment.rated or line.tax_category == TaxCategory.EXEMPT:
            rate: Decimal | None = Decimal(0)
        else:
            rate = rates.get(line.tax_category)
        return LineTax(code, rate, treatment.exemption_reason_code, reasons.get(code, ""))

    return line_tax


def taxes_for(
    *,
    lines: Sequence[Taxable],
    line_tax: Callable[[Taxable], LineTax],
    currency: str,
    country: str,
    strict: bool = True,
) -> tuple[list[TaxLine], list[str]]:
    """EN 16931: VAT per (category, rate) = rate x sum of its rounded net lines, rounded once (never
    a sum of per-line taxes: pitfall #9). ``line_tax`` says how each line is taxed
    (``decided_line_tax``, or a credited invoice's own taxes); ``country`` is the rate table's, for
    the message when a rate is missing: the document's failure (``MissingTaxRate``) when ``strict``,
    else a warning and the category left untaxed."""
    bases: dict[tuple[str, str, Decimal], Decimal] = defaultdict(Decimal)
    reasons: dict[tuple[str, str, Decimal], tuple[str, str]] = {}
    missing: set[str] = set()
    for line in lines:
        tax = line_tax(line)
        if tax.rate is None:
            missing.add(line.tax_category)
            continue
        key = (line.tax_category, tax.vat_category, tax.rate)
        bases[key] += line.signed_amount
        reasons[key] = (tax.exemption_reason_code, tax.exemption_reason)
    if missing and strict:
        raise MissingTaxRate(
            "No tax rate for %s in %s." % (", ".join(sorted(missing)), country),
            errors=[FieldError("country", "missing_tax_rate", "Add a %s rate for %s." % (c, country)) for c in missing],
        )
    warnings = ["No %s tax rate for %s: tax not included." % (c, country) for c in sorted(missing)]
    taxes = [
        TaxLine(
            category=category,
            rate=rate,
            base=base,
            amount=round_minor(base * rate / 100, currency),
            vat_category=code,
            exemption_reason_code=reasons[(category, code, rate)][0],
            exemption_reason=reasons[(category, code, rate)][1],
        )
        for (category, code, rate), base in sorted(bases.items())
    ]
    return taxes, warnings


def customer_tax_parties(customer: Customer, *, country: str | None = None) -> TaxParties:
    """The parties of a document to ``customer`` (``country`` instead of the customer's, for a quote
    priced for another country)."""
    return tax_parties(
        seller_country=tenant_seller_country(customer.tenant),
        buyer_country=country or customer.country,
        buyer_tax_id=customer.tax_id,
    )


@dataclass(frozen=True)
class DocumentTaxes:
    """The taxes of a document under one tax decision, and each line's category."""

    decision: TaxDecision
    taxes: list[TaxLine]
    warnings: list[str]

    def vat_category(self, line: Taxable) -> str:
        return self.decision.vat_category(line_type=line.type, tax_category=line.tax_category)


def document_taxes(
    *,
    parties: TaxParties,
    lines: Sequence[Taxable],
    table: TaxRateTable,
    on: date,
    currency: str,
    language: str | None,
    strict: bool = True,
) -> DocumentTaxes:
    """The taxes of a document dated ``on`` between ``parties``: the decision (``catalog.vat``) on
    its lines, at the rates of ``table`` in force that day, its exemption reasons in ``language``."""
    decision = tax_decision(parties, [line.type for line in lines])
    rates = table.on(decision.rate_country, on)
    taxes, warnings = taxes_for(
        lines=lines,
        line_tax=decided_line_tax(decision, rates, language=language),
        currency=currency,
        country=decision.rate_country,
        strict=strict,
    )
    return DocumentTaxes(decision, taxes, warnings)


__all__ = [
    "DocumentTaxes",
    "customer_tax_parties",
    "document_taxes",
    "LineTax",
    "QuoteLine",
    "TaxLine",
    "TaxRateTable",
    "Taxable",
    "decided_line_tax",
    "tax_rate_table",
    "tax_rates",
    "taxes_for",
]
