"""Logging into the partner dashboard on the tenant's page: an e-mailed code or a password, then the
authenticator's code when set up; an invitation link the first time; throttled, audited, and the
same answer for unknown addresses (specs/partners.md: as portal users do)."""

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
from django.utils import timezone

from customers.models import Partner, PartnerStatus
from customers.portal import token_hash
from partners.login import PartnerLoginRefused, partner_login_totp_check
from partners.models import PartnerInvitation, PartnerLoginCode, PartnerSession, PartnerUser
from partners.sessions import partner_session_resolve
from partners.tests.dashboard import make_partner, make_partner_user, partner_client
from tenancy.models import AuditLogEntry, Tenant

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)
LOGIN = "/partners/acme/login/"
PASSWORD = "a long and quiet river"


@pytest.fixture(autouse=True)
def _fresh_counters() -> None:
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter("tripod:rl:partner-login:*"):
        client.delete(key)


@pytest.fixture
def partner(tenant: Tenant) -> Partner:
    return make_partner(tenant)


@pytest.fixture
def lea(partner: Partner) -> PartnerUser:
    return make_partner_user(partner, email="lea@alpnet.test", role="sales")


def _code_from_mail() -> str:
    [code] = re.findall(r"^(\d{6})$", str(mail.outbox[-1].body), re.M)
    return code


def _ask_code(browser: Client, email: str = "lea@alpnet.test") -> Any:
    return browser.post(LOGIN, {"step": "email", "action": "code", "email": email})


def _send_code(browser: Client, code: str, email: str = "lea@alpnet.test") -> Any:
    return browser.post(LOGIN, {"step": "code", "email": email, "code": code})


def _logged_in(response: Any) -> PartnerSession:
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == "/partners/"
    cookie = response.cookies[settings.PARTNER_SESSION_COOKIE]
    assert cookie["path"] == "/partners/"
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert cookie["max-age"] == 12 * 3600
    session = partner_session_resolve(token=cookie.value, at=T0)
    assert session is not None
    return session


def test_the_login_page_wears_the_tenants_name(tenant: Tenant) -> None:
    response = Client().get(LOGIN + "?email=lea%40alpnet.test")
    page = response.content.decode()
    assert response.status_code == 200
    assert "<strong>Acme Telematics</strong>" in page
    assert 'value="lea@alpnet.test"' in page
    assert Client().get("/partners/nobody/login/").status_code == 404


@time_machine.travel(T0, tick=False)
def test_a_code_by_e_mail_opens_a_session_of_12_hours_stored_as_a_hash(tenant: Tenant, lea: PartnerUser) -> None:
    browser = Client()
    page = _ask_code(browser)
    assert page.status_code == 200
    assert "a 6-digit code is on its way" in page.content.decode()
    [message] = mail.outbox
    assert message.to == ["lea@alpnet.test"]
    assert message.subject == "%s is your code for Acme Telematics's partner dashboard" % _code_from_mail()
    session = _logged_in(_send_code(browser, _code_from_mail()))
    assert session.user == lea
    assert session.expires_at == T0 + timedelta(hours=12)
    assert len(session.key_hash) == 64
    assert PartnerLoginCode.objects.get(user=lea).used_at == T0
    login = AuditLogEntry.objects.get(tenant=tenant, action="partner.login")
    assert (login.actor_type, login.object_id, login.after) == (
        "partner_user",
        "alpnet",
        {"via": "code", "email": "lea@alpnet.test"},
    )
    # the dashboard opens with that cookie, and the code cannot be used twice
    assert browser.get("/partners/").status_code == 200
    assert _send_code(Client(), _code_from_mail()).status_code == 200


@time_machine.travel(T0, tick=False)
def test_an_unknown_address_gets_the_same_page_and_no_mail(tenant: Tenant, lea: PartnerUser) -> None:
    known = _ask_code(Client()).content.decode().replace("lea@alpnet.test", "X").replace("lea%40", "X")
    unknown = (_ask_code(Client(), "nobody@alpnet.test").content.decode().replace("nobody@alpnet.test", "X")).replace(
        "nobody%40", "X"
    )
    strip = re.compile(r'(name="csrfmiddlewaretoken" value="|"X-CSRFToken": ")[^"]*"')
    assert strip.sub("", known) == strip.sub("", unknown)
    assert len(mail.outbox) == 1
    refused = AuditLogEntry.objects.get(tenant=tenant, action="partner.login_refused")
    assert refused.after == {"email": "nobody@alpnet.test", "reason": "unknown_address"}


