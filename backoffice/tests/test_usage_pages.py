"""Usage pages of the back-office (/app/usage/, /app/usage/rejected/) through Django's test client.
Events go in through POST /api/v1/events, as a device cloud sends them; the explorer must then
show the exact quantities per day of the customer's time zone, split by a dimension or a time band,
and the rejected events page what ingestion refused. Another tenant's data never appears."""

import html as html_lib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.test import Client
from django.utils import timezone

from customers.services import customer_create
from subscriptions.models import Subscription
from tenancy.actors import Actor
from tenancy.models import ApiKeyScope, Role, Tenant
from usage.models import RejectedEvent
from usage.partitions import forget_known_partitions
from usage.tests.factories import build_fleet

pytestmark = pytest.mark.django_db

StaffMaker = Callable[..., Any]
ACTOR = Actor.system("tests")
# As usage/tests/test_ingest_api.py: 20 April, 14:00 in Paris.
NOW = datetime(2026, 4, 20, 12, 0, tzinfo=UTC)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(autouse=True)
def fresh_partitions() -> Iterator[None]:
    # Test databases are rolled back between tests: partitions created in one are gone in the next.
    forget_known_partitions()
    yield
    forget_known_partitions()


@pytest.fixture
def fleet(tenant: Tenant) -> Subscription:
    return build_fleet(tenant)


def ev(tid: str, ts: str, code: str = "data_mb", device: str = "A", **props: Any) -> dict[str, Any]:
    return {"transaction_id": tid, "code": code, "device_id": device, "timestamp": ts, "properties": props}


@pytest.fixture
def ingest(make_client: Any) -> Callable[..., dict[str, Any]]:
    def post(tenant: Tenant, events: list[dict[str, Any]]) -> dict[str, Any]:
        client = make_client(tenant, ApiKeyScope.INGEST)
        with time_machine.travel(NOW, tick=False):
            response = client.post(
                "/api/v1/events", data=json.dumps({"events": events}), content_type="application/json"
            )
        assert response.status_code == 202, response.content
        body: dict[str, Any] = response.json()
        return body

    return post


# Data of device A in Paris (UTC+2 from 29 March): what lands on which local day and time band.
DATA_EVENTS = [
    ev("d1", "2026-03-31T21:30:00Z", mb=7, region="FR"),  # 23:30 on 31 March: March
    ev("d2", "2026-03-31T22:30:00Z", mb=100, region="FR"),  # 00:30 on 1 April: April, off-peak
    ev("d3", "2026-04-01T10:00:00Z", mb=50, region="DE"),  # 12:00 on 1 April, peak
    ev("d4", "2026-04-02T07:15:00Z", mb="25.5", region="FR"),  # 09:15 on 2 April, peak
    ev("d5", "2026-04-02T20:00:00Z", mb=10),  # 22:00 on 2 April, off-peak, no region
]


def html(response: Any) -> str:
    return response.content.decode()


def text(response: Any) -> str:
    """The page's visible text with tags removed, entities decoded and whitespace collapsed."""
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", html(response))))


def chart(response: Any) -> dict[str, Any]:
    found = re.search(r'<script id="usage-chart-data" type="application/json">(.*?)</script>', html(response), re.S)
    assert found, "no chart data"
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def series(response: Any) -> dict[str, list[Any]]:
    """The chart's datasets as {label: values per day}."""
    return {d["label"]: d["data"] for d in chart(response)["datasets"]}


def get(client: Client, path: str, **extra: Any) -> Any:
    with time_machine.travel(NOW, tick=False):
        return client.get(path, **extra)


