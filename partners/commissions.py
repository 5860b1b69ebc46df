"""The commission engine (specs/partners.md, "Commissions"): what a partner earns on the money its
customers paid, per invoice and leg, as of an instant. It reads; ``partners.statements`` writes
what a month's statement takes.

An invoice earns for its ``partner``: its customer's when it was finalized (a customer moved to
another partner, or to none, later leaves it there). For an invoice ``i`` (kind ``invoice``) and a
leg ``l`` as of an instant ``t``:

- ``N_l``: the leg's net on the invoice: its lines of that type, less its ``credit`` lines of that
  leg. A ``credit`` line counts in the leg of what it credits: a late-usage adjustment (flagged
  ``adjustment``) in ``usage``, as revenue recognition counts it; any other in the leg of its
  product's kind (``catalog.Product.kind``, the legs' names), and in ``service`` when its product
  is not in the catalog (a change's credit for unused service).
- ``K_l(t)``: the net credited on that leg by the invoice's credit notes finalized before ``t``
  (a note's line counts in the leg of the invoice line it credits); ``G(t)``: those notes' totals
  (tax included).
- ``C(t)``: the money collected on the invoice before ``t``: its payment allocations of source
  ``payment``, ``balance`` and ``refund`` (a refund is negative). A payment counts at its
  ``received_at``, a refund at its recording, the credit balance when it was applied. Credit
  beyond what was due that a credit note sent back (source ``credit_note``) is not money
  collected: the credit note already lowers the leg's net.
- ``T``: the invoice's total (tax included); ``ρ(t) = min(1, max(0, C(t)) ÷ (T − G(t)))``, and 1
  when the credit notes leave nothing to pay (``T − G(t) ≤ 0``). The ``min(1, …)`` keeps a credit
  note on a paid invoice from also lowering the share collected: it reduces the net once.
- A voided invoice has nothing left: ``N_l = 0`` from its voiding. ``N_l − K_l`` counts from zero
  up: a credit note crediting more of a line than the leg nets leaves no commission, never a negative one.

Then ``net_collected_l(t) = round((N_l − K_l(t)) × max(0, C(t)) ÷ (T − G(t)))`` and, for a flat
rate ``r_l`` (a percentage), ``accrued_l(t) = round((N_l − K_l(t)) × r_l × max(0, C(t)) ÷ (100 ×
(T − G(t))))`` (without the last factor when ``ρ(t) = 1``), each multiplied before it is divided
and rounded once, half-up to the currency's minor unit.

A month's statement line for ``(i, l)`` takes ``accrued_l(end of month) − Σ amount`` of the lines
the invoice's other statements took for ``(i, l)`` (every statement of any partner of a month up to
this one but the one being written: an invoice is never paid twice), and shows
``net_collected_l(end of month) − Σ net_collected`` of those lines.
The statements of an invoice therefore always add up to its ``accrued_l`` as of the last one: an
invoice paid in instalments ends at exactly ``round(N_l × r_l ÷ 100)``; a credit note or refund
takes back, in its month, what it removes.

A flat leg whose rate changed since earlier lines of ``(i, l)`` were taken (the plan was edited)
takes ``round(Δ × r_l ÷ 100)`` of the month's net collected ``Δ`` instead, so that a new rate never
re-prices what earlier statements paid.

Money taken back (``Δ < 0``: a credit note, a refund, a void) gives back what the earlier lines of
``(i, l)`` were paid, at their rate: ``round(A × Δ ÷ S)``, ``A`` and ``S`` the sums of their amounts
and net collected, whatever the plan says now (another rate, other tiers, a leg at 0, a plan that
no longer reads: a partner and a leg with earlier lines are always counted). On a flat leg whose
rate has not changed, the cumulative rule above gives the same and is kept.

A graduated leg's rate depends on the partner's net collected on that leg in the month: its lines
are taken in the order their invoices' money came in (each invoice's latest payment, refund or
credit note before the month's end, then its number), each at ``F(B + Δ) − F(B)`` rounded, where
``Δ`` is the line's net collected, ``B`` the sum of the ``Δ`` taken before it in the month, and
``F`` the plan's marginal tiers (``LegRate.commission``). Money taken back is not in ``B``: it
goes back at what it was paid (above). The line's ``rate`` is its effective percentage,
``amount ÷ Δ × 100``.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from billing_platform.db_router import reads_connection
from billing_platform.errors import InvalidInput
from billing_platform.money import round_minor
from billing_platform.periods import local_midnight
from customers.models import Partner
from partners.plans import HUNDRED, LEGS, CommissionPlan, LegRate, commission_plan_parse

ZERO = Decimal(0)
RATE_PLACES = Decimal("0.0001")

# The leg of a line ``l`` (an invoice's or a credit note's) with its product ``p`` (LEFT JOINed).
_LEG_OF = """CASE
    WHEN {l}.type <> 'credit' THEN {l}.type
    WHEN {l}.adjustment OR {l}.qualifiers ? 'late_usage' THEN 'usage'
    ELSE COALESCE({p}.kind, 'service')