@time_machine.travel(T0, tick=False)
def test_five_wrong_codes_void_the_code_and_each_is_audited(tenant: Tenant, lea: PartnerUser) -> None:
    browser = Client()
    _ask_code(browser)
    good = _code_from_mail()
    wrong = "%06d" % ((int(good) + 1) % 10**6)
    for _ in range(5):
        page = _send_code(browser, wrong)
        assert page.status_code == 200
        assert "This code is not right" in page.content.decode()
    assert PartnerLoginCode.objects.get(user=lea).voided_at == T0
    # the right code no longer works once voided
    assert _send_code(browser, good).status_code == 200
    reasons = list(
        AuditLogEntry.objects.filter(tenant=tenant, action="partner.login_refused")
        .order_by("pk")
        .values_list("after__reason", flat=True)
    )
    assert reasons == ["wrong_code"] * 5 + ["no_code"]


@time_machine.travel(T0, tick=False)
def test_a_newer_code_voids_the_older_and_a_code_lasts_10_minutes(lea: PartnerUser) -> None:
    browser = Client()
    _ask_code(browser)
    first = _code_from_mail()
    _ask_code(browser)
    second = _code_from_mail()
    if first != second:
        assert _send_code(browser, first).status_code == 200
    with time_machine.travel(T0 + timedelta(minutes=10), tick=False):
        assert _send_code(browser, second).status_code == 200
    _ask_code(browser)
    with time_machine.travel(T0 + timedelta(minutes=9), tick=False):
        _logged_in(_send_code(browser, _code_from_mail()))


@time_machine.travel(T0, tick=False)
def test_a_password_then_the_authenticators_code(tenant: Tenant, lea: PartnerUser) -> None:
    secret = pyotp.random_base32()
    lea.password = make_password(PASSWORD)
    lea.totp_secret = secret
    lea.save()
    browser = Client()
    wrong = browser.post(LOGIN, {"step": "email", "action": "password", "email": lea.email, "password": "nope"})
    assert "do not match" in wrong.content.decode()
    second = browser.post(LOGIN, {"step": "email", "action": "password", "email": lea.email, "password": PASSWORD})
    assert second.status_code == 200
    pending = re.search(r'name="pending" value="([^"]+)"', second.content.decode())
    assert pending is not None
    bad = browser.post(LOGIN, {"step": "second-factor", "pending": pending.group(1), "code": "000000"})
    assert "not the one your app shows" in bad.content.decode()
    code = pyotp.TOTP(secret).at(T0)
    _logged_in(browser.post(LOGIN, {"step": "second-factor", "pending": pending.group(1), "code": code}))
    reasons = set(
        AuditLogEntry.objects.filter(tenant=tenant, action="partner.login_refused").values_list(
            "after__reason", flat=True
        )
    )
    assert reasons == {"wrong_password", "wrong_second_factor"}


@time_machine.travel(T0, tick=False)
def test_an_inactive_user_or_partner_gets_no_code_and_loses_its_sessions(partner: Partner, lea: PartnerUser) -> None:
    browser = partner_client(lea)
    assert browser.get("/partners/").status_code == 200
    Partner.objects.filter(pk=partner.pk).update(status=PartnerStatus.INACTIVE)
    assert browser.get("/partners/").status_code == 302
    _ask_code(Client())
    assert mail.outbox == []
    Partner.objects.filter(pk=partner.pk).update(status=PartnerStatus.ACTIVE)
    PartnerUser.objects.filter(pk=lea.pk).update(is_active=False)
    assert browser.get("/partners/").status_code == 302


def test_the_eleventh_step_of_an_address_in_15_minutes_waits(lea: PartnerUser) -> None:
    browser = Client()
    for _ in range(10):
        assert _send_code(browser, "000000").status_code == 200
    throttled = _send_code(browser, "000000")
    assert throttled.status_code == 429
    assert 0 < int(throttled["Retry-After"]) <= 15 * 60
    assert "Too many attempts" in throttled.content.decode()


