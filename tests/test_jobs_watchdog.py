"""The jobs watchdog (``billing_platform.jobs``) in process: a bill run, a recognition run and an
export with no progress for ``JOB_STALLED_SECONDS`` are taken up again, once, and say so; a run that
moves is left alone; a chunk executed twice at the same time invoices each customer once."""

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client

from backoffice.models import DataExport
from backoffice.tests.test_invoicing_pages import logged_in
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
    yield
    celery_app.conf.task_always_eager = False


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
