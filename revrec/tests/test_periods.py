"""Recognition runs by chunks of contracts, the schedule, and closing a month (revrec.periods)."""

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import IntegrityError, transaction

from revrec import periods
from revrec.contracts import contract_from_subscription
from revrec.errors import (
    EarlierPeriodOpen,
    PeriodClosed,
    PeriodNotEnded,
    PeriodNotFound,
    PeriodNotRecognized,
    RunInProgress,
)
from revrec.models import Contract, JournalEntry, JournalLine, RecognitionRun, RevenuePeriod
from revrec.periods import (
    period_close,
    period_list,
    posting_period,
    recognition_run_create,
    recognition_run_execute,
    recognition_runs_start_scheduled,
)
from revrec.tests.conftest import PARIS
from subscriptions.models import Subscription
from subscriptions.tests.factories import signed_subscription
from tenancy.actors import Actor
from tenancy.models import Tenant
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db

FEBRUARY = date(2026, 2, 1)
MARCH = date(2026, 3, 1)
APRIL = date(2026, 4, 1)
RUN_AT = datetime(2026, 4, 1, 6, 0, tzinfo=PARIS)
ACTOR = Actor.system("tests")
# Smart Fleet's March (A and B activated): hardware 245.45 + 245.45 = 490.90, service A 13.72 + B 9.68 = 23.40.
MARCH_REVENUE = [
    {"currency": "EUR", "stream": "hardware", "amount": "490.90"},
    {"currency": "EUR", "stream": "service", "amount": "23.40"},
]


def run_month(tenant: Tenant, month: date, at: datetime = RUN_AT) -> RecognitionRun:
    run = recognition_run_create(tenant=tenant, month=month, actor=ACTOR, at=at)
    return recognition_run_execute(run_id=run.pk, at=at)


def journal_entry(tenant: Tenant, period: date, amount: str, source_id: str = "INV-1") -> JournalEntry:
    """A balanced invoice posting: Dr receivable / Cr contract balance."""
    entry = JournalEntry.objects.create(
        tenant=tenant,
        period=period,
        date=period,
        source_type="invoice",
        source_id=source_id,
        currency="EUR",
        created_at=RUN_AT,
    )
    JournalLine.objects.create(tenant=tenant, entry=entry, account="receivable", currency="EUR", debit=Decimal(amount))
    JournalLine.objects.create(
        tenant=tenant, entry=entry, account="contract_balance", currency="EUR", credit=Decimal(amount)
    )
    return entry


def second_contract(tenant: Tenant, fleet: Subscription) -> Contract:
    """Another contract of the same plan whose device D is not activated: it recognizes nothing."""
    other = signed_subscription(
        tenant, customer=fleet.customer, plan=fleet.plan, external_id="other", devices=("D",), starts_on=None
    )
    return contract_from_subscription(subscription=other, at=RUN_AT)


# --- runs -------------------------------------------------------------------------------------


def test_a_run_posts_the_month_by_chunks_and_counts_what_it_posted(
    tenant: Tenant, fleet_contract: Contract, monkeypatch: pytest.MonkeyPatch, django_assert_max_num_queries: Any
) -> None:
    # given: two contracts, chunks of one
    second_contract(tenant, fleet_contract.subscription)
    monkeypatch.setattr(periods, "CHUNK_SIZE", 1)
    run = recognition_run_create(tenant=tenant, month=MARCH, actor=ACTOR, at=RUN_AT)
    assert (run.status, run.done, run.total) == ("queued", 0, 0)
    # when: a bounded number of queries per chunk, whatever the contracts in it (and one statement
    # bringing the contracts up to date before the first chunk)
    with django_assert_max_num_queries(61):
        run = recognition_run_execute(run_id=run.pk, at=RUN_AT)
    # then: 2 chunks of 1 contract; the fleet's 4 obligations posted (hardware A, B; service A, B),
    # one journal entry: 490.90 + 23.40 = 514.30
    assert (run.status, run.done, run.total, run.entries, run.journal_entries) == ("succeeded", 2, 2, 4, 1)
    assert run.revenue == MARCH_REVENUE
    assert (run.started_at, run.finished_at, run.error) == (RUN_AT, RUN_AT, "")


