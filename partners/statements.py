"""Commission statements: built (a draft, rebuilt until approved), approved, paid; and read, saved
or live (specs/partners.md, "Statements"). The engine is ``partners.commissions``.

- One statement per partner, calendar month of the tenant's time zone and currency: a partner's
  customers invoiced in another currency than the partner's get a statement of their own in it.
  A statement is written when it has a line; a month without any has none.
- A draft is computed again each time it is built, and every later draft of the partner in that
  currency after it (each takes what the ones before it left). An approved (or paid) statement
  never changes, and no earlier month is built again once a later one is approved: what changes
  after, for any month up to it, lands on the next month's statement.
- Statements are approved in month order: a draft before it must be approved first.
"""

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Count, QuerySet, Sum

from billing_platform.db_router import replica_report
from billing_platform.errors import Conflict, FieldError, InvalidInput, NotFound
from billing_platform.money import round_minor
from customers.models import Partner
from partners.commissions import (
    LineDraft,
    commission_lines_compute,
    lines_total,
    month_before,
    month_bounds,
    month_first,
)
from partners.models import CommissionLine, CommissionStatement, StatementStatus
from tenancy.actors import Actor
from tenancy.models import Tenant
from tenancy.services import audit_record

MONTHS_SHOWN = 12
# The months before the current one that the schedule builds when they have no statement yet.
CATCH_UP_MONTHS = 3


class StatementNotFound(NotFound):
    code = "statement_not_found"


class StatementNotDraft(Conflict):
    code = "statement_not_draft"


class StatementNotApproved(Conflict):
    code = "statement_not_approved"


class EarlierStatementDraft(Conflict):
    code = "earlier_statement_draft"


def month_label(month: date) -> str:
    return month.strftime("%Y-%m")


def month_parse(value: str, *, field: str = "month") -> date:
    """``"2026-04"`` as the month's first day; anything else, or a year outside 2000–2999, a 422."""
    try:
        year, number = value.split("-")
        if len(year) != 4 or len(number) != 2 or not 2000 <= int(year) <= 2999:
            raise ValueError(value)
        return date(int(year), int(number), 1)
    except ValueError:
        message = "A month as YYYY-MM between 2000-01 and 2999-12, e.g. 2026-04."
        raise InvalidInput(message, errors=[FieldError(field, "invalid_month", message)]) from None


def current_month(*, tenant: Tenant, at: datetime) -> date:
    return month_first(at.astimezone(_zone(tenant)).date())


def _zone(tenant: Tenant) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(tenant.timezone)


def _snapshot(statement: CommissionStatement) -> dict[str, Any]:
    return {
        "partner": statement.partner.code,
        "month": month_label(statement.month),
        "currency": statement.currency,
        "status": statement.status,
        "total": str(round_minor(statement.total, statement.currency)),
    }


def _line_key(rows: Sequence[tuple[Any, str, Decimal, Decimal, Decimal]]) -> list[tuple[str, str, str, str, str]]:
    return sorted((str(a), b, str(c.normalize()), str(d.normalize()), str(e.normalize())) for a, b, c, d, e in rows)


def _write(
    *,
    tenant: Tenant,
    partner: Partner,
    month: date,
    currency: str,
    lines: Sequence[LineDraft],
    existing: CommissionStatement | None,
    actor: Actor,
    at: datetime,
) -> CommissionStatement | None:
    """The draft of ``lines``: created, or ``existing`` rewritten when they changed."""
    total = lines_total(lines)
    rows = [
        CommissionLine(
            tenant=tenant,
            invoice_id=x.invoice_id,
            customer_id=x.customer_id,
            leg=x.leg,
            net_collected=x.net_collected,
            rate=x.rate,
            amount=x.amount,
        )
        for x in lines
    ]
    if existing is None:
        if not rows:
            return None
        statement = CommissionStatement.objects.create(
            tenant=tenant, partner=partner, month=month, currency=currency, total=total, built_at=at
        )
        action = "commission_statement.built"
        before = None
    else:
        statement = existing
        old = list(statement.lines.values_list("invoice_id", "leg", "net_collected", "rate", "amount"))
        new = [(x.invoice_id, x.leg, x.net_collected, x.rate, x.amount) for x in lines]
        if _line_key(old) == _line_key(new):
            return statement
        before = _snapshot(statement)
        statement.lines.all().delete()
        statement.total = total
        statement.built_at = at
        statement.save(update_fields=["total", "built_at"])
        action = "commission_statement.rebuilt"
    for row in rows:
        row.statement = statement
    CommissionLine.objects.bulk_create(rows)
    audit_record(
        tenant=tenant,
        actor=actor,
        action=action,
        object_type="commission_statement",
        object_id=str(statement.pk),
        at=at,
        before=before,
        after={**_snapshot(statement), "lines": len(rows)},
    )
    return statement


