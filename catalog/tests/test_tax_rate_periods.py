"""Tax rates over periods of days, through ``POST /api/v1/tax_rates``: a rate change is a new period,
an overlapping period is refused with a problem+json, and the rate in force on a day is that
period's."""

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from catalog.taxes import tax_rate_table, tax_rates
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db


def post(api: APIClient, body: dict[str, Any]) -> Any:
    return api.post("/api/v1/tax_rates", body, format="json")


def test_a_rate_without_dates_is_valid_since_always_and_a_second_post_changes_it(api: APIClient) -> None:
    first = post(api, {"country": "FR", "tax_category": "standard", "rate": "20"})
    assert first.status_code == 201
    assert (first.json()["valid_from"], first.json()["valid_to"]) == ("1900-01-01", None)
    # the API before periods: the one period's rate changes
    second = post(api, {"country": "FR", "tax_category": "standard", "rate": "19.6"})
    assert (second.status_code, second.json()["rate"], second.json()["valid_from"]) == (201, "19.60", "1900-01-01")
    assert api.get("/api/v1/tax_rates?country=FR").json()["results"][0]["rate"] == "19.60"


def test_a_vat_change_is_two_periods_and_each_day_takes_its_own(api: APIClient, tenant: Tenant) -> None:
    # given: 20 % until 30 June 2027 (the current period ended), 21 % from 1 July 2027
    assert post(api, {"country": "FR", "tax_category": "standard", "rate": "20"}).status_code == 201
    ended = post(api, {"country": "FR", "tax_category": "standard", "rate": "20", "valid_to": "2027-06-30"})
    assert ended.json()["valid_to"] == "2027-06-30"
    new = post(api, {"country": "FR", "tax_category": "standard", "rate": "21", "valid_from": "2027-07-01"})
    assert new.status_code == 201, new.content
    # then: both ends of each period are included
    assert tax_rates(tenant=tenant, on=date(2027, 6, 30))["FR"] == {"standard": Decimal("20.0000")}
    assert tax_rates(tenant=tenant, on=date(2027, 7, 1))["FR"] == {"standard": Decimal("21.0000")}
    table = tax_rate_table(tenant=tenant, countries=["FR"])
    assert table.on("FR", date(2027, 6, 30)) == {"standard": Decimal("20.0000")}
    assert table.on("FR", date(2027, 7, 1)) == {"standard": Decimal("21.0000")}
    # and a post without valid_from no longer knows which period to change
    unclear = post(api, {"country": "FR", "tax_category": "standard", "rate": "22"})
    assert unclear.status_code == 422
    assert unclear.json()["errors"] == [
        {"field": "valid_from", "code": "required", "message": "Give the first day of the period to change."}
    ]


def test_an_overlapping_period_is_refused_with_a_problem(api: APIClient) -> None:
    # given: 20 % since always, open-ended
    post(api, {"country": "FR", "tax_category": "standard", "rate": "20"})
    # when: 21 % from 1 July 2027 while the 20 % period is still open
    response = post(api, {"country": "FR", "tax_category": "standard", "rate": "21", "valid_from": "2027-07-01"})
    # then
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "tax_rate_period_overlap"
    assert body["overlapping"] == {"valid_from": "1900-01-01", "valid_to": None, "rate": "20.0000"}
    assert [(e["field"], e["code"]) for e in body["errors"]] == [("valid_from", "overlap")]
    assert "end that period first" in body["detail"]
    # a period ending before it starts is refused too
    backwards = post(
        api,
        {
            "country": "DE",
            "tax_category": "standard",
            "rate": "19",
            "valid_from": "2027-07-01",
            "valid_to": "2027-06-30",
        },
    )
    assert backwards.status_code == 422
    assert backwards.json()["errors"][0]["code"] == "before_valid_from"
