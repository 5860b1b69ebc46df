"""Cached current usage is exact: after every kind of change (usage on time, late and replayed;
devices added, activated and removed; prices, overrides, a partner's price book; a one-time fee
billed; a bill run; a plan change and a cancellation; time passing within a period and into the
next), ``GET /customers/{id}/current_usage`` answers exactly what a fresh computation gives, and a
second call is served from the cache at a fixed number of queries."""

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from billing_platform import generations
from invoicing.tests.billing_api import eager_celery, ok, paris
from invoicing.usage_cache import current_usage_fresh
from invoicing.usage_cache import serialized as fresh_serialized
from subscriptions.models import Device
from subscriptions.services import device_event_apply
from tenancy.actors import Actor
from tenancy.models import ApiKeyScope, Tenant
from tests.test_openapi_responses import BASIC, CUSTOMER, EVERYTHING, METERS, PRODUCTS

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]
__all__ = ["eager_celery"]

# A hit: the request's row-level security scope opened, the API key looked up, its tenant set; the
# projection itself reads nothing from the database.
HIT_QUERIES = 3
# A miss: those three, the customer, the usage context and the projection's other reads.
MISS_QUERIES = 15
URL = "/api/v1/customers/dupont/current_usage"
EXAMPLES = itertools.count()


def fresh(tenant: Tenant, at: datetime, customer: str = "dupont") -> Any:
    usage, _ = current_usage_fresh(tenant=tenant, external_id=customer, at=at)
    return json.loads(JSONRenderer().render(fresh_serialized(usage)))


class Probe:
    """Reads current usage through the API and compares it with a fresh computation."""

    def __init__(self, tenant: Tenant, api: APIClient) -> None:
        self.tenant, self.api = tenant, api
        self.hits = 0

    def check(self, at: datetime, customer: str = "dupont") -> dict[str, Any]:
        url = f"/api/v1/customers/{customer}/current_usage"
        with time_machine.travel(at, tick=False):
            first = ok(self.api.get(url))
            with CaptureQueriesContext(connection) as queries:
                second = ok(self.api.get(url))
            expected = fresh(self.tenant, at, customer)
        assert first == expected
        assert second == expected
        assert len(queries) == HIT_QUERIES, [q["sql"] for q in queries]
        self.hits += 1
        return expected


@pytest.fixture
def probe(tenant: Tenant, api: APIClient) -> Probe:
    return Probe(tenant, api)


def call(api: APIClient, method: str, at: datetime, path: str, body: Any = None, capture: Any = None) -> Any:
    with time_machine.travel(at, tick=False):
        if capture is None:
            return ok(getattr(api, method)(f"/api/v1/{path}", body, format="json"))
        with capture(execute=True):
            return ok(getattr(api, method)(f"/api/v1/{path}", body, format="json"))


def activate(tenant: Tenant, device: str, at: datetime) -> None:
    with time_machine.travel(at, tick=False):
        device_event_apply(
            tenant=tenant, device_id=device, event_type="device.activated", occurred_at=at, actor=Actor.system("t")
        )


def events(ingest: APIClient, at: datetime, rows: list[tuple[str, str, str, dict[str, Any]]]) -> dict[str, Any]:
    body = {
        "events": [
            {"transaction_id": tid, "code": code, "device_id": "A", "timestamp": ts, "properties": p}
            for tid, code, ts, p in rows
        ]
    }
    result: dict[str, Any] = call(ingest, "post", at, "events", body)
    return result


@pytest.fixture
def catalog(api: APIClient) -> None:
    march = paris(2026, 3, 1, 9)
    for product in PRODUCTS:
        call(api, "post", march, "products", product)
    for meter in METERS:
        call(api, "post", march, "meters", meter)
    call(api, "post", march, "tax_rates", {"country": "FR", "tax_category": "standard", "rate": "20"})
    call(api, "post", march, "plans", EVERYTHING)
    call(api, "post", march, "plans", BASIC)
    call(api, "post", march, "customers", CUSTOMER)


