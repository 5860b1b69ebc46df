"""Real Celery workers, started as production starts them (``celery -A billing_platform worker``,
prefork), against the test database and a Redis database of their own: two workers on separate
queues share the work of a bill run, and a bill run survives its worker killed with SIGKILL, first
the child running a chunk (Celery rejects the lost task and Redis queues it again at once), then the
whole worker, main process included (its chunk stays unacknowledged in Redis until the visibility
timeout; the jobs watchdog takes it up again).

The workers' processes are started once for the module; a test that kills one starts another."""

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from django.conf import settings
from django.db import connection, transaction

from billing_platform.jobs import recovery_notes
from invoicing.models import BillRun, BillRunCustomer, Invoice, InvoicingSettings
from subscriptions.tests.factories import monthly_fee_customers
from tenancy.models import Tenant

logger = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
CELERY = str(Path(sys.executable).parent / "celery")
APRIL_1 = date(2026, 4, 1)
# The workers' own Redis database: their queues never mix with another test's eager tasks, and the
# module empties it before and after.
REDIS_DB = int(os.environ.get("TEST_WORKERS_REDIS_DB", "15"))
CHUNK = 4  # customers per chunk: many chunks, so that a kill lands in the middle of the run
STALLED = 5  # seconds without progress before the watchdog takes a run up again

pytestmark = pytest.mark.django_db(transaction=True)


def _redis_url() -> str:
    parts = urlsplit(settings.REDIS_URL)
    return urlunsplit(parts._replace(path="/%d" % REDIS_DB))


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if stat[1] == str(pid):
                found.append(int(entry.name))
    return found


