"""Second factor for staff (allauth MFA): an authenticator app (TOTP) with recovery codes shown once
and usable once, passkeys (WebAuthn, with a software authenticator running the real ceremony), and
the tenant's requirement for the roles that can finalize invoices or issue credit notes."""

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest
import time_machine
from allauth.mfa.models import Authenticator
from cryptography.fernet import Fernet
from django.core import mail
from django.test import Client

from backoffice.tests.passkey import SoftwarePasskey
from billing_platform.encryption import rotate_all
from tenancy.models import AuditLogEntry, Role, Tenant

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
StaffMaker = Callable[..., Any]


def password_login(client: Client, email: str, **extra: Any) -> Any:
    return client.post("/app/login/", {"login": email, "password": PASSWORD}, **extra)


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def reauthenticate(client: Client, **extra: Any) -> None:
    """Adding or removing a factor asks for the password again (allauth), whatever the login's age."""
    response = client.post("/app/account/reauthenticate/", {"password": PASSWORD}, **extra)
    assert response.status_code == 302


def enrol_totp(client: Client) -> str:
    """Activate an authenticator app as its owner does: confirm the password, read the secret, type
    the current code."""
    assert client.get("/app/account/2fa/totp/activate/")["Location"].startswith("/app/account/reauthenticate/")
    reauthenticate(client)
    page = client.get("/app/account/2fa/totp/activate/")
    assert page.status_code == 200
    secret: str = page.context["form"].secret
    # what the QR code holds: the login, the secret, Tripod as the issuer
    assert page.context["totp_url"].endswith("?secret=%s&issuer=Tripod" % secret)
    response = client.post("/app/account/2fa/totp/activate/", {"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 302
    assert response["Location"] == "/app/account/2fa/recovery-codes/"
    return secret


@pytest.fixture
def owner(tenant: Tenant, make_staff: StaffMaker) -> Any:
    return make_staff(tenant, email="owner@acme.test")


# --- TOTP --------------------------------------------------------------------------------------------


def test_totp_enrolment_then_login_asks_for_the_code(client: Client, owner: Any) -> None:
    with time_machine.travel(T0, tick=False):
        # given: logged in with a password, no second factor yet
        assert password_login(client, "owner@acme.test")["Location"] == "/app/"
        # when: an authenticator app is activated with the code it shows
        secret = enrol_totp(client)
        # then: ten recovery codes of 8 digits are shown, this once
        codes = client.get("/app/account/2fa/recovery-codes/")
        unused = codes.context["unused_codes"]
        assert len(unused) == 10
        assert all(len(c) == 8 and c.isdigit() for c in unused)
        assert unused[0] in codes.content.decode()
        again = client.get("/app/account/2fa/recovery-codes/")
        assert again.context["unused_codes"] == ["****"] * 10
        assert unused[0] not in again.content.decode()
        client.post("/app/logout/")

    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        # the password alone no longer logs in: the second step asks for the code
        response = password_login(client, "owner@acme.test")
        assert response["Location"] == "/app/account/2fa/authenticate/"
        assert not logged_in(client)
        assert client.get("/app/customers/")["Location"].startswith("/app/login/")
        page = client.get("/app/account/2fa/authenticate/")
        assert page.status_code == 200
        assert 'autocomplete="one-time-code"' in page.content.decode()
        # a wrong code is refused
        code = pyotp.TOTP(secret).now()
        wrong = "%06d" % ((int(code) + 1) % 1_000_000)
        refused = client.post("/app/account/2fa/authenticate/", {"code": wrong})
        assert refused.status_code == 200
        assert "Incorrect code" in refused.content.decode()
        assert not logged_in(client)
        # the right one logs in
        response = client.post("/app/account/2fa/authenticate/", {"code": code})
        assert response.status_code == 302
        assert response["Location"] == "/app/"
        assert logged_in(client)
        assert client.get("/app/customers/").status_code == 200


def test_a_recovery_code_logs_in_once(client: Client, owner: Any) -> None:
    with time_machine.travel(T0, tick=False):
        password_login(client, "owner@acme.test")
        enrol_totp(client)
        code = client.get("/app/account/2fa/recovery-codes/").context["unused_codes"][3]
        client.post("/app/logout/")

        password_login(client, "owner@acme.test")
        response = client.post("/app/account/2fa/authenticate/", {"code": code})
        assert response["Location"] == "/app/"
        assert logged_in(client)
        client.post("/app/logout/")

        # the same code a second time: refused
        password_login(client, "owner@acme.test")
        refused = client.post("/app/account/2fa/authenticate/", {"code": code})
        assert refused.status_code == 200
        assert not logged_in(client)
    # 10 codes, 1 used: 9 left
    rc = Authenticator.objects.get(user=owner, type=Authenticator.Type.RECOVERY_CODES)
    assert len(rc.wrap().get_unused_codes()) == 9


# allauth signals a new factor (and e-mails its owner) once the activation commits, inside the request
@pytest.mark.django_db(transaction=True)
def test_enrolment_is_written_to_the_audit_log_of_each_team(
    client: Client, tenant: Tenant, other_tenant: Tenant, owner: Any, make_staff: StaffMaker
) -> None:
    make_staff(other_tenant, email="owner@acme.test", role=Role.FINANCE_VIEWER)
    with time_machine.travel(T0, tick=False):
        password_login(client, "owner@acme.test")
        enrol_totp(client)
    for team in (tenant, other_tenant):
        actions = set(
            AuditLogEntry.objects.filter(tenant=team, object_type="user", object_id=str(owner.pk)).values_list(
                "after__type", flat=True
            )
        )
        # the app, and the recovery codes made with it
        assert actions == {"totp", "recovery_codes"}
    # and the owner got a security e-mail about it
    assert [m.subject for m in mail.outbox] == ["[Tripod] Authenticator App Activated"]


# --- the tenant's requirement -----------------------------------------------------------------------


def require_two_factor(tenant: Tenant) -> None:
    tenant.two_factor_required = True
    tenant.save(update_fields=["two_factor_required"])


@pytest.mark.parametrize("role", [Role.OWNER, Role.FINANCE_ADMIN])
def test_required_two_factor_sends_finalizing_roles_to_enrolment_first(
    client: Client, tenant: Tenant, make_staff: StaffMaker, role: str
) -> None:
    # given: the tenant requires a second factor; an owner or finance admin (who can finalize and
    # credit invoices) has none
    require_two_factor(tenant)
    make_staff(tenant, role=role, email="writer@acme.test")
    with time_machine.travel(T0, tick=False):
        password_login(client, "writer@acme.test")
        # when / then: every back-office page sends them to enrolment
        for path in ("/app/", "/app/customers/", "/app/billing/invoices/", "/app/settings/team/"):
            response = client.get(path)
            assert response.status_code == 302, path
            assert response["Location"] == "/app/account/2fa/"
        page = client.get("/app/account/2fa/")
        assert page.status_code == 200
        assert "requires two-factor authentication for your role" in page.content.decode()
        # once enrolled, the pages open
        enrol_totp(client)
        assert client.get("/app/customers/").status_code == 200


@pytest.mark.parametrize("role", [Role.FINANCE_VIEWER, Role.SUPPORT_AGENT])
def test_required_two_factor_leaves_read_only_roles_alone(
    client: Client, tenant: Tenant, make_staff: StaffMaker, role: str
) -> None:
    require_two_factor(tenant)
    client.force_login(make_staff(tenant, role=role, email="reader@acme.test"))
    assert client.get("/app/customers/").status_code == 200


def test_without_the_requirement_nobody_is_sent_to_enrolment(client: Client, owner: Any) -> None:
    client.force_login(owner)
    assert client.get("/app/customers/").status_code == 200


def test_a_passkey_satisfies_the_requirement(client: Client, tenant: Tenant, owner: Any) -> None:
    require_two_factor(tenant)
    with time_machine.travel(T0, tick=False):
        password_login(client, "owner@acme.test", secure=True)
        add_passkey(client, SoftwarePasskey())
        assert client.get("/app/customers/", secure=True).status_code == 200


# --- passkeys (WebAuthn) ----------------------------------------------------------------------------


def add_passkey(client: Client, passkey: SoftwarePasskey) -> None:
    reauthenticate(client, secure=True)
    page = client.get("/app/account/2fa/webauthn/add/", secure=True)
    assert page.status_code == 200
    options = page.context["js_data"]["creation_options"]
    credential = passkey.register(options)
    response = client.post(
        "/app/account/2fa/webauthn/add/",
        {"name": "Laptop", "credential": json.dumps(credential)},
        secure=True,
    )
    assert response.status_code == 302, response.context["form"].errors if response.context else response
    assert Authenticator.objects.filter(type=Authenticator.Type.WEBAUTHN).count() == 1


def test_passkey_registration_options(client: Client, owner: Any) -> None:
    with time_machine.travel(T0, tick=False):
        password_login(client, "owner@acme.test", secure=True)
        reauthenticate(client, secure=True)
        page = client.get("/app/account/2fa/webauthn/add/", secure=True)
    options = page.context["js_data"]["creation_options"]["publicKey"]
    # the relying party is the host staff log in to; the user is the staff login
    assert options["rp"]["id"] == "testserver"
    assert options["user"]["name"] == "owner@acme.test"
    assert {p["alg"] for p in options["pubKeyCredParams"]} >= {-7, -257}  # ES256, RS256
    assert len(options["challenge"]) >= 22  # 16+ random bytes, base64url
    assert options["authenticatorSelection"]["residentKey"] == "discouraged"  # a second factor


def test_passkey_registration_then_login_with_it(client: Client, owner: Any) -> None:
    passkey = SoftwarePasskey()
    with time_machine.travel(T0, tick=False):
        password_login(client, "owner@acme.test", secure=True)
        add_passkey(client, passkey)
        client.post("/app/logout/", secure=True)

        # the password, then the passkey
        assert password_login(client, "owner@acme.test", secure=True)["Location"] == "/app/account/2fa/authenticate/"
        page = client.get("/app/account/2fa/authenticate/", secure=True)
        request_options = page.context["js_data"]["request_options"]
        [allowed] = request_options["publicKey"]["allowCredentials"]  # the passkey just registered
        response = client.post(
            "/app/account/2fa/authenticate/",
            {"credential": json.dumps(passkey.authenticate(request_options))},
            secure=True,
        )
        assert response.status_code == 302
        assert response["Location"] == "/app/"
        assert logged_in(client)


def test_a_passkey_answer_to_another_challenge_is_refused(client: Client, owner: Any) -> None:
    passkey = SoftwarePasskey()
    with time_machine.travel(T0, tick=False):
        password_login(client, "owner@acme.test", secure=True)
        add_passkey(client, passkey)
        client.post("/app/logout/", secure=True)

        password_login(client, "owner@acme.test", secure=True)
        stale = client.get("/app/account/2fa/authenticate/", secure=True).context["js_data"]["request_options"]
        client.get("/app/account/2fa/authenticate/", secure=True)  # a new challenge replaces it
        response = client.post(
            "/app/account/2fa/authenticate/",
            {"credential": json.dumps(passkey.authenticate(stale))},
            secure=True,
        )
        assert response.status_code == 200
        assert not logged_in(client)


def test_a_passkey_from_another_site_is_refused(client: Client, owner: Any) -> None:
    with time_machine.travel(T0, tick=False):
        password_login(client, "owner@acme.test", secure=True)
        reauthenticate(client, secure=True)
        page = client.get("/app/account/2fa/webauthn/add/", secure=True)
        phished = SoftwarePasskey(origin="https://tripod-login.example").register(
            page.context["js_data"]["creation_options"]
        )
        response = client.post(
            "/app/account/2fa/webauthn/add/", {"name": "x", "credential": json.dumps(phished)}, secure=True
        )
    assert response.status_code == 200
    assert not Authenticator.objects.filter(type=Authenticator.Type.WEBAUTHN).exists()


def test_second_factor_secrets_are_encrypted_at_rest_and_follow_a_key_rotation(
    client: Client, owner: Any, settings: Any
) -> None:
    with time_machine.travel(T0, tick=False):
        password_login(client, "owner@acme.test")
        secret = enrol_totp(client)
        client.get("/app/account/2fa/recovery-codes/")
        client.post("/app/logout/")
    # then: the TOTP key and the recovery codes' seed are Fernet tokens in the database
    totp = Authenticator.objects.get(user=owner, type=Authenticator.Type.TOTP)
    seed = Authenticator.objects.get(user=owner, type=Authenticator.Type.RECOVERY_CODES)
    assert totp.data["secret"].startswith("gAAAAA")
    assert secret not in json.dumps(totp.data)
    assert seed.data["seed"].startswith("gAAAAA")
    # when: a new key is put first and the secrets are encrypted again under it, then the old key is dropped
    old_keys = list(settings.TRIPOD_ENCRYPTION_KEYS)
    new_key = Fernet.generate_key().decode()
    settings.TRIPOD_ENCRYPTION_KEYS = [new_key, *old_keys]
    assert rotate_all()["mfa_authenticator.data"] == 2
    settings.TRIPOD_ENCRYPTION_KEYS = [new_key]
    # then: the code the app shows still logs in
    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        password_login(client, "owner@acme.test")
        response = client.post("/app/account/2fa/authenticate/", {"code": pyotp.TOTP(secret).now()})
        assert response["Location"] == "/app/"
        assert logged_in(client)
