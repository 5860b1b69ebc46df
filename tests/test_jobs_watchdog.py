"""The jobs watchdog (``billing_platform.jobs``) in process: a bill run, a recognition run and an
export with no progress for ``JOB_STALLED_SECONDS`` are taken up again, once, and say so; a run that
moves is left alone; a chunk executed twice at the same time invoices each customer once."""

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
import time_machine
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client

from backoffice.models import DataExport
from backoffice.tests.test_invoicing_pages import logged_in
from billing_platform import jobs
from billing_platform.celery import app as celery_app
from invoicing.models import BillRun, BillRunCustomer, Invoice
from invoicing.services import bill_run_chunk, bill_run_plan
from revrec.models import RecognitionRun
from subscriptions.tests.factories import monthly_fee_customers
from tenancy.models import Tenant
from tenancy.tasks import jobs_watchdog_tenant_task

PARIS = ZoneInfo("Europe/Paris")
APRIL_1 = date(2026, 4, 1)
RUN_AT = datetime(2026, 4, 1, 6, 0, tzinfo=PARIS)


@pytest.fixture(autouse=True)
def eager(settings: Any) -> Iterator[None]:
    settings.BILL_RUN_CHUNK_SIZE = 2
    settings.JOB_STALLED_SECONDS = 360
    celery_app.conf.task_always_eager = True
    # The suite's broker is shared by every test and consumed by no worker: the tasks other tests
    # queued wait there, and the watchdog would take them for a backlog. The queues the jobs go to
    # start empty here (the tests run their tasks eagerly); the backlog tests set their own.
    _queues_emptied()
    yield
    celery_app.conf.task_always_eager = False


def _queues_emptied() -> None:
    from kombu.transport.redis import PRIORITY_STEPS, Channel

    queues = {job.queue for job in jobs.JOBS.values()}
    keys = [q + (f"{Channel.sep}{step}" if step else "") for q in queues for step in PRIORITY_STEPS]
    redis.Redis.from_url(django_settings.CELERY_BROKER_URL).delete(*keys)


def watchdog(tenant: Tenant, at: datetime, callbacks: Any) -> dict[str, int]:
    """One pass of the watchdog at ``at``, what it queues run at once (eager Celery, on commit)."""
    with time_machine.travel(at, tick=False), callbacks(execute=True):
        taken: dict[str, int] = jobs_watchdog_tenant_task(tenant_id=str(tenant.pk))
    return taken


