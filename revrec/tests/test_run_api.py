"""POST/GET /api/v1/revenue/runs, GET /api/v1/revenue/periods, POST /api/v1/revenue/periods/{period}/close."""

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from billing_platform.celery import app as celery_app
from revrec.models import Contract
from revrec.tests.conftest import PARIS

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 4, 2, 9, 0, tzinfo=PARIS)


@pytest.fixture(autouse=True)
def april_2026() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def eager() -> Iterator[None]:
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_a_run_is_accepted_then_done_by_its_task(
    api: APIClient, fleet_contract: Contract, eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    # when: the task runs once the request's transaction commits
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/revenue/runs", {"period": "2026-03"}, format="json")
    # then: 202 with the run as it was queued
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["period"], body["status"], body["progress"]) == ("2026-03", "queued", {"done": 0, "total": 0})
    done = api.get("/api/v1/revenue/runs/%s" % body["id"]).json()
    # one contract; 490.90 hardware + 23.40 service
    assert (done["status"], done["progress"], done["entries"], done["journal_entries"]) == (
        "succeeded",
        {"done": 1, "total": 1},
        4,
        1,
    )
    assert done["revenue"] == [
        {"currency": "EUR", "stream": "hardware", "amount": "490.90"},
        {"currency": "EUR", "stream": "service", "amount": "23.40"},
    ]
    assert [r["id"] for r in api.get("/api/v1/revenue/runs").json()["results"]] == [body["id"]]
    assert api.get("/api/v1/revenue/runs?period=2026-02").json()["results"] == []


def test_a_second_run_while_one_is_queued_is_a_conflict(api: APIClient, fleet_contract: Contract) -> None:
    first = api.post("/api/v1/revenue/runs", {"period": "2026-03"}, format="json").json()
    response = api.post("/api/v1/revenue/runs", {"period": "2026-03"}, format="json")
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert (body["code"], body["detail"], body["run"]) == (
        "recognition_run_in_progress",
        "A recognition run of 2026-03 is already queued.",
        first["id"],
    )


def test_bad_and_future_periods_are_refused(api: APIClient) -> None:
    bad = api.post("/api/v1/revenue/runs", {"period": "2026-13"}, format="json")
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "period"
    future = api.post("/api/v1/revenue/runs", {"period": "2026-05"}, format="json")
    assert future.status_code == 422
    assert future.json()["code"] == "revenue_period_not_ended"
    assert api.get("/api/v1/revenue/runs/not-a-uuid").status_code == 404


def test_closing_a_month_through_the_api(
    api: APIClient, fleet_contract: Contract, eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    unknown = api.post("/api/v1/revenue/periods/2026-03/close")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "revenue_period_not_found")
    with django_capture_on_commit_callbacks(execute=True):
        api.post("/api/v1/revenue/runs", {"period": "2026-03"}, format="json")
    # when
    response = api.post("/api/v1/revenue/periods/2026-03/close")
    # then
    assert response.status_code == 200, response.content
    assert response.json() == {
        "month": "2026-03",
        "status": "closed",
        "closed_at": "2026-04-02T07:00:00Z",
        "revenue": [
            {"currency": "EUR", "stream": "hardware", "amount": "490.90"},
            {"currency": "EUR", "stream": "service", "amount": "23.40"},
        ],
        "run": {"id": response.json()["run"]["id"], "status": "succeeded"},
    }
    again = api.post("/api/v1/revenue/periods/2026-03/close")
    assert (again.status_code, again.json()["code"]) == (409, "revenue_period_closed")
    rerun = api.post("/api/v1/revenue/runs", {"period": "2026-03"}, format="json")
    assert (rerun.status_code, rerun["Content-Type"]) == (409, "application/problem+json")
    assert rerun.json()["code"] == "revenue_period_closed"
    april = api.post("/api/v1/revenue/periods/2026-04/close")
    assert (april.status_code, april.json()["code"]) == (422, "revenue_period_not_ended")
    listed = api.get("/api/v1/revenue/periods").json()
    assert [(p["month"], p["status"]) for p in listed["results"]] == [("2026-03", "closed")]
    assert listed["next"] is None
