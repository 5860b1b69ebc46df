"""Usage revenue: each usage period's amount, rated so far while the period is open, then as
invoiced, recognized by day over the period; the difference posts in the month being run."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Sum

from invoicing.models import Invoice
from invoicing.services import credit_note_create, invoice_finalize, invoice_generate
from revrec.models import Contract, JournalLine, PerformanceObligation, RecognitionEntry
from revrec.runs import recognition_run
from revrec.tests.conftest import PARIS
from subscriptions.models import Subscription
from subscriptions.tests.factories import ACTOR
from tenancy.models import Tenant
from usage.ingest import events_ingest
from usage.partitions import forget_known_partitions

MARCH, APRIL, MAY = date(2026, 3, 1), date(2026, 4, 1), date(2026, 5, 1)


@pytest.fixture(autouse=True)
def _partitions() -> Any:
    forget_known_partitions()
    yield
    forget_known_partitions()


def send(tenant: Tenant, received: datetime, *events: tuple[str, str, datetime, int]) -> None:
    """Events of meter ``data_mb``: (transaction id, device, time, MB)."""
    result = events_ingest(
        tenant=tenant,
        received_at=received,
        events=[
            {
                "transaction_id": tid,
                "code": "data_mb",
                "device_id": d,
                "timestamp": ts.isoformat(),
                "properties": {"mb": mb},
            }
            for tid, d, ts, mb in events
        ],
    )
    assert result.count("accepted") == len(events)


def usage_recognized(period: date) -> dict[date, Decimal]:
    """What ``period`` recognized of each usage obligation, by the usage period's first day."""
    return {
        e.obligation.starts_on: e.amount.amount
        for e in RecognitionEntry.objects.filter(period=period, obligation__kind="usage").select_related("obligation")
        if e.obligation.starts_on is not None
    }


def usage_journal(period: date) -> tuple[Decimal, Decimal]:
    """(debits, credits) of revenue: usage in ``period``."""
    sums = JournalLine.objects.filter(entry__period=period, account="revenue_usage").aggregate(
        d=Sum("debit"), c=Sum("credit")
    )
    return sums["d"] or Decimal(0), sums["c"] or Decimal(0)


@pytest.mark.django_db
def test_usage_rated_so_far_then_trued_up_to_the_invoice_then_down_by_a_credit_note(
    tenant: Tenant, fleet: Subscription, fleet_contract: Contract
) -> None:
    # given: A's 3000 MB of March, the only usage when March is run; A and B active (2 x 1024 free)
    send(tenant, datetime(2026, 3, 31, 12, tzinfo=PARIS), ("a1", "A", datetime(2026, 3, 16, 11, tzinfo=PARIS), 3000))
    # when: the March run, the period 1-31 March still open (not invoiced)
    report = recognition_run(tenant_id=tenant.pk, month=MARCH, at=datetime(2026, 3, 31, 23, tzinfo=PARIS))
    # then: (3000 - 2048) = 952 MB x 0.010 = 9.52 rated so far, all of it March's (31 of 31 days)
    assert usage_recognized(MARCH) == {MARCH: Decimal("9.52")}
    assert report.revenue[("EUR", "usage")] == Decimal("9.52")
    usage = PerformanceObligation.objects.get(kind="usage")
    assert (usage.product_code, usage.device_id, usage.pattern) == ("data-overage", "", "ratable")
    assert (usage.starts_on, usage.ends_on, usage.allocated.amount) == (MARCH, APRIL, Decimal("9.52"))

    # B's 800 MB of 25 March arrive at 00:10 on 1 April, before the bill run: the invoice bills
    # (3800 - 2048) = 1752 MB x 0.010 = 17.52
    send(tenant, datetime(2026, 4, 1, 0, 10, tzinfo=PARIS), ("b1", "B", datetime(2026, 3, 25, 11, tzinfo=PARIS), 800))
    invoice = invoice_generate(customer=fleet.customer, billing_date=APRIL, at=datetime(2026, 4, 1, 1, tzinfo=PARIS))
    assert invoice is not None
    invoice_finalize(invoice=invoice, actor=ACTOR, at=datetime(2026, 4, 1, 9, tzinfo=PARIS))

    # the April run: the March period is invoiced at 17.52, 9.52 recognized: +8.00 posts in April
    recognition_run(tenant_id=tenant.pk, month=APRIL, at=datetime(2026, 5, 1, 6, tzinfo=PARIS))
    assert usage_recognized(APRIL) == {MARCH: Decimal("8.00")}
    assert usage_journal(APRIL) == (Decimal(0), Decimal("8.00"))
    usage.refresh_from_db()
    assert usage.allocated.amount == Decimal("17.52")

    # a credit note of 5.00 on the usage line on 5 May: 12.52 invoiced for March's usage
    usage_line = invoice.lines.get(type="usage")
    note = credit_note_create(
        invoice=Invoice.objects.get(pk=invoice.pk),
        actor=ACTOR,
        at=datetime(2026, 5, 5, 10, tzinfo=PARIS),
        lines=[{"line": usage_line.pk, "amount": "5.00"}],
    )
    # its journal: Dr contract balance 5.00, Dr tax payable 1.00 (20 %) / Cr receivable 6.00
    assert {
        (x.account, x.debit.amount, x.credit.amount) for x in JournalLine.objects.filter(entry__source_id=str(note.pk))
    } == {
        ("contract_balance", Decimal("5.00"), Decimal(0)),
        ("tax_payable", Decimal("1.00"), Decimal(0)),
        ("receivable", Decimal(0), Decimal("6.00")),
    }
    # the May run: 12.52 - 17.52 = -5.00, a negative true-up: Dr revenue usage 5.00
    recognition_run(tenant_id=tenant.pk, month=MAY, at=datetime(2026, 6, 1, 6, tzinfo=PARIS))
    assert usage_recognized(MAY) == {MARCH: Decimal("-5.00")}
    assert usage_journal(MAY) == (Decimal("5.00"), Decimal(0))
    # over the three runs, March's usage recognized 9.52 + 8.00 - 5.00 = 12.52, what it was billed
    assert sum(e.amount.amount for e in usage.entries.all()) == Decimal("12.52")
    # running May again changes nothing
    again = recognition_run(tenant_id=tenant.pk, month=MAY, at=datetime(2026, 6, 1, 7, tzinfo=PARIS))
    assert (again.entries, again.journal_entries) == (0, 0)


