"""The journal's export to an ERP: each entry once per target, files in CSV and JSON, and two
exports at once never taking the same entry."""

import threading
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from billing_platform.rls import tenant_context
from revrec.export import export_target_create, journal_export_create
from revrec.models import ExportedEntry, JournalEntry, JournalLine
from tenancy.actors import Actor
from tenancy.models import Tenant

MARCH = date(2026, 3, 1)
APRIL = date(2026, 4, 1)
AT = datetime(2026, 4, 2, 7, 0, tzinfo=UTC)
ACTOR = Actor.system("tests")


def posting(tenant: Tenant, period: date, source_id: str, lines: list[tuple[str, str, str]]) -> JournalEntry:
    """A balanced entry: ``lines`` are (account, debit, credit)."""
    entry = JournalEntry.objects.create(
        tenant=tenant,
        period=period,
        date=date(period.year, period.month, 31 if period.month == 3 else 30),
        source_type="recognition" if source_id.startswith("R") else "invoice",
        source_id=source_id,
        currency="EUR",
        created_at=AT,
    )
    for account, debit, credit in lines:
        JournalLine.objects.create(
            tenant=tenant, entry=entry, account=account, currency="EUR", debit=Decimal(debit), credit=Decimal(credit)
        )
    return entry


def march_journal(tenant: Tenant) -> list[JournalEntry]:
    # Smart Fleet's March recognition, and an invoice of 120.00 + 24.00 tax.
    return [
        posting(
            tenant,
            MARCH,
            "R-1",
            [
                ("contract_balance", "514.30", "0"),
                ("revenue_hardware", "0", "490.90"),
                ("revenue_service", "0", "23.40"),
            ],
        ),
        posting(
            tenant,
            MARCH,
            "INV-1",
            [("receivable", "144.00", "0"), ("tax_payable", "0", "24.00"), ("contract_balance", "0", "120.00")],
        ),
    ]


