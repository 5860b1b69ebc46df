"""Contract balances (specs/revrec.md), read from the journal: per contract and currency at a date,

- billed: what invoices credited to the contract balance (their net), less credit notes and voids;
- recognized: what recognition runs debited to it (net of negative true-ups);
- balance = billed - recognized: positive is deferred revenue (a contract liability: billed, not
  yet delivered), negative a contract asset (delivered, not yet billed).

An entry counts from its date, or from the first day of the period it posted in when that is
later (a correction of a closed month posts in the next open one: the closed month's balances do
not move). Entries of no contract (invoice lines outside any contract) are not in any contract's
balance; their net is reported apart, per currency (``unassigned``).
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import DecimalField, F, Q, Sum, Value
from django.db.models.functions import Coalesce, Greatest

from billing_platform.db_router import replica_report
from revrec.models import Account, JournalLine, JournalSource

BILLING_SOURCES = (JournalSource.INVOICE, JournalSource.CREDIT_NOTE, JournalSource.INVOICE_VOID)


@dataclass(frozen=True)
class ContractBalance:
    contract_id: Any
    currency: str
    billed: Decimal
    recognized: Decimal

    @property
    def balance(self) -> Decimal:
        return self.billed - self.recognized

    @property
    def deferred_revenue(self) -> Decimal:
        return max(self.balance, Decimal(0))

    @property
    def contract_asset(self) -> Decimal:
        return max(-self.balance, Decimal(0))


@dataclass(frozen=True)
class BalanceTotals:
    """Per currency: deferred revenue and contract assets are summed apart, never netted."""

    deferred_revenue: Decimal = Decimal(0)
    contract_asset: Decimal = Decimal(0)


@dataclass(frozen=True)
class ContractBalances:
    on: date
    contracts: list[ContractBalance]
    totals: dict[str, BalanceTotals] = field(default_factory=dict)
    unassigned: dict[str, Decimal] = field(default_factory=dict)  # billed outside any contract


@replica_report
def contract_balances(*, tenant_id: Any, on: date) -> ContractBalances:
    """Every contract's balance at the end of ``on`` and the totals per currency, in one query."""
    zero = Value(Decimal(0), output_field=DecimalField())
    signed = F("credit") - F("debit")
    rows = (
        JournalLine.objects.filter(tenant_id=tenant_id, account=Account.CONTRACT_BALANCE)
        .annotate(effective=Greatest("entry__date", "entry__period"))
        .filter(effective__lte=on)
        .values("entry__contract_id", "currency")
        .annotate(
            billed=Coalesce(Sum(signed, filter=Q(entry__source_type__in=BILLING_SOURCES)), zero),
            recognized=Coalesce(Sum(-signed, filter=Q(entry__source_type=JournalSource.RECOGNITION)), zero),
        )
        .order_by("currency", "entry__contract_id")
    )
    contracts: list[ContractBalance] = []
    unassigned: dict[str, Decimal] = {}
    deferred: dict[str, Decimal] = defaultdict(Decimal)
    asset: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        if row["entry__contract_id"] is None:
            unassigned[row["currency"]] = row["billed"] - row["recognized"]
            continue
        balance = ContractBalance(row["entry__contract_id"], row["currency"], row["billed"], row["recognized"])
        contracts.append(balance)
        deferred[balance.currency] += balance.deferred_revenue
        asset[balance.currency] += balance.contract_asset
    totals = {c: BalanceTotals(deferred_revenue=deferred[c], contract_asset=asset[c]) for c in deferred}
    return ContractBalances(on=on, contracts=contracts, totals=totals, unassigned=unassigned)
