"""Logging in to the portal on the tenant's page: an e-mailed code or a password, then the
authenticator's code when set up; throttled, audited, and the same answer for unknown addresses
(specs/portal.md, "Who logs in")."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest
import redis
import time_machine
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core import mail
from django.test import Client

from customers.models import Customer, PortalLoginCode, PortalSession, PortalUser
from customers.portal import portal_session_resolve
from customers.tests.factories import dupont
from portal.tests.conftest import PortalUserMaker
from tenancy.models import AuditLogEntry, Tenant

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)
LOGIN = "/portal/acme/login/"
PASSWORD = "a long and quiet river"


@pytest.fixture(autouse=True)
def _fresh_counters() -> None:
    """The login's throttle counts in Redis: each test starts with none."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter("tripod:rl:portal-login:*"):
        client.delete(key)


@pytest.fixture
def customer(tenant: Tenant) -> Customer:
    return dupont(tenant, language="en")


@pytest.fixture
def marie(customer: Customer, make_portal_user: PortalUserMaker) -> PortalUser:
    return make_portal_user(customer, email="marie@dupont.test", name="Marie")


def _code_from_mail() -> str:
    [code] = re.findall(r"^(\d{6})$", str(mail.outbox[-1].body), re.M)
    return code


def _ask_code(browser: Client, email: str = "marie@dupont.test") -> Any:
    return browser.post(LOGIN, {"step": "email", "action": "code", "email": email})


def _send_code(browser: Client, code: str, email: str = "marie@dupont.test") -> Any:
    return browser.post(LOGIN, {"step": "code", "email": email, "code": code})


def _logged_in(response: Any) -> PortalSession:
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == "/portal/"
    session = portal_session_resolve(token=response.cookies[settings.PORTAL_SESSION_COOKIE].value, at=T0)
    assert session is not None
    return session


def test_the_login_page_wears_the_tenants_name_and_fills_in_the_address(tenant: Tenant) -> None:
    response = Client().get(LOGIN + "?email=marie%40dupont.test")
    page = response.content.decode()
    assert response.status_code == 200
    assert "<strong>Acme Telematics</strong>" in page
    assert 'href="/portal/brand/acme.css"' in page
    assert 'value="marie@dupont.test"' in page
    assert Client().get("/portal/nobody/login/").status_code == 404


@time_machine.travel(T0, tick=False)
def test_an_e_mailed_code_opens_the_portal_once(marie: PortalUser, tenant: Tenant) -> None:
    browser = Client()
    # when: the address, then the code from the e-mail
    response = _ask_code(browser)
    assert response.status_code == 200
    assert "a 6-digit code is on its way" in response.content.decode()
    [message] = mail.outbox
    assert message.to == ["marie@dupont.test"]
    assert message.from_email == "Acme Telematics <%s>" % settings.DEFAULT_FROM_EMAIL
    code = _code_from_mail()
    assert message.subject == "%s is your code for Acme Telematics's customer portal" % code
    assert "It works once, for 10 minutes." in message.body
    # only a keyed hash of the code is kept
    assert code not in PortalLoginCode.objects.get().code_hash
    session = _logged_in(_send_code(browser, code))
    # then: a session of Marie's, on Dupont's account, and its audit
    assert (session.user_id, session.customer_id) == (marie.pk, marie.customer_id)
    marie.refresh_from_db()
    assert marie.last_login_at == T0
    login = AuditLogEntry.objects.get(tenant=tenant, action="portal.login")
    assert (login.actor_type, login.actor_id, login.after) == ("portal_user", str(marie.pk), {"via": "code"})
    # the code is used up
    again = _send_code(Client(), code)
    assert again.status_code == 200
    assert "This code is not right, or no longer works" in again.content.decode()
    refused = AuditLogEntry.objects.get(tenant=tenant, action="portal.login_refused")
    assert refused.after == {"email": "marie@dupont.test", "reason": "no_code"}


@time_machine.travel(T0, tick=False)
def test_a_new_code_voids_the_older_one(marie: PortalUser) -> None:
    browser = Client()
    _ask_code(browser)
    first = _code_from_mail()
    _ask_code(browser)
    second = _code_from_mail()
    if first != second:  # one chance in a million that both are the same
        assert _send_code(browser, first).status_code == 200
    _logged_in(_send_code(browser, second))


