"""Usage as performance obligations (specs/revrec.md): variable consideration allocated entirely
to its usage period and recognized ratably by day over it, in the customer's time zone.

One obligation per contract, usage product and usage period (kind ``usage``, pattern ``ratable``,
``starts_on``/``ends_on`` the period's local days, no device), whose ``allocated`` each recognition
run refreshes before it recognizes:

- a period invoiced (its usage lines on finalized invoices): what was invoiced for it, late-usage
  adjustments (and their credits) included, net of credit notes crediting its usage lines;
- a period only on a draft invoice: the draft's amount (rated, not billed yet);
- the period still open at the month's end: the amount rated so far, priced as the coming
  invoice will price it (``invoicing.fees.usage_component_price`` from the same usage context a
  bill run loads).

The run then recognizes what is due to date less what was recognized, so the difference between
an amount rated earlier and the one invoiced (a true-up, possibly negative) posts in the month
being run. Set-based: one statement refreshes the invoiced periods, the open ones are rated from
one usage context (about ten queries, whatever the number of contracts) and written by one more.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection

from billing_platform.periods import local_date, local_midnight
from catalog.models import Aggregation
from catalog.versions import customer_price_book
from customers.models import Customer
from invoicing.fees import usage_component_price
from revrec.models import Contract
from subscriptions.devices import devices_active_in, plan_needs_activation
from tenancy.models import Tenant
from usage.usage_context import usage_components, usage_context_load

# The amount of a usage period on the documents: usage lines (late-usage adjustments included) and
# late-usage credits of invoices, less the same lines credited by credit notes. Finalized documents
# count; a period found on drafts only counts its drafts (rated, not billed yet).
_INVOICED = """
WITH lines AS (
    SELECT
        c.id AS contract_id,
        c.tenant_id,
        c.currency,
        l.product,
        (l.period_start AT TIME ZONE cu.timezone)::date AS starts_on,
        (l.period_end AT TIME ZONE cu.timezone)::date AS ends_on,
        i.status <> 'draft' AS final,
        CASE WHEN (l.type = 'credit') <> (i.kind = 'credit_note') THEN -l.amount ELSE l.amount END AS amount
    FROM invoicing_invoiceline l
    JOIN invoicing_invoice i ON i.id = l.invoice_id
    JOIN revrec_contract c ON c.subscription_id = l.subscription_id
    JOIN customers_customer cu ON cu.id = i.customer_id
    WHERE c.tenant_id = %(tenant)s
        AND (%(all_contracts)s OR c.id = ANY(%(contracts)s::uuid[]))
        AND l.tenant_id = %(tenant)s
        AND (l.type = 'usage' OR (l.type = 'credit' AND l.adjustment))
        AND i.status <> 'void'
        AND l.period_start IS NOT NULL AND l.period_end > l.period_start
        AND l.period_start < %(before)s
),
periods AS (
    SELECT
        contract_id, tenant_id, currency, product, starts_on, max(ends_on) AS ends_on,
        CASE WHEN bool_or(final) THEN sum(amount) FILTER (WHERE final) ELSE sum(amount) END AS amount
    FROM lines
    WHERE starts_on < %(end)s
    GROUP BY contract_id, tenant_id, currency, product, starts_on
)
INSERT INTO revrec_performanceobligation
    (tenant_id, contract_id, kind, product_code, device_id, currency, allocated, pattern, starts_on, ends_on)
SELECT p.tenant_id, p.contract_id, 'usage', p.product, '', p.currency, p.amount, 'ratable', p.starts_on, p.ends_on
FROM periods p
WHERE p.amount <> 0 OR EXISTS (
    SELECT 1 FROM revrec_performanceobligation o
    WHERE o.contract_id = p.contract_id AND o.product_code = p.product AND o.device_id = ''
        AND o.starts_on = p.starts_on
)
ON CONFLICT ON CONSTRAINT obligation_unique_line DO UPDATE
    SET allocated = EXCLUDED.allocated, ends_on = EXCLUDED.ends_on
    WHERE revrec_performanceobligation.kind = 'usage'
        AND (revrec_performanceobligation.allocated, revrec_performanceobligation.ends_on)
            IS DISTINCT FROM (EXCLUDED.allocated, EXCLUDED.ends_on)
"""

# The open periods rated so far, unless a document (even a draft) holds that period already.
_RATED = """
INSERT INTO revrec_performanceobligation
    (tenant_id, contract_id, kind, product_code, device_id, currency, allocated, pattern, starts_on, ends_on)
SELECT %(tenant)s, t.contract, 'usage', t.product, '', t.currency, t.amount, 'ratable', t.starts_on, t.ends_on
FROM unnest(
    %(contracts)s::uuid[], %(subscriptions)s::uuid[], %(products)s::varchar[], %(currencies)s::varchar[],
    %(amounts)s::numeric[], %(starts)s::date[], %(ends)s::date[], %(period_starts)s::timestamptz[]
) AS t(contract, subscription, product, currency, amount, starts_on, ends_on, period_start)
WHERE NOT EXISTS (
    SELECT 1 FROM invoicing_invoiceline l JOIN invoicing_invoice i ON i.id = l.invoice_id
    WHERE l.subscription_id = t.subscription AND l.product = t.product AND l.period_start = t.period_start
        AND l.type IN ('usage', 'credit') AND i.status <> 'void'
) AND (t.amount <> 0 OR EXISTS (
    SELECT 1 FROM revrec_performanceobligation o
    WHERE o.contract_id = t.contract AND o.product_code = t.product AND o.device_id = '' AND o.starts_on = t.starts_on
))
ON CONFLICT ON CONSTRAINT obligation_unique_line DO UPDATE
    SET allocated = EXCLUDED.allocated, ends_on = EXCLUDED.ends_on
    WHERE revrec_performanceobligation.kind = 'usage'
        AND (revrec_performanceobligation.allocated, revrec_performanceobligation.ends_on)
            IS DISTINCT FROM (EXCLUDED.allocated, EXCLUDED.ends_on)
