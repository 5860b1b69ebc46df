"""The revenue journal's writer (specs/revrec.md): balanced postings, written set-based.

A posting is one journal entry: its source (the document or run that made it), the contract it
belongs to (none for receivables and cash), its date and the period it posts in, and its lines as
signed amounts, positive a debit and negative a credit. A line whose amount is negative posts on
the other side (a negative usage true-up debits revenue and credits the contract balance): a
journal line holds one side only, never a negative amount. Zero lines are left out.

- ``journal_post`` writes any number of postings in two statements: the entries (``INSERT ...
  ON CONFLICT DO NOTHING RETURNING``), then their lines. A document's entry is unique per
  (source type, source, contract): a receiver called twice for one document posts it once.
- ``posting_period`` places a posting: the month of its date, or when that month is closed the
  first open month after it (corrections post in the open period, a closed period never changes).

What the documents post (invoicing and payments announce them, ``revrec.receivers``):

- an invoice, per contract its lines belong to (lines grouped by subscription, the subscription's
  contract; lines of no contract together, contract empty): Dr receivable (gross) / Cr tax
  payable / Cr contract balance (net). Each VAT amount of the invoice is split between its
  contracts in proportion to their lines taxed in that category (largest remainder, so the parts
  add up to the invoice's tax); one contract takes it all. Dated the issue date.
- a credit note: the same from its own lines and taxes, reversed (Dr contract balance, Dr tax
  payable / Cr receivable). Dated its issue date.
- a void: the invoice's entries reversed line by line, dated the day of the void (in the
  tenant's time zone); an invoice never journaled (finalized before the journal existed) reverses
  nothing.
- a payment: Dr cash / Cr receivable, for the whole amount received, dated the day it was
  received; the part beyond what invoices owed goes to the customer's credit balance and stays on
  the receivable account (a credit there), so a later invoice settled from the balance needs no
  entry. A refund reverses it: Dr receivable / Cr cash, dated the day of the refund.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Sum

from billing_platform.money import allocate
from billing_platform.periods import local_date
from catalog.vat import rated_vat_category
from invoicing.lines import line_signed_amount
from invoicing.models import Invoice, InvoiceLine, InvoiceTax
from payments.models import Payment, Refund
from revrec.models import Account, JournalEntry, JournalLine, JournalSource, RevenuePeriod
from revrec.schedules import month_of, next_month
from tenancy.models import Tenant

# Recognition posts one entry per contract and run (a run repeated after a true-up posts the
# difference as another entry); every other source once per document and contract.
UNIQUE_SOURCES = tuple(s for s in JournalSource if s != JournalSource.RECOGNITION)

_INSERT_ENTRIES = """
INSERT INTO revrec_journalentry
    (tenant_id, period, date, source_type, source_id, contract_id, currency, created_at)
