"""A customer's upcoming invoice and current usage: for each live subscription and usage component,
the open period's quantity, allowance, billable quantity and amount so far, and the invoice that
period will close on.

The projected invoice is the one dated at the open period's end: the usage amounts so far, the
hardware instalments due that day, the first days of the fees that started during the period, the
next period's in-advance fees of the devices billable now, and the one-time fees triggered and not
billed yet (``invoicing.fees``); taxes as invoicing computes them (``catalog.taxes``). A bill run
composes its invoice from this projection taken just before the billing date
(``invoicing.composition``), so what the customer sees is what the invoice bills.
"""

from collections.abc import Set
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from djmoney.money import Money

from billing_platform.periods import Period, local_date
from catalog.models import Aggregation, ProductKind
from catalog.taxes import TaxLine, customer_tax_parties, document_taxes
from catalog.versions import customer_price_book
from customers.models import Customer
from customers.selectors import customer_get
from invoicing.fees import (
    ComponentUsage,
    hardware_fee_lines,
    one_time_fee_lines,
    service_fee_lines,
    usage_component_price,
    usage_fee_line,
)
from invoicing.lines import DraftLine
from subscriptions.devices import devices_active_in, plan_needs_activation
from subscriptions.ledger import one_time_fees_billed
from subscriptions.models import Subscription
from tenancy.models import Tenant
from usage.usage_context import UsageContext, usage_components, usage_context_load


@dataclass(frozen=True)
class SubscriptionUsage:
    subscription: str
    plan: str
    status: str
    period: Period
    active_devices: int
    components: list[ComponentUsage]

    @property
    def period_start(self) -> datetime:
        return self.period.start

    @property
    def period_end(self) -> datetime:
        return self.period.end


@dataclass(frozen=True)
class Projection:
    """The projected invoice: lines and taxes in the customer's currency, and their totals as ``Money``."""

    lines: list[DraftLine]
    net_total: Money
    taxes: list[TaxLine]
    total: Money
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CurrentUsage:
    customer: str
    currency: str
    at: datetime
    subscriptions: list[SubscriptionUsage]
    projected: Projection


def invoice_upcoming(
    *,
    customer: Customer,
    at: datetime,
    context: UsageContext | None = None,
    billed_fees: Set[tuple[Any, Any, Any]] | None = None,
) -> CurrentUsage:
    """The usage of every live subscription of ``customer`` in its period open at ``at``, priced,
    and the invoice those periods will close on. Reads only; safe to compute any number of times.
    ``context`` is what ``usage_context_load`` read for this customer at this instant, and
    ``billed_fees`` the one-time fees already billed (``one_time_fees_billed``), when loaded for many
    customers at once; else they are read here."""
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    if context is None:
        context = usage_context_load(tenant=customer.tenant, customers_at=[(customer, at)])
    elif context.at.get(customer.pk) != at:
        raise ValueError("the usage context was loaded for another customer or instant")
    currency = customer.currency
    price_book = customer_price_book(customer)
    subscriptions = context.subscriptions[customer.pk]
    if billed_fees is None:
        billed_fees = one_time_fees_billed(subscription_ids=[s.pk for s in subscriptions if _has_fees(s)])

    results: list[SubscriptionUsage] = []
    lines: list[DraftLine] = []
    for s in subscriptions:
        period = context.periods[s.pk]
        prices = context.prices.resolve(
            plan=s.plan,
            currency=currency,
            country=customer.country,
            at=period.start,
            customer_id=customer.pk,
            locked=s,
            price_book=price_book,
        )
        by_component = {r.component.pk: r for r in prices}
        devices = context.devices[s.pk]
        active = devices_active_in(devices, period, needs_activation=plan_needs_activation(s.plan.components.all()))
        metered = usage_components(s)
        components = []
        for c in metered:
            assert c.meter is not None
            from_rollups = s.pk in context.aligned and c.meter.aggregation != Aggregation.UNIQUE_COUNT
            usage = usage_component_price(
                subscription=s,
                resolved=by_component[c.pk],
                period=period,
                rollups=context.rolled.get((s.pk, c.meter.pk), []) if from_rollups else None,
                active=active,
                currency=currency,
            )
            components.append(usage)
        results.append(SubscriptionUsage(s.external_id, s.plan.code, s.status, period, len(active), components))
        prices_next = context.prices.resolve(
            plan=s.plan,
            currency=currency,
            country=customer.country,
            at=period.end,
            customer_id=customer.pk,
            locked=s,
            price_book=price_book,
        )
        lines += hardware_fee_lines(subscription=s, devices=devices, prices=prices, period=period, currency=currency)
        lines += service_fee_lines(
            subscription=s,
            devices=devices,
            period=period,
            prices_now=prices,
            prices_next=prices_next,
            at=at,
            currency=currency,
        )
        lines += [
            usage_fee_line(subscription=s, component=c, usage=u, period=period)
            for c, u in zip(metered, components, strict=True)
        ]
        lines += one_time_fee_lines(
            subscription=s, devices=devices, prices=prices, at=at, billed=billed_fees, currency=currency
        )

    net = sum((line.signed_amount for line in lines), Decimal(0))
    # The projected invoice is dated at the end of the open periods: the rates in force that day.
    ends = [context.periods[s.pk].end for s in subscriptions]
    issue_date = local_date(min(ends) if ends else at, customer.timezone)
    decided = document_taxes(
        parties=customer_tax_parties(customer),
        lines=lines,
        table=context.tax_rates,
        on=issue_date,
        currency=currency,
        language=customer.language,
        strict=False,
    )
    taxes, warnings = decided.taxes, decided.warnings
    lines = [replace(line, vat_category=decided.vat_category(line)) for line in lines]
    total = net + sum((t.amount for t in taxes), Decimal(0))
    return CurrentUsage(
        customer=customer.external_id,
        currency=currency,
        at=at,
        subscriptions=results,
        projected=Projection(
            lines=lines, net_total=Money(net, currency), taxes=taxes, total=Money(total, currency), warnings=warnings
        ),
    )


def _has_fees(subscription: Subscription) -> bool:
    """Does the plan have a one-time fee (components prefetched)? Only then is the ledger read."""
    return any(c.kind == ProductKind.FEE for c in subscription.plan.components.all())


def customer_current_usage(*, tenant: Tenant, external_id: str, at: datetime) -> CurrentUsage:
    """The current usage of the tenant's customer ``external_id``; ``CustomerNotFound`` (404) for an
    unknown customer or another tenant's."""
    return invoice_upcoming(customer=customer_get(tenant=tenant, external_id=external_id), at=at)