@time_machine.travel(T0, tick=False)
@pytest.mark.usefixtures("product_password_hashers")
def test_an_invitation_link_lets_in_once_and_sets_a_password(tenant: Tenant, lea: PartnerUser) -> None:
    token = "invitation-token-of-lea"
    PartnerInvitation.objects.create(
        tenant=tenant, user=lea, token_hash=token_hash(token), created_at=T0, expires_at=T0 + timedelta(days=7)
    )
    url = "/partners/acme/invitation/%s/" % token
    page = Client().get(url)
    assert page.status_code == 200
    assert "opened the dashboard of partner AlpNet to you (lea@alpnet.test)" in page.content.decode()
    weak = Client().post(url, {"password": "short", "password2": "short"})
    assert weak.status_code == 400
    _logged_in(Client().post(url, {"password": PASSWORD, "password2": PASSWORD}))
    lea.refresh_from_db()
    assert lea.password.startswith("pbkdf2_") or lea.password.startswith("argon2")
    assert Client().get(url).status_code == 410
    accepted = AuditLogEntry.objects.get(tenant=tenant, action="partner_user.invitation_accepted")
    assert accepted.after == {"email": "lea@alpnet.test", "password_set": True}
    # the password now logs in
    _logged_in(Client().post(LOGIN, {"step": "email", "action": "password", "email": lea.email, "password": PASSWORD}))


def test_logging_out_ends_the_session(lea: PartnerUser) -> None:
    browser = partner_client(lea)
    response = browser.post("/partners/logout/")
    assert response["Location"] == "/partners/signed-out/"
    ended = PartnerSession.objects.get(user=lea).ended_at
    assert ended is not None
    assert ended <= timezone.now()
    assert browser.get("/partners/").status_code == 302


@time_machine.travel(T0, tick=False)
def test_a_user_sets_a_password_and_a_second_factor_which_end_their_other_sessions(
    tenant: Tenant, lea: PartnerUser
) -> None:
    client, other = partner_client(lea), partner_client(lea)
    assert "Set my password" in client.get("/partners/security/").content.decode()
    weak = client.post("/partners/security/", {"action": "password", "password": "short", "password2": "short"})
    assert weak.status_code == 400
    saved = client.post("/partners/security/", {"action": "password", "password": PASSWORD, "password2": PASSWORD})
    assert saved["Location"] == "/partners/security/"
    # the other session ended, this one lives on
    assert other.get("/partners/").status_code == 302
    assert client.get("/partners/").status_code == 200
    page = client.get("/partners/security/?setup=totp").content.decode()
    setup = re.search(r'name="setup" value="([^"]+)"', page)
    secret = re.search(r"<code data-totp-secret>([A-Z2-7]+)</code>", page)
    assert setup is not None
    assert secret is not None
    wrong = client.post("/partners/security/", {"action": "totp-enable", "setup": setup.group(1), "code": "000000"})
    assert wrong.status_code == 400
    code = pyotp.TOTP(secret.group(1)).at(T0)
    on = client.post("/partners/security/", {"action": "totp-enable", "setup": setup.group(1), "code": code})
    assert on.status_code == 302
    lea.refresh_from_db()
    assert lea.totp_secret == secret.group(1)
    actions = set(AuditLogEntry.objects.filter(tenant=tenant).values_list("action", flat=True))
    assert {"partner_user.password_set", "partner_user.second_factor_added"} <= actions
    off = client.post("/partners/security/", {"action": "totp-disable", "code": code})
    assert off.status_code == 302
    lea.refresh_from_db()
    assert lea.totp_secret == ""


@pytest.mark.parametrize("user_id", ["-" * 32, "not-an-id"])
def test_a_second_step_for_no_user_id_is_refused_not_a_server_error(tenant: Tenant, user_id: str) -> None:
    with pytest.raises(PartnerLoginRefused):
        partner_login_totp_check(tenant=tenant, user_id=user_id, code="123456", at=timezone.now())
    entry = AuditLogEntry.objects.get(tenant=tenant, action="partner.login_refused")
    assert (entry.after or {}).get("reason") == "unknown_address"
