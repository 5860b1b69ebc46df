"""Archiving a month of raw usage events and restoring it (``usage.archive``, ``manage.py
usage_archive`` and ``usage_restore``): the partition detached, exported, dropped, and attached back.

Dupont (Paris) sends 3 events in March 2026 (100 + 200 + 300 MB) and 1 in April (50 MB); the 1 April
and 1 May invoices bill them (pooled allowance 2 x 100 MB: March 600 - 200 = 400 x 0.01 = 4.00;
April 50 MB, within it: 0.00). Everything runs on 15 July 2026, when March's events can no longer
arrive (62 days of maximum event age after 31 March)."""

import csv
import gzip
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Sum
from django.test import Client

from backoffice.exports.kinds import KINDS
from backoffice.exports.services import export_content
from billing_platform.periods import Period
from catalog.models import Meter
from invoicing.models import BillRunCustomer, Invoice
from invoicing.services import bill_run_create, invoice_finalize, invoice_generate
from invoicing.services.bill_runs import bill_run_chunk
from invoicing.services.lifecycle import invoice_void
from invoicing.tests.factories import usage_customer
from tenancy.actors import Actor
from tenancy.errors import InvalidTenantSettings
from tenancy.models import ApiKeyScope, Role, Tenant
from usage.aggregation import aggregate
from usage.archive import LOCK_CLASS, file_paths, month_refusals, usage_month_archive, usage_month_restore
from usage.errors import ArchiveCorrupt, MonthNotArchivable, UsageArchived
from usage.ingest import events_ingest
from usage.models import UsageArchive, UsageRollup
from usage.partitions import ensure_partitions, forget_known_partitions
from usage.services import usage_settings_update

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")
MARCH = date(2026, 3, 1)
NOW = datetime(2026, 7, 15, 10, tzinfo=UTC)
# Dupont's billing periods, local months in Paris
MARCH_PERIOD = Period(datetime(2026, 3, 1, tzinfo=PARIS), datetime(2026, 4, 1, tzinfo=PARIS))
MAY_PERIOD = Period(datetime(2026, 5, 1, tzinfo=PARIS), datetime(2026, 6, 1, tzinfo=PARIS))


@pytest.fixture(autouse=True)
def _on_15_july() -> Any:
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def customer(tenant: Tenant) -> Any:
    return usage_customer(
        tenant,
        products={"data": "Data"},
        meters={"mb": {"name": "MB", "aggregation": "sum", "field": "mb"}},
        components=[
            {
                "product": "data",
                "meter": "mb",
                "included_per_device": 100,
                "pooled": True,
                "charge": {"model": "per_unit", "unit_amount": "0.01"},
            }
        ],
        devices=("A", "B"),
    )


def send(tenant: Tenant, received: datetime, *events: tuple[str, datetime, int]) -> None:
    result = events_ingest(
        tenant=tenant,
        received_at=received,
        events=[
            {"transaction_id": t, "code": "mb", "device_id": "A", "timestamp": ts.isoformat(), "properties": {"mb": mb}}
            for t, ts, mb in events
        ],
    )
    assert result.count("accepted") == len(events)


def bill(customer: Any, billing_date: date, *, finalize: bool = True) -> Invoice:
    at = datetime(billing_date.year, billing_date.month, billing_date.day, 1, tzinfo=PARIS)
    invoice = invoice_generate(customer=customer, billing_date=billing_date, at=at)
    assert invoice is not None
    return invoice_finalize(invoice=invoice, actor=ACTOR, at=at) if finalize else invoice


@pytest.fixture
def used(tenant: Tenant, customer: Any) -> Any:
    send(
        tenant,
        datetime(2026, 3, 25, 12, tzinfo=PARIS),
        ("m1", datetime(2026, 3, 5, 9, tzinfo=PARIS), 100),
        ("m2", datetime(2026, 3, 10, 9, tzinfo=PARIS), 200),
        ("m3", datetime(2026, 3, 20, 9, tzinfo=PARIS), 300),
    )
    send(tenant, datetime(2026, 4, 12, 12, tzinfo=PARIS), ("a1", datetime(2026, 4, 10, 9, tzinfo=PARIS), 50))
    return customer


