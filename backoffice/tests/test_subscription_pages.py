"""Subscription pages of the back-office (/app/subscriptions/..., /app/device-webhooks/...) through
Django's test client: the list and its filters, signing a subscription, the detail page (timeline,
ledger), changes with their live preview, device-cloud webhooks and their replay, tenant isolation
and roles."""

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from billing_platform.celery import app as celery_app
from billing_platform.periods import monthly_period_starting
from catalog.tests.factories import platform_plan
from customers.tests.factories import dupont
from subscriptions.changes import service_charge_record, subscription_ends_apply_due
from subscriptions.models import (
    Device,
    DeviceCloudWebhook,
    ServiceCharge,
    Subscription,
    SubscriptionChange,
    SubscriptionEvent,
)
from subscriptions.services import device_event_apply
from subscriptions.tests.factories import signed_subscription
from tenancy.actors import Actor
from tenancy.models import AuditLogEntry, Role, Tenant

pytestmark = pytest.mark.django_db

StaffMaker = Callable[..., Any]
PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


def html(response: Any) -> str:
    return response.content.decode()


def text(response: Any) -> str:
    """The page's visible text with tags removed and whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html(response)))


def logged_in(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


def build_world(tenant: Tenant) -> dict[str, Any]:
    """As subscriptions/tests/test_changes.py: a per-device platform fee at 25.00 (basic) or 40.00
    (premium) from the subscription start, and "fleet" whose fee starts on device activation; the
    customer is in Paris with billing day 1."""
    plans = {
        "basic": platform_plan(tenant, "basic", "25.00"),
        "premium": platform_plan(tenant, "premium", "40.00"),
        "fleet": platform_plan(tenant, "fleet", "25.00", starts_on="activation"),
    }
    return {"plans": plans, "customer": dupont(tenant)}


@pytest.fixture
def world(tenant: Tenant) -> dict[str, Any]:
    return build_world(tenant)


@pytest.fixture
def eager_celery() -> Iterator[None]:
    conf = celery_app.conf
    before = (conf.task_always_eager, conf.task_eager_propagates)
    conf.task_always_eager = True
    yield
    conf.task_always_eager, conf.task_eager_propagates = before


def subscribe(
    tenant: Tenant,
    world: dict[str, Any],
    plan: str = "basic",
    devices: tuple[str, ...] = ("A",),
    external_id: str = "sub",
) -> Subscription:
    """Signed on 1 January 2026, 09:00 Paris, started that day, with ELD devices."""
    return signed_subscription(
        tenant,
        customer=world["customer"],
        plan=world["plans"][plan],
        devices=devices,
        device_type="eld",
        external_id=external_id,
    )


def bill_april_in_advance(subscription: Subscription, fee: str = "25.00") -> None:
    """What the bill run of 1 April records: each device's fee for April."""
    april = monthly_period_starting(date(2026, 4, 1), billing_day=1, tz="Europe/Paris")
    component = subscription.plan.components.get()
    for device in subscription.devices.all():
        service_charge_record(
            subscription=subscription, component=component, device=device, period=april, amount=Decimal(fee)
        )


def change_data(**changes: Any) -> dict[str, Any]:
    data = {"action": "change_plan", "devices": "", "plan": "premium", "effective_at": ""}
    data.update(changes)
    return data


def rejected_webhook(tenant: Tenant, device_id: str = "Z", webhook_id: str = "msg_z") -> DeviceCloudWebhook:
    body = {"type": "device.activated", "data": {"device_id": device_id, "occurred_at": "2026-03-15T09:00:00+01:00"}}
    return DeviceCloudWebhook.objects.create(
        tenant=tenant,
        webhook_id=webhook_id,
        received_at=datetime(2026, 3, 15, 8, 1, tzinfo=UTC),
        content_type="application/json",
        body=json.dumps(body),
        event_type="device.activated",
        device_id=device_id,
        occurred_at=datetime(2026, 3, 15, 8, 0, tzinfo=UTC),
        status="rejected",
        outcome="Unknown device %s: no live subscription holds it." % device_id,
        attempts=0,
    )


# --- List ---------------------------------------------------------------------------------------