SUBSCRIPTION = {
    "external_id": "dupont-fleet",
    "customer": "dupont",
    "plan": "everything",
    "signed_at": "2026-03-10T10:00:00+01:00",
    "devices": [{"device_id": d, "device_type": "eld"} for d in ("A", "B", "C")],
}


def test_every_change_is_seen_by_the_cached_answer(
    catalog: None,
    tenant: Tenant,
    api: APIClient,
    probe: Probe,
    make_client: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    ingest = make_client(tenant, ApiKeyScope.INGEST)
    # no subscription yet: nothing projected
    assert probe.check(paris(2026, 3, 5, 9))["subscriptions"] == []
    # signed on 10 March with three devices (the setup fee triggered)
    call(api, "post", paris(2026, 3, 10, 10), "subscriptions", SUBSCRIPTION)
    signed = probe.check(paris(2026, 3, 10, 11))
    assert {"eld-200", "setup"} <= {line["product"] for line in signed["projected"]["lines"]}
    probe.check(paris(2026, 3, 12, 9))  # later the same period, nothing changed

    # A activated on 15 March: its fee starts
    activate(tenant, "A", paris(2026, 3, 15, 9))
    probe.check(paris(2026, 3, 15, 10))

    # usage on time, late (an earlier day of the period), then replayed
    ts = "2026-03-20T10:00:00Z"
    assert events(ingest, paris(2026, 3, 20, 12), [("d-1", "data_mb", ts, {"mb": 3800})])["accepted"] == 1
    on_time = probe.check(paris(2026, 3, 20, 13))
    late = [("d-2", "data_mb", "2026-03-11T10:00:00Z", {"mb": 200}), ("g-1", "storage_gb", ts, {"gb": 120})]
    assert events(ingest, paris(2026, 3, 21, 12), late)["accepted"] == 2
    after_late = probe.check(paris(2026, 3, 21, 13))
    assert after_late["subscriptions"][0]["components"] != on_time["subscriptions"][0]["components"]
    assert events(ingest, paris(2026, 3, 21, 14), [("d-2", "data_mb", ts, {"mb": 999})])["duplicates"] == 1
    assert probe.check(paris(2026, 3, 21, 15))["subscriptions"] == after_late["subscriptions"]

    # a device added, then removed
    body = {"action": "add_devices", "devices": [{"device_id": "D", "device_type": "eld"}]}
    call(api, "post", paris(2026, 3, 22, 10), "subscriptions/dupont-fleet/changes", body)
    added = probe.check(paris(2026, 3, 22, 11))
    call(
        api,
        "post",
        paris(2026, 3, 23, 10),
        "subscriptions/dupont-fleet/changes",
        {"action": "remove_devices", "device_ids": ["D"]},
    )
    assert probe.check(paris(2026, 3, 23, 11)) != added

    # a new price from April (the in-advance fee of April), then a negotiated price for Dupont
    version: dict[str, Any] = {
        "currency": "EUR",
        "effective_from": "2026-04-01T00:00:00+02:00",
        "components": [
            {"product": "eld-200", "price": "240.00"},
            {"product": "fleet-platform", "charge": {"model": "flat", "amount": "27.00"}},
            {"product": "setup", "price": "50.00"},
            {"product": "data-overage", "charge": {"model": "per_unit", "unit_amount": "0.02"}},
            {"product": "sms", "charge": {"model": "per_unit", "unit_amount": "0.05"}},
            {"product": "api-calls", "charge": {"model": "per_unit", "unit_amount": "0.001"}},
            {"product": "payments", "charge": {"model": "percentage", "rate": "1"}},
            {"product": "storage", "charge": {"model": "package", "package_size": 50, "package_amount": "2"}},
            {"product": "roaming", "charge": {"model": "flat", "amount": "3"}},
        ],
    }
    before_price = probe.check(paris(2026, 3, 24, 9))
    call(api, "post", paris(2026, 3, 24, 10), "plans/everything/price_versions", version)
    after_price = probe.check(paris(2026, 3, 24, 11))
    assert after_price["projected"] != before_price["projected"]
    override = {"customer": "dupont", "product": "eld-200", "price": "200.00"}
    call(api, "post", paris(2026, 3, 24, 12), "plans/everything/price_overrides", override)
    assert probe.check(paris(2026, 3, 24, 13))["projected"] != after_price["projected"]

    # Dupont moves to a partner whose price book sells the platform cheaper
    call(
        api,
        "post",
        paris(2026, 3, 25, 9),
        "partners",
        {"code": "alpnet", "name": "AlpNet", "email": "a@alpnet.test", "country": "FR"},
    )
    book = {**version, "price_book": "alpnet", "effective_from": "2026-03-01T00:00:00+01:00"}
    book["components"] = [
        {**c, "charge": {"model": "flat", "amount": "20.00"}} if c["product"] == "fleet-platform" else c
        for c in version["components"]
    ]
    call(api, "post", paris(2026, 3, 25, 9), "plans/everything/price_versions", book)
    call(api, "patch", paris(2026, 3, 25, 9), "partners/alpnet", {"price_book": "alpnet"})
    before_partner = probe.check(paris(2026, 3, 25, 10))
    call(api, "patch", paris(2026, 3, 25, 11), "customers/dupont", {"partner": "alpnet"})
    assert probe.check(paris(2026, 3, 25, 12))["projected"] != before_partner["projected"]
    # the customer's tax id: the reverse charge or not
    call(api, "patch", paris(2026, 3, 26, 9), "customers/dupont", {"tax_id": "FR40303265045"})
    probe.check(paris(2026, 3, 26, 10))

    # time passes into April without any write: the entry of March is not served
    march_end = probe.check(paris(2026, 3, 31, 23, 59))
    april_first = probe.check(paris(2026, 4, 1, 0, 1))
    assert april_first["subscriptions"][0]["period_start"] != march_end["subscriptions"][0]["period_start"]

    # the bill run of 1 April bills March (and the setup fee, which leaves the projection), finalized
    run = call(
        api,
        "post",
        paris(2026, 4, 1, 0, 30),
        "bill_runs",
        {"billing_date": "2026-04-01"},
        django_capture_on_commit_callbacks,
    )
    assert ok(api.get(f"/api/v1/bill_runs/{run['id']}"))["status"] == "completed"
    billed = probe.check(paris(2026, 4, 1, 1))
    assert "setup" not in [line["product"] for line in billed["projected"]["lines"]]
    [invoice] = call(api, "get", paris(2026, 4, 1, 2), "invoices?customer=dupont")["results"]
    call(
        api,
        "post",
        paris(2026, 4, 1, 2),
        f"invoices/{invoice['id']}/finalize",
        None,
        django_capture_on_commit_callbacks,
    )
    probe.check(paris(2026, 4, 1, 3))

    # B activated on 2 April; a plan change on 16 April; then a cancellation at the period's end
    activate(tenant, "B", paris(2026, 4, 2, 9))
    probe.check(paris(2026, 4, 2, 10))
    change = {"action": "change_plan", "plan": "basic", "effective_at": "2026-04-16T10:00:00+02:00"}
    call(api, "post", paris(2026, 4, 16, 10), "subscriptions/dupont-fleet/changes", change)
    changed = probe.check(paris(2026, 4, 16, 11))
    assert changed["subscriptions"][0]["plan"] == "basic"
    call(api, "post", paris(2026, 4, 20, 10), "subscriptions/dupont-fleet/changes", {"action": "cancel"})
    probe.check(paris(2026, 4, 20, 11))
    probe.check(paris(2026, 5, 2, 11))  # the period after the end
    assert probe.hits == 23


def test_an_unknown_customer_is_a_404_and_caches_nothing(catalog: None, api: APIClient) -> None:
    with time_machine.travel(paris(2026, 3, 5, 9), tick=False):
        first = api.get("/api/v1/customers/nobody/current_usage")
        second = api.get("/api/v1/customers/nobody/current_usage")
    assert (first.status_code, second.status_code) == (404, 404)
    assert second.json()["code"] == "customer_not_found"


def test_redis_down_computes_afresh(
    catalog: None, tenant: Tenant, api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    call(api, "post", paris(2026, 3, 10, 10), "subscriptions", SUBSCRIPTION)

    class Down:
        def __getattr__(self, name: str) -> Any:
            raise redis.ConnectionError("down")

    monkeypatch.setattr(generations, "client", lambda: Down())
    monkeypatch.setattr("invoicing.usage_cache.client", lambda: Down())
    at = paris(2026, 3, 12, 9)
    with time_machine.travel(at, tick=False):
        with CaptureQueriesContext(connection) as first:
            answer = ok(api.get(URL))
        with CaptureQueriesContext(connection) as second:
            again = ok(api.get(URL))
        assert answer == again == fresh(tenant, at)
    # computed each time: 15 queries (the first request of the test reads one more, kept after)
    assert (len(first), len(second)) == (16, MISS_QUERIES)


def test_an_instant_inside_the_period_ends_the_entry(
    catalog: None, tenant: Tenant, api: APIClient, probe: Probe
) -> None:
    # given: C's activation known ahead, for 27 March 09:00 (a device cloud that reports a
    # scheduled activation); nothing is written after 26 March
    call(api, "post", paris(2026, 3, 10, 10), "subscriptions", SUBSCRIPTION)
    Device.objects.filter(tenant=tenant, device_id="C").update(activated_at=paris(2026, 3, 27, 9))
    before = probe.check(paris(2026, 3, 26, 10))
    # when: the clock passes that instant
    after = probe.check(paris(2026, 3, 27, 10))
    # then: C pays its first days and April in advance from then on, as a fresh computation says
    lines = {(line["product"], ",".join(line["devices"])) for line in after["projected"]["lines"]}
    assert ("fleet-platform", "C") in lines
    assert after["projected"]["total"] != before["projected"]["total"]


# --- random sequences of changes ------------------------------------------------------------------

ACTIONS = ("usage", "late_usage", "replay", "add_device", "remove_device", "activate", "override", "tax_id", "wait")


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(1, 120)), min_size=3, max_size=7))
def test_random_changes_never_leave_a_stale_answer(
    catalog: None, tenant: Tenant, api: APIClient, probe: Probe, make_client: Any, steps: list[tuple[str, int]]
) -> None:
    # given: a new customer for each example, signed on 10 March with devices A and B
    n = next(EXAMPLES)
    customer, sub = "h%d" % n, "h%d-fleet" % n
    call(api, "post", paris(2026, 3, 1, 9), "customers", {**CUSTOMER, "external_id": customer})
    devices = [{"device_id": "h%d-%s" % (n, d), "device_type": "eld"} for d in "AB"]
    body = {**SUBSCRIPTION, "external_id": sub, "customer": customer, "devices": devices}
    call(api, "post", paris(2026, 3, 10, 10), "subscriptions", body)
    ingest = make_client(tenant, ApiKeyScope.INGEST)
    at = paris(2026, 3, 10, 11)
    probe.check(at, customer)
    added: list[str] = []
    overridden = False
    # when: each step changes something (or lets hours pass), then the answer is read again
    for i, (action, hours) in enumerate(steps):
        at += timedelta(hours=hours)
        tid = "h%d-%d" % (n, i)
        if action in ("usage", "late_usage", "replay"):
            ts = (at - timedelta(days=5 if action == "late_usage" else 0)).astimezone(UTC).isoformat()
            event: dict[str, Any] = {"transaction_id": "h%d-0" % n if action == "replay" else tid, "code": "data_mb"}
            event |= {"device_id": devices[0]["device_id"], "timestamp": ts, "properties": {"mb": hours * 10}}
            call(ingest, "post", at, "events", {"events": [event]})
        elif action == "add_device":
            change = {"action": "add_devices", "devices": [{"device_id": tid, "device_type": "eld"}]}
            call(api, "post", at, "subscriptions/%s/changes" % sub, change)
            added.append(tid)
        elif action == "remove_device" and added:
            change = {"action": "remove_devices", "device_ids": [added.pop()]}
            call(api, "post", at, "subscriptions/%s/changes" % sub, change)
        elif action == "activate":
            activate(tenant, devices[hours % 2]["device_id"], at)
        elif action == "override" and not overridden:
            overridden = True
            body = {"customer": customer, "product": "eld-200", "price": "%d.00" % (100 + hours)}
            call(api, "post", at, "plans/everything/price_overrides", body)
        elif action == "tax_id":
            tax_id = "FR40303265045" if hours % 2 else ""
            call(api, "patch", at, "customers/%s" % customer, {"tax_id": tax_id})
        # then: the cached answer is the fresh one (a minute later: an entry computed at the very
        # instant of a write is served from the next microsecond on only)
        probe.check(at + timedelta(minutes=1), customer)