def test_running_a_month_again_posts_nothing_more(tenant: Tenant, fleet_contract: Contract) -> None:
    first = run_month(tenant, MARCH)
    lines = JournalLine.objects.count()
    again = run_month(tenant, MARCH)
    assert (first.entries, again.status, again.done, again.entries, again.revenue) == (4, "succeeded", 1, 0, [])
    assert JournalLine.objects.count() == lines == 3  # Dr contract balance, Cr hardware, Cr service


def test_one_active_run_per_month(tenant: Tenant, fleet_contract: Contract) -> None:
    first = recognition_run_create(tenant=tenant, month=MARCH, actor=ACTOR, at=RUN_AT)
    with pytest.raises(RunInProgress, match="A recognition run of 2026-03 is already queued.") as caught:
        recognition_run_create(tenant=tenant, month=MARCH, actor=ACTOR, at=RUN_AT)
    assert caught.value.extra == {"period": "2026-03", "run": str(first.pk)}
    # another month may run meanwhile, and the month again once the first has finished
    recognition_run_create(tenant=tenant, month=FEBRUARY, actor=ACTOR, at=RUN_AT)
    recognition_run_execute(run_id=first.pk, at=RUN_AT)
    assert recognition_run_create(tenant=tenant, month=MARCH, actor=ACTOR, at=RUN_AT).status == "queued"


def test_a_month_not_begun_cannot_run(tenant: Tenant) -> None:
    # 31 March 23:30 UTC is 1 April 01:30 in Paris: April has begun, May has not.
    at = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)
    assert recognition_run_create(tenant=tenant, month=APRIL, actor=ACTOR, at=at).month == APRIL
    with pytest.raises(PeriodNotEnded, match=r"The month 2026-05 has not begun in Europe/Paris"):
        recognition_run_create(tenant=tenant, month=date(2026, 5, 1), actor=ACTOR, at=at)