def test_list_filters_by_status_and_never_shows_another_tenants_subscriptions(
    client: Client, tenant: Tenant, other_tenant: Tenant, make_staff: StaffMaker, world: dict[str, Any]
) -> None:
    subscribe(tenant, world, plan="basic", devices=("A", "B"), external_id="sub-basic")
    pending = subscribe(tenant, world, plan="fleet", devices=("C", "D", "E"), external_id="sub-fleet")
    device_event_apply(
        tenant=tenant, device_id="C", event_type="device.shipped", occurred_at=paris(2026, 1, 2), actor=ACTOR
    )
    subscribe(other_tenant, build_world(other_tenant), external_id="globex-sub", devices=("G",))
    assert pending.status == "pending_activation"
    logged_in(client, make_staff(tenant, role=Role.SUPPORT_AGENT, email="support@acme.test"))

    everything = client.get("/app/subscriptions/")
    only_pending = client.get("/app/subscriptions/?status=pending_activation")
    only_active = text(client.get("/app/subscriptions/?status=active"))
    searched = client.get("/app/subscriptions/?q=glob", HTTP_HX_REQUEST="true")

    assert everything.status_code == 200
    body = text(everything)
    # basic's fee starts with the subscription: its devices pay without being activated
    assert "sub-basic Transports Dupont dupont Basic basic Active 0/2 1 Jan 2026 1 Jan 2026" in body
    assert "sub-fleet Transports Dupont dupont Fleet fleet Pending activation 0/3" in body
    assert "All 2 Pending activation 1 Active 1 Past due 0" in body
    assert "globex-sub" not in html(everything)
    assert "sub-fleet" in html(only_pending)
    assert "sub-basic" not in html(only_pending)
    assert 'href="?status=pending_activation" aria-current="page"' in html(only_pending)
    assert "sub-basic" in only_active
    assert "sub-fleet" not in only_active
    # the HTMX search returns the rows alone, and another tenant's subscription is never found
    assert searched.status_code == 200
    assert "<html" not in html(searched)
    assert "globex-sub" not in html(searched)
    assert "No subscription matches." in html(searched)
    assert "sub-fleet" in html(client.get("/app/subscriptions/?q=FLEET"))
    assert "sub-basic" in html(client.get("/app/subscriptions/?q=dupont"))
    assert "New subscription" not in html(everything)  # support agents read only


# --- New subscription ---------------------------------------------------------------------------