@pytest.mark.django_db
def test_a_bill_run_with_no_progress_has_its_chunks_not_done_queued_again(
    tenant: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    # given: 5 customers in 3 chunks of 2; the first chunk done at 06:00, the other two lost
    monthly_fee_customers(tenant, 5)
    run = BillRun.objects.create(tenant=tenant, billing_date=APRIL_1)
    with time_machine.travel(RUN_AT, tick=False):
        chunks = bill_run_plan(run=run, at=RUN_AT)
        bill_run_chunk(run_id=str(run.pk), customer_ids=chunks[0], at=RUN_AT)
    assert [len(c) for c in chunks] == [2, 2, 1]
    # when: the watchdog looks at 06:05 (no progress for 5 min), then at 06:07
    assert watchdog(tenant, RUN_AT + timedelta(minutes=5), django_capture_on_commit_callbacks) == {}
    taken = watchdog(tenant, RUN_AT + timedelta(minutes=7), django_capture_on_commit_callbacks)
    # then: the 3 customers not done, 2 chunks, were queued again and the run completed
    run.refresh_from_db()
    assert taken == {"bill_run": 1}
    assert (run.status, run.total, run.done, run.created) == ("completed", 5, 5, 5)
    assert run.recoveries == [{"at": "2026-04-01T04:07:00+00:00", "pieces": 2}]
    assert Invoice.objects.filter(tenant=tenant).count() == 5
    # and once finished, the watchdog leaves it alone
    assert watchdog(tenant, RUN_AT + timedelta(hours=1), django_capture_on_commit_callbacks) == {}


@pytest.mark.django_db
def test_a_bill_run_whose_worker_died_before_finishing_it_is_finished(
    tenant: Tenant, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    # given: every customer handled, but the worker died before it marked the run completed
    from invoicing.services import bill_runs

    monthly_fee_customers(tenant, 2)
    run = BillRun.objects.create(tenant=tenant, billing_date=APRIL_1)
    with time_machine.travel(RUN_AT, tick=False):
        [chunk] = bill_run_plan(run=run, at=RUN_AT)
        monkeypatch.setattr(bill_runs, "_maybe_finish", lambda run_id, at: None)
        bill_run_chunk(run_id=str(run.pk), customer_ids=chunk, at=RUN_AT)
        monkeypatch.undo()
    assert BillRun.objects.get(pk=run.pk).status == "running"
    # when
    taken = watchdog(tenant, RUN_AT + timedelta(minutes=7), django_capture_on_commit_callbacks)
    # then: nothing to queue, the run is finished
    run.refresh_from_db()
    assert taken == {"bill_run": 1}
    assert (run.status, run.done, run.created) == ("completed", 2, 2)
    assert run.recoveries == [{"at": "2026-04-01T04:07:00+00:00", "pieces": 0}]


@pytest.mark.django_db
def test_a_bill_run_never_planned_is_planned_again(tenant: Tenant, django_capture_on_commit_callbacks: Any) -> None:
    monthly_fee_customers(tenant, 3)
    with time_machine.travel(RUN_AT, tick=False):
        run = BillRun.objects.create(tenant=tenant, billing_date=APRIL_1)
    taken = watchdog(tenant, RUN_AT + timedelta(minutes=7), django_capture_on_commit_callbacks)
    run.refresh_from_db()
    assert taken == {"bill_run": 1}
    assert (run.status, run.total, run.done, run.created) == ("completed", 3, 3, 3)
    assert [r["pieces"] for r in run.recoveries] == [0]


@pytest.mark.django_db
def test_a_recognition_run_left_queued_is_run(
    client: Client, tenant: Tenant, make_staff: Any, django_capture_on_commit_callbacks: Any
) -> None:
    at = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    run = RecognitionRun.objects.create(tenant=tenant, month=date(2026, 4, 1), created_at=at)
    assert watchdog(tenant, at + timedelta(minutes=5), django_capture_on_commit_callbacks) == {}
    taken = watchdog(tenant, at + timedelta(minutes=7), django_capture_on_commit_callbacks)
    run.refresh_from_db()
    assert taken == {"recognition_run": 1}
    assert run.status == "succeeded"
    assert run.recoveries == [{"at": "2026-05-01T08:07:00+00:00", "pieces": 1}]
    logged_in(client, make_staff(tenant))
    page = client.get(f"/app/revenue/runs/{run.pk}/").content.decode()
    assert "It was taken up again at 1 May 2026, 10:07 CEST after its worker stopped answering." in page


@pytest.mark.django_db
def test_an_export_is_written_again_only_once_no_task_of_it_can_still_run(
    tenant: Tenant, make_staff: Any, django_capture_on_commit_callbacks: Any
) -> None:
    at = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    export = DataExport.objects.create(
        tenant=tenant,
        requested_by=make_staff(tenant),
        kind="customers",
        filename="customers.csv",
        status="running",
        created_at=at,
        started_at=at,
        progressed_at=at,
        expires_at=datetime(2099, 1, 1, tzinfo=UTC),
    )
    # 10 minutes: its task (at most 600 s) may still be writing it
    assert watchdog(tenant, at + timedelta(minutes=10), django_capture_on_commit_callbacks) == {}
    taken = watchdog(tenant, at + timedelta(minutes=11, seconds=1), django_capture_on_commit_callbacks)
    export.refresh_from_db()
    assert taken == {"data_export": 1}
    assert export.status == "done"
    assert [r["pieces"] for r in export.recoveries] == [1]


@pytest.mark.django_db(transaction=True)
def test_a_chunk_executed_twice_at_the_same_time_invoices_each_customer_once(tenant: Tenant) -> None:
    # given: 12 customers in one chunk, delivered to two workers at once
    monthly_fee_customers(tenant, 12)
    run = BillRun.objects.create(tenant=tenant, billing_date=APRIL_1)
    ids = [c for chunk in bill_run_plan(run=run, at=RUN_AT) for c in chunk]
    errors: list[Exception] = []
    barrier = threading.Barrier(2)

    def work() -> None:
        try:
            barrier.wait()
            bill_run_chunk(run_id=str(run.pk), customer_ids=ids, at=RUN_AT)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then: each customer invoiced once, counted once
    run.refresh_from_db()
    assert errors == []
    assert Invoice.objects.filter(tenant=tenant).count() == 12
    assert Invoice.objects.filter(tenant=tenant).values("customer").distinct().count() == 12
    assert BillRunCustomer.objects.filter(bill_run=run).count() == 12
    assert BillRunCustomer.objects.filter(bill_run=run, outcome="invoiced").count() == 12
    assert (run.status, run.total, run.done, run.failed, run.created) == ("completed", 12, 12, 0, 12)


@pytest.mark.django_db
def test_the_run_page_says_what_the_watchdog_did_in_english_and_french(
    client: Client, tenant: Tenant, make_staff: Any
) -> None:
    run = BillRun.objects.create(
        tenant=tenant,
        billing_date=APRIL_1,
        status="completed",
        total=5,
        done=5,
        recoveries=[{"at": "2026-04-01T12:02:00+00:00", "pieces": 3}, {"at": "2026-04-01T12:09:00+00:00", "pieces": 1}],
    )
    logged_in(client, make_staff(tenant))
    page = client.get(f"/app/billing/runs/{run.pk}/").content.decode()
    assert "3 chunks were taken up again at 1 Apr 2026, 14:02 CEST after their worker stopped answering." in page
    assert "1 chunk was taken up again at 1 Apr 2026, 14:09 CEST after its worker stopped answering." in page
    french = client.get(f"/app/billing/runs/{run.pk}/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "3 lots ont été repris à 1 avr. 2026, 14:02 CEST après que leur worker a cessé de répondre." in french


@pytest.mark.django_db
def test_a_chunk_out_of_time_records_no_failure_and_leaves_its_customers_to_the_watchdog(
    tenant: Tenant, django_capture_on_commit_callbacks: Any, monkeypatch: Any, settings: Any
) -> None:
    # given: 5 customers in one chunk written by batches of 2; the soft time limit fires while the
    # 3rd customer is composed
    from celery.exceptions import SoftTimeLimitExceeded

    from invoicing.services import bill_runs

    settings.BILL_RUN_CHUNK_SIZE = 5
    monkeypatch.setattr(bill_runs, "WRITE_BATCH", 2)
    calls = []
    compose = bill_runs.compose

    def compose_out_of_time(**kwargs: Any) -> Any:
        calls.append(kwargs["customer"].pk)
        if len(calls) == 3:
            raise SoftTimeLimitExceeded()
        return compose(**kwargs)

    monthly_fee_customers(tenant, 5)
    run = BillRun.objects.create(tenant=tenant, billing_date=APRIL_1)
    with time_machine.travel(RUN_AT, tick=False):
        chunks = bill_run_plan(run=run, at=RUN_AT)
        assert [len(c) for c in chunks] == [5]
        monkeypatch.setattr(bill_runs, "compose", compose_out_of_time)
        with pytest.raises(SoftTimeLimitExceeded):
            bill_run_chunk(run_id=str(run.pk), customer_ids=chunks[0], at=RUN_AT)
    # then: 2 customers invoiced, no failure recorded, 3 customers not handled, the run running
    run.refresh_from_db()
    assert len(calls) == 3
    assert (run.status, run.total, run.done, run.failed, run.created) == ("running", 5, 2, 0, 2)
    assert BillRunCustomer.objects.filter(bill_run=run, outcome="failed").count() == 0
    assert BillRunCustomer.objects.filter(bill_run=run).count() == 2
    assert Invoice.objects.filter(tenant=tenant).count() == 2
    # when: the watchdog takes the run up again, the 3 others are invoiced
    monkeypatch.setattr(bill_runs, "compose", compose)
    taken = watchdog(tenant, RUN_AT + timedelta(minutes=7), django_capture_on_commit_callbacks)
    run.refresh_from_db()
    assert taken == {"bill_run": 1}
    assert (run.status, run.total, run.done, run.failed, run.created) == ("completed", 5, 5, 0, 5)
    assert Invoice.objects.filter(tenant=tenant).count() == 5


def test_reminders_out_of_time_stop_without_counting_as_send_errors(monkeypatch: Any) -> None:
    # given: 3 reminders; the soft time limit fires while the 2nd is sent
    from unittest import mock

    from celery.exceptions import SoftTimeLimitExceeded

    from payments.mail import reminders_send

    sends = [None, SoftTimeLimitExceeded(), None]
    messages = [(mock.Mock(), mock.Mock(send=mock.Mock(side_effect=[effect]))) for effect in sends]
    # when / then: the task stops there, the 3rd reminder is not tried
    with mock.patch("django.core.mail.get_connection"), pytest.raises(SoftTimeLimitExceeded):
        reminders_send(messages)  # type: ignore[arg-type]
    assert [message.send.call_count for _, message in messages] == [1, 1, 0]


def test_the_tasks_that_may_run_long_on_a_big_tenant_get_600_seconds() -> None:
    from backoffice.tasks import data_export_run_task
    from partners.tasks import commission_statements_build_task
    from payments.tasks import dunning_run_task, invoices_charge_task
    from subscriptions.tasks import subscription_changes_apply_due_tenant_task, subscription_ends_apply_due_tenant_task

    long = [
        data_export_run_task,
        dunning_run_task,
        subscription_changes_apply_due_tenant_task,
        subscription_ends_apply_due_tenant_task,
        commission_statements_build_task,
        invoices_charge_task,
    ]
    assert {(task.soft_time_limit, task.time_limit) for task in long} == {(570, 600)}
    # the broker's visibility timeout outlasts a 600 s countdown plus the 600 s of the longest task
    assert django_settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] == 1800


@pytest.mark.django_db
def test_the_watchdog_tasks_expire_after_one_interval(tenant: Tenant, monkeypatch: Any) -> None:
    from unittest import mock

    from tenancy.tasks import jobs_watchdog_task

    Tenant.objects.create(name="Other", slug="other-watchdog")
    with mock.patch("tenancy.dispatch.group") as group:
        assert jobs_watchdog_task() == 2
    signatures = list(group.call_args.args[0])
    assert [s.options.get("expires") for s in signatures] == [60.0, 60.0]
    assert django_settings.CELERY_BEAT_SCHEDULE["jobs-watchdog"]["options"] == {"expires": 60.0}


@pytest.mark.django_db
def test_a_planned_run_is_not_planned_again(tenant: Tenant, django_capture_on_commit_callbacks: Any) -> None:
    # given: 3 customers planned in 2 chunks at 06:00, none billed yet
    from invoicing.tasks import bill_run_execute_task

    monthly_fee_customers(tenant, 3)
    run = BillRun.objects.create(tenant=tenant, billing_date=APRIL_1)
    with time_machine.travel(RUN_AT, tick=False):
        assert [len(c) for c in bill_run_plan(run=run, at=RUN_AT)] == [2, 1]
    # when: its execute task comes a second time, at 06:03
    with time_machine.travel(RUN_AT + timedelta(minutes=3), tick=False):
        assert bill_run_plan(run=run, at=RUN_AT + timedelta(minutes=3)) == []
        assert bill_run_execute_task(str(run.pk), tenant_id=str(tenant.pk)) == 0
    # then: the run is as planned, and nothing was billed by the second plan
    run.refresh_from_db()
    assert (run.status, run.total, run.done, run.started_at) == ("running", 3, 0, RUN_AT)
    assert Invoice.objects.filter(tenant=tenant).count() == 0


def test_the_backlog_of_a_queue_counts_its_messages_of_every_priority() -> None:
    import redis

    from billing_platform.jobs import queue_backlog

    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    keys = ["test-backlog", "test-backlog\x06\x163", "test-backlog\x06\x169"]
    client.delete(*keys)
    try:
        assert queue_backlog("test-backlog") == 0
        client.rpush(keys[0], "a", "b")
        client.rpush(keys[1], "c")
        client.rpush(keys[2], "d")
        assert queue_backlog("test-backlog") == 4
    finally:
        client.delete(*keys)


@pytest.mark.django_db
def test_a_run_waiting_behind_a_backlog_is_left_alone_until_the_queue_drains(
    tenant: Tenant, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    # given: 3 customers, 2 chunks planned at 06:00 and none run; 40 messages wait on "billing"

    backlog = {"billing": 40}
    monkeypatch.setattr(jobs, "queue_backlog", lambda queue: backlog.get(queue, 0))
    monthly_fee_customers(tenant, 3)
    run = BillRun.objects.create(tenant=tenant, billing_date=APRIL_1)
    with time_machine.travel(RUN_AT, tick=False):
        bill_run_plan(run=run, at=RUN_AT)
    # when: the watchdog looks at 06:07 and 06:20, while the queue still holds messages
    assert watchdog(tenant, RUN_AT + timedelta(minutes=7), django_capture_on_commit_callbacks) == {}
    assert watchdog(tenant, RUN_AT + timedelta(minutes=20), django_capture_on_commit_callbacks) == {}
    run.refresh_from_db()
    assert (run.status, run.done, run.recoveries) == ("running", 0, [])
    # then: once it has drained and still nothing moved, the run is taken up again
    backlog["billing"] = 0
    assert watchdog(tenant, RUN_AT + timedelta(minutes=21), django_capture_on_commit_callbacks) == {"bill_run": 1}
    run.refresh_from_db()
    assert (run.status, run.total, run.done, run.created) == ("completed", 3, 3, 3)
    assert run.recoveries == [{"at": "2026-04-01T04:21:00+00:00", "pieces": 2}]


@pytest.mark.django_db
def test_a_run_that_never_moves_is_failed_after_5_recoveries_in_a_row(
    client: Client, tenant: Tenant, make_staff: Any, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    # given: a run never planned whose execute task is lost every time it is queued
    from unittest import mock

    from invoicing import tasks

    monkeypatch.setattr(tasks, "bill_run_execute_task", mock.Mock())
    monthly_fee_customers(tenant, 2)
    with time_machine.travel(RUN_AT, tick=False):
        run = BillRun.objects.create(tenant=tenant, billing_date=APRIL_1)
    # when: the watchdog looks every 7 minutes, 6 times
    for n in range(1, 7):
        assert watchdog(tenant, RUN_AT + timedelta(minutes=7 * n), django_capture_on_commit_callbacks) == {
            "bill_run": 1
        }
    # then: 5 recoveries, then the run failed; the watchdog leaves it alone after that
    run.refresh_from_db()
    assert tasks.bill_run_execute_task.delay.call_count == 5
    assert run.status == "failed"
    assert [r.get("unmoved", 1) for r in run.recoveries[:5]] == [1, 2, 3, 4, 5]
    assert run.recoveries[5] == {"at": "2026-04-01T04:42:00+00:00", "pieces": 0, "gave_up": 5}
    assert watchdog(tenant, RUN_AT + timedelta(hours=2), django_capture_on_commit_callbacks) == {}
    logged_in(client, make_staff(tenant))
    page = client.get(f"/app/billing/runs/{run.pk}/").content.decode()
    assert (
        "It was stopped at 1 Apr 2026, 06:42 CEST and marked failed: it made no progress after being taken up"
        " again 5 times in a row." in page
    )
    french = client.get(f"/app/billing/runs/{run.pk}/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Arrêté à 1 avr. 2026, 06:42 CEST et marqué en échec : aucun progrès après 5 reprises de suite." in french


@pytest.mark.django_db
def test_progress_between_recoveries_starts_the_count_again(
    tenant: Tenant, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    from unittest import mock

    from invoicing import tasks

    monkeypatch.setattr(tasks, "bill_run_execute_task", mock.Mock())
    with time_machine.travel(RUN_AT, tick=False):
        run = BillRun.objects.create(tenant=tenant, billing_date=APRIL_1)
    watchdog(tenant, RUN_AT + timedelta(minutes=7), django_capture_on_commit_callbacks)
    watchdog(tenant, RUN_AT + timedelta(minutes=14), django_capture_on_commit_callbacks)
    # a piece commits at 06:15
    BillRun.objects.filter(pk=run.pk).update(progressed_at=RUN_AT + timedelta(minutes=15))
    watchdog(tenant, RUN_AT + timedelta(minutes=22), django_capture_on_commit_callbacks)
    run.refresh_from_db()
    assert [r.get("unmoved", 1) for r in run.recoveries] == [1, 2, 1]
    assert run.status == "pending"