def test_a_failed_run_says_why_and_keeps_the_chunks_it_committed(
    tenant: Tenant, fleet_contract: Contract, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the fleet's contract first, then one whose chunk fails
    other = second_contract(tenant, fleet_contract.subscription)
    first, second = sorted([fleet_contract.pk, other.pk])
    monkeypatch.setattr(periods, "CHUNK_SIZE", 1)
    real = periods.recognition_run

    def failing(**kwargs: Any) -> Any:
        if list(kwargs["contract_ids"]) == [second]:
            raise ValueError("the ledger is on fire")
        return real(**kwargs)

    monkeypatch.setattr(periods, "recognition_run", failing)
    # when
    run = run_month(tenant, MARCH)
    # then: failed on its second chunk; the first chunk's postings stay (4 if the fleet came first)
    assert (run.status, run.error, run.done, run.total, run.finished_at) == (
        "failed",
        "the ledger is on fire",
        1,
        2,
        RUN_AT,
    )
    assert run.entries == (4 if first == fleet_contract.pk else 0)
    # started again (nothing fails now), it posts what is still due, once
    monkeypatch.setattr(periods, "recognition_run", real)
    again = run_month(tenant, MARCH)
    assert (again.status, again.entries + run.entries) == ("succeeded", 4)


def test_a_task_delivered_again_resumes_after_the_last_committed_chunk(
    tenant: Tenant, fleet_contract: Contract, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the worker dies (an exception that is not an error of the run) on the second chunk
    other = second_contract(tenant, fleet_contract.subscription)
    monkeypatch.setattr(periods, "CHUNK_SIZE", 1)
    real = periods.recognition_run
    calls: list[Any] = []

    def dying(**kwargs: Any) -> Any:
        calls.append(list(kwargs["contract_ids"]))
        if len(calls) == 2:
            raise SystemExit("worker killed")
        return real(**kwargs)

    monkeypatch.setattr(periods, "recognition_run", dying)
    run = recognition_run_create(tenant=tenant, month=MARCH, actor=ACTOR, at=RUN_AT)
    with pytest.raises(SystemExit):
        recognition_run_execute(run_id=run.pk, at=RUN_AT)
    run.refresh_from_db()
    assert (run.status, run.done, run.total) == ("running", 1, 2)
    # when: the task is delivered again
    run = recognition_run_execute(run_id=run.pk, at=RUN_AT)
    # then: the first chunk is not done twice; 2 of 2, the fleet's 4 entries counted once
    assert calls == sorted([[fleet_contract.pk], [other.pk]]) + [sorted([fleet_contract.pk, other.pk])[1:]]
    assert (run.status, run.done, run.total, run.entries) == ("succeeded", 2, 2, 4)
    assert run.revenue == MARCH_REVENUE


def test_the_schedule_runs_the_previous_month_once_after_the_local_midnight_of_the_1st(
    tenant: Tenant, fleet_contract: Contract
) -> None:
    # 31 March 23:30 Paris: still March, whose previous month is February.
    february = recognition_runs_start_scheduled(tenant=tenant, at=datetime(2026, 3, 31, 23, 30, tzinfo=PARIS))
    assert february is not None
    assert february.month == FEBRUARY
    # 1 April 00:15 Paris (22:15 UTC on 31 March): March's run, once.
    run = recognition_runs_start_scheduled(tenant=tenant, at=datetime(2026, 4, 1, 0, 15, tzinfo=PARIS))
    assert run is not None
    assert (run.month, run.status, run.requested_by) == (MARCH, "queued", "schedule")
    assert recognition_runs_start_scheduled(tenant=tenant, at=datetime(2026, 4, 1, 1, 15, tzinfo=PARIS)) is None
    recognition_run_execute(run_id=run.pk, at=RUN_AT)
    assert recognition_runs_start_scheduled(tenant=tenant, at=datetime(2026, 4, 2, 1, 15, tzinfo=PARIS)) is None


def test_the_beat_queues_one_task_per_tenant(tenant: Tenant, other_tenant: Tenant) -> None:
    from billing_platform.celery import app as celery_app
    from revrec.tasks import recognition_runs_scheduled_task

    celery_app.conf.task_always_eager = True
    try:
        with time_machine.travel(datetime(2026, 4, 1, 0, 15, tzinfo=PARIS), tick=False):
            assert recognition_runs_scheduled_task() == 2
    finally:
        celery_app.conf.task_always_eager = False
    # each tenant got its March run (queued: the run's own task waits for the commit)
    assert sorted(RecognitionRun.objects.values_list("tenant__slug", "month")) == sorted(
        [(tenant.slug, MARCH), (other_tenant.slug, MARCH)]
    )


# --- closing a month --------------------------------------------------------------------------


def test_closing_march_freezes_it_and_sends_its_revenue_and_journal(tenant: Tenant, fleet_contract: Contract) -> None:
    run_month(tenant, MARCH)
    closed_at = datetime(2026, 4, 2, 9, 0, tzinfo=PARIS)
    # when
    row = period_close(tenant=tenant, month=MARCH, actor=ACTOR, at=closed_at)
    # then
    assert (row.period, row.status, row.closed_at, row.revenue) == ("2026-03", "closed", closed_at, MARCH_REVENUE)
    event = WebhookEvent.objects.get(tenant=tenant, type="revenue.period_closed")
    assert json.loads(event.body)["data"] == {
        "period": "2026-03",
        "closed_at": "2026-04-02T07:00:00Z",
        "revenue": MARCH_REVENUE,
        # one entry: Dr contract balance 514.30 = Cr hardware 490.90 + Cr service 23.40
        "journal": [{"currency": "EUR", "entries": 1, "debit": "514.30", "credit": "514.30"}],
    }
    with pytest.raises(PeriodClosed, match="The revenue period 2026-03 is closed"):
        period_close(tenant=tenant, month=MARCH, actor=ACTOR, at=closed_at)
    with pytest.raises(PeriodClosed):
        recognition_run_create(tenant=tenant, month=MARCH, actor=ACTOR, at=closed_at)


def test_a_month_closes_only_after_a_successful_run_once_it_has_ended(tenant: Tenant, fleet_contract: Contract) -> None:
    with pytest.raises(PeriodNotFound, match="No recognition run of 2026-03: run it before closing it."):
        period_close(tenant=tenant, month=MARCH, actor=ACTOR, at=RUN_AT)
    queued = recognition_run_create(tenant=tenant, month=MARCH, actor=ACTOR, at=RUN_AT)
    with pytest.raises(PeriodNotRecognized, match="its latest recognition run is queued"):
        period_close(tenant=tenant, month=MARCH, actor=ACTOR, at=RUN_AT)
    recognition_run_execute(run_id=queued.pk, at=RUN_AT)
    with pytest.raises(PeriodNotEnded, match="The month 2026-03 has not ended in Europe/Paris."):
        period_close(tenant=tenant, month=MARCH, actor=ACTOR, at=datetime(2026, 3, 31, 23, 59, tzinfo=PARIS))
    assert period_close(tenant=tenant, month=MARCH, actor=ACTOR, at=RUN_AT).status == "closed"


def test_months_with_journal_entries_close_in_order(tenant: Tenant, fleet_contract: Contract) -> None:
    # given: an invoice posted in February (no revenue there), January without any entry
    journal_entry(tenant, FEBRUARY, "100.00")
    run_month(tenant, MARCH)
    # then: March waits for February; January, without entries, is no obstacle
    with pytest.raises(EarlierPeriodOpen, match="2026-03 cannot be closed before 2026-02") as caught:
        period_close(tenant=tenant, month=MARCH, actor=ACTOR, at=RUN_AT)
    assert caught.value.extra == {"period": "2026-03", "open_period": "2026-02"}
    run_month(tenant, FEBRUARY)
    period_close(tenant=tenant, month=FEBRUARY, actor=ACTOR, at=RUN_AT)
    assert period_close(tenant=tenant, month=MARCH, actor=ACTOR, at=RUN_AT).status == "closed"
    # the list: newest first, February's invoice is no revenue
    assert [(r.period, r.status, r.revenue, r.run.status if r.run else None) for r in period_list(tenant=tenant)] == [
        ("2026-03", "closed", MARCH_REVENUE, "succeeded"),
        ("2026-02", "closed", [], "succeeded"),
    ]


def test_the_database_refuses_any_change_to_a_closed_month(tenant: Tenant, fleet_contract: Contract) -> None:
    run_month(tenant, MARCH)
    period_close(tenant=tenant, month=MARCH, actor=ACTOR, at=RUN_AT)
    entry = JournalEntry.objects.get(tenant=tenant, period=MARCH)
    attempts = [
        lambda: journal_entry(tenant, MARCH, "1.00"),
        lambda: JournalLine.objects.filter(entry=entry).update(debit=Decimal("1.00")),
        lambda: JournalLine.objects.filter(entry=entry).delete(),
        lambda: JournalEntry.objects.filter(pk=entry.pk).update(period=APRIL),
        lambda: RevenuePeriod.objects.filter(tenant=tenant, month=MARCH).update(closed_at=None),
    ]
    for attempt in attempts:
        with pytest.raises(IntegrityError, match="2026-03 is closed"), transaction.atomic():
            attempt()
    # a posting dated in March goes to April, the first open month
    assert posting_period(tenant_id=tenant.pk, day=date(2026, 3, 20)) == APRIL
    assert posting_period(tenant_id=tenant.pk, day=date(2026, 4, 20)) == APRIL
    assert posting_period(tenant_id=tenant.pk, day=date(2026, 2, 20)) == FEBRUARY