@pytest.mark.django_db
def test_each_entry_goes_once_to_a_target(api: APIClient, tenant: Tenant) -> None:
    # given
    first, second = march_journal(tenant)
    posting(tenant, APRIL, "INV-2", [("receivable", "10.00", "0"), ("contract_balance", "0", "10.00")])
    created = api.post("/api/v1/revenue/export_targets", {"name": "Sage", "format": "csv"}, format="json")
    assert created.status_code == 201, created.content
    target = created.json()["id"]
    taken = api.post("/api/v1/revenue/export_targets", {"name": "Sage", "format": "json"}, format="json")
    assert (taken.status_code, taken.json()["code"]) == (409, "export_target_name_taken")
    # when: March exported, twice
    one = api.post("/api/v1/revenue/export_targets/%s/exports" % target, {"period": "2026-03"}, format="json")
    two = api.post("/api/v1/revenue/export_targets/%s/exports" % target, {"period": "2026-03"}, format="json")
    # then: the first took March's 2 entries (3 + 3 lines), the second nothing
    assert one.status_code == 201, one.content
    assert (one.json()["period"], one.json()["entries"], one.json()["lines"]) == ("2026-03", 2, 6)
    assert (two.json()["entries"], two.json()["lines"]) == (0, 0)
    # a later entry of March goes in the next export only
    late = posting(tenant, MARCH, "INV-3", [("receivable", "12.00", "0"), ("contract_balance", "0", "12.00")])
    three = api.post("/api/v1/revenue/export_targets/%s/exports" % target, {"period": "2026-03"}, format="json")
    assert (three.json()["entries"], three.json()["lines"]) == (1, 2)
    assert sorted(ExportedEntry.objects.values_list("entry_id", flat=True)) == sorted([first.pk, second.pk, late.pk])
    # another target takes them all again
    other = api.post("/api/v1/revenue/export_targets", {"name": "Netsuite", "format": "json"}, format="json").json()
    four = api.post("/api/v1/revenue/export_targets/%s/exports" % other["id"], {"period": "2026-03"}, format="json")
    assert four.json()["entries"] == 3
    # the list, newest first
    listed = api.get("/api/v1/revenue/export_targets/%s/exports" % target).json()["results"]
    assert [e["entries"] for e in listed] == [1, 0, 2]
    assert [t["name"] for t in api.get("/api/v1/revenue/export_targets").json()["results"]] == ["Netsuite", "Sage"]

    # the CSV file: a header and a row per journal line
    download = api.get(one.json()["download"])
    assert download.status_code == 200
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    assert download.content.decode().splitlines() == [
        "entry_id,date,period,source_type,source_id,contract,account,currency,debit,credit",
        "%d,2026-03-31,2026-03,recognition,R-1,,contract_balance,EUR,514.30,0.00" % first.pk,
        "%d,2026-03-31,2026-03,recognition,R-1,,revenue_hardware,EUR,0.00,490.90" % first.pk,
        "%d,2026-03-31,2026-03,recognition,R-1,,revenue_service,EUR,0.00,23.40" % first.pk,
        "%d,2026-03-31,2026-03,invoice,INV-1,,receivable,EUR,144.00,0.00" % second.pk,
        "%d,2026-03-31,2026-03,invoice,INV-1,,tax_payable,EUR,0.00,24.00" % second.pk,
        "%d,2026-03-31,2026-03,invoice,INV-1,,contract_balance,EUR,0.00,120.00" % second.pk,
    ]
    # the JSON file
    body = api.get(four.json()["download"]).json()
    assert (body["target"], body["period"], len(body["lines"])) == ("Netsuite", "2026-03", 8)
    assert body["lines"][0] == {
        "entry_id": first.pk,
        "date": "2026-03-31",
        "period": "2026-03",
        "source_type": "recognition",
        "source_id": "R-1",
        "contract": None,
        "account": "contract_balance",
        "currency": "EUR",
        "debit": "514.30",
        "credit": "0.00",
    }
    # debits equal credits: 514.30 + 144.00 + 12.00 = 670.30
    assert sum(Decimal(x["debit"]) for x in body["lines"]) == sum(Decimal(x["credit"]) for x in body["lines"])
    assert sum(Decimal(x["debit"]) for x in body["lines"]) == Decimal("670.30")


@pytest.mark.django_db
def test_unknown_targets_and_exports_are_404(api: APIClient, tenant: Tenant) -> None:
    assert api.get("/api/v1/revenue/export_targets/nope/exports").json()["code"] == "export_target_not_found"
    target = api.post("/api/v1/revenue/export_targets", {"name": "Sage", "format": "csv"}, format="json").json()
    missing = api.get("/api/v1/revenue/export_targets/%s/exports/%s/download" % (target["id"], target["id"]))
    assert (missing.status_code, missing.json()["code"]) == (404, "journal_export_not_found")
    bad = api.post("/api/v1/revenue/export_targets", {"name": "X", "format": "xml"}, format="json")
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (422, "format")


@pytest.mark.django_db(transaction=True)
def test_two_exports_at_once_never_take_the_same_entry(make_tenant: Any) -> None:
    # given: 40 entries in March, one target
    tenant = make_tenant()
    for n in range(40):
        posting(tenant, MARCH, "INV-%d" % n, [("receivable", "1.00", "0"), ("contract_balance", "0", "1.00")])
    target = export_target_create(tenant=tenant, name="Sage", format="csv", actor=ACTOR, at=AT)
    results: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def export() -> None:
        try:
            start.wait()
            with tenant_context(tenant.pk):
                results.append(journal_export_create(target=target, period=MARCH, actor=ACTOR, at=AT).entries)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    # when: two exports at the same instant, each on its own connection
    threads = [threading.Thread(target=export) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then: one took the 40, the other none; each entry once
    assert errors == []
    assert sorted(results) == [0, 40]
    assert ExportedEntry.objects.filter(target=target).count() == 40