@pytest.fixture
def billed(used: Any) -> list[Invoice]:
    return [bill(used, date(2026, 4, 1)), bill(used, date(2026, 5, 1))]


def partition_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return bool(cursor.fetchone()[0])


def march_rollups(tenant: Tenant) -> tuple[int, Decimal]:
    totals = UsageRollup.objects.filter(
        tenant=tenant, bucket__gte=datetime(2026, 3, 1, tzinfo=UTC), bucket__lt=datetime(2026, 4, 1, tzinfo=UTC)
    ).aggregate(events=Sum("event_count"), mb=Sum("value_sum"))
    return totals["events"], totals["mb"]


def file_rows(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_archive_and_restore_a_month(tenant: Tenant, billed: list[Invoice], tmp_path: Path) -> None:
    # given: March billed on the 1 April invoice (600 - 200 MB = 400 x 0.01 = 4.00 + 20 % VAT)
    march_invoice = billed[0]
    assert (march_invoice.net_total.amount, march_invoice.total.amount) == (Decimal("4.00"), Decimal("4.80"))
    assert march_rollups(tenant) == (3, Decimal("600"))
    meter = Meter.objects.get(tenant=tenant, code="mb")
    subscription = billed[0].lines.get(type="usage").subscription_id
    assert aggregate(subscription_ids=[subscription], meter=meter, period=MARCH_PERIOD)[0].quantity == Decimal(600)
    # when
    archived = usage_month_archive(month=MARCH, folder=tmp_path, at=NOW, concurrently=False)
    # then: the file holds the 3 events, the manifest says so, the partition is gone
    data_path, manifest_path = file_paths(tmp_path, MARCH)
    assert (archived.rows, archived.path) == (3, data_path)
    rows = file_rows(data_path)
    assert sorted(r["transaction_id"] for r in rows) == ["m1", "m2", "m3"]
    assert sum(Decimal(r["value"]) for r in rows) == Decimal(600)
    manifest = json.loads(manifest_path.read_text())
    assert (manifest["rows"], manifest["partition"], manifest["sha256"]) == (3, "usage_event_2026_03", archived.sha256)
    assert not partition_exists("usage_event_2026_03")
    assert partition_exists("usage_event_2026_04")
    record = UsageArchive.objects.get(month=MARCH)
    assert (record.state, record.rows, record.sha256) == ("archived", 3, archived.sha256)
    # rollups and invoices unchanged
    assert march_rollups(tenant) == (3, Decimal("600"))
    march_invoice.refresh_from_db()
    assert (march_invoice.status, march_invoice.total.amount) == ("finalized", Decimal("4.80"))
    assert [str(line.amount) for line in march_invoice.lines.filter(type="usage")] == ["4.0000"]
    # a raw-event reader refuses the archived month rather than answer 0; May is read as before
    with pytest.raises(UsageArchived, match="raw usage events of 2026-03 are archived"):
        aggregate(subscription_ids=[subscription], meter=meter, period=MARCH_PERIOD)
    assert aggregate(subscription_ids=[subscription], meter=meter, period=MAY_PERIOD)[0].quantity == Decimal(0)
    # ingestion never makes the month's partition again
    forget_known_partitions()
    with pytest.raises(UsageArchived, match="Events of 2026-03 cannot be stored"):
        ensure_partitions([date(2026, 3, 15)])
    # when: restored
    assert usage_month_restore(month=MARCH, folder=tmp_path, at=NOW) == 3
    # then: the 3 events are back, behind row-level security, in the month's partition
    assert partition_exists("usage_event_2026_03")
    assert aggregate(subscription_ids=[subscription], meter=meter, period=MARCH_PERIOD)[0].quantity == Decimal(600)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), relrowsecurity, relforcerowsecurity FROM usage_event JOIN pg_class "
            "ON relname = 'usage_event_2026_03' WHERE \"timestamp\" >= '2026-03-01' AND \"timestamp\" < '2026-04-01' "
            "GROUP BY 2, 3"
        )
        assert cursor.fetchone() == (3, True, True)
    assert UsageArchive.objects.get(month=MARCH).state == "restored"


