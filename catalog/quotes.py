"""The price calculator: what one billing period of a plan costs for a number of devices and usage.

No side effects. It uses the same price resolution (``versions.py``), allowance, instalments and charge
models as invoicing, so a quote and the invoice that follows agree.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from djmoney.money import Money

from billing_platform.errors import FieldError, InvalidInput
from billing_platform.money import is_known_currency, round_minor
from billing_platform.periods import local_date
from catalog.charge_models.allowance import apply_allowance
from catalog.charge_models.base import Usage
from catalog.charge_models.base import decimal_str as _decimal_str
from catalog.charge_models.instalments import instalment_amounts
from catalog.charge_models.pricing import price
from catalog.models import Plan, ProductKind
from catalog.taxes import QuoteLine, TaxLine, customer_tax_parties, document_taxes, tax_rate_table
from catalog.vat import tax_parties, tenant_seller_country
from catalog.versions import component_prices_as_of, customer_price_book
from customers.models import Customer
from tenancy.models import Tenant


def decimal_str(value: Decimal) -> str:
    return _decimal_str(value.normalize())


@dataclass(frozen=True)
class Quote:
    """One period of a plan priced: its lines and taxes (amounts in ``currency``, each rounded to
    its minor unit) and their totals, as ``Money``."""

    plan: str
    currency: str
    country: str | None
    devices: int
    price_source: str
    price_version_id: str
    lines: list[QuoteLine]
    net_total: Money
    taxes: list[TaxLine]
    total: Money
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class UsageInput:
    meter: str
    quantity: Decimal
    dimensions: Mapping[str, str] = field(default_factory=dict)
    events: int = 0


def price_quote(
    *,
    tenant: Tenant,
    plan: Plan,
    currency: str,
    devices: int,
    usage: Sequence[UsageInput],
    at: datetime,
    country: str | None = None,
    customer: Customer | None = None,
    price_book: str | None = None,
) -> Quote:
    """What one period of ``plan`` costs for ``devices`` devices and ``usage``: for ``customer`` (its
    country, overrides and partner's price book), or for a country and, when given, a partner
    ``price_book`` (a partner quoting before its customer exists)."""
    if price_book is None:
        price_book = customer_price_book(customer) if customer is not None else ""
    if customer is not None:
        if currency != customer.currency:
            raise InvalidInput(
                "Customer %s is billed in %s, not %s." % (customer.external_id, customer.currency, currency),
                errors=[
                    FieldError("currency", "currency_mismatch", "The customer's currency is %s." % customer.currency)
                ],
            )
        country = country or customer.country
    if not is_known_currency(currency):
        raise InvalidInput(
            "Unknown currency.", errors=[FieldError("currency", "unknown_currency", "Unknown ISO 4217 currency.")]
        )
    resolved = component_prices_as_of(
        plan=plan,
        currency=currency,
        country=country,
        at=at,
        customer_id=customer.pk if customer else None,
        price_book=price_book,
    )
    meters = {r.component.meter.code for r in resolved if r.component.meter is not None}
    unknown = sorted({u.meter for u in usage} - meters)
    if unknown:
        raise InvalidInput(
            "Plan %s has no usage component for meter %s." % (plan.code, ", ".join(unknown)),
            errors=[FieldError("usage", "unknown_meter", "Not a meter of this plan: %s." % m) for m in unknown],
        )
    lines: list[QuoteLine] = []
    for r in resolved:
        c, product = r.component, r.component.product
        if c.kind == ProductKind.HARDWARE:
            assert r.price is not None
            # Instalment 1 of N, in minor units (with a single instalment, the price rounded).
            unit = round_minor(instalment_amounts(r.price, c.instalments, currency)[0], currency)
            label = f"{product.name}, instalment 1/{c.instalments}" if c.instalments > 1 else product.name
            lines.append(
                QuoteLine(
                    "hardware",
                    product.code,
                    label,
                    Decimal(devices),
                    unit,
                    round_minor(unit * devices, currency),
                    product.tax_category,
                    {"price_per_device": decimal_str(r.price), "instalments": c.instalments, "source": r.source},
                )
            )
        elif c.kind == ProductKind.FEE:
            assert r.price is not None
            # Billed once: for each device when the fee is per device, else once.
            units = Decimal(devices if c.per_device else 1)
            lines.append(
                QuoteLine(
                    "fee",
                    product.code,
                    product.name,
                    units,
                    r.price,
                    round_minor(r.price * units, currency),
                    product.tax_category,
                    {"source": r.source},
                )
            )
        elif c.kind == ProductKind.SERVICE:
            assert r.charge is not None
            units = Decimal(devices if c.per_device else 1)
            priced = price(charge=r.charge, usage=Usage(quantity=units), currency=currency)
            unit_amount = priced.precise_amount / units if units else None
            lines.append(
                QuoteLine(
                    "service",
                    product.code,
                    product.name,
                    units,
                    unit_amount,
                    priced.amount,
                    product.tax_category,
                    {**priced.details, "source": r.source},
                )
            )
        else:
            assert r.charge is not None
            assert c.meter is not None
            lines.append(_usage_line(r, [u for u in usage if u.meter == c.meter.code], devices, currency))
    net = sum((line.amount for line in lines), Decimal(0))
    taxes: list[TaxLine] = []
    warnings: list[str] = []
    if country:
        parties = (
            customer_tax_parties(customer, country=country)
            if customer is not None
            else tax_parties(seller_country=tenant_seller_country(tenant), buyer_country=country)
        )
        decided = document_taxes(
            parties=parties,
            lines=lines,
            table=tax_rate_table(tenant=tenant, countries=[parties.buyer_country]),
            on=local_date(at, customer.timezone if customer is not None else tenant.timezone),
            currency=currency,
            language=customer.language if customer is not None else None,
            strict=False,
        )
        taxes, warnings = decided.taxes, decided.warnings
        lines = [replace(line, vat_category=decided.vat_category(line)) for line in lines]
    else:
        warnings.append("No country given: taxes not included.")
    total = net + sum((t.amount for t in taxes), Decimal(0))
    version = resolved[0].version if resolved else None
    return Quote(
        plan=plan.code,
        currency=currency,
        country=country,
        devices=devices,
        # The book the plan's version came from; a line priced by a customer override says so in its detail.
        price_source=next((r.source for r in resolved if r.source != "override"), "override"),
        price_version_id=str(version.pk) if version else "",
        lines=lines,
        net_total=Money(net, currency),
        taxes=taxes,
        total=Money(total, currency),
        warnings=warnings,
    )


def _usage_line(r: Any, usage: Sequence[UsageInput], devices: int, currency: str) -> QuoteLine:
    c, product, charge = r.component, r.component.product, r.charge
    quantity = sum((u.quantity for u in usage), Decimal(0))
    events = sum(u.events for u in usage)
    detail: dict[str, Any] = {"meter": c.meter.code, "metered_quantity": decimal_str(quantity), "source": r.source}
    if charge.get("model") == "matrix":
        dims = charge["dimensions"]
        groups: dict[tuple[str, ...], list[UsageInput]] = defaultdict(list)
        for u in usage:
            groups[tuple(str(u.dimensions.get(d, "")) for d in dims)].append(u)
        usage_in = Usage(
            quantity=quantity,
            event_count=events,
            groups={
                key: Usage(
                    quantity=sum((u.quantity for u in items), Decimal(0)), event_count=sum(u.events for u in items)
                )
                for key, items in groups.items()
            },
        )
        billable = quantity
    elif c.included_per_device and not c.pooled and devices:
        # Per-device allowance: the calculator assumes the usage is spread evenly over the devices.
        per_device = quantity / devices
        billable_each, _ = apply_allowance(quantity=per_device, included_per_device=c.included_per_device, devices=1)
        billable_each = billable_each.normalize()
        priced_one = price(charge=charge, usage=Usage(quantity=billable_each, event_count=events), currency=currency)
        precise = priced_one.precise_amount * devices
        # min/max apply to the component's amount for the period, i.e. to all devices together.
        if r.min_amount is not None:
            precise = max(precise, r.min_amount)
        if r.max_amount is not None:
            precise = min(precise, r.max_amount)
        amount = round_minor(precise, currency)
        detail.update(
            priced_one.details,
            allowance=decimal_str(c.included_per_device * devices),
            billable_quantity=decimal_str(billable_each * devices),
            assumption="usage spread evenly over devices",
        )
        return QuoteLine(
            "usage", product.code, product.name, billable_each * devices, None, amount, product.tax_category, detail
        )
    else:
        allowance_per_device = c.included_per_device or Decimal(0)
        billable, _ = apply_allowance(quantity=quantity, included_per_device=allowance_per_device, devices=devices)
        billable = billable.normalize()
        detail["allowance"] = decimal_str(allowance_per_device * devices)
        usage_in = Usage(quantity=billable, event_count=events)
    priced = price(charge=charge, usage=usage_in, currency=currency, min_amount=r.min_amount, max_amount=r.max_amount)
    detail.update(priced.details, billable_quantity=decimal_str(billable))
    return QuoteLine("usage", product.code, product.name, billable, None, priced.amount, product.tax_category, detail)
