"""The webhook endpoint pages (/app/webhook-endpoints/) through Django's test client: create with
the secret shown once, disable and enable, rotate, delete, an endpoint's deliveries with their tries
and replay; who may read and act; French; tenant isolation."""

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client

from tenancy.models import AuditLogEntry, Role, Tenant
from webhooks.delivery import deliveries_send
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.outbox import event_emit
from webhooks.services import webhook_endpoint_create
from webhooks.tests.factories import ACTOR
from webhooks.tests.receiver import Receiver, receiver

pytestmark = pytest.mark.django_db
__all__ = ["receiver"]

StaffMaker = Callable[..., Any]
LIST = "/app/webhook-endpoints/"
T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)


def html(response: Any) -> str:
    return response.content.decode()


def text(response: Any) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html(response))).replace("&#x27;", "'")


def client_for(
    tenant: Tenant, make_staff: StaffMaker, role: str = Role.OWNER, email: str = "staff@acme.test"
) -> Client:
    client = Client()
    client.force_login(make_staff(tenant, role, email))
    return client


def test_create_an_endpoint_and_see_its_secret_once(tenant: Tenant, make_staff: StaffMaker) -> None:
    client = client_for(tenant, make_staff)
    assert f'href="{LIST}"' in html(client.get("/app/"))
    assert "No webhook endpoint yet." in text(client.get(LIST))
    # the form
    form = client.get(LIST + "new/")
    assert form.status_code == 200
    assert 'value="invoice.finalized"' in html(form)
    # when
    response = client.post(
        LIST + "new/",
        {
            "url": "https://erp.acme.test/in",
            "events": ["invoice.finalized", "credit_note.created"],
            "description": "ERP",
        },
    )
    # then: the page shows the secret, and no cache keeps it
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get(tenant=tenant)
    assert endpoint.signing_secret in html(response)
    assert response["Cache-Control"] == "no-store"
    assert "Copy it now into the receiving system: it will not be shown again." in text(response)
    # never again
    detail = client.get(f"{LIST}{endpoint.pk}/")
    assert endpoint.signing_secret not in html(detail)
    assert "invoice.finalized" in text(detail)
    listed = text(client.get(LIST))
    assert "https://erp.acme.test/in" in listed
    assert "Enabled" in listed


def test_a_refused_url_is_shown_on_the_form(tenant: Tenant, make_staff: StaffMaker, settings: Any) -> None:
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    client = client_for(tenant, make_staff)
    response = client.post(LIST + "new/", {"url": "https://127.0.0.1/in", "events": ["*"]})
    assert response.status_code == 200
    assert "This address is private, loopback or link-local: Tripod only calls public addresses." in text(response)
    response = client.post(LIST + "new/", {"url": "https://erp.acme.test/in", "events": ["*", "invoice.voided"]})
    assert "“All events” already includes every type: choose it alone." in text(response)
    assert WebhookEndpoint.objects.count() == 0


def test_disable_enable_rotate_edit_and_delete(tenant: Tenant, make_staff: StaffMaker) -> None:
    endpoint, secret = webhook_endpoint_create(
        tenant=tenant, actor=ACTOR, at=T0, url="https://erp.acme.test/in", events=["*"]
    )
    client = client_for(tenant, make_staff)
    page = f"{LIST}{endpoint.pk}/"
    # disable, enable
    assert client.post(page + "disable/").status_code == 302
    assert "Disabled by staff@acme.test." in text(client.get(page))
    client.post(page + "enable/")
    endpoint.refresh_from_db()
    assert endpoint.enabled
    # rotate: the new secret, once; the old one still signs for 24 hours
    rotated = client.post(page + "rotate/")
    endpoint.refresh_from_db()
    assert endpoint.signing_secret != secret
    assert endpoint.signing_secret in html(rotated)
    assert rotated["Cache-Control"] == "no-store"
    assert "Still signs, beside the new one, until" in text(rotated)
    # edit
    edited = client.post(page + "edit/", {"url": "https://erp2.acme.test/in", "events": ["invoice.voided"]})
    assert edited.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.events) == ("https://erp2.acme.test/in", ["invoice.voided"])
    # delete
    assert client.post(page + "delete/").status_code == 302
    assert WebhookEndpoint.objects.count() == 0
    assert client.get(page).status_code == 404
    assert list(
        AuditLogEntry.objects.filter(object_type="webhook_endpoint").order_by("id").values_list("action", flat=True)
    ) == [
        "webhook_endpoint.created",
        "webhook_endpoint.disabled",
        "webhook_endpoint.enabled",
        "webhook_endpoint.secret_rotated",
        "webhook_endpoint.updated",
        "webhook_endpoint.deleted",
    ]


