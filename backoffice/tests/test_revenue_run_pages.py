"""The back-office revenue pages: "Revenue runs" (/app/revenue/runs/: months, runs, live progress,
close) and "ERP export" (/app/revenue/erp-export/: targets, exports, files). Smart Fleet's March:
hardware 490.90 and service 23.40 EUR."""

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
import time_machine
from django.test import Client

from revrec.models import Contract, JournalExport, RecognitionRun, RevenuePeriod
from revrec.tests.conftest import PARIS, fleet, fleet_contract
from tenancy.models import Role, Tenant

pytestmark = pytest.mark.django_db
StaffMaker = Callable[..., Any]
NOW = datetime(2026, 4, 2, 9, 0, tzinfo=PARIS)
__all__ = ["fleet", "fleet_contract"]


@pytest.fixture(autouse=True)
def _on_2_april() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def text(response: Any) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode())).replace("&#x27;", "'")


def client_for(tenant: Tenant, make_staff: StaffMaker, role: str = Role.OWNER) -> Client:
    client = Client()
    client.force_login(make_staff(tenant, role, "staff@acme.test"))
    return client


def test_a_run_started_on_the_page_is_followed_then_the_month_closed(
    tenant: Tenant, fleet_contract: Contract, make_staff: StaffMaker
) -> None:
    client = client_for(tenant, make_staff)
    page = client.get("/app/revenue/runs/")
    assert page.status_code == 200
    assert 'value="2026-03"' in page.content.decode()  # the previous month, ready to run
    # when: the run is started (its task waits for the commit: queued, polling)
    started = client.post("/app/revenue/runs/new/", {"period": "2026-03"})
    run = RecognitionRun.objects.get()
    assert started["Location"] == "/app/revenue/runs/%s/" % run.pk
    detail = client.get(started["Location"])
    assert "Waiting for a worker" in text(detail)
    assert 'hx-trigger="every 1s"' in detail.content.decode()
    # the worker does it: the panel stops polling and says what was posted
    from revrec.periods import recognition_run_execute

    recognition_run_execute(run_id=run.pk, at=NOW)
    panel = client.get("/app/revenue/runs/%s/progress/" % run.pk)
    assert "hx-trigger" not in panel.content.decode()
    assert "1 / 1" in text(panel)
    assert "hardware 490.90 EUR · service 23.40 EUR" in text(panel)
    # then the month closes from the list
    assert "Close 2026-03" in text(client.get("/app/revenue/runs/"))
    closed = client.post("/app/revenue/periods/2026-03/close/")
    assert closed.status_code == 302
    assert RevenuePeriod.objects.get(month="2026-03-01").closed_at == NOW
    after = text(client.get("/app/revenue/runs/", follow=True))
    assert "2026-03 is closed: nothing will post in it any more." in after
    assert "Close 2026-03" not in after
    # a run of a closed month is refused with the reason, on the form
    refused = client.post("/app/revenue/runs/new/", {"period": "2026-03"})
    assert "The revenue period 2026-03 is closed" in text(refused)


def test_a_failed_run_says_why(tenant: Tenant, make_staff: StaffMaker) -> None:
    run = RecognitionRun.objects.create(
        tenant=tenant, month="2026-03-01", status="failed", error="the ledger is on fire", created_at=NOW
    )
    page = text(client_for(tenant, make_staff).get("/app/revenue/runs/%s/" % run.pk))
    assert "The run failed: the ledger is on fire" in page


