"""The portal's Plan page (specs/portal.md "Plan"): the subscriptions, and each change previewed
with the service's own lines, then confirmed; another customer's subscription is a 404."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client

from catalog.models import Plan
from catalog.services import tax_rate_set
from catalog.tests.factories import platform_plan
from customers.models import Customer
from customers.tests.factories import dupont
from invoicing.models import BillRun, Invoice
from invoicing.services import bill_run_chunk, bill_run_plan, invoice_generate
from portal.plan import PREVIEW_SALT
from portal.tests.conftest import PortalClientMaker
from subscriptions.changes import subscription_changes_apply_due
from subscriptions.models import Device, ServiceCharge, Subscription, SubscriptionChange
from subscriptions.tests.factories import monthly_fee_customers, signed_subscription
from tenancy.actors import Actor
from tenancy.models import AuditLogEntry, Tenant

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


def bill_run(tenant: Tenant, billing_date: date, at: datetime) -> None:
    """The bill run of ``billing_date``, as its Celery tasks run it."""
    run = BillRun.objects.create(tenant=tenant, billing_date=billing_date)
    for chunk in bill_run_plan(run=run, at=at):
        bill_run_chunk(run_id=str(run.pk), customer_ids=chunk, at=at)


def preview(client: Client, url: str, data: dict[str, Any]) -> Any:
    response = client.post(url, {**data, "step": "preview"})
    assert response.status_code == 200, response.content.decode()[:2000]
    assert "result" in response.context, response.content.decode()[:2000]
    return response


def confirm(client: Client, url: str, data: dict[str, Any], token: str) -> Any:
    return client.post(url, {**data, "step": "confirm", "token": token})


def test_adding_two_devices_shows_the_preview_lines_then_bills_them_on_the_next_invoice(
    tenant: Tenant, portal_client: PortalClientMaker
) -> None:
    # given: customer c0 on plan p, 10.00 per device and month from the subscription's start, with
    # devices c0-d0 and c0-d1; April billed in advance on 1 April (2 x 10.00)
    [customer] = monthly_fee_customers(tenant)
    bill_run(tenant, date(2026, 4, 1), paris(2026, 4, 1, 6))
    url = "/portal/plan/s0/add-devices/"
    typed = {"serials": "N-1\nN-2", "device_type": "", "region": ""}
    # when: on 17 April, a billing user previews adding N-1 and N-2
    with time_machine.travel(paris(2026, 4, 17, 10), tick=False):
        client = portal_client(customer, role="billing")
        page = client.get(url)
        assert page.status_code == 200
        response = preview(client, url, typed)
        # then: one charge for both devices from 17 to 30 April, 14 of April's 30 days:
        # 2 x 10.00 x 14/30 = 9.333... -> 9.33 (rounded once for the line: 4.67 + 4.66)
        [row] = response.context["rows"]
        line = row["line"]
        assert (line.type, line.devices, line.quantity, line.unit_amount, line.amount) == (
            "service",
            ("N-1", "N-2"),
            2,
            Decimal("10.0000000000"),
            Decimal("9.33"),
        )
        assert (line.period_start, line.period_end) == (paris(2026, 4, 17), paris(2026, 5, 1))
        assert row["days"] == (14, 30)
        assert response.context["total"] == Decimal("9.33")
        content = response.content.decode()
        assert "14/30" in content
        assert "€9.33" in content
        # nothing is written by a preview
        assert Device.objects.filter(device_id__in=["N-1", "N-2"]).count() == 0
        assert ServiceCharge.objects.filter(source="change").count() == 0
        # when: confirmed with the same inputs
        done = confirm(client, url, typed, response.context["token"])
        assert done.status_code == 302
        assert done["Location"] == "/portal/plan/"
    # then: the devices are on the subscription, and the change is audited as the portal user's
    assert sorted(Device.objects.filter(subscription__external_id="s0").values_list("device_id", flat=True)) == [
        "N-1",
        "N-2",
        "c0-d0",
        "c0-d1",
    ]
    entry = AuditLogEntry.objects.get(tenant=tenant, action="subscription.add_devices")
    assert (entry.actor_type, entry.actor_label) == ("portal_user", client.portal_user.email)  # type: ignore[attr-defined]
    # when: the bill run of 1 May
    bill_run(tenant, date(2026, 5, 1), paris(2026, 5, 1, 6))
    # then: the invoice of 1 May bills the previewed line, 9.33 for N-1 and N-2 from 17 April to
    # 1 May, and May in advance for the four devices: 4 x 10.00 = 40.00
    may = Invoice.objects.get(customer=customer, issue_date=date(2026, 5, 1))
    lines = sorted(
        (line.type, line.source, line.period_start, line.period_end, sorted(line.devices), line.amount)
        for line in may.lines.all()
    )
    assert lines == [
        ("service", "change", paris(2026, 4, 17), paris(2026, 5, 1), ["N-1", "N-2"], Decimal("9.33")),
        (
            "service",
            "in_advance",
            paris(2026, 5, 1),
            paris(2026, 6, 1),
            ["N-1", "N-2", "c0-d0", "c0-d1"],
            Decimal("40.00"),
        ),
    ]
    # net 49.33, VAT 20 % = 9.866 -> 9.87, total 59.20
    assert may.total.amount == Decimal("59.20")


def test_a_confirmation_for_other_inputs_or_an_old_preview_is_refused_with_a_fresh_preview(
    tenant: Tenant, portal_client: PortalClientMaker
) -> None:
    [customer] = monthly_fee_customers(tenant)
    url = "/portal/plan/s0/add-devices/"
    with time_machine.travel(paris(2026, 4, 17, 10), tick=False):
        client = portal_client(customer)
        token = preview(client, url, {"serials": "N-1", "device_type": "", "region": ""}).context["token"]
        # other inputs than those previewed
        other = confirm(client, url, {"serials": "N-1 N-9", "device_type": "", "region": ""}, token)
        assert other.status_code == 200
        assert "other choices" in other.context["stale"]
        assert other.context["result"].lines[0].devices == ("N-1", "N-9")
        # a token altered by hand
        forged = confirm(client, url, {"serials": "N-1", "device_type": "", "region": ""}, token + "x")
        assert "out of date" in forged.context["stale"]
        # no token at all
        bare = client.post(url, {"serials": "N-1", "step": "confirm"})
        assert "out of date" in bare.context["stale"]
    # a preview more than 15 minutes old
    with time_machine.travel(paris(2026, 4, 17, 10, 16), tick=False):
        late = confirm(client, url, {"serials": "N-1", "device_type": "", "region": ""}, token)
        assert late.status_code == 200
        assert "out of date" in late.context["stale"]
    assert not Device.objects.filter(device_id__in=["N-1", "N-9"]).exists()
    assert PREVIEW_SALT == "portal.plan.preview"


def test_a_preview_whose_lines_changed_since_is_not_applied(tenant: Tenant, portal_client: PortalClientMaker) -> None:
    # given: a preview made at 23:50 on 17 April (14 days left in April)
    [customer] = monthly_fee_customers(tenant)
    url = "/portal/plan/s0/add-devices/"
    typed = {"serials": "N-1", "device_type": "", "region": ""}
    with time_machine.travel(paris(2026, 4, 17, 23, 50), tick=False):
        client = portal_client(customer)
        token = preview(client, url, typed).context["token"]
    # when: confirmed at 00:05 on 18 April, when 13 days are left
    with time_machine.travel(paris(2026, 4, 18, 0, 5), tick=False):
        response = confirm(client, url, typed, token)
    # then: refused, nothing applied, and the new lines shown: 10.00 x 13/30 = 4.333... -> 4.33
    assert response.status_code == 200
    assert "amounts changed" in response.context["stale"]
    assert response.context["result"].lines[0].amount == Decimal("4.33")
    assert not Device.objects.filter(device_id="N-1").exists()
    assert not SubscriptionChange.objects.exists()


@pytest.fixture
def committed(tenant: Tenant) -> Subscription:
    """Dupont on a 12-month commitment from 1 January 2026 (to 1 January 2027), 10.00 per device and
    month, the remaining fees due on early termination; one device A; April billed in advance."""
    tax_rate_set(tenant=tenant, actor=ACTOR, at=paris(2026, 1, 1), country="FR", tax_category="standard", rate="20")
    plan = platform_plan(tenant, "committed", "10.00", commitment_months=12, early_termination="remaining_fees")
    subscription = signed_subscription(tenant, customer=dupont(tenant), plan=plan, devices=("A",))
    assert invoice_generate(customer=subscription.customer, billing_date=date(2026, 4, 1), at=paris(2026, 4, 1, 6))
    return subscription


def test_cancelling_inside_the_commitment_shows_and_charges_the_early_termination_fee(
    tenant: Tenant, committed: Subscription, portal_client: PortalClientMaker
) -> None:
    customer = committed.customer
    url = "/portal/plan/sub/cancel/"
    # when: after three months and a half, on 16 April, the customer previews a cancellation
    with time_machine.travel(paris(2026, 4, 16, 10), tick=False):
        client = portal_client(customer)
        page = client.get(url)
        assert page.status_code == 200
        assert page.context["early_termination"] is True
        response = preview(client, url, {})
        # then: it ends with April, which is billed in full (nothing credited); the committed
        # periods left after April, May to December = 8, are charged: 8 x 10.00 = 80.00
        rows = response.context["rows"]
        assert [(r["line"].type, r["amount"]) for r in rows] == [("fee", Decimal("80.00"))]
        assert rows[0]["periods"] == 8
        assert (rows[0]["line"].period_start, rows[0]["line"].period_end) == (paris(2026, 5, 1), paris(2027, 1, 1))
        assert response.context["total"] == Decimal("80.00")
        content = response.content.decode()
        # Dupont reads French
        assert "80,00\xa0€" in content
        assert "Frais de résiliation anticipée" in content
        done = confirm(client, url, {}, response.context["token"])
        assert done.status_code == 302
    committed.refresh_from_db()
    assert (committed.status, committed.cancel_at) == ("active", paris(2026, 5, 1))
    # and on 1 May the cancellation applies, and the invoice that closes April bills the fee and no
    # service for May
    assert subscription_changes_apply_due(tenant=tenant, at=paris(2026, 5, 1, 0, 5)) == 1
    committed.refresh_from_db()
    assert committed.status == "ended"
    may = invoice_generate(customer=customer, billing_date=date(2026, 5, 1), at=paris(2026, 5, 1, 6))
    assert may is not None
    assert [(line.type, line.amount) for line in may.lines.all()] == [("fee", Decimal("80.00"))]


def test_cancelling_outside_a_commitment_waits_for_the_end_of_the_period(
    tenant: Tenant, portal_client: PortalClientMaker
) -> None:
    [customer] = monthly_fee_customers(tenant)
    url = "/portal/plan/s0/cancel/"
    with time_machine.travel(paris(2026, 4, 17, 10), tick=False):
        client = portal_client(customer)
        response = preview(client, url, {})
        assert response.context["outcome"] == "scheduled"
        assert response.context["rows"] == []
        assert "Takes effect on 1 May 2026" in response.content.decode()
        done = confirm(client, url, {}, response.context["token"])
        assert done.status_code == 302
        page = client.get("/portal/plan/")
    subscription = Subscription.objects.get(external_id="s0")
    assert (subscription.status, subscription.cancel_at) == ("active", paris(2026, 5, 1))
    content = page.content.decode()
    assert "Cancellation on 1 May 2026" in content
    assert "/portal/plan/s0/cancel/" not in content
    # a second cancellation is refused on the form
    with time_machine.travel(paris(2026, 4, 17, 11), tick=False):
        again = client.post(url, {"step": "preview"})
    assert again.status_code == 422
    assert "already scheduled" in again.content.decode()


def test_removing_a_device_credits_its_unused_days(tenant: Tenant, portal_client: PortalClientMaker) -> None:
    [customer] = monthly_fee_customers(tenant)
    bill_run(tenant, date(2026, 4, 1), paris(2026, 4, 1, 6))
    url = "/portal/plan/s0/remove-devices/"
    with time_machine.travel(paris(2026, 4, 21, 10), tick=False):
        client = portal_client(customer)
        response = preview(client, url, {"device_ids": ["c0-d1"]})
        # 21-30 April = 10 of 30 days: 10.00 x 10/30 = 3.33
        [row] = response.context["rows"]
        assert (row["line"].type, row["line"].devices, row["amount"], row["days"]) == (
            "credit",
            ("c0-d1",),
            Decimal("-3.33"),
            (10, 30),
        )
        assert confirm(client, url, {"device_ids": ["c0-d1"]}, response.context["token"]).status_code == 302
    assert Device.objects.get(device_id="c0-d1").removed_at == paris(2026, 4, 21, 10)


def test_an_upgrade_applies_at_once_and_a_downgrade_at_the_period_end(
    tenant: Tenant, portal_client: PortalClientMaker
) -> None:
    [customer] = monthly_fee_customers(tenant)
    platform_plan(tenant, "premium", "25.00")
    platform_plan(tenant, "lite", "5.00")
    # a plan without a price in the customer's currency is not offered
    dollars = platform_plan(tenant, "dollars", "9.00")
    dollars.price_versions.update(currency="USD")
    # nor is a plan the tenant keeps for its staff (not offered for self-service)
    platform_plan(tenant, "negotiated", "1.00")
    Plan.objects.filter(tenant=tenant, code__in=["premium", "lite", "dollars"]).update(self_service=True)
    bill_run(tenant, date(2026, 4, 1), paris(2026, 4, 1, 6))
    url = "/portal/plan/s0/change-plan/"
    with time_machine.travel(paris(2026, 4, 16, 10), tick=False):
        client = portal_client(customer)
        page = client.get(url)
        assert page.context["form"].fields["plan"].choices == [
            ("lite", "Lite · €5.00 per device and month"),
            ("premium", "Premium · €25.00 per device and month"),
        ]
        refused = client.post(url, {"plan": "dollars", "step": "preview"})
        assert refused.status_code == 422
        up = preview(client, url, {"plan": "premium"})
        # 16-30 April = 15 of 30 days, 2 devices: credit 2 x 10.00 x 15/30 = 10.00, charge
        # 2 x 25.00 x 15/30 = 25.00
        assert [(r["line"].type, r["amount"]) for r in up.context["rows"]] == [
            ("credit", Decimal("-10.00")),
            ("service", Decimal("25.00")),
        ]
        assert confirm(client, url, {"plan": "premium"}, up.context["token"]).status_code == 302
        down = preview(client, url, {"plan": "lite"})
        assert (down.context["outcome"], down.context["rows"]) == ("scheduled", [])
        assert confirm(client, url, {"plan": "lite"}, down.context["token"]).status_code == 302
        # the same confirmation sent twice schedules nothing more
        twice = confirm(client, url, {"plan": "lite"}, down.context["token"])
        assert twice.status_code == 422
        assert twice.context["form"].errors["plan"] == ["This change is already scheduled."]
        page = client.get("/portal/plan/")
    subscription = Subscription.objects.get(external_id="s0")
    assert subscription.plan.code == "premium"
    assert SubscriptionChange.objects.filter(status="scheduled").count() == 1
    assert "Change to Lite on 1 May 2026" in page.content.decode()


def test_a_service_refusal_is_a_form_error(tenant: Tenant, portal_client: PortalClientMaker) -> None:
    # given: c1's device c1-d0 is on another customer's subscription
    c0, _c1 = monthly_fee_customers(tenant, 2)
    with time_machine.travel(paris(2026, 4, 17, 10), tick=False):
        client = portal_client(c0)
        response = client.post("/portal/plan/s0/add-devices/", {"serials": "N-1 c1-d0", "step": "preview"})
        assert response.status_code == 422
        assert response.context["form"].errors["serials"] == ["Already on a subscription: c1-d0."]
        twice = client.post("/portal/plan/s0/add-devices/", {"serials": "N-1 N-1", "step": "preview"})
        assert twice.context["form"].errors["serials"] == ["Typed twice: N-1."]
        empty = client.post("/portal/plan/s0/remove-devices/", {"step": "preview"})
        assert empty.context["form"].errors["device_ids"] == ["Tick the devices to remove."]


def test_another_customers_subscription_is_not_found(
    tenant: Tenant, other_tenant: Tenant, portal_client: PortalClientMaker
) -> None:
    c0, _c1 = monthly_fee_customers(tenant, 2)
    stranger = dupont(other_tenant)
    signed_subscription(
        other_tenant, customer=stranger, plan=platform_plan(other_tenant, "p", "10.00"), external_id="s9"
    )
    client = portal_client(c0)
    for external_id in ("s1", "s9", "nope"):
        for action in ("add-devices", "remove-devices", "change-plan", "cancel"):
            url = "/portal/plan/%s/%s/" % (external_id, action)
            assert client.get(url).status_code == 404, url
            assert client.post(url, {"step": "preview", "serials": "X"}).status_code == 404, url
    assert client.get("/portal/plan/s0/explode/").status_code == 404
    page = client.get("/portal/plan/")
    assert "s1" not in page.content.decode()
    assert "s0" in page.content.decode()


def test_a_viewer_sees_the_plan_without_forms(tenant: Tenant, portal_client: PortalClientMaker) -> None:
    [customer] = monthly_fee_customers(tenant)
    client = portal_client(customer, role="viewer")
    page = client.get("/portal/plan/")
    assert page.status_code == 200
    content = page.content.decode()
    assert "P</h2>" in content  # plan p, named "P"
    assert "c0-d0" in content
    assert "/portal/plan/s0/" not in content
    assert "<form" not in content.split('id="content"')[1]
    assert client.get("/portal/plan/s0/add-devices/").status_code == 403
    assert client.post("/portal/plan/s0/cancel/", {"step": "confirm"}).status_code == 403
    assert not SubscriptionChange.objects.exists()


def test_the_plan_page_lists_the_subscription_facts(
    tenant: Tenant, committed: Subscription, portal_client: PortalClientMaker
) -> None:
    customer: Customer = committed.customer
    with time_machine.travel(paris(2026, 4, 16, 10), tick=False):
        page = portal_client(customer).get("/portal/plan/")
    assert page.status_code == 200
    [row] = page.context["rows"]
    assert row["period"] == (date(2026, 4, 1), date(2026, 4, 30))
    assert row["renews_at"] == paris(2026, 5, 1)
    assert row["commitment_last_day"] == date(2026, 12, 31)
    content = page.content.decode()
    # in French, Dupont's language
    assert "jusqu’au 31 déc. 2026" in content or "jusqu'au 31 déc. 2026" in content
    assert "/portal/plan/sub/add-devices/" in content