END"""

# The invoices the partners earn on (``Invoice.partner``: the customer's when it was finalized) that
# ever had money, or that statements took commission on: the others accrue nothing. With the
# customer and the invoice's own facts.
_INVOICES_SQL = """
SELECT i.id, i.number, i.customer_id, cu.external_id, cu.name, i.partner_id, i.currency, i.total,
       i.status, i.voided_at
FROM invoicing_invoice i
JOIN customers_customer cu ON cu.id = i.customer_id
WHERE i.tenant_id = %(tenant)s AND cu.tenant_id = %(tenant)s AND i.partner_id = ANY(%(partners)s::uuid[])
    AND i.kind = 'invoice' AND i.status IN ('finalized', 'paid', 'void')
    AND (
        EXISTS (
            SELECT 1 FROM payments_paymentallocation a
            WHERE a.tenant_id = %(tenant)s AND a.invoice_id = i.id AND a.source IN ('payment', 'balance', 'refund')
        )
        OR EXISTS (
            SELECT 1 FROM partners_commissionline c WHERE c.tenant_id = %(tenant)s AND c.invoice_id = i.id
        )
    )
"""

# Net per invoice and leg.
_LEGS_SQL = (
    """
SELECT l.invoice_id, """
    + _LEG_OF.format(l="l", p="p")
    + """ AS leg,
       SUM(CASE WHEN l.type = 'credit' THEN -l.amount ELSE l.amount END)
FROM invoicing_invoiceline l
LEFT JOIN catalog_product p ON p.tenant_id = l.tenant_id AND p.code = l.product
WHERE l.tenant_id = %(tenant)s AND l.invoice_id = ANY(%(invoices)s::uuid[])
GROUP BY 1, 2
"""
)

# Money collected per invoice before ``end``, and when it last moved.
_COLLECTED_SQL = """
SELECT x.invoice_id, SUM(x.amount), MAX(x.at)
FROM (
    SELECT a.invoice_id, a.amount,
        CASE
            WHEN a.refund_id IS NOT NULL THEN r.created_at
            WHEN a.source = 'payment' AND a.amount > 0 THEN p.received_at
            ELSE a.created_at
        END AS at
    FROM payments_paymentallocation a
    LEFT JOIN payments_payment p ON p.id = a.payment_id
    LEFT JOIN payments_refund r ON r.id = a.refund_id
    WHERE a.tenant_id = %(tenant)s AND a.invoice_id = ANY(%(invoices)s::uuid[])
        AND a.source IN ('payment', 'balance', 'refund')
) x
WHERE x.at < %(end)s
GROUP BY x.invoice_id
"""

# Credit notes finalized before ``end``: their totals per credited invoice, and when the last one
# was issued.
_CREDITED_SQL = """
SELECT n.credited_invoice_id, SUM(n.total), MAX(n.finalized_at)
FROM invoicing_invoice n
WHERE n.tenant_id = %(tenant)s AND n.credited_invoice_id = ANY(%(invoices)s::uuid[])
    AND n.kind = 'credit_note' AND n.status IN ('finalized', 'paid') AND n.finalized_at < %(end)s
GROUP BY 1
"""

# Their net per credited invoice and leg: a note's line counts in the leg of the line it credits.
_CREDITED_LEGS_SQL = (
    """
SELECT n.credited_invoice_id,
    CASE WHEN o.id IS NOT NULL THEN """
    + _LEG_OF.format(l="o", p="op")
    + """ ELSE """
    + _LEG_OF.format(l="l", p="p")
    + """ END AS leg,
    SUM(CASE WHEN l.type = 'credit' THEN -l.amount ELSE l.amount END)
FROM invoicing_invoice n
JOIN invoicing_invoiceline l ON l.invoice_id = n.id
LEFT JOIN catalog_product p ON p.tenant_id = l.tenant_id AND p.code = l.product
LEFT JOIN invoicing_invoiceline o
    ON o.invoice_id = n.credited_invoice_id
    AND o.id = CASE WHEN jsonb_typeof(l.detail -> 'credited_line') = 'number'
        THEN (l.detail ->> 'credited_line')::bigint END
LEFT JOIN catalog_product op ON op.tenant_id = o.tenant_id AND op.code = o.product
WHERE n.tenant_id = %(tenant)s AND n.credited_invoice_id = ANY(%(invoices)s::uuid[])
    AND n.kind = 'credit_note' AND n.status IN ('finalized', 'paid') AND n.finalized_at < %(end)s