class Worker:
    """One ``celery worker`` process (with its prefork child) in its own session, its log in a file."""

    def __init__(self, *, name: str, queues: str, env: dict[str, str], logdir: Path) -> None:
        self.name, self.log = name, logdir / ("%s.log" % name)
        args = [CELERY, "-A", "billing_platform", "worker", "-P", "prefork", "-c", "1", "-Q", queues]
        args += ["-n", "%s@%%h" % name, "-l", "info", "--without-gossip", "--without-mingle", "--without-heartbeat"]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("worker %s exited:\n%s" % (self.name, self.text()[-3000:]))
            if " ready." in self.text():
                return
            time.sleep(0.05)
        raise AssertionError("worker %s not ready:\n%s" % (self.name, self.text()[-3000:]))

    def child(self) -> int:
        [pid] = _children(self.proc.pid)
        return pid

    def kill(self) -> None:
        """SIGKILL to the main process and its child at once (its session's group)."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


class Workers:
    """The module's processes: a billing worker (queues default, ingest, billing), a documents worker
    (webhooks, documents) and beat, all on the test database."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.env = dict(
            os.environ,
            REDIS_URL=_redis_url(),
            CELERY_TASK_ALWAYS_EAGER="false",
            BILL_RUN_CHUNK_SIZE=str(CHUNK),
            JOB_STALLED_SECONDS=str(STALLED),
            JOB_WATCHDOG_INTERVAL_SECONDS="1",
            DJANGO_EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
            LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",  # the logs the tests read are written as they happen
        )
        self.procs: list[subprocess.Popen[bytes]] = []  # all started, stopped at the end whatever happens

    def start(self) -> None:
        self.billing = self.start_billing()
        self.documents = Worker(name="documents", queues="webhooks,documents", env=self.env, logdir=self.logdir)
        self.procs.append(self.documents.proc)
        beat = [CELERY, "-A", "billing_platform", "beat", "-S", "celery.beat:Scheduler", "-l", "info"]
        with (self.logdir / "beat.log").open("ab") as out:
            self.procs.append(
                subprocess.Popen(
                    beat, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
        self.billing.wait_ready()
        self.documents.wait_ready()

    def start_billing(self, name: str = "billing") -> Worker:
        worker = Worker(name=name, queues="default,ingest,billing", env=self.env, logdir=self.logdir)
        self.procs.append(worker.proc)
        return worker

    def stop(self) -> None:
        """Every process told to stop at once, then waited for."""
        procs = [p for p in self.procs if p.poll() is None]
        for proc in procs:
            os.killpg(proc.pid, signal.SIGQUIT)  # cold shutdown: nothing runs any more
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _database_url() -> str:
    """DATABASE_URL with the test database's name."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


@pytest.fixture(scope="module")
def broker() -> Iterator[None]:
    """The workers' Redis database, emptied before and after (a killed worker leaves its message
    unacknowledged there)."""
    client = redis.Redis.from_url(_redis_url())
    client.flushdb()
    yield
    client.flushdb()


@pytest.fixture(scope="module")
def workers(broker: None, django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: Any) -> Iterator[Workers]:
    running = Workers(tmp_path_factory.mktemp("workers"))
    try:
        with django_db_blocker.unblock():
            running.env["DATABASE_URL"] = _database_url()
            running.start()
        yield running
    finally:
        running.stop()


def _until(condition: Callable[[], bool], *, timeout: float, what: str, logs: Workers) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(
        "%s: not within %s s\n--- billing\n%s\n--- documents\n%s"
        % (what, timeout, logs.billing.text()[-3000:], logs.documents.text()[-2000:])
    )


def _start(tenant: Tenant) -> BillRun:
    from billing_platform.celery import app
    from invoicing.tasks import bill_run_execute_task

    run = BillRun.objects.create(tenant=tenant, billing_date=APRIL_1)
    with app.connection_for_write(_redis_url()) as conn:
        bill_run_execute_task.apply_async((str(run.pk),), {"tenant_id": str(tenant.pk)}, connection=conn)
    return run


def _run(run: BillRun) -> BillRun:
    run.refresh_from_db()
    return run


def test_a_billing_worker_and_a_documents_worker_share_a_run(tenant: Tenant, workers: Workers) -> None:
    # given: auto-finalize, 3 customers
    InvoicingSettings.objects.create(tenant=tenant, auto_finalize=True)
    monthly_fee_customers(tenant, 3)
    # when: the run is queued
    run = _start(tenant)
    # then: the billing worker invoices them, and the documents worker renders and e-mails each invoice
    _until(lambda: _run(run).status == "completed", timeout=60, what="the run completes", logs=workers)
    _until(
        lambda: Invoice.objects.filter(sent_at__isnull=False, pdf__isnull=False).count() == 3,
        timeout=60,
        what="3 invoices rendered and sent",
        logs=workers,
    )
    assert (run.total, run.done, run.created) == (3, 3, 3)
    billing, documents = workers.billing.text(), workers.documents.text()
    assert billing.count("invoicing.tasks.bill_run_chunk_task[") >= 1
    assert "invoice_render_task[" not in billing
    assert documents.count("invoicing.tasks.invoice_render_task[") >= 3
    assert "bill_run_chunk_task[" not in documents


def _blocked_on(run: BillRun, workers: Workers) -> Any:
    """The run's row locked by the test: the worker's next batch waits on it, inside its chunk's
    transaction. Returns once a worker waits."""

    class Held:
        def __enter__(self) -> None:
            self.atomic = transaction.atomic()
            self.atomic.__enter__()
            BillRun.objects.select_for_update().get(pk=run.pk)
            _until(_a_backend_waits, timeout=60, what="a chunk waiting on the run's row", logs=workers)

        def __exit__(self, *exc: Any) -> None:
            self.atomic.__exit__(*exc)

    return Held()


def _a_backend_waits() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks JOIN pg_stat_activity USING (pid)"
            " WHERE NOT granted AND datname = current_database()"
        )
        return bool(cursor.fetchone()[0])


def test_a_run_completes_by_itself_after_its_worker_is_killed(tenant: Tenant, workers: Workers) -> None:
    # given: 100 customers, 25 chunks of 4
    customers = monthly_fee_customers(tenant, 100)
    run = _start(tenant)
    _until(lambda: _run(run).done >= 8, timeout=60, what="the run under way", logs=workers)
    # when: the child is killed in the middle of a chunk (it waits on the run's row the test holds)
    with _blocked_on(run, workers):
        os.kill(workers.billing.child(), signal.SIGKILL)
    # then: Celery gives the lost chunk back to Redis at once, and the new child goes on
    _until(lambda: _run(run).done >= 40, timeout=60, what="the run going on after the child's death", logs=workers)
    assert _run(run).recoveries == []
    first = workers.billing
    assert "WorkerLostError('Worker exited prematurely: signal 9 (SIGKILL)" in first.text()
    # when: the whole worker is killed, main process included, in the middle of a chunk, while another
    # worker has started (as a supervisor restarts one, or others serve the queue)
    with _blocked_on(run, workers):
        dead, workers.billing = workers.billing, workers.start_billing("billing-2")
        workers.billing.wait_ready()
        dead.kill()
        killed, done_at_kill = time.monotonic(), _run(run).done
    assert done_at_kill < 100
    # then: the new worker finishes the run by itself, the chunk the dead one held taken up again
    _until(lambda: _run(run).status == "completed", timeout=120, what="the run completes", logs=workers)
    recovered_in = time.monotonic() - killed
    run = _run(run)
    logger.warning("killed at %d of 100; the run completed %.1f s after the kill", done_at_kill, recovered_in)
    assert recovered_in < STALLED + 30
    assert (run.total, run.done, run.failed, run.created) == (100, 100, 0, 100)
    # every customer invoiced exactly once
    assert Invoice.objects.filter(tenant=tenant).count() == 100
    assert Invoice.objects.filter(tenant=tenant).values("customer").distinct().count() == 100
    assert BillRunCustomer.objects.filter(bill_run=run, outcome="invoiced").count() == 100
    assert set(BillRunCustomer.objects.filter(bill_run=run).values_list("customer", flat=True)) == {
        c.pk for c in customers
    }
    # and the run says what happened. The dead worker held one chunk (one message at a time), blocked
    # on the run's row either in its batch's counters update (its batch not committed: the watchdog
    # takes the chunk up again, one recovery of 1 chunk; the dead child's chunk had been queued again
    # by Celery, else it would have found two) or in the finishing check after its batch committed
    # (nothing of it is missing: the other chunks finish the run, with no recovery, which the counts
    # above prove complete).
    if run.recoveries:
        assert [r["pieces"] for r in run.recoveries] == [1]
        [note] = recovery_notes(run.recoveries, piece="chunk", fmt=lambda at: at.strftime("%H:%M"))
        assert note.startswith("1 chunk was taken up again at ")
        assert note.endswith(" after its worker stopped answering.")
