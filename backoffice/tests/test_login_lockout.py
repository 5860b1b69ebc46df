"""Login throttling (django-axes): after 5 failed logins an account is locked from every address,
and an address is locked for every account, for 15 minutes after the last failure."""

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from axes.models import AccessAttempt, AccessFailureLog
from django.test import Client

from tenancy.models import Tenant

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
ATTACKER = "203.0.113.7"
OFFICE = "198.51.100.20"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
StaffMaker = Callable[..., Any]


def attempt(client: Client, email: str, password: str, ip: str = ATTACKER) -> Any:
    return client.post("/app/login/", {"login": email, "password": password}, REMOTE_ADDR=ip)


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.fixture
def owner(tenant: Tenant, make_staff: StaffMaker) -> Any:
    return make_staff(tenant, email="owner@acme.test")


def test_fifty_wrong_passwords_then_the_right_one_is_refused(
    client: Client, owner: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # given: 50 wrong passwords in a row from one address, as in the report
    caplog.set_level(logging.WARNING, logger="backoffice.login")
    with time_machine.travel(T0, tick=False):
        statuses = [attempt(client, "owner@acme.test", "wrong-%d" % i).status_code for i in range(50)]
        # when: the right password comes next
        response = attempt(client, "owner@acme.test", PASSWORD)

    # then: failures 1 to 4 show the form again; the 5th locks (limit 5), and so does every later one
    assert statuses[:4] == [200, 200, 200, 200]
    assert set(statuses[4:]) == {429}
    assert response.status_code == 429
    assert not logged_in(client)
    body = response.content.decode()
    assert "Too many failed logins" in body
    assert "Try again in 15 minutes" in body
    assert "bloqué pendant 15 minutes" in body  # the same, in French, for whoever reads French
    assert response["Retry-After"] == "900"  # 15 minutes
    # axes keeps the attempts: one row per (account, address) counting all 51 failures (the right
    # password, refused while locked, counts too), and a failure log line each
    [row] = AccessAttempt.objects.all()
    assert (row.username, row.ip_address, row.failures_since_start) == ("owner@acme.test", ATTACKER, 51)
    assert AccessFailureLog.objects.filter(username="owner@acme.test").count() == 51
    # and one structured log line per failed login, with the account and the address
    failed = [r for r in caplog.records if r.getMessage() == "staff login failed"]
    assert len(failed) == 51
    assert (failed[0].login, failed[0].client_ip, failed[0].locked_out) == ("owner@acme.test", ATTACKER, False)  # type: ignore[attr-defined]
    assert failed[-1].locked_out is True  # type: ignore[attr-defined]
    assert any(r.getMessage() == "staff login locked out" for r in caplog.records)


def test_the_lock_holds_the_account_and_the_address_not_the_others(
    client: Client, tenant: Tenant, owner: Any, make_staff: StaffMaker
) -> None:
    make_staff(tenant, email="viewer@acme.test", role="finance_viewer")
    with time_machine.travel(T0, tick=False):
        for i in range(5):
            attempt(client, "owner@acme.test", "wrong-%d" % i)

        # another account from another address: unaffected
        other = Client()
        assert attempt(other, "viewer@acme.test", PASSWORD, ip=OFFICE).status_code == 302
        assert logged_in(other)
        # the locked account, from another address: refused (locked per account)
        assert attempt(Client(), "owner@acme.test", PASSWORD, ip=OFFICE).status_code == 429
        # another account, from the locked address: refused (locked per address)
        assert attempt(Client(), "viewer@acme.test", PASSWORD, ip=ATTACKER).status_code == 429


def test_an_address_trying_many_accounts_is_locked(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    make_staff(tenant, email="viewer@acme.test", role="finance_viewer")
    with time_machine.travel(T0, tick=False):
        # one wrong password on each of 5 accounts (none of them exists but one): 5 failures for the address
        for name in ("a", "b", "c", "d", "viewer"):
            attempt(client, "%s@acme.test" % name, "wrong-password")
        response = attempt(Client(), "viewer@acme.test", PASSWORD, ip=ATTACKER)
        assert response.status_code == 429
        # the same account from the office logs in: the account had 1 failure only
        assert attempt(Client(), "viewer@acme.test", PASSWORD, ip=OFFICE).status_code == 302


def test_the_cool_off_ends_15_minutes_after_the_last_failure(client: Client, owner: Any) -> None:
    with time_machine.travel(T0, tick=False):
        for i in range(5):
            attempt(client, "owner@acme.test", "wrong-%d" % i)
    with time_machine.travel(T0 + timedelta(minutes=14, seconds=59), tick=False):
        assert attempt(client, "owner@acme.test", PASSWORD).status_code == 429  # and the wait starts again
    with time_machine.travel(T0 + timedelta(minutes=29, seconds=58), tick=False):
        assert attempt(client, "owner@acme.test", PASSWORD).status_code == 429  # 14:59 after the last try
    # 15 minutes after the last refused attempt (at 29:58): the lock is over
    with time_machine.travel(T0 + timedelta(minutes=44, seconds=59), tick=False):
        response = attempt(client, "owner@acme.test", PASSWORD)
        assert response.status_code == 302
        assert response["Location"] == "/app/"
        assert logged_in(client)


def test_four_failures_do_not_lock(client: Client, owner: Any) -> None:
    with time_machine.travel(T0, tick=False):
        for i in range(4):
            response = attempt(client, "owner@acme.test", "wrong-%d" % i)
            assert "Please enter a correct email and password" in response.content.decode()
        assert attempt(client, "owner@acme.test", PASSWORD).status_code == 302


def test_the_lockout_page_speaks_french(client: Client, owner: Any) -> None:
    with time_machine.travel(T0, tick=False):
        for i in range(5):
            response = client.post(
                "/app/login/",
                {"login": "owner@acme.test", "password": "wrong-%d" % i},
                REMOTE_ADDR=ATTACKER,
                HTTP_ACCEPT_LANGUAGE="fr",
            )
    assert response.status_code == 429
    body = response.content.decode()
    assert "Trop d’échecs de connexion" in body
    assert "Réessayez dans 15 minutes" in body
    assert "locked for 15 minutes" in body  # the English line for whoever reads English
    assert 'lang="fr"' in body


def test_the_client_address_behind_a_trusted_proxy(client: Client, owner: Any, settings: Any) -> None:
    # given: one reverse proxy in front, which appends the address it saw to X-Forwarded-For
    settings.STAFF_LOGIN_TRUSTED_PROXIES = 1
    with time_machine.travel(T0, tick=False):
        for i in range(5):
            client.post(
                "/app/login/",
                {"login": "nobody-%d@acme.test" % i, "password": "x"},
                REMOTE_ADDR="10.0.0.2",
                # the left entry is whatever the client claims; the right one is what the proxy saw
                HTTP_X_FORWARDED_FOR="1.2.3.4, %s" % ATTACKER,
            )
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {ATTACKER}