GROUP BY 1, 2
"""
)

# What statements took per invoice and leg before the one being written (the invoice's partner's
# of ``month``): every statement of any partner of a month up to ``month``, and whether at one rate.
_EARLIER_SQL = """
SELECT c.invoice_id, c.leg, SUM(c.amount), SUM(c.net_collected), MIN(c.rate), MAX(c.rate)
FROM partners_commissionline c
JOIN partners_commissionstatement s ON s.id = c.statement_id
JOIN invoicing_invoice i ON i.id = c.invoice_id
WHERE c.tenant_id = %(tenant)s AND c.invoice_id = ANY(%(invoices)s::uuid[]) AND s.month <= %(month)s
    AND NOT (s.month = %(month)s AND s.partner_id IS NOT DISTINCT FROM i.partner_id)
GROUP BY 1, 2
"""


@dataclass(frozen=True)
class LineDraft:
    """What a statement takes for one invoice and leg (``CommissionLine``'s fields), with what the
    documents print."""

    partner_id: Any
    currency: str
    invoice_id: Any
    invoice_number: str
    customer_id: Any
    customer: str  # the customer's external id
    customer_name: str
    leg: str
    net_collected: Decimal
    rate: Decimal
    amount: Decimal


@dataclass(frozen=True)
class _Invoice:
    id: Any
    number: str
    customer_id: Any
    customer: str
    customer_name: str
    partner_id: Any
    currency: str
    total: Decimal
    voided_at: datetime | None


@dataclass(frozen=True)
class _Earlier:
    amount: Decimal
    net_collected: Decimal
    one_rate: Decimal | None  # the rate of every earlier line, when they share one


def month_first(day: date) -> date:
    return date(day.year, day.month, 1)


def month_after(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def month_before(month: date) -> date:
    return date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)


def month_bounds(month: date, tz: str) -> tuple[datetime, datetime]:
    """The month's first instant and the next month's, in ``tz`` (as UTC instants)."""
    return local_midnight(month_first(month), tz), local_midnight(month_after(month_first(month)), tz)


def plan_of(partner: Partner) -> CommissionPlan:
    """The partner's plan; one that no longer reads (stored before the checks) earns nothing
    rather than failing a whole statement run."""
    try:
        return commission_plan_parse(partner.commission_plan)
    except InvalidInput:
        return CommissionPlan({})


def _earns(leg: LegRate | None) -> bool:
    return leg is not None and any(t.rate > 0 for t in leg.tiers)


def _graduated_total(leg: LegRate, collected: Decimal) -> Decimal:
    """``F``: the commission on a month's net collected of ``collected`` on a graduated leg; below 0
    (more taken back than collected in the month) at the first tier's rate."""
    if collected < 0:
        return collected * leg.tiers[0].rate / HUNDRED
    return leg.commission(before=ZERO, amount=collected)


def _rows(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    with reads_connection().cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def commission_lines_compute(
    *,
    tenant_id: Any,
    tz: str,
    partners: Sequence[Partner],
    month: date,
    end: datetime | None = None,
    pending: Iterable[LineDraft] = (),
) -> dict[tuple[Any, str], list[LineDraft]]:
    """The lines each partner's statement of ``month`` takes, per ``(partner id, currency)``: the
    commission accrued as of the month's end (or ``end``, earlier: the month so far) less what
    earlier months' statements took, and what ``pending`` (the lines of earlier months not built
    yet) will take. Six queries, whatever the number of partners and invoices."""
    month = month_first(month)
    if end is None:
        end = month_bounds(month, tz)[1]
    plans = {p.pk: plan_of(p) for p in partners}
    if not plans:
        return {}
    # Every partner: one whose plan earns nothing now still gives back what earlier statements paid.
    params: dict[str, Any] = {"tenant": str(tenant_id), "partners": [str(pk) for pk in plans], "end": end}
    params["month"] = month
    invoices = {
        row[0]: _Invoice(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[9])
        for row in _rows(_INVOICES_SQL, params)
    }
    if not invoices:
        return {}
    params["invoices"] = [str(pk) for pk in invoices]
    nets: dict[Any, dict[str, Decimal]] = defaultdict(dict)
    for invoice_id, leg, net in _rows(_LEGS_SQL, params):
        nets[invoice_id][leg] = net
    collected = {row[0]: (row[1], row[2]) for row in _rows(_COLLECTED_SQL, params)}
    credited = {row[0]: (row[1], row[2]) for row in _rows(_CREDITED_SQL, params)}
    credited_legs: dict[Any, dict[str, Decimal]] = defaultdict(dict)
    for invoice_id, leg, net in _rows(_CREDITED_LEGS_SQL, params):
        credited_legs[invoice_id][leg] = net
    earlier: dict[tuple[Any, str], _Earlier] = {
        (row[0], row[1]): _Earlier(row[2], row[3], row[4] if row[4] == row[5] else None)
        for row in _rows(_EARLIER_SQL, params)
    }
    for x in pending:
        was = earlier.get((x.invoice_id, x.leg))
        earlier[(x.invoice_id, x.leg)] = (
            _Earlier(x.amount, x.net_collected, x.rate)
            if was is None
            else _Earlier(
                was.amount + x.amount, was.net_collected + x.net_collected, x.rate if was.one_rate == x.rate else None
            )
        )

    def last_moved(invoice: _Invoice) -> datetime | None:
        times = [x for x in (collected.get(invoice.id, (0, None))[1], credited.get(invoice.id, (0, None))[1]) if x]
        return max(times) if times else None

    # Money in order: graduated legs are rated in it.
    ordered = sorted(invoices.values(), key=lambda x: (last_moved(x) or end, x.number, str(x.id)))
    running: dict[tuple[Any, str, str], Decimal] = defaultdict(Decimal)
    out: dict[tuple[Any, str], list[LineDraft]] = defaultdict(list)
    for invoice in ordered:
        plan = plans[invoice.partner_id]
        currency = invoice.currency
        gross_credited, _ = credited.get(invoice.id, (ZERO, None))
        money, _ = collected.get(invoice.id, (ZERO, None))
        money = max(ZERO, money)
        left = invoice.total - gross_credited
        whole = left <= 0 or money >= left  # ρ = 1
        voided = invoice.voided_at is not None and invoice.voided_at < end
        for leg_name in LEGS:
            leg = plan.leg(leg_name)
            earns = _earns(leg)
            before = earlier.get((invoice.id, leg_name))
            if not earns and before is None:
                continue
            before = before or _Earlier(ZERO, ZERO, None)
            # A leg's net never counts below zero: a credit note may credit more of a line than the
            # leg nets on the invoice (its credit lines already took part of it); the commission then
            # goes back to nothing, never below.
            net = (
                ZERO
                if voided
                else max(ZERO, nets[invoice.id].get(leg_name, ZERO) - credited_legs[invoice.id].get(leg_name, ZERO))
            )
            # Multiplied before divided: one rounding of N × C ÷ (T − G) (and × r ÷ 100).
            collected_net = round_minor(net if whole else net * money / left, currency)
            delta = collected_net - before.net_collected
            took_before = bool(before.amount or before.net_collected)
            if (
                delta < 0
                and before.net_collected > 0
                and not (leg is not None and leg.is_flat and before.one_rate == leg.tiers[0].rate)
            ):
                # Money taken back: what the earlier lines paid on it, at their rate (amount ÷ net
                # collected), whatever the plan says now.
                amount = round_minor(before.amount * delta / before.net_collected, currency)
                rate = (before.amount / before.net_collected * HUNDRED).quantize(RATE_PLACES)
            elif not earns:
                continue
            elif leg is not None and leg.is_flat:
                rate = leg.tiers[0].rate
                if took_before and before.one_rate != rate:
                    # The plan's rate changed since: the new one applies to what is collected now.
                    amount = round_minor(delta * rate / HUNDRED, currency)
                else:
                    share = net * rate if whole else net * rate * money
                    amount = round_minor(share / (HUNDRED if whole else HUNDRED * left), currency) - before.amount
            else:
                assert leg is not None
                key = (invoice.partner_id, currency, leg_name)
                start = running[key]
                amount = round_minor(_graduated_total(leg, start + delta) - _graduated_total(leg, start), currency)
                running[key] = start + delta
                rate = (amount / delta * HUNDRED).quantize(RATE_PLACES) if delta else leg.rate_at(start)
            if not amount and not delta:
                continue
            out[(invoice.partner_id, currency)].append(
                LineDraft(
                    partner_id=invoice.partner_id,
                    currency=currency,
                    invoice_id=invoice.id,
                    invoice_number=invoice.number,
                    customer_id=invoice.customer_id,
                    customer=invoice.customer,
                    customer_name=invoice.customer_name,
                    leg=leg_name,
                    net_collected=delta,
                    rate=rate,
                    amount=amount,
                )
            )
    for lines in out.values():
        lines.sort(key=lambda x: (x.invoice_number, LEGS.index(x.leg)))
    return dict(out)


def lines_total(lines: Iterable[LineDraft]) -> Decimal:
    return sum((x.amount for x in lines), ZERO)