def test_a_month_not_fully_billed_is_refused(tenant: Tenant, used: Any, tmp_path: Path) -> None:
    # no invoice yet: March's usage is not on a finalized invoice
    with pytest.raises(MonthNotArchivable, match="acme: 1 subscription\\(s\\) with usage not yet on a finalized"):
        usage_month_archive(month=MARCH, folder=tmp_path, at=NOW, concurrently=False)
    # a draft is not enough, and is itself a reason
    bill(used, date(2026, 4, 1), finalize=False)
    assert month_refusals(month=MARCH, at=NOW) == [
        "acme: 1 subscription(s) with usage not yet on a finalized invoice",
        "acme: 1 draft invoice(s) with lines in the month",
    ]
    assert partition_exists("usage_event_2026_03")
    assert not UsageArchive.objects.exists()


def test_a_month_whose_events_can_still_arrive_is_refused(tenant: Tenant, billed: Any) -> None:
    # on 15 May, March's events are accepted until 1 June (62 days after 31 March)
    assert month_refusals(month=MARCH, at=datetime(2026, 5, 15, tzinfo=UTC)) == [
        "it ended less than 62 days ago",
        "acme still accepts its events (maximum event age 62 days)",
    ]
    assert month_refusals(month=MARCH, at=NOW) == []


def test_a_late_event_not_yet_invoiced_is_refused(tenant: Tenant, billed: Any) -> None:
    # a March event arriving on 20 May, after the last invoice (1 May): the 1 June run would bill it
    send(tenant, datetime(2026, 5, 20, 12, tzinfo=PARIS), ("late", datetime(2026, 3, 30, 9, tzinfo=PARIS), 10))
    assert month_refusals(month=MARCH, at=NOW) == ["acme: 1 subscription(s) with usage not yet on a finalized invoice"]


def test_a_damaged_archive_restores_nothing(tenant: Tenant, billed: Any, tmp_path: Path) -> None:
    usage_month_archive(month=MARCH, folder=tmp_path, at=NOW, concurrently=False)
    data_path, _ = file_paths(tmp_path, MARCH)
    lines = gzip.decompress(data_path.read_bytes()).decode().splitlines(keepends=True)
    data_path.write_bytes(gzip.compress("".join(lines[:-1]).encode()))  # one event lost
    with pytest.raises(ArchiveCorrupt, match="2 rows for 3"):
        usage_month_restore(month=MARCH, folder=tmp_path, at=NOW)
    assert not partition_exists("usage_event_2026_03")
    assert UsageArchive.objects.get(month=MARCH).state == "archived"


def test_the_commands(tenant: Tenant, billed: Any, tmp_path: Path, capsys: Any) -> None:
    # retention 3 whole months before July: March and older (April is kept)
    call_command("usage_archive", "--retention-months", "3", "--to", str(tmp_path), "--dry-run")
    assert capsys.readouterr().out == "2026-03: would be archived\n"
    call_command("usage_archive", "--retention-months", "3", "--to", str(tmp_path), "--no-concurrently")
    archived_to = tmp_path / "usage_event_2026_03.csv.gz"
    assert capsys.readouterr().out.startswith("2026-03: 3 events archived to %s" % archived_to)
    with pytest.raises(CommandError, match="1 month\\(s\\) not archived"):
        call_command("usage_archive", "--month", "2026-03", "--to", str(tmp_path), "--no-concurrently")
    assert "2026-03 is archived already" in capsys.readouterr().err
    call_command("usage_restore", "2026-03", "--from", str(tmp_path))
    assert capsys.readouterr().out == "2026-03: 3 events restored.\n"
    with pytest.raises(CommandError, match="A month is written YYYY-MM"):
        call_command("usage_restore", "March", "--from", str(tmp_path))


def test_the_maximum_event_age_cannot_reach_an_archived_month(tenant: Tenant, billed: Any, tmp_path: Path) -> None:
    usage_month_archive(month=MARCH, folder=tmp_path, at=NOW, concurrently=False)
    # 15 July - 1 April = 105 days: 106 would accept events of 31 March
    with pytest.raises(
        InvalidTenantSettings, match="would accept events of 2026-03, whose raw events are archived: at most 105"
    ):
        usage_settings_update(tenant=tenant, actor=ACTOR, at=NOW, data={"max_event_age_days": 106})
    assert (
        usage_settings_update(tenant=tenant, actor=ACTOR, at=NOW, data={"max_event_age_days": 105}).max_event_age_days
        == 105
    )