# --- what the generations alone would miss ------------------------------------------------------


def warm(api: APIClient, at: datetime) -> None:
    """Two reads at ``at``: the second a hit."""
    with time_machine.travel(at, tick=False):
        ok(api.get(URL))
        with CaptureQueriesContext(connection) as queries:
            ok(api.get(URL))
    assert len(queries) == HIT_QUERIES


def read_queries(api: APIClient, at: datetime) -> tuple[Any, int]:
    with time_machine.travel(at, tick=False), CaptureQueriesContext(connection) as queries:
        answer = ok(api.get(URL))
    return answer, len(queries)


def subscribed_and_cached(api: APIClient) -> datetime:
    """Dupont's subscription signed on 10 March, and its current usage on 12 March 09:00 cached
    (the instant returned)."""
    call(api, "post", paris(2026, 3, 10, 10), "subscriptions", SUBSCRIPTION)
    at = paris(2026, 3, 12, 9)
    warm(api, at)
    return at


def test_an_entry_of_another_redis_run_is_a_miss(
    catalog: None, tenant: Tenant, api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: an entry stored, then Redis restarted from a snapshot holding that entry and the
    # generations it was computed under (the same keys, another run id)
    at = subscribed_and_cached(api)
    monkeypatch.setattr(generations, "run_id", lambda info: "another-run")
    # when / then: computed afresh, then served from the entry of the new run
    assert read_queries(api, at) == (fresh(tenant, at), MISS_QUERIES)
    assert read_queries(api, at)[1] == HIT_QUERIES


def test_a_lost_bump_retires_every_entry(
    catalog: None, tenant: Tenant, api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = subscribed_and_cached(api)
    real = generations.client()
    before = int(real.get(generations.GLOBAL) or 0)

    class FailsOnce:
        """A client whose first pipeline times out."""

        failed = False

        def pipeline(self, **kwargs: Any) -> Any:
            if not FailsOnce.failed:
                FailsOnce.failed = True
                raise redis.TimeoutError("timed out")
            return real.pipeline(**kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    monkeypatch.setattr(generations, "client", lambda: FailsOnce())
    clock = [1000.0]
    monkeypatch.setattr(generations, "_monotonic", lambda: clock[0])
    # when: the bump of Dupont's new usage is lost
    generations.usage_changed(tenant=tenant, external_ids=["dupont"])
    assert FailsOnce.failed
    assert int(real.get(generations.GLOBAL) or 0) == before
    # then: for the pause (5 s), reads leave Redis alone and compute afresh
    clock[0] += generations.PAUSE_SECONDS - 0.1
    assert read_queries(api, at) == (fresh(tenant, at), MISS_QUERIES)
    assert int(real.get(generations.GLOBAL) or 0) == before
    # after it, the next read bumps the global generation first, so the entry is not served
    clock[0] += 0.1
    assert read_queries(api, at) == (fresh(tenant, at), MISS_QUERIES)
    assert int(real.get(generations.GLOBAL) or 0) == before + 1
    # and only once: the entry stored then is served
    assert read_queries(api, at)[1] == HIT_QUERIES
    assert int(real.get(generations.GLOBAL) or 0) == before + 1


def test_a_hung_redis_costs_reads_one_timeout_per_pause(
    catalog: None, tenant: Tenant, api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = subscribed_and_cached(api)
    real = generations.client()
    before = int(real.get(generations.GLOBAL) or 0)
    calls: list[str] = []

    class Hung:
        """A Redis that accepts connections and never answers: each call ends in its timeout."""

        def pipeline(self, **kwargs: Any) -> Any:
            calls.append("pipeline")
            raise redis.TimeoutError("timed out")

    monkeypatch.setattr(generations, "client", lambda: Hung())
    clock = [1000.0]
    monkeypatch.setattr(generations, "_monotonic", lambda: clock[0])
    # when: a read, then 3 more within 4.9 s, with 2 usage bumps among them
    assert read_queries(api, at) == (fresh(tenant, at), MISS_QUERIES)
    for _ in range(3):
        clock[0] += 1.6
        generations.usage_changed(tenant=tenant, external_ids=["dupont"])
        assert read_queries(api, at) == (fresh(tenant, at), MISS_QUERIES)
    # then: the first read waited for Redis and the others left it alone; every bump was tried
    assert calls == ["pipeline"] * 4
    # when: Redis answers again; reads are still paused for the rest of the 5 s after the last failure
    monkeypatch.setattr(generations, "client", lambda: real)
    clock[0] += generations.PAUSE_SECONDS - 0.1
    assert read_queries(api, at) == (fresh(tenant, at), MISS_QUERIES)
    assert int(real.get(generations.GLOBAL) or 0) == before
    # a bump goes through at once, and pays for the lost ones with one global bump
    generations.usage_changed(tenant=tenant, external_ids=["dupont"])
    assert int(real.get(generations.GLOBAL) or 0) == before + 1
    # after the pause, reads use the cache again
    clock[0] += 0.1
    assert read_queries(api, at) == (fresh(tenant, at), MISS_QUERIES)
    assert read_queries(api, at)[1] == HIT_QUERIES


@pytest.mark.parametrize("raw", [b"\x80\x05garbage", b"{}", b'{"run": 1, "gen": [], "data": []}', b"[1, 2]"])
def test_an_unreadable_entry_is_computed_afresh(catalog: None, tenant: Tenant, api: APIClient, raw: bytes) -> None:
    from invoicing.usage_cache import ENTRY

    call(api, "post", paris(2026, 3, 10, 10), "subscriptions", SUBSCRIPTION)
    generations.client().set(ENTRY % (tenant.pk, "dupont"), raw, ex=60)
    at = paris(2026, 3, 12, 9)
    answer, _ = read_queries(api, at)
    assert answer == fresh(tenant, at)
    assert read_queries(api, at)[1] == HIT_QUERIES


@pytest.mark.parametrize(
    ("sql", "writes"),
    [
        ('UPDATE "customers_customer" SET name = %s', True),
        ("UPDATE public.customers_customer SET name = %s", True),
        ('UPDATE "public"."customers_customer" SET name = %s', True),
        ("INSERT INTO public.catalog_product (code) VALUES (%s)", True),
        ("DELETE FROM ONLY public.subscriptions_device WHERE id = %s", True),
        ("/* api */ UPDATE customers_customer SET name = %s", True),
        ("-- why\n  /* a\nb */\n DELETE FROM tenancy_tenant", True),
        ("WITH x AS (UPDATE public.catalog_price SET a = 1 RETURNING id) SELECT 1", True),
        ("COPY public.customers_customer FROM STDIN", True),
        ("UPDATE public.customers_portalsession SET a = 1", False),
        ("UPDATE usage_event SET a = 1", False),
        ("/* UPDATE customers_customer */ SELECT 1", False),
        ("SELECT * FROM customers_customer", False),
        ("INSERT INTO invoicing_invoice (a) SELECT id FROM customers_customer", False),
        ("UPDATE invoicing_invoice SET a = (SELECT 1 FROM customers_customer)", False),
        ("DELETE FROM invoicing_invoice USING customers_customer c WHERE c.id = 1", False),
        ("TRUNCATE usage_event, customers_customer", True),
        ('TRUNCATE "usage_event", "public"."catalog_plan" RESTART IDENTITY CASCADE', True),
        ("TRUNCATE TABLE ONLY usage_event, invoicing_invoice CASCADE", False),
        ('INSERT INTO "subscriptions_device" ("id") VALUES ' + ", ".join(["(%s)"] * 5000), True),
        ('INSERT INTO "invoicing_invoiceline" ("id") VALUES ' + ", ".join(["(%s)"] * 5000), False),
    ],
)
def test_writes_to_inputs_are_recognised(sql: str, writes: bool) -> None:
    assert generations.written_inputs(sql) is writes


# --- transactions ---------------------------------------------------------------------------------


class Counting:
    """The real client, counting its round trips."""

    def __init__(self, real: redis.Redis) -> None:
        self.real, self.calls = real, 0

    def pipeline(self, **kwargs: Any) -> Any:
        self.calls += 1
        return self.real.pipeline(**kwargs)

    def __getattr__(self, name: str) -> Any:
        self.calls += 1
        return getattr(self.real, name)


def test_a_transaction_bumps_once_at_its_commit(
    catalog: None, tenant: Tenant, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    from customers.models import Customer

    generations.cache_usable()  # the bumps the set-up's requests owe, made (they never commit here)
    counting = Counting(generations.client())
    monkeypatch.setattr(generations, "client", lambda: counting)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            for i in range(10):
                Customer.objects.filter(tenant=tenant, external_id="dupont").update(name="Dupont %d" % i)
            assert counting.calls == 0
    assert (len(callbacks), counting.calls) == (1, 1)
    # in autocommit (here: outside the test's own transactions), each write bumps at once
    Customer.objects.filter(tenant=tenant, external_id="dupont").update(name="Dupont")
    assert counting.calls == 2


def test_a_rolled_back_transaction_bumps_nothing_and_stores_nothing(
    catalog: None,
    tenant: Tenant,
    api: APIClient,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from customers.models import Customer
    from invoicing.usage_cache import ENTRY, current_usage_data

    call(api, "post", paris(2026, 3, 10, 10), "subscriptions", SUBSCRIPTION)
    at = paris(2026, 3, 12, 9)
    key = ENTRY % (tenant.pk, "dupont")
    generations.cache_usable()  # the bumps the set-up's requests owe, made (they never commit here)
    generations.client().delete(key)
    counting = Counting(generations.client())
    monkeypatch.setattr(generations, "client", lambda: counting)
    monkeypatch.setattr("invoicing.usage_cache.client", lambda: counting)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            Customer.objects.filter(tenant=tenant, external_id="dupont").update(tax_id="FR40303265045")
            with time_machine.travel(at, tick=False):
                inside = current_usage_data(tenant=tenant, external_id="dupont", at=at)
            transaction.set_rollback(True)
    # read inside: computed from the uncommitted row, neither read from Redis nor stored
    assert (callbacks, counting.calls) == ([], 0)
    assert generations.client().get(key) is None
    assert inside["customer"] == "dupont"
    # after the rollback: computed from the committed rows, then stored
    assert read_queries(api, at)[0] == fresh(tenant, at)
    assert generations.client().get(key) is not None