def statements_build(
    *, tenant: Tenant, month: date, actor: Actor, at: datetime, partners: Sequence[Partner] | None = None
) -> list[CommissionStatement]:
    """Build the drafts of ``month`` for ``partners`` (every partner of the tenant by default), and
    again every later draft of theirs; returns the month's statements that exist afterwards
    (drafts, and approved ones left as they are)."""
    month = month_first(month)
    if month_bounds(month, tenant.timezone)[1] > at:
        message = "Only a month that has ended can be built: %s ends later." % month_label(month)
        raise InvalidInput(message, errors=[FieldError("month", "month_not_ended", message)])
    with transaction.atomic():
        qs = Partner.objects.filter(tenant=tenant)
        if partners is not None:
            qs = qs.filter(pk__in=[p.pk for p in partners])
        # Locked in id order: two builds (or a build and an approval) of a partner wait for each other.
        chosen = list(qs.select_for_update().order_by("pk"))
        if not chosen:
            return []
        _build_month(tenant=tenant, month=month, partners=chosen, actor=actor, at=at)
        later = sorted(
            set(
                CommissionStatement.objects.filter(
                    tenant=tenant, partner__in=chosen, month__gt=month, status=StatementStatus.DRAFT
                ).values_list("month", flat=True)
            )
        )
        for next_month in later:
            _build_month(tenant=tenant, month=next_month, partners=chosen, actor=actor, at=at)
        return list(
            CommissionStatement.objects.filter(tenant=tenant, partner__in=chosen, month=month)
            .select_related("partner")
            .order_by("partner__code", "currency")
        )


def _build_month(*, tenant: Tenant, month: date, partners: list[Partner], actor: Actor, at: datetime) -> None:
    computed = commission_lines_compute(tenant_id=tenant.pk, tz=tenant.timezone, partners=partners, month=month)
    statements = {
        (s.partner_id, s.currency): s
        for s in CommissionStatement.objects.filter(tenant=tenant, partner__in=partners, month=month).select_related(
            "partner"
        )
    }
    # A month after an approved one is where corrections go: the months up to it are settled.
    settled = {
        (row["partner_id"], row["currency"])
        for row in CommissionStatement.objects.filter(tenant=tenant, partner__in=partners, month__gt=month)
        .exclude(status=StatementStatus.DRAFT)
        .values("partner_id", "currency")
    }
    by_id = {p.pk: p for p in partners}
    for key in sorted({*computed, *statements}, key=lambda k: (str(k[0]), k[1])):
        existing = statements.get(key)
        if key in settled or (existing is not None and existing.status != StatementStatus.DRAFT):
            continue
        _write(
            tenant=tenant,
            partner=by_id[key[0]],
            month=month,
            currency=key[1],
            lines=computed.get(key, []),
            existing=existing,
            actor=actor,
            at=at,
        )


def statement_approve(*, statement: CommissionStatement, actor: Actor, at: datetime) -> CommissionStatement:
    """A draft approved: it never changes again. Refused for a statement already approved, and
    while an earlier month of the partner in that currency is still a draft."""
    with transaction.atomic():
        Partner.objects.select_for_update().filter(pk=statement.partner_id).first()
        statement = CommissionStatement.objects.select_for_update().select_related("partner").get(pk=statement.pk)
        if statement.status != StatementStatus.DRAFT:
            raise StatementNotDraft("Statement %s is %s: only a draft is approved." % (statement, statement.status))
        earlier = (
            CommissionStatement.objects.filter(
                partner_id=statement.partner_id,
                currency=statement.currency,
                month__lt=statement.month,
                status=StatementStatus.DRAFT,
            )
            .order_by("month")
            .first()
        )
        if earlier is not None:
            raise EarlierStatementDraft(
                "The statement of %s is still a draft: approve it first." % month_label(earlier.month)
            )
        before = _snapshot(statement)
        statement.status = StatementStatus.APPROVED
        statement.approved_at = at
        statement.approved_by = actor.label
        statement.save(update_fields=["status", "approved_at", "approved_by"])
        audit_record(
            tenant=statement.partner.tenant,
            actor=actor,
            action="commission_statement.approved",
            object_type="commission_statement",
            object_id=str(statement.pk),
            at=at,
            before={"status": before["status"]},
            after=_snapshot(statement),
        )
    return statement