@pytest.mark.django_db
def test_a_run_repeated_after_more_usage_adds_the_difference_to_its_month(
    tenant: Tenant, fleet: Subscription, fleet_contract: Contract
) -> None:
    send(tenant, datetime(2026, 3, 20, 12, tzinfo=PARIS), ("a1", "A", datetime(2026, 3, 16, 11, tzinfo=PARIS), 3000))
    recognition_run(tenant_id=tenant.pk, month=MARCH, at=datetime(2026, 3, 20, 13, tzinfo=PARIS))
    # 952 MB x 0.010 = 9.52; 500 MB more: 1452 x 0.010 = 14.52, so the March entry grows by 5.00
    send(tenant, datetime(2026, 3, 25, 12, tzinfo=PARIS), ("a2", "A", datetime(2026, 3, 24, 11, tzinfo=PARIS), 500))
    report = recognition_run(tenant_id=tenant.pk, month=MARCH, at=datetime(2026, 3, 25, 13, tzinfo=PARIS))
    assert report.revenue == {("EUR", "usage"): Decimal("5.00")}
    assert usage_recognized(MARCH) == {MARCH: Decimal("14.52")}
    # the journal holds both postings: 9.52 then 5.00
    assert usage_journal(MARCH) == (Decimal(0), Decimal("14.52"))


@pytest.mark.django_db
def test_a_run_restricted_to_some_contracts_posts_only_theirs(
    tenant: Tenant, fleet: Subscription, fleet_contract: Contract
) -> None:
    send(tenant, datetime(2026, 3, 31, 12, tzinfo=PARIS), ("a1", "A", datetime(2026, 3, 16, 11, tzinfo=PARIS), 3000))
    other = Contract(pk="00000000-0000-0000-0000-000000000001")
    assert (
        recognition_run(
            tenant_id=tenant.pk, month=MARCH, at=datetime(2026, 4, 1, 6, tzinfo=PARIS), contract_ids=[other.pk]
        ).entries
        == 0
    )
    assert not PerformanceObligation.objects.filter(kind="usage").exists()
    # the same run over the contract: hardware A, B, service A, B and the usage, 514.30 + 9.52
    report = recognition_run(
        tenant_id=tenant.pk, month=MARCH, at=datetime(2026, 4, 1, 6, tzinfo=PARIS), contract_ids=[fleet_contract.pk]
    )
    assert report.entries == 5
    assert sum(report.revenue.values(), Decimal(0)) == Decimal("523.82")
