"""Rate limits per API key and per tenant on every API route (tenancy.throttling, counted in Redis by
billing_platform.ratelimit): past a limit, a 429 problem+json with Retry-After; other keys and
tenants go on. Time is frozen, so every request falls in the same window."""

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
import time_machine
from rest_framework.test import APIClient

from billing_platform import ratelimit
from tenancy.models import ApiKeyScope, Tenant

pytestmark = pytest.mark.django_db
# 10:00:05 UTC: the minute's window ends at 10:01:00, 55 s later
AT = datetime(2026, 5, 4, 10, 0, 5, tzinfo=UTC)
ClientMaker = Callable[..., APIClient]


@pytest.fixture
def limits(settings: Any) -> dict[str, dict[str, str]]:
    # Counters outlive a test by their window: a webhook's is named by the tenant's slug, the same
    # in every test, and time is frozen. Start from none.
    client = redis.Redis.from_url(settings.REDIS_URL)
    for name in client.scan_iter("tripod:rl:*"):
        client.delete(name)
    settings.TRIPOD_RATE_LIMITS = {
        "api": {"key": "2/min", "tenant": "4/min"},
        "ingest": {"tenant": "4/min"},
        "webhooks": {"tenant": "2/min"},
    }
    return dict(settings.TRIPOD_RATE_LIMITS)


def problem(response: Any) -> dict[str, Any]:
    assert response["Content-Type"] == "application/problem+json"
    return dict(response.json())


@time_machine.travel(AT, tick=False)
def test_a_key_past_its_limit_gets_a_429_and_other_keys_and_tenants_go_on(
    limits: Any, tenant: Tenant, other_tenant: Tenant, make_client: ClientMaker
) -> None:
    # given: 2 requests a minute per key, 4 per tenant
    first_key, second_key, other = make_client(tenant), make_client(tenant), make_client(other_tenant)
    # when: a third request in the minute with the first key
    answers = [first_key.get("/api/v1/customers") for _ in range(3)]
    # then: the first two pass, with the headers of the key's limit (2 - 1 = 1 left, then 0)
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert [(a["RateLimit-Limit"], a["RateLimit-Remaining"]) for a in answers[:2]] == [("2", "1"), ("2", "0")]
    assert answers[0]["RateLimit-Reset"] == "55"
    # the third is refused until the window ends: 10:01:00 - 10:00:05 = 55 s
    refused = answers[2]
    assert refused["Retry-After"] == "55"
    assert problem(refused) == {
        "type": "https://tripod.dev/problems/rate_limited",
        "title": "Too many requests",
        "status": 429,
        "detail": "More than 2 requests per minute for this API key; retry after the Retry-After delay (55 s).",
        "code": "rate_limited",
        "retry_after": 55,
    }
    assert (refused["RateLimit-Limit"], refused["RateLimit-Remaining"]) == ("2", "0")
    # another key of the tenant has its own count; the tenant's is at 4 of 4 after it (the refused
    # request counted too)
    assert second_key.get("/api/v1/customers").status_code == 200
    # another tenant is not affected at all
    assert [other.get("/api/v1/customers").status_code for _ in range(2)] == [200, 200]


@time_machine.travel(AT, tick=False)
def test_a_tenant_past_its_limit_is_refused_whatever_the_key(
    limits: Any, tenant: Tenant, other_tenant: Tenant, make_client: ClientMaker
) -> None:
    # given: 4 requests a minute per tenant, spread over four keys (1 each, under the key limit)
    keys = [make_client(tenant) for _ in range(5)]
    assert [k.get("/api/v1/plans").status_code for k in keys[:4]] == [200, 200, 200, 200]
    # when: a fifth request with a fresh key
    refused = keys[4].get("/api/v1/plans")
    # then: the tenant's limit refuses it, and says so
    assert refused.status_code == 429
    assert problem(refused)["detail"].startswith("More than 4 requests per minute for this tenant;")
    assert refused["Retry-After"] == "55"
    assert make_client(other_tenant).get("/api/v1/plans").status_code == 200


@time_machine.travel(AT, tick=False)
def test_writes_count_too_and_nothing_is_written_past_the_limit(
    limits: Any, api: APIClient, customer_body: dict[str, Any]
) -> None:
    bodies = [{**customer_body, "external_id": "c-%d" % n} for n in range(3)]
    statuses = [api.post("/api/v1/customers", body, format="json").status_code for body in bodies]
    assert statuses == [201, 201, 429]
    assert api.get("/api/v1/customers/c-2").status_code == 429  # still the same minute


@time_machine.travel(AT, tick=False)
def test_usage_events_have_their_own_higher_limits(
    limits: Any, tenant: Tenant, make_client: ClientMaker, settings: Any
) -> None:
    # given: the API's limit is 2 a minute per key, ingestion's 4 a minute per tenant; the per-key
    # limit of events is the tenant's usage setting (100 a second by default)
    client = make_client(tenant, ApiKeyScope.INGEST)
    body = json.dumps({"events": [{"transaction_id": "t1", "code": "none", "timestamp": "2026-05-04T10:00:00Z"}]})
    answers = [client.post("/api/v1/events", data=body, content_type="application/json") for _ in range(5)]
    # then: 4 pass (each event is rejected for its unknown meter, the request itself is taken)
    assert [a.status_code for a in answers] == [202, 202, 202, 202, 429]
    assert problem(answers[4])["detail"].startswith("More than 4 requests per minute for this tenant;")
    # the rest of the API counts apart: 5 event requests used none of the tenant's 4 a minute
    assert make_client(tenant).get("/api/v1/customers").status_code == 200


@time_machine.travel(AT, tick=False)
def test_webhooks_count_per_tenant_slug_known_or_not(limits: Any, tenant: Tenant) -> None:
    # given: 2 webhooks a minute per tenant; unsigned webhooks are refused (401) but counted first
    def post(slug: str) -> Any:
        return APIClient().post(
            "/api/v1/webhooks/device-cloud?tenant=%s" % slug, data="{}", content_type="application/json"
        )

    known = [post(tenant.slug).status_code for _ in range(3)]
    unknown = [post("no-such-tenant").status_code for _ in range(3)]
    # then: the same answers for a slug that exists and one that does not
    assert known == unknown == [401, 401, 429]


def test_without_redis_the_api_goes_on(limits: Any, api: APIClient, monkeypatch: pytest.MonkeyPatch) -> None:
    # losing the limiter must not stop the API: requests pass uncounted, without the headers
    monkeypatch.setattr(ratelimit.settings, "REDIS_URL", "redis://127.0.0.1:1/0")
    answers = [api.get("/api/v1/customers") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert "RateLimit-Limit" not in answers[0]


def test_a_rate_is_read_as_requests_per_period() -> None:
    assert ratelimit.parse_rate("1200/min") == ratelimit.Rate(1200, 60)
    assert ratelimit.parse_rate("50/s") == ratelimit.Rate(50, 1)
    assert ratelimit.parse_rate("10 / hour") == ratelimit.Rate(10, 3600)
    assert str(ratelimit.parse_rate("5000/day")) == "5000 requests per day"
    for bad in ("lots", "0/min", "10/week", "-1/s"):
        with pytest.raises(ValueError, match="is not a rate"):
            ratelimit.parse_rate(bad)