def statement_mark_paid(
    *, statement: CommissionStatement, reference: str, actor: Actor, at: datetime
) -> CommissionStatement:
    """An approved statement marked paid, with the tenant's payment reference (a transfer's)."""
    reference = (reference or "").strip()
    if not reference or len(reference) > 200:
        message = "The payment's reference, 1 to 200 characters."
        raise InvalidInput(message, errors=[FieldError("reference", "invalid_reference", message)])
    with transaction.atomic():
        statement = CommissionStatement.objects.select_for_update().select_related("partner").get(pk=statement.pk)
        if statement.status != StatementStatus.APPROVED:
            raise StatementNotApproved(
                "Statement %s is %s: only an approved statement is marked paid." % (statement, statement.status)
            )
        statement.status = StatementStatus.PAID
        statement.paid_at = at
        statement.paid_reference = reference
        statement.save(update_fields=["status", "paid_at", "paid_reference"])
        audit_record(
            tenant=statement.partner.tenant,
            actor=actor,
            action="commission_statement.paid",
            object_type="commission_statement",
            object_id=str(statement.pk),
            at=at,
            before={"status": StatementStatus.APPROVED},
            after={**_snapshot(statement), "reference": reference},
        )
    return statement


# --- selectors -------------------------------------------------------------------------------------


def statement_list(*, tenant: Tenant, partner: Partner | None = None, month: date | None = None) -> QuerySet[Any]:
    qs = CommissionStatement.objects.filter(tenant=tenant).select_related("partner")
    if partner is not None:
        qs = qs.filter(partner=partner)
    if month is not None:
        qs = qs.filter(month=month_first(month))
    return qs.order_by("-month", "partner__code", "currency")


def statement_get(*, tenant: Tenant, pk: Any, partner: Partner | None = None) -> CommissionStatement:
    """The tenant's statement ``pk`` (of ``partner`` when given), or ``StatementNotFound``."""
    try:
        key = uuid.UUID(str(pk))
    except ValueError:
        raise StatementNotFound("No commission statement %s." % pk) from None
    found = statement_list(tenant=tenant, partner=partner).filter(pk=key).first()
    if found is None:
        raise StatementNotFound("No commission statement %s." % pk)
    return found


@dataclass(frozen=True)
class StatementLineRow:
    invoice: str  # the invoice's number
    invoice_id: Any
    customer: str  # the customer's external id
    customer_name: str
    leg: str
    net_collected: Decimal
    rate: Decimal
    amount: Decimal


def statement_lines(statement: CommissionStatement) -> list[StatementLineRow]:
    """The statement's lines with their invoices' numbers and customers, in invoice then leg order
    (one query)."""
    from partners.plans import LEGS

    rows = [
        StatementLineRow(
            invoice=line.invoice.number,
            invoice_id=line.invoice_id,
            customer=line.customer.external_id,
            customer_name=line.customer.name,
            leg=line.leg,
            net_collected=line.net_collected,
            rate=line.rate,
            amount=line.amount,
        )
        for line in statement.lines.select_related("invoice", "customer").only(
            "invoice__number", "customer__external_id", "customer__name", "leg", "net_collected", "rate", "amount"
        )
    ]
    return sorted(rows, key=lambda x: (x.invoice, LEGS.index(x.leg)))


@dataclass(frozen=True)
class MonthCommission:
    """A month of a partner's commission in one currency: its statement's total and status, or the
    current month's accrual so far (``status`` ``accruing``, never saved)."""

    month: date
    currency: str
    status: str
    total: Decimal
    statement_id: Any = None


def _unbuilt_months(*, tenant: Tenant, month: date) -> list[date]:
    """The months of the ``CATCH_UP_MONTHS`` before ``month`` that have no statement yet (the
    schedule builds them), oldest first."""
    months = [month_before(month)]
    while len(months) < CATCH_UP_MONTHS:
        months.insert(0, month_before(months[0]))
    built = set(
        CommissionStatement.objects.filter(tenant=tenant, month__in=months).values_list("month", flat=True).distinct()
    )
    return [m for m in months if m not in built]


def _live(
    *, tenant: Tenant, partners: Sequence[Partner], month: date, end: datetime
) -> tuple[dict[tuple[Any, str], list[LineDraft]], dict[date, dict[tuple[Any, str], list[LineDraft]]]]:
    """What ``partners`` accrue in ``month`` up to ``end``, as its statement will take it once the
    months before it without a statement yet are built; and what those months will take, under the
    latest of them (one computation for them all: each takes what the ones before it left)."""
    unbuilt = _unbuilt_months(tenant=tenant, month=month)
    pending: dict[date, dict[tuple[Any, str], list[LineDraft]]] = {}
    if unbuilt:
        pending[unbuilt[-1]] = commission_lines_compute(
            tenant_id=tenant.pk, tz=tenant.timezone, partners=partners, month=unbuilt[-1]
        )
    live = commission_lines_compute(
        tenant_id=tenant.pk,
        tz=tenant.timezone,
        partners=partners,
        month=month,
        end=end,
        pending=[x for lines in pending.values() for group in lines.values() for x in group],
    )
    return live, pending