def test_creating_a_subscription_stores_the_devices_and_waits_for_activation(
    client: Client, tenant: Tenant, make_staff: StaffMaker, world: dict[str, Any]
) -> None:
    logged_in(client, make_staff(tenant, role=Role.FINANCE_ADMIN, email="admin@acme.test"))
    page = client.get("/app/subscriptions/new/")
    assert page.status_code == 200
    assert 'type="datetime-local"' in html(page)
    assert '<option value="fleet">Fleet (fleet)</option>' in html(page)
    assert "Europe/Paris" in html(page)

    response = client.post(
        "/app/subscriptions/new/",
        {
            "customer": "dupont",
            "plan": "fleet",
            "external_id": " dupont-fleet ",
            "signed_at": "2026-03-10T10:00",
            "starts_on": "",
            "devices": "A, eld-200, FR\nB,eld-200\n\n  C  \n",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == "/app/subscriptions/dupont-fleet/"
    subscription = Subscription.objects.get(tenant=tenant, external_id="dupont-fleet")
    assert subscription.status == "pending_activation"
    assert (subscription.customer.external_id, subscription.plan.code) == ("dupont", "fleet")
    # the datetime-local is read in the tenant's time zone: 10:00 in Paris is 09:00 UTC in March
    assert subscription.signed_at == datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    assert subscription.starts_at == datetime(2026, 3, 9, 23, 0, tzinfo=UTC)
    assert [(d.device_id, d.device_type, d.region) for d in Device.objects.filter(subscription=subscription)] == [
        ("A", "eld-200", "FR"),
        ("B", "eld-200", ""),
        ("C", "", ""),
    ]
    assert AuditLogEntry.objects.get(tenant=tenant, action="subscription.created").actor_label == "admin@acme.test"
    detail = text(client.get(response["Location"]))
    assert "Subscription dupont-fleet created: Pending activation." in detail
    assert "10 Mar 2026, 10:00 CET Signed" in detail


def test_subscription_form_errors_show_their_field_paths_and_nothing_is_created(
    client: Client, tenant: Tenant, make_staff: StaffMaker, world: dict[str, Any]
) -> None:
    subscribe(tenant, world, devices=("TAKEN",), external_id="existing")
    logged_in(client, make_staff(tenant))
    base = {"customer": "dupont", "plan": "basic", "external_id": "new-sub", "signed_at": "2026-03-10T10:00"}

    twice = client.post("/app/subscriptions/new/", {**base, "devices": "A\nB\nA"})
    in_use = client.post("/app/subscriptions/new/", {**base, "devices": "B\nTAKEN"})
    bad_line = client.post("/app/subscriptions/new/", {**base, "devices": "A,eld,FR,extra\n,eld"})
    bad_id = client.post("/app/subscriptions/new/", {**base, "external_id": "no spaces", "devices": ""})
    taken_id = client.post("/app/subscriptions/new/", {**base, "external_id": "existing", "devices": ""})
    unknown = client.post("/app/subscriptions/new/", {**base, "plan": "nope", "signed_at": "yesterday"})
    out_of_range = client.post(
        "/app/subscriptions/new/", {**base, "signed_at": "0001-01-01T00:00", "devices": "A,%s" % ("t" * 101)}
    )

    for response in (twice, in_use, bad_line, bad_id, taken_id, unknown, out_of_range):
        assert response.status_code == 200
        assert 'role="alert"' in html(response)
    assert "devices[2].device_id: Device A is listed twice." in html(twice)
    assert "devices[1].device_id: Already on a live subscription." in html(in_use)
    assert "Device TAKEN already belongs to a live subscription." in html(in_use)
    assert "Line 1: at most three values, device_id,device_type,region." in html(bad_line)
    assert "Line 2: the device id comes first." in html(bad_line)
    assert "Use letters, digits and . _ : @ - (max 200)." in html(bad_id)
    assert "Another subscription already has this external ID." in html(taken_id)
    assert "Select a valid choice." in html(unknown)
    assert "Enter a valid date/time." in html(unknown)
    assert "Enter a date between 1970 and 2999." in html(out_of_range)
    assert "Line 1: device_type is longer than 100 characters." in html(out_of_range)
    assert "A\nB\nA" in html(twice)  # what was typed is kept
    assert list(Subscription.objects.filter(tenant=tenant).values_list("external_id", flat=True)) == ["existing"]


# --- Detail ---------------------------------------------------------------------------------------


def test_detail_shows_devices_the_timeline_and_the_ledger(
    client: Client, tenant: Tenant, make_staff: StaffMaker, world: dict[str, Any]
) -> None:
    subscription = subscribe(tenant, world, plan="fleet", devices=("A", "B"), external_id="dupont-fleet")
    device_event_apply(
        tenant=tenant,
        device_id="A",
        event_type="device.activated",
        occurred_at=paris(2026, 3, 15, 9),
        actor=Actor.system("device cloud"),
    )
    bill_april_in_advance(Subscription.objects.get(pk=subscription.pk))
    logged_in(client, make_staff(tenant, role=Role.FINANCE_VIEWER, email="viewer@acme.test"))

    response = client.get("/app/subscriptions/dupont-fleet/")

    assert response.status_code == 200
    page, body = html(response), text(response)
    assert 'href="/app/customers/dupont/"' in page
    assert 'href="/app/catalog/plans/fleet/"' in page
    assert "dupont-fleet Active" in body
    assert "Devices 1 active of 2" in body
    assert "Signed 1 Jan 2026, 09:00 CET" in body
    assert "Starts 1 Jan 2026" in body
    # devices: A activated at 09:00 Paris time
    assert "A eld — — 15 Mar 2026, 09:00 CET — —" in body
    assert "B eld — — not yet — —" in body
    # the timeline, in the customer's time zone, with human labels
    assert "1 Jan 2026, 09:00 CET Signed Pending activation Plan fleet · Devices: A, B tests System" in body
    assert "15 Mar 2026, 09:00 CET Device activated A device cloud System" in body
    assert (
        "15 Mar 2026, 09:00 CET Status changed Pending activation → Active Reason: first device activated device cloud"
        in body
    )
    # the ledger: what the bill run of 1 April charged, waiting for its invoice
    assert "Charge Fee billed in advance platform A 1–30 Apr 2026 1–30 Apr 2026 €25.00 pending" in body
    assert "Pending, for the next invoice €50.00" in body
    # a finance viewer sees no change form
    assert 'id="change"' not in page
    assert "/change/" not in page


def test_detail_shows_when_a_subscription_not_renewed_ends_then_that_it_ended(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    # given: 3 months' commitment from 1 January 2026, not renewed
    plan = platform_plan(tenant, "committed", "25.00", commitment_months=3)
    signed_subscription(tenant, customer=dupont(tenant), plan=plan, external_id="dupont-3m", auto_renew=False)
    logged_in(client, make_staff(tenant, role=Role.FINANCE_VIEWER, email="viewer@acme.test"))
    # when / then: before the end, in English and in French
    before = text(client.get("/app/subscriptions/dupont-3m/"))
    assert "Commitment ends 1 Apr 2026, 00:00 CEST" in before
    assert "Renewal none Ends 1 Apr 2026, 00:00 CEST" in before
    french = text(client.get("/app/subscriptions/dupont-3m/", HTTP_ACCEPT_LANGUAGE="fr"))
    assert "Renouvellement aucun Fin le 1 avr. 2026, 00:00 CEST" in french
    # and once the schedule has ended it
    assert subscription_ends_apply_due(tenant=tenant, at=paris(2026, 4, 1, 0, 10)) == 1
    after = text(client.get("/app/subscriptions/dupont-3m/"))
    assert "dupont-3m Ended" in after
    assert "Ended 1 Apr 2026, 00:00 CEST" in after
    assert "Status changed Cancelled → Ended Reason: commitment ended commitment ended System" in after
    assert "Ends 1 Apr 2026" not in after


# --- Changes --------------------------------------------------------------------------------------


def test_change_preview_shows_the_proration_and_writes_nothing(
    client: Client, tenant: Tenant, make_staff: StaffMaker, world: dict[str, Any]
) -> None:
    subscription = subscribe(tenant, world)
    bill_april_in_advance(subscription)
    charges, events = ServiceCharge.objects.count(), SubscriptionEvent.objects.count()

    with time_machine.travel(paris(2026, 4, 16, 10), tick=False):
        logged_in(client, make_staff(tenant))
        detail = html(client.get("/app/subscriptions/sub/"))
        response = client.post("/app/subscriptions/sub/change/preview/", change_data(), HTTP_HX_REQUEST="true")
        no_js = client.post("/app/subscriptions/sub/change/preview/", change_data())

    assert 'hx-post="/app/subscriptions/sub/change/preview/"' in detail
    assert 'hx-trigger="change, keyup delay:400ms"' in detail
    assert 'hx-target="#change-preview"' in detail
    assert response.status_code == 200
    assert "<html" not in html(response)
    body = text(response)
    # 16..30 April is 15 of April's 30 days: credit 25.00 x 15/30, charge 40.00 x 15/30
    assert "Applies at once, effective 16 Apr 2026, 10:00 CEST." in body
    assert "Credit platform 16–30 Apr 2026 1 × €25.00 15/30 -€12.50" in body
    assert "Unused Basic · Devices: A" in body
    assert "Charge platform 16–30 Apr 2026 1 × €40.00 15/30 €20.00" in body
    assert "Total on the next invoice €7.50" in body
    assert "Nothing has been saved." in body
    assert "<html" in html(no_js)  # without JavaScript: the whole page, with the preview
    assert "Total on the next invoice €7.50" in text(no_js)
    # nothing written
    subscription.refresh_from_db()
    assert subscription.plan.code == "basic"
    assert ServiceCharge.objects.count() == charges
    assert SubscriptionEvent.objects.count() == events
    assert not SubscriptionChange.objects.exists()


def test_applying_the_upgrade_changes_the_plan(
    client: Client, tenant: Tenant, make_staff: StaffMaker, world: dict[str, Any]
) -> None:
    subscription = subscribe(tenant, world)
    bill_april_in_advance(subscription)
    logged_in(client, make_staff(tenant, role=Role.FINANCE_ADMIN, email="admin@acme.test"))

    # the effective time is read in the tenant's time zone: 10:00 in Paris is 08:00 UTC in April
    response = client.post("/app/subscriptions/sub/change/", change_data(effective_at="2026-04-16T10:00"))

    assert response.status_code == 302
    assert response["Location"] == "/app/subscriptions/sub/"
    subscription.refresh_from_db()
    assert subscription.plan.code == "premium"
    change = SubscriptionChange.objects.get(subscription=subscription)
    assert (change.action, change.status, change.effective_at) == (
        "change_plan",
        "applied",
        datetime(2026, 4, 16, 8, 0, tzinfo=UTC),
    )
    assert sorted((c.kind, str(c.amount)) for c in ServiceCharge.objects.filter(change=change)) == [
        ("charge", "20.0000"),
        ("credit", "12.5000"),
    ]
    body = text(client.get(response["Location"]))
    assert "Change plan applied: €7.50 on the next invoice." in body
    assert (
        "16 Apr 2026, 10:00 CEST Plan changed basic → premium · Credit platform €12.50 · Charge platform €20.00" in body
    )
    assert "admin@acme.test Staff user" in body
    assert "Credit Subscription change platform A 1–30 Apr 2026 16–30 Apr 2026 -€12.50" in body
    assert "Pending, for the next invoice €32.50" in body


def test_a_downgrade_and_a_cancellation_are_scheduled_for_the_period_end(
    client: Client, tenant: Tenant, make_staff: StaffMaker, world: dict[str, Any]
) -> None:
    subscription = subscribe(tenant, world, plan="premium")
    with time_machine.travel(paris(2026, 4, 16, 10), tick=False):
        logged_in(client, make_staff(tenant))
        preview = text(
            client.post("/app/subscriptions/sub/change/preview/", change_data(plan="basic"), HTTP_HX_REQUEST="true")
        )
        downgrade = client.post("/app/subscriptions/sub/change/", change_data(plan="basic"))
        cancel = client.post("/app/subscriptions/sub/change/", change_data(action="cancel", at_period_end="on"))
        detail = text(client.get("/app/subscriptions/sub/"))

    assert "Scheduled for 1 May 2026, 00:00 CEST: nothing is credited or charged now." in preview
    assert (downgrade.status_code, cancel.status_code) == (302, 302)
    subscription.refresh_from_db()
    assert subscription.plan.code == "premium"
    assert subscription.cancel_at == paris(2026, 5, 1)
    assert "Change plan 1 May 2026, 00:00 CEST New plan basic" in detail
    assert "Cancel 1 May 2026, 00:00 CEST At the end of the current period" in detail
    assert "Cancel at 1 May 2026, 00:00 CEST" in detail
    assert "Change scheduled Cancel on 1 May 2026, 00:00 CEST" in detail


def test_change_errors_show_in_the_panel_and_never_500(
    client: Client, tenant: Tenant, make_staff: StaffMaker, world: dict[str, Any]
) -> None:
    subscription = subscribe(tenant, world, devices=("A", "B"))
    subscribe(tenant, world, devices=("TAKEN",), external_id="other")
    logged_in(client, make_staff(tenant))
    cases = {
        "same plan": (change_data(plan="basic"), "Select a valid choice."),
        "unknown plan": (change_data(plan="nope"), "Select a valid choice."),
        "no plan": (change_data(plan=""), "Choose the new plan."),
        "no devices": (change_data(action="add_devices"), "List the devices to add."),
        "device in use": (
            change_data(action="add_devices", devices="C\nTAKEN"),
            "Device TAKEN already belongs to a live subscription.",
        ),
        "listed twice": (
            change_data(action="add_devices", devices="C\nC"),
            "<code>devices</code> A list of distinct {device_id}.",
        ),
        "nothing to remove": (change_data(action="remove_devices"), "Tick the devices to remove."),
        "not a device of it": (change_data(action="remove_devices", device_ids=["TAKEN"]), "Select a valid choice."),
        "both": (
            change_data(action="cancel", at_period_end="on", effective_at="2026-04-16T10:00"),
            "A cancellation at the period end has no effective time",
        ),
        "bad action": (change_data(action="explode"), "Select a valid choice."),
        "bad time": (change_data(effective_at="16/04/2026"), "Enter a valid date/time."),
        "before the start": (
            change_data(effective_at="2025-12-31T23:00"),
            "The subscription starts on 2026-01-01 00:00 CET: a change cannot take effect before.",
        ),
        "year 9999": (change_data(effective_at="9999-12-31T23:59"), "Enter a date between 1970 and 2999."),
        "too long": (
            change_data(action="add_devices", devices="X" * 201),
            "Line 1: device_id is longer than 200 characters.",
        ),
    }

    for name, (data, message) in cases.items():
        for path, headers in (
            ("/app/subscriptions/sub/change/preview/", {"HX-Request": "true"}),
            ("/app/subscriptions/sub/change/preview/", {}),
            ("/app/subscriptions/sub/change/", {}),
        ):
            response = client.post(path, data, headers=headers)
            assert response.status_code == 200, (name, path)
            assert 'role="alert"' in html(response), (name, path)
            assert message in html(response), (name, path, message)

    subscription.refresh_from_db()
    assert subscription.plan.code == "basic"
    assert sorted(subscription.devices.values_list("device_id", flat=True)) == ["A", "B"]
    assert not SubscriptionChange.objects.exists()
    subscription.status = "ended"
    subscription.save()
    ended = client.post("/app/subscriptions/sub/change/", change_data(), HTTP_HX_REQUEST="true")
    assert ended.status_code == 200
    assert "The subscription is ended: it cannot be changed." in html(ended)
    assert "A cancelled or ended subscription cannot be changed." in html(client.get("/app/subscriptions/sub/"))


# --- Device-cloud webhooks --------------------------------------------------------------------------


def test_webhooks_page_lists_a_rejected_webhook_and_replay_requeues_it(
    client: Client,
    tenant: Tenant,
    make_staff: StaffMaker,
    world: dict[str, Any],
    eager_celery: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    subscription = subscribe(tenant, world, plan="fleet", devices=("A",), external_id="dupont-fleet")
    webhook = rejected_webhook(tenant)
    logged_in(client, make_staff(tenant, role=Role.FINANCE_ADMIN, email="admin@acme.test"))

    listing = client.get("/app/device-webhooks/")
    rejected_only = html(client.get("/app/device-webhooks/?status=rejected"))
    applied_only = html(client.get("/app/device-webhooks/?status=applied"))
    detail = client.get(f"/app/device-webhooks/{webhook.pk}/")

    assert listing.status_code == 200
    body = text(listing)
    assert (
        "15 Mar 2026, 09:01:00 CET msg_z device.activated Z 15 Mar 2026, 09:00 CET Rejected "
        "Unknown device Z: no live subscription holds it." in body
    )
    assert "&quot;device_id&quot;: &quot;Z&quot;" in html(listing)  # the stored body, in the expandable row
    assert f'action="/app/device-webhooks/{webhook.pk}/replay/"' in html(listing)
    assert "All 1 Received 0 Applied 0 Already applied 0 Rejected 1" in body
    assert "msg_z" in rejected_only
    assert "msg_z" not in applied_only
    assert detail.status_code == 200
    assert "on no live subscription" in text(detail)
    assert "application/json" in text(detail)

    # support adds the missing device, then replays the stored webhook
    Device.objects.create(tenant=tenant, subscription=subscription, device_id="Z", added_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        replay = client.post(
            f"/app/device-webhooks/{webhook.pk}/replay/", {"next": "/app/device-webhooks/?status=rejected"}
        )

    assert replay.status_code == 302
    assert replay["Location"] == "/app/device-webhooks/?status=rejected"
    webhook.refresh_from_db()
    assert (webhook.status, webhook.attempts) == ("applied", 1)
    assert Device.objects.get(subscription=subscription, device_id="Z").activated_at == datetime(
        2026, 3, 15, 8, 0, tzinfo=UTC
    )
    assert AuditLogEntry.objects.get(tenant=tenant, action="webhook.replayed").actor_label == "admin@acme.test"
    after = text(client.get(replay["Location"]))
    assert "Webhook msg_z queued to be applied again." in after
    assert "No webhook with this status." in after
    # an applied webhook offers no replay; an outside "next" is not followed
    assert "/replay/" not in html(client.get("/app/device-webhooks/"))
    elsewhere = client.post(f"/app/device-webhooks/{webhook.pk}/replay/", {"next": "https://evil.test/"})
    assert elsewhere["Location"] == f"/app/device-webhooks/{webhook.pk}/"


# --- Isolation and roles ----------------------------------------------------------------------------


def test_another_tenants_subscription_and_webhooks_are_not_found(
    client: Client, tenant: Tenant, other_tenant: Tenant, make_staff: StaffMaker
) -> None:
    subscribe(other_tenant, build_world(other_tenant), external_id="globex-sub")
    webhook = rejected_webhook(other_tenant)
    logged_in(client, make_staff(tenant))

    assert client.get("/app/subscriptions/globex-sub/").status_code == 404
    assert client.post("/app/subscriptions/globex-sub/change/", change_data()).status_code == 404
    assert client.post("/app/subscriptions/globex-sub/change/preview/", change_data()).status_code == 404
    assert client.get(f"/app/device-webhooks/{webhook.pk}/").status_code == 404
    assert client.post(f"/app/device-webhooks/{webhook.pk}/replay/").status_code == 404
    assert client.get("/app/device-webhooks/not-a-uuid/").status_code == 404
    assert "msg_z" not in html(client.get("/app/device-webhooks/"))
    assert Subscription.objects.get(external_id="globex-sub").plan.code == "basic"
    assert DeviceCloudWebhook.objects.get(pk=webhook.pk).status == "rejected"


def test_finance_viewer_reads_but_cannot_create_change_or_replay(
    client: Client, tenant: Tenant, make_staff: StaffMaker, world: dict[str, Any]
) -> None:
    subscribe(tenant, world)
    webhook = rejected_webhook(tenant)
    logged_in(client, make_staff(tenant, role=Role.FINANCE_VIEWER, email="viewer@acme.test"))

    new = {"customer": "dupont", "plan": "basic", "external_id": "x", "signed_at": "2026-03-10T10:00", "devices": "Q"}
    assert client.get("/app/subscriptions/new/").status_code == 403
    assert client.post("/app/subscriptions/new/", new).status_code == 403
    assert client.post("/app/subscriptions/sub/change/", change_data()).status_code == 403
    assert client.post("/app/subscriptions/sub/change/preview/", change_data()).status_code == 403
    assert client.post(f"/app/device-webhooks/{webhook.pk}/replay/").status_code == 403
    assert Subscription.objects.filter(tenant=tenant).count() == 1
    assert Subscription.objects.get(external_id="sub").plan.code == "basic"
    assert DeviceCloudWebhook.objects.get(pk=webhook.pk).status == "rejected"

    for path in (
        "/app/subscriptions/",
        "/app/subscriptions/sub/",
        "/app/device-webhooks/",
        f"/app/device-webhooks/{webhook.pk}/",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        body = html(response)
        assert "/new/" not in body, path
        assert "/change/" not in body, path
        assert "/replay/" not in body, path


def test_anonymous_is_sent_to_login(client: Client) -> None:
    response = client.get("/app/subscriptions/")

    assert response.status_code == 302
    assert response["Location"] == "/app/login/?next=/app/subscriptions/"


# --- Navigation and French --------------------------------------------------------------------------


def test_sidebar_lists_subscriptions_and_webhooks_after_customers(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    logged_in(client, make_staff(tenant))

    body = html(client.get("/app/device-webhooks/"))

    customers = body.index(">Customers</a>")
    assert (
        customers
        < body.index(">Subscriptions</a>")
        < body.index(">Device webhooks</a>")
        < body.index("<h6>Catalog</h6>")
    )
    assert '<a href="/app/device-webhooks/" aria-current="page">Device webhooks</a>' in body
    assert '<a href="/app/subscriptions/" >Subscriptions</a>' in body
    assert '<a href="/app/subscriptions/" aria-current="page">Subscriptions</a>' in html(
        client.get("/app/subscriptions/")
    )


def test_subscription_pages_in_french(
    client: Client, tenant: Tenant, make_staff: StaffMaker, world: dict[str, Any]
) -> None:
    subscription = subscribe(tenant, world)
    bill_april_in_advance(subscription)
    with time_machine.travel(paris(2026, 4, 16, 10), tick=False):
        logged_in(client, make_staff(tenant))
        listing_page = client.get("/app/subscriptions/", HTTP_ACCEPT_LANGUAGE="fr")
        preview = text(
            client.post(
                "/app/subscriptions/sub/change/preview/",
                change_data(),
                HTTP_ACCEPT_LANGUAGE="fr",
                HTTP_HX_REQUEST="true",
            )
        )
        webhooks = html(client.get("/app/device-webhooks/", HTTP_ACCEPT_LANGUAGE="fr"))

    listing = html(listing_page)
    assert "<h1>Abonnements</h1>" in listing
    assert "Nouvel abonnement" in listing
    assert "Tous 1 En attente d'activation 0" in text(listing_page).replace("&#x27;", "'")
    assert "Webhooks des appareils" in webhooks
    assert "Crédit platform 16–30 avr. 2026 1 × 25,00 € 15/30 -12,50 €" in preview
    assert "Débit platform 16–30 avr. 2026 1 × 40,00 € 15/30 20,00 €" in preview
    assert "Total sur la prochaine facture 7,50 €" in preview