def test_a_run_stopped_after_the_detach_finishes_the_job(tenant: Tenant, billed: Any, tmp_path: Path) -> None:
    # given: a run that recorded the month and detached its partition, then stopped
    UsageArchive.objects.create(month=MARCH, state="archiving")
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE usage_event DETACH PARTITION usage_event_2026_03")
    # when: run again (no refusal is checked again: the month's events are out of usage_event)
    archived = usage_month_archive(month=MARCH, folder=tmp_path, at=NOW, concurrently=False)
    # then
    assert archived.rows == 3
    assert len(file_rows(file_paths(tmp_path, MARCH)[0])) == 3
    assert not partition_exists("usage_event_2026_03")
    assert UsageArchive.objects.get(month=MARCH).state == "archived"


def test_the_raw_event_export_refuses_an_archived_month(tenant: Tenant, billed: Any, tmp_path: Path) -> None:
    usage_month_archive(month=MARCH, folder=tmp_path, at=NOW, concurrently=False)
    kind = KINDS["usage_events"]
    with pytest.raises(UsageArchived, match="raw usage events of 2026-03 are archived"):
        export_content(tenant=tenant, kind=kind, params={"start": "2026-03-01", "end": "2026-03-31"})
    # April's events are all online: the one event of 10 April
    data, rows = export_content(tenant=tenant, kind=kind, params={"start": "2026-04-02", "end": "2026-04-30"})
    assert rows == 1
    assert data.decode().splitlines()[1].startswith("a1,")


def test_the_usage_report_api_says_the_month_is_archived(
    tenant: Tenant, billed: Any, tmp_path: Path, make_client: Callable[..., Any]
) -> None:
    usage_month_archive(month=MARCH, folder=tmp_path, at=NOW, concurrently=False)
    api = make_client(tenant, ApiKeyScope.READ)
    response = api.get("/api/v1/reports/usage", {"from": "2026-03", "to": "2026-04"})
    assert response.status_code == 409, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert (body["code"], body["archived_months"]) == ("usage_archived", ["2026-03"])
    # from June on, the anomalies' history (31 days before 1 June) starts on 30 April: answered
    assert api.get("/api/v1/reports/usage", {"from": "2026-06", "to": "2026-07"}).status_code == 200


def test_the_usage_statistics_page_says_the_month_is_archived(
    tenant: Tenant, billed: Any, tmp_path: Path, make_staff: Callable[..., Any]
) -> None:
    usage_month_archive(month=MARCH, folder=tmp_path, at=NOW, concurrently=False)
    client = Client()
    client.force_login(make_staff(tenant, Role.FINANCE_VIEWER))
    response = client.get("/app/analytics/usage/", {"start": "2026-03", "end": "2026-04"})
    assert response.status_code == 200
    page = response.content.decode().replace("&#x27;", "'")
    assert "The raw usage events of 2026-03 are archived" in page