def test_five_wrong_codes_void_the_code(marie: PortalUser, tenant: Tenant) -> None:
    browser = Client()
    with time_machine.travel(T0, tick=False):
        _ask_code(browser)
        code = _code_from_mail()
        wrong = "%06d" % ((int(code) + 1) % 1_000_000)
        for _ in range(5):
            response = _send_code(browser, wrong)
            assert response.status_code == 200
            assert settings.PORTAL_SESSION_COOKIE not in response.cookies
        # then: the right code no longer works either
        response = _send_code(browser, code)
        assert settings.PORTAL_SESSION_COOKIE not in response.cookies
    row = PortalLoginCode.objects.get()
    assert (row.failed_attempts, row.voided_at, row.used_at) == (5, T0, None)
    reasons = list(
        AuditLogEntry.objects.filter(tenant=tenant, action="portal.login_refused")
        .order_by("id")
        .values_list("after__reason", "after__failed_attempts")
    )
    # 5 wrong tries counted 1 to 5, then no live code is left
    assert reasons == [("wrong_code", n) for n in range(1, 6)] + [("no_code", None)]


def test_a_code_expires_after_10_minutes(marie: PortalUser, tenant: Tenant) -> None:
    browser = Client()
    with time_machine.travel(T0, tick=False):
        _ask_code(browser)
        code = _code_from_mail()
    # 9:09:59 still works... but it is used once; so ask another and wait 10 minutes
    with time_machine.travel(T0 + timedelta(minutes=10), tick=False):
        response = _send_code(browser, code)
    assert response.status_code == 200
    assert settings.PORTAL_SESSION_COOKIE not in response.cookies
    assert AuditLogEntry.objects.get(tenant=tenant, action="portal.login_refused").after == {
        "email": "marie@dupont.test",
        "reason": "code_expired",
    }
    with time_machine.travel(T0 + timedelta(minutes=20), tick=False):
        _ask_code(browser)
        fresh = _code_from_mail()
    # 20:00 + 9:59 = 29:59, within its 10 minutes
    with time_machine.travel(T0 + timedelta(minutes=29, seconds=59), tick=False):
        response = _send_code(browser, fresh)
    assert response.status_code == 302


@time_machine.travel(T0, tick=False)
def test_an_unknown_or_inactive_address_gets_the_same_page_and_no_mail(
    marie: PortalUser, customer: Customer, make_portal_user: PortalUserMaker, tenant: Tenant
) -> None:
    make_portal_user(customer, email="gone@dupont.test", is_active=False)
    known = _ask_code(Client(), "marie@dupont.test").content.decode()
    mail.outbox.clear()
    unknown = _ask_code(Client(), "nobody@dupont.test").content.decode()
    inactive = _ask_code(Client(), "gone@dupont.test").content.decode()
    assert mail.outbox == []

    def page(text: str, email: str) -> str:
        # the page, without its CSRF tokens (new for each browser) and the address typed
        text = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", text)
        text = re.sub(r'"X-CSRFToken": "[^"]+"', "", text)
        return text.replace(email, "ADDRESS").replace(email.replace("@", "%40"), "ADDRESS")

    assert page(unknown, "nobody@dupont.test") == page(known, "marie@dupont.test")
    assert page(inactive, "gone@dupont.test") == page(known, "marie@dupont.test")
    assert sorted(
        AuditLogEntry.objects.filter(tenant=tenant, action="portal.login_refused").values_list(
            "after__email", "after__reason"
        )
    ) == [("gone@dupont.test", "unknown_address"), ("nobody@dupont.test", "unknown_address")]
    # a code guessed for an unknown address is refused like a wrong one
    response = _send_code(Client(), "123456", "nobody@dupont.test")
    assert "This code is not right, or no longer works" in response.content.decode()


@time_machine.travel(T0, tick=False)
def test_a_password_logs_in_and_a_wrong_one_is_refused_without_saying_which_part(
    customer: Customer, make_portal_user: PortalUserMaker, tenant: Tenant
) -> None:
    user = make_portal_user(customer, email="paul@dupont.test", password=make_password(PASSWORD))
    wrong = Client().post(LOGIN, {"step": "email", "action": "password", "email": "paul@dupont.test", "password": "x"})
    unknown = Client().post(
        LOGIN, {"step": "email", "action": "password", "email": "ghost@dupont.test", "password": PASSWORD}
    )
    message = "This address and password do not match."
    assert message in wrong.content.decode()
    assert message in unknown.content.decode()
    assert (wrong.status_code, unknown.status_code) == (200, 200)
    session = _logged_in(
        Client().post(LOGIN, {"step": "email", "action": "password", "email": "PAUL@dupont.test", "password": PASSWORD})
    )
    assert session.user_id == user.pk
    assert AuditLogEntry.objects.get(tenant=tenant, action="portal.login").after == {"via": "password"}
    assert sorted(
        AuditLogEntry.objects.filter(tenant=tenant, action="portal.login_refused").values_list(
            "after__reason", flat=True
        )
    ) == ["unknown_address", "wrong_password"]
    assert mail.outbox == []