@replica_report
def commissions_by_month(
    *, tenant: Tenant, partner: Partner, at: datetime, months: int = MONTHS_SHOWN
) -> list[MonthCommission]:
    """The partner's last ``months`` months, oldest first: each statement's total and status, and,
    not saved, what the months ended without a statement yet will take and the current month's
    commission accrued so far (status ``accruing``): the money of a month not built yet is that
    month's, never the current one's. Months without a statement or an accrual are left out."""
    current = current_month(tenant=tenant, at=at)
    first = current
    for _ in range(months - 1):
        first = month_before(first)
    rows = [
        MonthCommission(s.month, s.currency, s.status, s.total, s.pk)
        for s in CommissionStatement.objects.filter(tenant=tenant, partner=partner, month__gte=first).order_by(
            "month", "currency"
        )
    ]
    live, unbuilt = _live(tenant=tenant, partners=[partner], month=current, end=at)
    for month, computed in [*unbuilt.items(), (current, live)]:
        if month < first:
            continue
        for (_, currency), lines in sorted(computed.items(), key=lambda kv: kv[0][1]):
            rows.append(MonthCommission(month, currency, "accruing", lines_total(lines)))
    return sorted(rows, key=lambda x: (x.month, x.currency))


@dataclass(frozen=True)
class PartnerCommission:
    """One partner's commission for a month in one currency: its statement's, or, before it is
    built (the month still running, or not built yet), what it would take now."""

    partner: Partner
    currency: str
    status: str  # draft | approved | paid | accruing (not built)
    total: Decimal
    net_collected: Decimal
    lines: int
    statement_id: Any = None


@replica_report
def commission_report(
    *, tenant: Tenant, month: date, at: datetime, partners: Collection[Any] | None = None
) -> list[PartnerCommission]:
    """Every partner's commission for ``month``, by partner code then currency: the statements of
    the month, and for each partner and currency without one yet, the accrual as of the month's end
    or of ``at`` (whichever comes first), computed as its statement will be (after the months before
    it not built yet). A month that has not begun has nothing. ``partners`` (ids): only theirs, each
    partner's rows the same as in the whole report."""
    month = month_first(month)
    start, month_end = month_bounds(month, tenant.timezone)
    if start > at:
        return []
    chosen = Partner.objects.filter(tenant=tenant)
    statements = CommissionStatement.objects.filter(tenant=tenant, month=month)
    if partners is not None:
        chosen = chosen.filter(pk__in=list(partners))
        statements = statements.filter(partner_id__in=list(partners))
    partners = list(chosen.order_by("code"))
    saved = {
        (row["partner_id"], row["currency"]): row
        for row in statements.values("partner_id", "currency", "status", "total", "id").annotate(
            net=Sum("lines__net_collected"), count=Count("lines")
        )
    }
    live = _live(tenant=tenant, partners=partners, month=month, end=min(month_end, at))[0] if partners else {}
    by_id = {p.pk: p for p in partners}
    out = []
    for key, row in saved.items():
        out.append(
            PartnerCommission(
                partner=by_id[key[0]],
                currency=key[1],
                status=row["status"],
                total=row["total"],
                net_collected=row["net"] or Decimal(0),
                lines=row["count"],
                statement_id=row["id"],
            )
        )
    for key, lines in live.items():
        if key in saved:
            continue
        out.append(
            PartnerCommission(
                partner=by_id[key[0]],
                currency=key[1],
                status="accruing",
                total=lines_total(lines),
                net_collected=sum((x.net_collected for x in lines), Decimal(0)),
                lines=len(lines),
            )
        )
    return sorted(out, key=lambda x: (x.partner.code, x.currency))


def statements_build_scheduled(*, tenant: Tenant, at: datetime) -> list[CommissionStatement]:
    """The schedule, for one tenant (hourly): the drafts of every ended month of the last
    ``CATCH_UP_MONTHS`` that has no statement yet (a missed 1st is caught up on the next pass; a
    month without commission stays without), oldest first; and on the 1st of the month in the
    tenant's time zone, the month before's again each pass (drafts are computed afresh, an unchanged
    one is left as it is, an approved one never changes). Returns the statements of the months
    built."""
    current = current_month(tenant=tenant, at=at)
    months = [month_before(current)]
    while len(months) < CATCH_UP_MONTHS:
        months.insert(0, month_before(months[0]))
    first_day = at.astimezone(_zone(tenant)).date().day == 1
    built = set(
        CommissionStatement.objects.filter(tenant=tenant, month__in=months).values_list("month", flat=True).distinct()
    )
    out: list[CommissionStatement] = []
    for month in months:
        if month in built and not (first_day and month == months[-1]):
            continue
        out.extend(statements_build(tenant=tenant, month=month, actor=Actor.system("schedule"), at=at))
    return out