SELECT t.tenant, t.period, t.day, t.source_type, t.source_id, t.contract, t.currency, %(at)s
FROM unnest(
    %(tenants)s::uuid[], %(periods)s::date[], %(days)s::date[], %(source_types)s::varchar[],
    %(source_ids)s::varchar[], %(contracts)s::uuid[], %(currencies)s::varchar[], %(positions)s::int[]
) AS t(tenant, period, day, source_type, source_id, contract, currency, position)
ORDER BY t.position
ON CONFLICT DO NOTHING
RETURNING id, source_type, source_id, contract_id, period, currency
"""


@dataclass
class Posting:
    """One journal entry to write: ``lines`` maps an account to its signed amount (debit positive).
    The lines of a posting add up to zero."""

    tenant_id: Any
    period: date
    date: date
    source_type: str
    source_id: str
    contract_id: Any
    currency: str
    lines: dict[str, Decimal] = field(default_factory=dict)

    def add(self, account: str, amount: Decimal) -> None:
        self.lines[account] = self.lines.get(account, Decimal(0)) + amount

    @property
    def balanced(self) -> bool:
        return sum(self.lines.values(), Decimal(0)) == 0


def _sides(amount: Decimal) -> tuple[Decimal, Decimal]:
    """(debit, credit) of a signed amount."""
    return (amount, Decimal(0)) if amount > 0 else (Decimal(0), -amount)


def journal_post(postings: Sequence[Posting], *, at: datetime) -> list[JournalEntry]:
    """Write ``postings`` (each balanced; those with nothing but zero lines are left out) in two
    statements, whatever their number. A document already posted for that contract is skipped.
    Returns the entries written (with ``id``, ``source_type``, ``source_id``, ``contract_id``)."""
    postings = [p for p in postings if any(v != 0 for v in p.lines.values())]
    for p in postings:
        if not p.balanced:
            raise ValueError("a journal entry's debits equal its credits: %s %s" % (p.source_type, p.source_id))
    if not postings:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_ENTRIES,
            {
                "at": at,
                "tenants": [str(p.tenant_id) for p in postings],
                "periods": [p.period for p in postings],
                "days": [p.date for p in postings],
                "source_types": [p.source_type for p in postings],
                "source_ids": [p.source_id for p in postings],
                "contracts": [None if p.contract_id is None else str(p.contract_id) for p in postings],
                "currencies": [p.currency for p in postings],
                "positions": list(range(len(postings))),
            },
        )
        returned = cursor.fetchall()
    # Each posting of one call is one (source, contract, period, currency): matched by it, not by
    # the order rows come back in.
    by_key = {(p.source_type, p.source_id, _key(p.contract_id), p.period, p.currency): p for p in postings}
    if len(by_key) != len(postings):
        raise ValueError("one posting per source, contract, period and currency")
    entries: list[JournalEntry] = []
    lines: list[JournalLine] = []
    for entry_id, source_type, source_id, contract_id, period, currency in returned:
        posting = by_key[(source_type, source_id, _key(contract_id), period, currency)]
        entry = JournalEntry(
            id=entry_id,
            tenant_id=posting.tenant_id,
            period=posting.period,
            date=posting.date,
            source_type=source_type,
            source_id=source_id,
            contract_id=contract_id,
            currency=posting.currency,
            created_at=at,
        )
        entries.append(entry)
        for account, amount in posting.lines.items():
            if amount == 0:
                continue
            debit, credit = _sides(amount)
            lines.append(
                JournalLine(
                    tenant_id=posting.tenant_id,
                    entry_id=entry_id,
                    account=account,
                    currency=posting.currency,
                    debit=debit,
                    credit=credit,
                )
            )
    JournalLine.objects.bulk_create(lines)
    return entries


def _key(contract_id: Any) -> str:
    return "" if contract_id is None else str(contract_id)


@dataclass(frozen=True)
class OpenPeriods:
    """The closed months of some tenants (one query), to place postings in open ones."""

    closed: Mapping[Any, frozenset[date]]

    @classmethod
    def load(cls, *, tenant_ids: Iterable[Any], since: date) -> "OpenPeriods":
        closed: dict[Any, set[date]] = {}
        for tenant_id, month in RevenuePeriod.objects.filter(
            tenant_id__in=list(tenant_ids), month__gte=month_of(since), closed_at__isnull=False
        ).values_list("tenant_id", "month"):
            closed.setdefault(tenant_id, set()).add(month)
        return cls({k: frozenset(v) for k, v in closed.items()})

    def period(self, *, tenant_id: Any, day: date) -> date:
        """The month of ``day``, or the first open month after it when that one is closed."""
        return posting_period(day, closed=self.closed.get(tenant_id, frozenset()))


def posting_period(day: date, *, closed: frozenset[date] | set[date]) -> date:
    """``day``'s month, or the first month after it that is not in ``closed``: an invoice of
    31 March whose March is closed posts in April."""
    month = month_of(day)
    while month in closed:
        month = next_month(month)
    return month


def _tax_key(tax_category: str, vat_category: str) -> tuple[str, str]:
    return tax_category, vat_category or rated_vat_category(tax_category)


def _document_postings(
    documents: Sequence[Invoice], *, source_type: str, sign: int, periods: OpenPeriods
) -> list[Posting]:
    """Per document and contract: Dr receivable (gross) / Cr tax payable / Cr contract balance
    (net), times ``sign`` (-1 for a credit note). Two queries: the lines summed per document,
    contract, tax category and type, and the documents' taxes."""
    ids = [d.pk for d in documents]
    currency = {d.pk: d.currency for d in documents}
    # net per (document, contract) and base per (document, tax key, contract)
    nets: dict[Any, dict[Any, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    bases: dict[tuple[Any, tuple[str, str]], dict[Any, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in (
        InvoiceLine.objects.filter(invoice_id__in=ids)
        .values("invoice_id", "subscription__revenue_contract__id", "tax_category", "vat_category", "type")
        .annotate(amount=Sum("amount"))
        .order_by("invoice_id", "subscription__revenue_contract__id", "tax_category", "vat_category", "type")
    ):
        contract = row["subscription__revenue_contract__id"]
        amount = line_signed_amount(row["type"], row["amount"])
        nets[row["invoice_id"]][contract] += amount
        bases[(row["invoice_id"], _tax_key(row["tax_category"], row["vat_category"]))][contract] += amount
    taxes: dict[Any, dict[Any, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for invoice_id, category, vat_category, amount in InvoiceTax.objects.filter(invoice_id__in=ids).values_list(
        "invoice_id", "category", "vat_category", "amount"
    ):
        contracts = bases.get((invoice_id, _tax_key(category, vat_category))) or nets.get(invoice_id)
        if not contracts:
            continue
        keys = list(contracts)
        parts = allocate(abs(amount), [abs(contracts[k]) for k in keys], currency[invoice_id])
        for key, part in zip(keys, parts, strict=True):
            taxes[invoice_id][key] += part if amount >= 0 else -part
    postings = []
    for document in documents:
        day = document.issue_date
        for contract, net in nets.get(document.pk, {}).items():
            tax = taxes[document.pk].get(contract, Decimal(0))
            posting = Posting(
                tenant_id=document.tenant_id,
                period=periods.period(tenant_id=document.tenant_id, day=day),
                date=day,
                source_type=source_type,
                source_id=str(document.pk),
                contract_id=contract,
                currency=document.currency,
            )
            posting.add(Account.RECEIVABLE, sign * (net + tax))
            posting.add(Account.TAX_PAYABLE, -sign * tax)
            posting.add(Account.CONTRACT_BALANCE, -sign * net)
            postings.append(posting)
    return postings


def invoices_journal_post(*, invoices: Sequence[Invoice], at: datetime) -> list[JournalEntry]:
    """The journal of invoices just finalized (any number: a bill run's), per invoice and
    contract, in five statements whatever their number."""
    if not invoices:
        return []
    periods = OpenPeriods.load(tenant_ids={i.tenant_id for i in invoices}, since=min(i.issue_date for i in invoices))
    return journal_post(_document_postings(invoices, source_type=JournalSource.INVOICE, sign=1, periods=periods), at=at)


def credit_note_journal_post(*, note: Invoice, at: datetime) -> list[JournalEntry]:
    """A credit note's journal: its invoice's postings reversed for what it credits."""
    periods = OpenPeriods.load(tenant_ids=[note.tenant_id], since=note.issue_date)
    return journal_post(
        _document_postings([note], source_type=JournalSource.CREDIT_NOTE, sign=-1, periods=periods), at=at
    )


def invoice_void_journal_post(*, invoice: Invoice, at: datetime) -> list[JournalEntry]:
    """A voided invoice's entries reversed, line by line, on the day of the void."""
    day = local_date(at, Tenant.objects.only("timezone").get(pk=invoice.tenant_id).timezone)
    periods = OpenPeriods.load(tenant_ids=[invoice.tenant_id], since=day)
    postings: dict[Any, Posting] = {}
    for line in JournalLine.objects.filter(
        tenant_id=invoice.tenant_id, entry__source_type=JournalSource.INVOICE, entry__source_id=str(invoice.pk)
    ).select_related("entry"):
        posting = postings.get(line.entry_id)
        if posting is None:
            posting = postings[line.entry_id] = Posting(
                tenant_id=invoice.tenant_id,
                period=periods.period(tenant_id=invoice.tenant_id, day=day),
                date=day,
                source_type=JournalSource.INVOICE_VOID,
                source_id=str(invoice.pk),
                contract_id=line.entry.contract_id,
                currency=line.entry.currency,
            )
        posting.add(line.account, line.credit.amount - line.debit.amount)
    return journal_post(list(postings.values()), at=at)


def _money_posting(
    *, tenant_id: Any, source_type: str, source_id: str, currency: str, amount: Decimal, day: date
) -> Posting:
    periods = OpenPeriods.load(tenant_ids=[tenant_id], since=day)
    posting = Posting(
        tenant_id=tenant_id,
        period=periods.period(tenant_id=tenant_id, day=day),
        date=day,
        source_type=source_type,
        source_id=source_id,
        contract_id=None,
        currency=currency,
    )
    posting.add(Account.CASH, amount)
    posting.add(Account.RECEIVABLE, -amount)
    return posting


def payment_journal_post(*, payment: Payment, at: datetime) -> list[JournalEntry]:
    """Dr cash / Cr receivable for the whole payment, on the day it was received (tenant's zone)."""
    tz = Tenant.objects.only("timezone").get(pk=payment.tenant_id).timezone
    posting = _money_posting(
        tenant_id=payment.tenant_id,
        source_type=JournalSource.PAYMENT,
        source_id=str(payment.pk),
        currency=payment.currency,
        amount=payment.amount.amount,
        day=local_date(payment.received_at, tz),
    )
    return journal_post([posting], at=at)


def refund_journal_post(*, refund: Refund, at: datetime) -> list[JournalEntry]:
    """Dr receivable / Cr cash for the refund, on the day it was made (tenant's zone)."""
    tz = Tenant.objects.only("timezone").get(pk=refund.tenant_id).timezone
    posting = _money_posting(
        tenant_id=refund.tenant_id,
        source_type=JournalSource.REFUND,
        source_id=str(refund.pk),
        currency=refund.currency,
        amount=-refund.amount.amount,
        day=local_date(at, tz),
    )
    return journal_post([posting], at=at)
