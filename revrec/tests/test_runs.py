from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Sum

from revrec.errors import PeriodClosed
from revrec.models import Contract, JournalEntry, JournalLine, RecognitionEntry, RevenuePeriod
from revrec.runs import recognition_run
from revrec.tests.conftest import END_OF_MARCH, PARIS
from tenancy.models import Tenant

MARCH = date(2026, 3, 1)
APRIL = date(2026, 4, 1)
RUN_AT = datetime(2026, 4, 1, 6, 0, tzinfo=PARIS)


def recognized(period: date) -> dict[tuple[str, str], Decimal]:
    return {
        (e.obligation.kind, e.obligation.device_id): e.amount.amount
        for e in RecognitionEntry.objects.filter(period=period).select_related("obligation")
    }


def journal(period: date) -> dict[str, tuple[Decimal, Decimal]]:
    sums: dict[str, Any] = {}
    for row in (
        JournalLine.objects.filter(entry__period=period)
        .values("account")
        .annotate(debit=Sum("debit"), credit=Sum("credit"))
    ):
        sums[row["account"]] = (row["debit"], row["credit"])
    return sums


@pytest.mark.django_db
def test_march_recognizes_the_hardware_and_the_days_of_service_of_a_and_b(
    tenant: Tenant, fleet_contract: Contract, django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(24):
        report = recognition_run(tenant_id=tenant.pk, month=MARCH, at=RUN_AT)
    # Hardware A and B at activation: 245.45 + 245.45 = 490.90. Service A: 294.54 x 17/365
    # (15-31 March of 15 Mar 2026 - 15 Mar 2027) = 13.7183... -> 13.72; B: 294.54 x 12/365
    # (20-31 March of 20 Mar 2026 - 20 Mar 2027, also 365 days) = 9.6835... -> 9.68. C waits.
    assert recognized(MARCH) == {
        ("hardware", "A"): Decimal("245.45"),
        ("hardware", "B"): Decimal("245.45"),
        ("service", "A"): Decimal("13.72"),
        ("service", "B"): Decimal("9.68"),
    }
    # 13.72 + 9.68 = 23.40; 490.90 + 23.40 = 514.30.
    assert (report.entries, report.journal_entries) == (4, 1)
    assert report.revenue == {("EUR", "hardware"): Decimal("490.90"), ("EUR", "service"): Decimal("23.40")}
    # Dr contract balance 514.30 / Cr hardware 490.90, Cr service 23.40: balanced.
    assert journal(MARCH) == {
        "contract_balance": (Decimal("514.30"), Decimal("0")),
        "revenue_hardware": (Decimal("0"), Decimal("490.90")),
        "revenue_service": (Decimal("0"), Decimal("23.40")),
    }
    entry = JournalEntry.objects.get()
    assert (entry.source_type, entry.contract_id, entry.date) == ("recognition", fleet_contract.pk, date(2026, 3, 31))


@pytest.mark.django_db
def test_running_march_again_changes_nothing(tenant: Tenant, fleet_contract: Contract) -> None:
    recognition_run(tenant_id=tenant.pk, month=MARCH, at=RUN_AT)
    before = (recognized(MARCH), journal(MARCH), JournalLine.objects.count())
    again = recognition_run(tenant_id=tenant.pk, month=MARCH, at=RUN_AT)
    assert (again.entries, again.revenue, again.journal_entries) == (0, {}, 0)
    assert (recognized(MARCH), journal(MARCH), JournalLine.objects.count()) == before
    assert before[2] == 3


@pytest.mark.django_db
def test_april_recognizes_the_difference_to_date(tenant: Tenant, fleet_contract: Contract) -> None:
    recognition_run(tenant_id=tenant.pk, month=MARCH, at=RUN_AT)
    recognition_run(tenant_id=tenant.pk, month=APRIL, at=datetime(2026, 5, 1, 6, 0, tzinfo=PARIS))
    # A to 1 May: 294.54 x 47/365 = 37.9271... -> 37.93, less March's 13.72 = 24.21.
    # B to 1 May: 294.54 x 42/365 = 33.8923... -> 33.89, less 9.68 = 24.21. No hardware again.
    assert recognized(APRIL) == {("service", "A"): Decimal("24.21"), ("service", "B"): Decimal("24.21")}
    # Every period's journal is balanced: 48.42 debited, 24.21 + 24.21 credited.
    assert journal(APRIL) == {
        "contract_balance": (Decimal("48.42"), Decimal("0")),
        "revenue_service": (Decimal("0"), Decimal("48.42")),
    }


@pytest.mark.django_db
def test_a_month_never_run_is_caught_up_by_the_next_run(tenant: Tenant, fleet_contract: Contract) -> None:
    # April is run first (March was never run, or a device of a closed March is dated late):
    # March's hardware and service days post in April.
    recognition_run(tenant_id=tenant.pk, month=APRIL, at=RUN_AT)
    # A to 1 May 37.93, B 33.89; hardware A and B 245.45 each.
    assert recognized(APRIL) == {
        ("hardware", "A"): Decimal("245.45"),
        ("hardware", "B"): Decimal("245.45"),
        ("service", "A"): Decimal("37.93"),
        ("service", "B"): Decimal("33.89"),
    }
    # A late March run then finds nothing left to recognize through March.
    assert recognition_run(tenant_id=tenant.pk, month=MARCH, at=RUN_AT).entries == 0


@pytest.mark.django_db
def test_a_closed_period_refuses_a_run(tenant: Tenant, fleet_contract: Contract) -> None:
    RevenuePeriod.objects.create(tenant=tenant, month=MARCH, closed_at=END_OF_MARCH)
    with pytest.raises(PeriodClosed) as error:
        recognition_run(tenant_id=tenant.pk, month=MARCH, at=RUN_AT)
    assert (error.value.status, error.value.code) == (409, "revenue_period_closed")
    assert not RecognitionEntry.objects.exists()
    assert not JournalEntry.objects.exists()


@pytest.mark.django_db
def test_a_run_only_posts_its_tenant(tenant: Tenant, other_tenant: Tenant, fleet_contract: Contract) -> None:
    assert recognition_run(tenant_id=other_tenant.pk, month=MARCH, at=RUN_AT).entries == 0
    assert not RecognitionEntry.objects.exists()