"""


@dataclass(frozen=True)
class RatedPeriod:
    """The usage of one contract's subscription, product and open period, rated so far."""

    contract_id: Any
    subscription_id: Any
    product: str
    currency: str
    amount: Decimal
    starts_on: date
    ends_on: date
    period_start: Any  # the period's first instant (as on the invoice line)


def usage_obligations_refresh(
    *, tenant_id: Any, month: date, end: date, contract_ids: Sequence[Any] | None = None
) -> None:
    """Bring the usage obligations of the tenant's contracts (or of ``contract_ids``) up to date for
    the run of ``month`` (``end`` is the first day of the next month): the periods that start
    before ``end`` as the documents have them, then the periods open at the month's last instant
    rated so far."""
    ids = [str(x) for x in contract_ids] if contract_ids is not None else []
    with connection.cursor() as cursor:
        # A period starting before the month's end in the customer's zone starts before that
        # instant in UTC plus a day, whatever the zone: the exact test is on local days.
        cursor.execute(
            _INVOICED,
            {
                "tenant": str(tenant_id),
                "all_contracts": contract_ids is None,
                "contracts": ids,
                "before": local_midnight(end + timedelta(days=1), "UTC"),
                "end": end,
            },
        )
    rated = usage_rated(tenant_id=tenant_id, end=end, contract_ids=contract_ids)
    if not rated:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            _RATED,
            {
                "tenant": str(tenant_id),
                "contracts": [str(r.contract_id) for r in rated],
                "subscriptions": [str(r.subscription_id) for r in rated],
                "products": [r.product for r in rated],
                "currencies": [r.currency for r in rated],
                "amounts": [r.amount for r in rated],
                "starts": [r.starts_on for r in rated],
                "ends": [r.ends_on for r in rated],
                "period_starts": [r.period_start for r in rated],
            },
        )


def usage_rated(*, tenant_id: Any, end: date, contract_ids: Sequence[Any] | None = None) -> list[RatedPeriod]:
    """The usage of each contract's subscription rated in its period open at the last instant
    before ``end`` (local midnight in the customer's zone), as the invoice closing that period
    will price it. One query for the contracts, then the usage context of all their customers."""
    contracts = Contract.objects.filter(tenant_id=tenant_id)
    if contract_ids is not None:
        contracts = contracts.filter(pk__in=list(contract_ids))
    rows = list(contracts.values_list("subscription_id", "pk", "subscription__customer_id"))
    if not rows:
        return []
    by_subscription = {subscription_id: contract_id for subscription_id, contract_id, _ in rows}
    customers = list(
        Customer.objects.filter(tenant_id=tenant_id, pk__in={customer_id for *_, customer_id in rows})
        .select_related("tenant")
        .order_by("pk")
    )
    if not customers:
        return []
    tenant: Tenant = customers[0].tenant
    context = usage_context_load(
        tenant=tenant,
        customers_at=[(c, local_midnight(end, c.timezone) - timedelta(microseconds=1)) for c in customers],
    )
    rated: list[RatedPeriod] = []
    for customer in customers:
        for s in context.subscriptions[customer.pk]:
            contract_id = by_subscription.get(s.pk)
            metered = usage_components(s)
            if contract_id is None or not metered:
                continue
            period = context.periods[s.pk]
            prices = {
                r.component.pk: r
                for r in context.prices.resolve(
                    plan=s.plan,
                    currency=customer.currency,
                    country=customer.country,
                    at=period.start,
                    customer_id=customer.pk,
                    locked=s,
                    price_book=customer_price_book(customer),
                )
            }
            active = devices_active_in(
                context.devices[s.pk], period, needs_activation=plan_needs_activation(s.plan.components.all())
            )
            for c in metered:
                assert c.meter is not None
                resolved = prices.get(c.pk)
                if resolved is None or resolved.charge is None:
                    continue
                from_rollups = s.pk in context.aligned and c.meter.aggregation != Aggregation.UNIQUE_COUNT
                usage = usage_component_price(
                    subscription=s,
                    resolved=resolved,
                    period=period,
                    rollups=context.rolled.get((s.pk, c.meter.pk), []) if from_rollups else None,
                    active=active,
                    currency=customer.currency,
                )
                rated.append(
                    RatedPeriod(
                        contract_id=contract_id,
                        subscription_id=s.pk,
                        product=c.product.code,
                        currency=customer.currency,
                        amount=usage.amount,
                        starts_on=local_date(period.start, customer.timezone),
                        ends_on=local_date(period.end, customer.timezone),
                        period_start=period.start,
                    )
                )
    return rated