@time_machine.travel(T0, tick=False)
def test_the_authenticators_code_is_asked_when_the_user_has_one(
    customer: Customer, make_portal_user: PortalUserMaker, tenant: Tenant
) -> None:
    secret = pyotp.random_base32()
    make_portal_user(customer, email="paul@dupont.test", password=make_password(PASSWORD), totp_secret=secret)
    browser = Client()
    first = browser.post(
        LOGIN, {"step": "email", "action": "password", "email": "paul@dupont.test", "password": PASSWORD}
    )
    # the password was right, but no session yet: the second step
    assert first.status_code == 200
    assert settings.PORTAL_SESSION_COOKIE not in first.cookies
    page = first.content.decode()
    assert "Enter the 6-digit code your authenticator app shows" in page
    [pending] = re.findall(r'name="pending" value="([^"]+)"', page)
    # a wrong code: refused, audited
    now = pyotp.TOTP(secret).now()
    wrong = "%06d" % ((int(now) + 500_000) % 1_000_000)
    refused = browser.post(LOGIN, {"step": "second-factor", "pending": pending, "code": wrong})
    assert settings.PORTAL_SESSION_COOKIE not in refused.cookies
    assert "This code is not the one your app shows now." in refused.content.decode()
    refused_entry = AuditLogEntry.objects.get(tenant=tenant, action="portal.login_refused")
    assert refused_entry.after == {"email": "paul@dupont.test", "reason": "wrong_second_factor"}
    # a forged step is not accepted
    forged = browser.post(LOGIN, {"step": "second-factor", "pending": pending + "x", "code": now})
    assert forged.status_code == 400
    _logged_in(browser.post(LOGIN, {"step": "second-factor", "pending": pending, "code": now}))
    assert AuditLogEntry.objects.get(tenant=tenant, action="portal.login").after == {"via": "password+totp"}


def test_the_second_step_must_follow_within_5_minutes(customer: Customer, make_portal_user: PortalUserMaker) -> None:
    secret = pyotp.random_base32()
    make_portal_user(customer, email="paul@dupont.test", password=make_password(PASSWORD), totp_secret=secret)
    browser = Client()
    with time_machine.travel(T0, tick=False):
        page = browser.post(
            LOGIN, {"step": "email", "action": "password", "email": "paul@dupont.test", "password": PASSWORD}
        ).content.decode()
    [pending] = re.findall(r'name="pending" value="([^"]+)"', page)
    with time_machine.travel(T0 + timedelta(minutes=5, seconds=1), tick=False):
        code = pyotp.TOTP(secret).now()
        response = browser.post(LOGIN, {"step": "second-factor", "pending": pending, "code": code})
    assert response.status_code == 400
    assert "That took too long: start again." in response.content.decode()


@time_machine.travel(T0, tick=False)
def test_logins_are_throttled_per_address_with_a_429(marie: PortalUser) -> None:
    browser = Client()
    # 10 steps per address in 15 minutes: the 11th is refused, and says how long to wait
    for _ in range(10):
        assert _send_code(browser, "000000").status_code == 200
    response = _ask_code(browser)
    assert response.status_code == 429
    # 9:00 is the start of a 15-minute window: 900 seconds left
    assert response["Retry-After"] == "900"
    assert "Too many attempts: wait 15 minutes and try again." in response.content.decode()
    assert mail.outbox == []
    # another address from another client is not held back
    assert (
        Client(REMOTE_ADDR="10.0.0.9")
        .post(LOGIN, {"step": "email", "action": "code", "email": "other@dupont.test"})
        .status_code
        == 200
    )


@time_machine.travel(T0, tick=False)
def test_logins_are_throttled_per_client_address(marie: PortalUser) -> None:
    # 30 steps per client address in 15 minutes, whatever the addresses typed
    for n in range(30):
        assert _ask_code(Client(), "guess%d@dupont.test" % n).status_code == 200
    assert _ask_code(Client()).status_code == 429
    assert len(mail.outbox) == 0