def test_a_file_damaged_on_its_way_to_disk_is_refused_and_the_table_kept(
    tenant: Tenant, billed: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a write that damages the bytes it stores (the 3 rows stay 3 rows, m2 becomes m9)
    write = gzip.GzipFile.write
    monkeypatch.setattr(gzip.GzipFile, "write", lambda self, data: write(self, bytes(data).replace(b"m2", b"m9")))
    # when
    with pytest.raises(ArchiveCorrupt, match="holds 3 rows \\(SHA-256 [0-9a-f]{64}\\), its manifest 3 rows") as raised:
        usage_month_archive(month=MARCH, folder=tmp_path, at=NOW, concurrently=False)
    # then: the file read back does not have the checksum of the rows streamed: the table is not dropped
    data_path, manifest_path = file_paths(tmp_path, MARCH)
    manifest = json.loads(manifest_path.read_text())
    assert manifest["sha256"] not in str(raised.value).split("its manifest")[0]
    assert sorted(r["transaction_id"] for r in file_rows(data_path)) == ["m1", "m3", "m9"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), sum(value) FROM usage_event_2026_03")
        assert cursor.fetchone() == (3, Decimal(600))
    assert UsageArchive.objects.get(month=MARCH).state == "archiving"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []
    # when: run again with a sound disk: it finishes the job
    monkeypatch.undo()
    archived = usage_month_archive(month=MARCH, folder=tmp_path, at=NOW, concurrently=False)
    assert archived.rows == 3
    assert sorted(r["transaction_id"] for r in file_rows(data_path)) == ["m1", "m2", "m3"]
    assert not partition_exists("usage_event_2026_03")
    assert UsageArchive.objects.get(month=MARCH).state == "archived"


def test_a_second_run_of_the_same_month_is_refused(tenant: Tenant, billed: Any, tmp_path: Path) -> None:
    # given: another session holds March's lock (a run that is detaching or exporting it)
    db = connection.settings_dict
    other = psycopg.connect(
        dbname=db["NAME"],
        user=db["USER"],
        host=db["HOST"],
        port=db["PORT"] or None,
        password=db["PASSWORD"] or None,
        autocommit=True,
    )
    try:
        other.execute("SELECT pg_advisory_lock(%s, %s)", [LOCK_CLASS, 2026 * 12 + 2])
        # when / then: refused at once, nothing touched
        with pytest.raises(MonthNotArchivable, match="Another archive or restore of 2026-03 is running"):
            usage_month_archive(month=MARCH, folder=tmp_path, at=NOW, concurrently=False)
        with pytest.raises(MonthNotArchivable, match="Another archive or restore of 2026-03 is running"):
            usage_month_restore(month=MARCH, folder=tmp_path, at=NOW)
        assert partition_exists("usage_event_2026_03")
        assert not UsageArchive.objects.exists()
        assert list(tmp_path.iterdir()) == []
        # April is another lock
        assert usage_month_archive(month=date(2026, 4, 1), folder=tmp_path, at=NOW, concurrently=False).rows == 1
        other.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_CLASS, 2026 * 12 + 2])
    finally:
        other.close()
    # when: the other session has let go
    assert usage_month_archive(month=MARCH, folder=tmp_path, at=NOW, concurrently=False).rows == 3


def test_billing_an_archived_month_again_says_to_restore_it(tenant: Tenant, tmp_path: Path) -> None:
    # given: 2 distinct SIMs active in March (x, y, x), billed on 1 April (2 x 1.00) and the month archived
    sims = usage_customer(
        tenant,
        products={"sims": "SIMs"},
        meters={"active": {"name": "Active SIMs", "aggregation": "unique_count", "field": "iccid"}},
        components=[{"product": "sims", "meter": "active", "charge": {"model": "per_unit", "unit_amount": "1.00"}}],
        devices=("A",),
    )
    events_ingest(
        tenant=tenant,
        received_at=datetime(2026, 3, 25, 12, tzinfo=PARIS),
        events=[
            {
                "transaction_id": t,
                "code": "active",
                "device_id": "A",
                "timestamp": datetime(2026, 3, day, 9, tzinfo=PARIS).isoformat(),
                "properties": {"iccid": iccid},
            }
            for t, day, iccid in (("s1", 5, "x"), ("s2", 6, "y"), ("s3", 7, "x"))
        ],
    )
    april = bill(sims, date(2026, 4, 1))
    assert april.net_total.amount == Decimal("2.00")
    bill(sims, date(2026, 5, 1))
    usage_month_archive(month=MARCH, folder=tmp_path, at=NOW, concurrently=False)
    # when: the 1 April invoice is voided and 1 April billed again
    invoice_void(invoice=april, actor=ACTOR, at=NOW, reason="wrong address")
    run = bill_run_create(tenant=tenant, billing_date=date(2026, 4, 1), actor=ACTOR, at=NOW)
    bill_run_chunk(run_id=str(run.pk), customer_ids=[str(sims.pk)], at=NOW)
    # then: the customer fails with what to do, rather than be billed 0 SIMs
    outcomes = list(BillRunCustomer.objects.filter(bill_run=run).values_list("outcome", "error"))
    assert outcomes == [
        (
            "failed",
            "The raw usage events of 2026-03 are archived and this invoice needs them: restore them "
            "(manage.py usage_restore 2026-03), then bill this customer again.",
        )
    ]