def test_the_runs_table_as_csv(tenant: Tenant, fleet_contract: Contract, make_staff: StaffMaker) -> None:
    from revrec.periods import recognition_run_create, recognition_run_execute
    from tenancy.actors import Actor

    run = recognition_run_create(
        tenant=tenant, month=fleet_contract.created_at.date().replace(day=1), actor=Actor.system("tests"), at=NOW
    )
    recognition_run_execute(run_id=run.pk, at=NOW)
    response = client_for(tenant, make_staff, Role.FINANCE_VIEWER).get("/app/revenue/runs/export.csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    streamed: Any = response
    rows = b"".join(streamed.streaming_content).decode().splitlines()
    assert rows[0].startswith("run,period,status,done,total,entries,journal_entries,currency,stream,revenue")
    # one row per currency and stream posted
    assert [r.split(",")[1:10] for r in rows[1:]] == [
        ["2026-03", "succeeded", "1", "1", "4", "1", "EUR", "hardware", "490.90"],
        ["2026-03", "succeeded", "1", "1", "4", "1", "EUR", "service", "23.40"],
    ]


def test_viewers_read_but_do_not_run_and_support_agents_do_not_see(tenant: Tenant, make_staff: StaffMaker) -> None:
    viewer = client_for(tenant, make_staff, Role.FINANCE_VIEWER)
    page = viewer.get("/app/revenue/runs/")
    assert page.status_code == 200
    assert "Run this month" not in text(page)
    assert viewer.post("/app/revenue/runs/new/", {"period": "2026-03"}).status_code == 403
    assert viewer.post("/app/revenue/erp-export/targets/new/", {"name": "Sage", "format": "csv"}).status_code == 403
    agent = Client()
    agent.force_login(make_staff(tenant, Role.SUPPORT_AGENT, "agent@acme.test"))
    assert agent.get("/app/revenue/runs/").status_code == 403
    assert agent.get("/app/revenue/erp-export/").status_code == 403


def test_erp_export_page(tenant: Tenant, fleet_contract: Contract, make_staff: StaffMaker) -> None:
    from revrec.periods import recognition_run_create, recognition_run_execute
    from tenancy.actors import Actor

    run = recognition_run_create(
        tenant=tenant, month=fleet_contract.created_at.date().replace(day=1), actor=Actor.system("tests"), at=NOW
    )
    recognition_run_execute(run_id=run.pk, at=NOW)
    client = client_for(tenant, make_staff)
    # a target, and the same name again refused
    assert client.post("/app/revenue/erp-export/targets/new/", {"name": "Sage", "format": "csv"}).status_code == 302
    again = client.post("/app/revenue/erp-export/targets/new/", {"name": "Sage", "format": "json"})
    assert "An export target named Sage exists already." in text(again)
    target = tenant_target(tenant)
    # March exported: 1 entry of 3 lines; again: nothing new
    first = client.post("/app/revenue/erp-export/%s/exports/new/" % target, {"period": "2026-03"}, follow=True)
    assert "1 new journal entries of 2026-03 exported to Sage." in text(first)
    second = client.post("/app/revenue/erp-export/%s/exports/new/" % target, {"period": "2026-03"}, follow=True)
    assert "No new journal entry of 2026-03 for Sage: the export is empty." in text(second)
    export = JournalExport.objects.filter(entries=1).get()
    download = client.get("/app/revenue/erp-export/%s/exports/%s/download/" % (target, export.pk))
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    assert len(download.content.decode().splitlines()) == 1 + 3  # header + Dr contract balance, Cr hardware, Cr service
    table = client.get("/app/revenue/erp-export/exports.csv").content.decode().splitlines()
    # (both made at the same frozen instant: their order is not the point)
    assert sorted(r.split(",")[1:6] for r in table[1:]) == [
        ["Sage", "csv", "2026-03", "0", "0"],
        ["Sage", "csv", "2026-03", "1", "3"],
    ]


def tenant_target(tenant: Tenant) -> str:
    from revrec.models import ExportTarget

    return str(ExportTarget.objects.get(tenant=tenant, name="Sage").pk)


def test_the_pages_in_french(tenant: Tenant, make_staff: StaffMaker) -> None:
    client = client_for(tenant, make_staff)
    page = text(client.get("/app/revenue/runs/", HTTP_ACCEPT_LANGUAGE="fr"))
    assert "Exécutions de reconnaissance" in page or "Reconnaissance du revenu" in page
    assert "Export ERP" in text(client.get("/app/revenue/erp-export/", HTTP_ACCEPT_LANGUAGE="fr"))