def test_deliveries_with_their_tries_and_a_replay(tenant: Tenant, make_staff: StaffMaker, receiver: Receiver) -> None:
    # given: a delivery answered 500, then 200
    endpoint, _ = webhook_endpoint_create(tenant=tenant, actor=ACTOR, at=T0, url=receiver.url, events=["*"])
    event = event_emit(tenant=tenant, type="invoice.finalized", data={"number": "INV-2026-000042"}, at=T0)
    receiver.answers = [500]
    deliveries_send(at=T0)
    deliveries_send(at=datetime(2026, 4, 1, 8, 0, 5, tzinfo=UTC))
    client = client_for(tenant, make_staff)
    # when
    page = client.get(f"{LIST}{endpoint.pk}/")
    # then: Paris time (UTC+2 in April), both tries, the body
    body = text(page)
    assert "invoice.finalized" in body
    assert "msg_" + event.id.hex in body
    assert "2026-04-01 10:00:00" in body
    assert "2026-04-01 10:00:05" in body
    assert "HTTP 500" in body
    assert "receiver says no: 500" in body
    assert "INV-2026-000042" in body
    assert "Delivered" in body
    # when: replayed
    delivery = WebhookDelivery.objects.get()
    response = client.post(f"/app/webhook-deliveries/{delivery.pk}/replay/", {"next": f"{LIST}{endpoint.pk}/"})
    # then
    assert response.status_code == 302
    assert response["Location"] == f"{LIST}{endpoint.pk}/"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.round_attempts) == ("pending", 0)
    assert "Delivery queued to be sent again now." in text(client.get(f"{LIST}{endpoint.pk}/"))
    # the status tabs filter
    assert "No delivery with this status." in text(client.get(f"{LIST}{endpoint.pk}/?status=failed"))


def test_the_pages_in_french(tenant: Tenant, make_staff: StaffMaker) -> None:
    webhook_endpoint_create(tenant=tenant, actor=ACTOR, at=T0, url="https://erp.acme.test/in", events=["*"])
    client = client_for(tenant, make_staff)
    client.cookies["django_language"] = "fr"
    listed = text(client.get(LIST))
    assert "Points de terminaison webhook" in listed
    assert "Tous les événements" in listed
    form = text(client.get(LIST + "new/"))
    assert "Nouveau point de terminaison webhook" in form


@pytest.mark.parametrize("role", [Role.FINANCE_VIEWER])
def test_a_viewer_reads_and_cannot_act(tenant: Tenant, make_staff: StaffMaker, role: str) -> None:
    endpoint, _ = webhook_endpoint_create(
        tenant=tenant, actor=ACTOR, at=T0, url="https://erp.acme.test/in", events=["*"]
    )
    client = client_for(tenant, make_staff, role)
    page = client.get(f"{LIST}{endpoint.pk}/")
    assert page.status_code == 200
    assert "Rotate secret" not in text(page)
    assert client.post(f"{LIST}{endpoint.pk}/rotate/").status_code == 403
    assert client.post(f"{LIST}{endpoint.pk}/disable/").status_code == 403
    assert client.get(LIST + "new/").status_code == 403
    endpoint.refresh_from_db()
    assert endpoint.enabled


def test_a_support_agent_does_not_see_endpoints(tenant: Tenant, make_staff: StaffMaker) -> None:
    client = client_for(tenant, make_staff, Role.SUPPORT_AGENT)
    assert client.get(LIST).status_code == 403
    assert f'href="{LIST}"' not in html(client.get("/app/"))


def test_another_tenants_endpoint_and_delivery_are_not_found(
    tenant: Tenant, other_tenant: Tenant, make_staff: StaffMaker
) -> None:
    endpoint, _ = webhook_endpoint_create(
        tenant=other_tenant, actor=ACTOR, at=T0, url="https://globex.test/in", events=["*"]
    )
    event_emit(tenant=other_tenant, type="invoice.voided", data={}, at=T0)
    delivery = WebhookDelivery.objects.get()
    client = client_for(tenant, make_staff)
    assert client.get(f"{LIST}{endpoint.pk}/").status_code == 404
    assert client.post(f"{LIST}{endpoint.pk}/disable/").status_code == 404
    assert client.post(f"/app/webhook-deliveries/{delivery.pk}/replay/").status_code == 404
    assert client.get(f"{LIST}not-a-uuid/").status_code == 404
    assert "globex" not in text(client.get(LIST))
