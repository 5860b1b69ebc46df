"""Password reset by e-mail (allauth's views, Tripod's look, French and English) and the 12-hour
idle end of a staff session."""

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.test import Client

from tenancy.models import AuditLogEntry, Tenant

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
NEW_PASSWORD = "blue-staple-orbit-42"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
StaffMaker = Callable[..., Any]


@pytest.fixture
def owner(tenant: Tenant, make_staff: StaffMaker) -> Any:
    return make_staff(tenant, email="owner@acme.test")


def test_password_reset_by_e_mail(
    client: Client, tenant: Tenant, owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    # given: the login page links to the reset
    login_page = client.get("/app/login/").content.decode()
    assert 'href="/app/account/password/reset/"' in login_page
    # when: the owner asks for a reset
    response = client.post("/app/account/password/reset/", {"email": "Owner@Acme.test"})
    assert response.status_code == 302
    # then: one e-mail with a link, through Django's mail backend
    [message] = mail.outbox
    assert message.to == ["owner@acme.test"]
    assert message.subject == "[Tripod] Password Reset Email"
    assert "Hello from Tripod!" in message.body
    link = re.search(r"http://testserver(/app/account/password/reset/key/\S+/)", str(message.body))
    assert link, message.body
    # the link leads to a form for the new password
    form_page = client.get(link.group(1), follow=True)
    assert form_page.status_code == 200
    action = form_page.redirect_chain[-1][0] if form_page.redirect_chain else link.group(1)
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(action, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert done.status_code == 302
    # the old password no longer logs in, the new one does
    assert client.post("/app/login/", {"login": "owner@acme.test", "password": PASSWORD}).status_code == 200
    assert client.post("/app/login/", {"login": "owner@acme.test", "password": NEW_PASSWORD})["Location"] == "/app/"
    assert AuditLogEntry.objects.filter(tenant=tenant, action="user.password_reset").count() == 1
    # and the link works once: its token was made from the old password
    again = Client().get(link.group(1), follow=True)
    assert again.context["token_fail"] is True
    assert "Bad Token" in again.content.decode()


def test_password_reset_for_an_unknown_address_sends_nothing(client: Client) -> None:
    response = client.post("/app/account/password/reset/", {"email": "nobody@acme.test"})
    # the same answer as for a known address: it does not tell who has a login
    assert response.status_code == 302
    assert mail.outbox == []


def test_the_password_reset_e_mail_in_french(client: Client, owner: Any) -> None:
    client.post("/app/account/password/reset/", {"email": "owner@acme.test"}, HTTP_ACCEPT_LANGUAGE="fr")
    [message] = mail.outbox
    assert "Bonjour, c'est Tripod !" in message.body
    page = client.get("/app/account/password/reset/", HTTP_ACCEPT_LANGUAGE="fr")
    assert "Mot de passe oublié" in page.content.decode()


# --- idle sessions -------------------------------------------------------------------------------------


def test_a_session_ends_after_12_hours_without_a_request(client: Client, owner: Any) -> None:
    with time_machine.travel(T0, tick=False):
        assert client.post("/app/login/", {"login": "owner@acme.test", "password": PASSWORD})["Location"] == "/app/"
    # each request starts the 12 hours again: 11:59 later, then 11:59 after that, still in
    with time_machine.travel(T0 + timedelta(hours=11, minutes=59), tick=False):
        assert client.get("/app/customers/").status_code == 200
    with time_machine.travel(T0 + timedelta(hours=23, minutes=58), tick=False):
        assert client.get("/app/customers/").status_code == 200
    # 12 hours and 1 second after the last request: logged out
    with time_machine.travel(T0 + timedelta(hours=35, minutes=58, seconds=1), tick=False):
        response = client.get("/app/customers/")
    assert response.status_code == 302
    assert response["Location"] == "/app/login/?next=/app/customers/"


def test_the_session_cookie_lasts_12_hours(client: Client, owner: Any) -> None:
    response = client.post("/app/login/", {"login": "owner@acme.test", "password": PASSWORD})
    cookie = response.cookies["sessionid"]
    assert cookie["max-age"] == 43200  # 12 × 3600
    assert cookie["httponly"] is True