def logged_in(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


def padded(*values: Any, days: int = 30) -> list[Any]:
    return [*values, *[None] * (days - len(values))]


# --- Explorer ---------------------------------------------------------------------------------------


def test_explorer_shows_the_days_of_the_customers_time_zone_split_by_a_dimension(
    client: Client, tenant: Tenant, fleet: Subscription, make_staff: StaffMaker, ingest: Any
) -> None:
    assert ingest(tenant, DATA_EVENTS)["accepted"] == 5
    logged_in(client, make_staff(tenant, role=Role.SUPPORT_AGENT, email="support@acme.test"))

    response = get(client, "/app/usage/?customer=dupont&meter=data_mb&split=region")

    assert response.status_code == 200
    data = chart(response)
    # the default range is the current month in the customer's time zone: April, 30 bars
    assert data["labels"][0] == "2026-04-01"
    assert data["labels"][-1] == "2026-04-30"
    assert len(data["labels"]) == 30
    assert data["stacked"] is True
    # 22:30Z on 31 March is 00:30 on 1 April in Paris; the 23:30 event of 31 March is not in April
    assert series(response) == {
        "DE": padded(50),
        "FR": padded(100, 25.5),
        "(not set)": padded(None, 10),
    }
    body = text(response)
    assert 'value="2026-04-01"' in html(response)
    assert 'value="2026-04-30"' in html(response)
    assert "From 1 Apr 2026 to 30 Apr 2026, days in Europe/Paris." in body
    assert "Quantity: the sum of properties.mb. Split by region." in body
    assert "Day DE FR (not set) Total" in body
    assert "1 Apr 2026 50 100 — 150" in body
    assert "2 Apr 2026 — 25.5 10 35.5" in body
    assert "3 Apr 2026 — — — —" in body
    assert "Total 50 125.5 10 185.5" in body

    # the last day of March and the first of April, not split: 23:30 on 31 March counts on 31 March
    both = get(client, "/app/usage/?customer=dupont&meter=data_mb&start=2026-03-31&end=2026-04-01")
    assert chart(both)["labels"] == ["2026-03-31", "2026-04-01"]
    assert series(both) == {"data_mb": [7, 150]}
    assert "Day Quantity 31 Mar 2026 7 1 Apr 2026 150 Total 157" in text(both)


def test_explorer_splits_by_time_band_and_offers_the_meters_dimensions(
    client: Client, tenant: Tenant, fleet: Subscription, make_staff: StaffMaker, ingest: Any
) -> None:
    ingest(tenant, DATA_EVENTS)
    logged_in(client, make_staff(tenant))

    response = get(client, "/app/usage/?customer=dupont&meter=data_mb&split=time_band")

    # time bands are the customer's: 00:30 and 22:00 are off-peak, 12:00 and 09:15 peak
    assert series(response) == {"off_peak": padded(100, 10), "peak": padded(50, 25.5)}
    assert "Total 110 75.5 185.5" in text(response)
    page = html(response)
    assert '<option value="time_band" selected>Time band</option>' in page
    assert '<option value="device_type" >device_type</option>' in page
    # a meter without dimensions or time bands offers no split, and an unknown split is ignored
    calls = get(client, "/app/usage/?customer=dupont&meter=api_calls&split=region")
    assert 'value="region"' not in html(calls)
    assert 'value="time_band"' not in html(calls)
    assert "No usage in these days." in text(calls)


def test_explorer_quantities_of_max_latest_unique_count_and_filtered_meters(
    client: Client, tenant: Tenant, fleet: Subscription, make_staff: StaffMaker, ingest: Any
) -> None:
    ingest(
        tenant,
        [
            ev("t1", "2026-04-01T06:00:00Z", code="peak_temp", celsius=30),
            ev("t2", "2026-04-01T07:00:00Z", code="peak_temp", device="B", celsius=42),
            ev("t3", "2026-04-02T07:00:00Z", code="peak_temp", celsius=35),
            ev("o1", "2026-04-01T06:00:00Z", code="odometer", km=1000),
            ev("o2", "2026-04-01T15:00:00Z", code="odometer", km=1100),
            ev("o3", "2026-04-01T09:00:00Z", code="odometer", km=1050),
            ev("o4", "2026-04-02T06:00:00Z", code="odometer", km=1250),
            ev("s1", "2026-04-01T06:00:00Z", code="active_sims", iccid="89-1"),
            ev("s2", "2026-04-01T07:00:00Z", code="active_sims", iccid="89-1"),
            ev("s3", "2026-04-02T07:00:00Z", code="active_sims", iccid="89-2"),
            ev("g1", "2026-04-01T06:00:00Z", code="gps_fixes", quality="good"),
            ev("g2", "2026-04-01T06:01:00Z", code="gps_fixes", quality="poor"),
            ev("g3", "2026-04-02T06:00:00Z", code="gps_fixes", quality="good"),
        ],
    )
    logged_in(client, make_staff(tenant))

    peak = get(client, "/app/usage/?customer=dupont&meter=peak_temp")
    odometer = get(client, "/app/usage/?customer=dupont&meter=odometer")
    sims = get(client, "/app/usage/?customer=dupont&meter=active_sims")
    fixes = get(client, "/app/usage/?customer=dupont&meter=gps_fixes")

    # max: the highest value of the day, over all devices; bars side by side, never stacked
    assert series(peak) == {"peak_temp": padded(42, 35)}
    assert chart(peak)["stacked"] is False
    assert "Quantity: the highest properties.celsius of the day." in text(peak)
    assert "Highest 42" in text(peak)
    # latest: the value measured last in the day (o3 arrived last but was measured before o2)
    assert series(odometer) == {"odometer": padded(1100, 1250)}
    assert "Latest 1,250" in text(odometer)
    # unique_count: distinct values are counted at billing time; the page shows the events
    assert series(sims) == {"active_sims": padded(2, 1)}
    assert "Distinct counts of properties.iccid are computed at billing time" in text(sims)
    # the meter's filters: a poor fix is stored but not counted
    assert series(fixes) == {"gps_fixes": padded(1, 1)}
    assert "Quantity: the number of events that match the meter's filters." in text(fixes)


def test_explorer_htmx_returns_the_panel_alone_and_the_page_works_without_javascript(
    client: Client, tenant: Tenant, fleet: Subscription, make_staff: StaffMaker, ingest: Any
) -> None:
    ingest(tenant, DATA_EVENTS)
    logged_in(client, make_staff(tenant))

    page = get(client, "/app/usage/")
    partial = get(client, "/app/usage/?customer=dupont&meter=data_mb&split=region", HTTP_HX_REQUEST="true")
    restore = get(
        client,
        "/app/usage/?customer=dupont&meter=data_mb",
        HTTP_HX_REQUEST="true",
        HTTP_HX_HISTORY_RESTORE_REQUEST="true",
    )

    full = html(page)
    # a GET form (works without JavaScript) that HTMX submits on change, into the panel
    assert '<form method="get" action="/app/usage/"' in full
    assert 'hx-get="/app/usage/"' in full
    assert 'hx-target="#usage-panel"' in full
    assert '<button type="submit">Show</button>' in full
    # Chart.js comes from our static files, and is drawn again after each swap
    assert 'src="/static/vendor/chart.umd.min.js"' in full
    assert 'src="/static/usage-explorer.js"' in full
    assert "htmx:afterSwap" in (Path(settings.BASE_DIR) / "static" / "usage-explorer.js").read_text()
    assert "cdn" not in full.lower()
    # without a customer chosen, the tenant's only customer is offered and chosen first by the meter
    assert '<option value="dupont" >Transports Dupont (dupont)</option>' in full
    assert "Choose a customer: its usage appears here." in full
    assert partial.status_code == 200
    body = html(partial)
    assert "<html" not in body
    assert "<form" not in body
    assert series(partial)["FR"] == padded(100, 25.5)
    # the choices that depend on the filters come along, swapped out of band
    assert '<label id="usage-customer-field" hx-swap-oob="true">' in body
    assert '<label id="usage-split-field" hx-swap-oob="true">' in body
    assert '<option value="region" selected>region</option>' in body
    # htmx restoring a page from history gets the whole page
    assert "<html" in html(restore)


def test_explorer_search_picks_a_customer_and_defaults_to_a_billed_meter(
    client: Client, tenant: Tenant, fleet: Subscription, make_staff: StaffMaker, ingest: Any
) -> None:
    ingest(tenant, DATA_EVENTS)
    customer_create(
        tenant=tenant,
        actor=ACTOR,
        at=timezone.now(),
        external_id="nordlog",
        name="Nordlog AB",
        email="a@nordlog.test",
        country="SE",
        timezone="Europe/Stockholm",
    )
    logged_in(client, make_staff(tenant))

    found = get(client, "/app/usage/?q=dupon&customer=nordlog")
    nobody = get(client, "/app/usage/?q=zzz")

    # the search finds Transports Dupont; with no meter asked, the first meter its plan bills
    assert '<option value="dupont" selected>Transports Dupont (dupont)</option>' in html(found)
    assert 'value="nordlog"' not in html(found)
    assert "data_mb · Transports Dupont dupont" in text(found)
    assert series(found) == {"data_mb": padded(150, 35.5)}
    assert "No customer matches “zzz”." in html(nobody)


def test_explorer_rejects_bad_dates_and_unknown_meters_without_error_pages(
    client: Client, tenant: Tenant, fleet: Subscription, make_staff: StaffMaker
) -> None:
    logged_in(client, make_staff(tenant))

    reversed_range = get(client, "/app/usage/?customer=dupont&start=2026-04-10&end=2026-04-01")
    too_long = get(client, "/app/usage/?customer=dupont&start=2024-01-01&end=2026-04-01")
    garbage = get(client, "/app/usage/?customer=dupont&start=yesterday&end=0002-01-01", HTTP_HX_REQUEST="true")

    assert "The last day is before the first day." in html(reversed_range)
    assert "Show at most 366 days at once." in html(too_long)
    assert garbage.status_code == 200
    assert "Enter a valid date." in html(garbage)
    assert 'id="usage-chart-data"' not in html(garbage)
    assert get(client, "/app/usage/?customer=dupont&meter=nope").status_code == 404
    assert get(client, "/app/usage/?customer=du%00pont").status_code == 400  # refused before the view


# --- Rejected events --------------------------------------------------------------------------------


def test_rejected_events_are_listed_with_their_reason_and_filtered(
    client: Client, tenant: Tenant, fleet: Subscription, make_staff: StaffMaker, ingest: Any
) -> None:
    body = ingest(
        tenant,
        [
            ev("ok-1", "2026-04-16T10:00:00Z", mb=1),
            ev("bad-meter", "2026-04-16T10:00:00Z", code="nope", mb=1),
            ev("bad-old", "2026-01-01T10:00:00Z", mb=1),
        ],
    )
    assert (body["accepted"], body["rejected"]) == (1, 2)
    logged_in(client, make_staff(tenant, role=Role.SUPPORT_AGENT, email="support@acme.test"))

    everything = get(client, "/app/usage/rejected/")
    too_old = get(client, "/app/usage/rejected/?reason=too_old")
    searched = get(client, "/app/usage/rejected/?q=METER")

    assert everything.status_code == 200
    listing = text(everything)
    assert "All 2 Unknown meter 1 Too old 1" in listing
    # received at 14:00 in Paris (the tenant's time zone)
    received = "20 Apr 2026, 14:00:00 CEST"
    assert f"{received} bad-meter nope Unknown meter unknown_meter No meter with code nope. Payload" in listing
    assert f"{received} bad-old data_mb Too old too_old Events older than 62 days are not accepted." in listing
    assert "ok-1" not in listing
    assert "<details" in html(everything)
    assert "&quot;code&quot;: &quot;nope&quot;" in html(everything)  # the payload as it was sent
    assert "bad-old" in html(too_old)
    assert "bad-meter" not in html(too_old)
    assert 'href="?reason=too_old" aria-current="page"' in html(too_old)
    assert "bad-meter" in html(searched)
    assert "bad-old" not in html(searched)


def test_rejected_events_are_paginated(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    received = datetime(2026, 4, 20, 10, 0, tzinfo=UTC)
    RejectedEvent.objects.bulk_create(
        RejectedEvent(
            tenant=tenant,
            received_at=received,
            transaction_id="r-%03d" % i,
            code="data_mb",
            reason="unknown_device",
            detail="No live subscription holds device Z.",
            payload={"transaction_id": "r-%03d" % i},
        )
        for i in range(55)
    )
    logged_in(client, make_staff(tenant))

    first = html(get(client, "/app/usage/rejected/?reason=unknown_device"))
    second = html(get(client, "/app/usage/rejected/?reason=unknown_device&page=2"))

    assert first.count("<code>r-0") == 50
    assert second.count("<code>r-0") == 5
    assert "Page 1 of 2" in first
    assert 'href="?reason=unknown_device&page=2"' in first


# --- Isolation, roles, navigation, French -------------------------------------------------------------


def test_another_tenants_usage_and_rejected_events_never_appear(
    client: Client,
    tenant: Tenant,
    other_tenant: Tenant,
    fleet: Subscription,
    make_staff: StaffMaker,
    ingest: Any,
) -> None:
    ingest(tenant, DATA_EVENTS)
    # the other tenant has a customer with the same external id, and one of its own
    build_fleet(other_tenant, customer_id="dupont", name="Globex Dupont")
    customer_create(
        tenant=other_tenant,
        actor=ACTOR,
        at=timezone.now(),
        external_id="globex-co",
        name="Globex Co",
        email="a@globex.test",
        country="FR",
        timezone="Europe/Paris",
    )
    ingest(
        other_tenant,
        [
            ev("g-1", "2026-04-01T10:00:00Z", mb=9999, region="FR"),
            ev("g-bad", "2026-04-01T10:00:00Z", code="secret_meter", mb=1),
        ],
    )
    logged_in(client, make_staff(tenant))

    ours = get(client, "/app/usage/?customer=dupont&meter=data_mb&split=region")
    theirs = get(client, "/app/usage/?customer=globex-co")
    partial = get(client, "/app/usage/?customer=globex-co", HTTP_HX_REQUEST="true")
    rejected = html(get(client, "/app/usage/rejected/"))

    assert series(ours)["FR"] == padded(100, 25.5)
    assert "9999" not in html(ours)
    assert "Globex" not in html(ours)
    assert theirs.status_code == 404
    assert partial.status_code == 404
    assert "g-bad" not in rejected
    assert "secret_meter" not in rejected
    assert "No event has been rejected." in rejected


def test_usage_pages_need_a_login_and_a_membership(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    for path in ("/app/usage/", "/app/usage/rejected/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"] == "/app/login/?next=%s" % path
    logged_in(client, make_staff(tenant, role=Role.FINANCE_VIEWER, email="viewer@acme.test"))
    assert client.get("/app/usage/rejected/").status_code == 200
    empty = client.get("/app/usage/")
    assert empty.status_code == 200
    assert "There is no customer yet." in html(empty)


def test_sidebar_lists_the_usage_pages_after_billing(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    logged_in(client, make_staff(tenant))

    body = html(client.get("/app/usage/rejected/"))

    assert (
        body.index(">Device webhooks</a>")
        < body.index("<h6>Usage</h6>")
        < body.index(">Usage explorer</a>")
        < body.index(">Rejected events</a>")
        < body.index("<h6>Catalog</h6>")
    )
    assert '<a href="/app/usage/rejected/" aria-current="page">Rejected events</a>' in body
    assert '<a href="/app/usage/" >Usage explorer</a>' in body


def test_usage_pages_in_french(
    client: Client, tenant: Tenant, fleet: Subscription, make_staff: StaffMaker, ingest: Any
) -> None:
    ingest(tenant, [*DATA_EVENTS, ev("bad", "2026-04-16T10:00:00Z", code="nope")])
    logged_in(client, make_staff(tenant))

    explorer = get(client, "/app/usage/?customer=dupont&meter=data_mb&split=region", HTTP_ACCEPT_LANGUAGE="fr")
    rejected = get(client, "/app/usage/rejected/", HTTP_ACCEPT_LANGUAGE="fr")

    body = text(explorer)
    assert "<h1>Explorateur de consommation</h1>" in html(explorer)
    assert "Du 1 avr. 2026 au 30 avr. 2026, jours du fuseau Europe/Paris." in body
    assert "Jour DE FR (non renseigné) Total" in body
    assert "2 avr. 2026 — 25,5 10 35,5" in body
    assert "Total 50 125,5 10 185,5" in body
    listing = text(rejected)
    assert "<h1>Événements rejetés</h1>" in html(rejected)
    assert "Compteur inconnu" in listing
    assert "Tous 1 Compteur inconnu 1" in listing


# --- In a browser ------------------------------------------------------------------------------------


def chart_labels(page: Any) -> Any:
    """The series the chart drew, and whether its canvas holds a drawing (htmx settling the
    attributes of a swapped canvas would clear it)."""
    return page.evaluate(
        """() => {
            const canvas = document.querySelector("#usage-panel canvas[data-usage-chart]");
            const chart = canvas && window.Chart.getChart(canvas);
            if (!chart) return null;
            const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
            let drawn = false;
            for (let i = 3; i < pixels.length && !drawn; i += 4) drawn = pixels[i] > 0;
            return [chart.data.datasets.map((d) => d.label), drawn];
        }"""
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")
def test_the_chart_is_drawn_and_redrawn_after_each_htmx_swap(
    live_server: Any, tenant: Tenant, make_staff: StaffMaker, ingest: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import sync_playwright

    build_fleet(tenant)
    ingest(tenant, DATA_EVENTS)
    make_staff(tenant)
    # Playwright's sync API runs an event loop in this thread; the ORM calls here are safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    try:
        with time_machine.travel(NOW, tick=True), sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            # the chart's script is a static file: the Content-Security-Policy refuses nothing
            page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
            page.goto(live_server.url + "/app/login/")
            page.fill("input[name=login]", "staff@acme.test")
            page.fill("input[name=password]", "correct-horse-battery")
            page.click("button[type=submit]")
            page.wait_for_url(live_server.url + "/app/")

            page.goto(live_server.url + "/app/usage/?customer=dupont&meter=data_mb")
            page.wait_for_function("() => !!(window.Chart && Chart.getChart(document.querySelector('canvas')))")
            first = chart_labels(page)
            with page.expect_response(lambda r: "split=region" in r.url):
                page.select_option("#usage-split", "region")
            page.wait_for_timeout(300)  # htmx settles the swap 20 ms after it
            split = chart_labels(page)
            url = page.url
            browser.close()
    finally:
        with connection.cursor() as cursor:  # not Django models: the flush of the test would keep them
            for table in ("usage_event", "usage_event_key"):
                cursor.execute("DELETE FROM %s WHERE tenant_id = %%s" % table, [tenant.pk])

    assert first == [["data_mb"], True]
    assert split == [["DE", "FR", "(not set)"], True]
    assert "split=region" in url  # the filters are in the address, for a bookmark or a reload
    assert errors == []
