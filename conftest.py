"""Fixtures shared by every app's tests: tenants, API clients with keys of each scope, staff users.

Row-level security in tests (``billing_platform.rls``): a test body runs as the session user (the
superuser of DATABASE_URL), which the policies do not bind, so fixtures and factories create data
for several tenants and assertions read it without ceremony. What the test calls runs as in
production: a request (``TenantScopeMiddleware``), a Celery task (``ScopedTask``/``TenantTask``,
eager or in a worker) and a ``tenant_context`` block switch to the application role and see one
tenant's rows, or none. A test that must see the database as the application does outside those
takes the ``app_role`` fixture.
"""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from billing_platform import generations, rls
from customers.models import Partner
from customers.tests.factories import DUPONT
from tenancy.actors import Actor
from tenancy.models import ApiKeyScope, Membership, Role, Tenant
from tenancy.services import api_key_create

TenantMaker = Callable[..., Tenant]
ClientMaker = Callable[..., APIClient]

# A complete French seller (made-up numbers whose check digits pass: SIREN Luhn, FR VAT key), so
# that the tests' invoices can be finalized: Tripod refuses to finalize a document that would not
# be a valid EN 16931 e-invoice (``invoicing.einvoice``).
SELLER: dict[str, Any] = {
    "legal_name": "Acme Telematics SAS",
    "vat_number": "FR74852379890",
    "legal_registration_id": "852379890",
    "legal_registration_scheme": "0002",
    "address_line1": "12 rue de la Boétie",
    "postal_code": "75008",
    "city": "Paris",
    "country": "FR",
    "billing_email": "factures@acme.test",
}


@pytest.fixture(autouse=True)
def webhooks_to_private_targets(settings: Any) -> None:
    """Tests send webhooks to receivers on 127.0.0.1: private targets are allowed, as under DEBUG.
    The tests of the refusal turn it off."""
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True


@pytest.fixture(autouse=True)
def redis_not_paused() -> Iterator[None]:
    """A test that makes Redis fail pauses the process's use of it (``generations.PAUSE_SECONDS``):
    the next test starts with Redis in use again."""
    yield
    generations.resume()


# Test bodies keep the session user; requests, tasks and tenant_context blocks switch (see above).
rls.set_role_on_connect = False

# The product's password hashers (Django's defaults: PBKDF2 with a million rounds, about 0.2 s a
# password on a 2-core machine) are slow on purpose. Tests make hundreds of staff, portal and partner
# users and log them in: they hash with MD5 first, which costs nothing, and still verify the product's
# hashes (the demo data's, a fixture's made with make_password). The test of what the product stores
# takes the ``product_password_hashers`` fixture.
PRODUCT_PASSWORD_HASHERS = list(django_settings.PASSWORD_HASHERS)
override_settings(
    PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher", *PRODUCT_PASSWORD_HASHERS]
).enable()


@pytest.fixture
def product_password_hashers(settings: Any) -> None:
    """Passwords hashed as in production (see ``PRODUCT_PASSWORD_HASHERS``)."""
    settings.PASSWORD_HASHERS = PRODUCT_PASSWORD_HASHERS


@pytest.fixture
def app_role(db: Any) -> Iterator[None]:
    """The test body runs as the application role with no tenant set, as a management command or a
    shell does in production: tenant-owned tables read empty until a ``tenant_context`` block. Ask
    for it after the fixtures that create data (fixtures are set up in the order they are named)."""
    with rls.tenant_context(None):
        yield


@pytest.fixture
def make_tenant(db: Any) -> TenantMaker:
    counter = {"n": 0}

    def make(slug: str | None = None, *, seller: bool = True, **fields: Any) -> Tenant:
        """A tenant, with the complete French seller identity ``SELLER`` unless ``seller`` is False
        (a tenant that has not filled in its settings page yet)."""
        counter["n"] += 1
        slug = slug or f"tenant-{counter['n']}"
        defaults = {"name": slug.title(), "default_currency": "EUR", "timezone": "Europe/Paris"}
        if seller:
            defaults.update(SELLER)
        defaults.update(fields)
        return Tenant.objects.create(slug=slug, **defaults)

    return make


@pytest.fixture
def tenant(make_tenant: TenantMaker) -> Tenant:
    return make_tenant("acme", name="Acme Telematics")


@pytest.fixture
def other_tenant(make_tenant: TenantMaker) -> Tenant:
    return make_tenant("globex", name="Globex Devices")


@pytest.fixture
def make_client(db: Any) -> ClientMaker:
    def make(tenant: Tenant, scope: str = ApiKeyScope.FULL) -> APIClient:
        # A partner's key belongs to one of the tenant's partners: the test partner, made once.
        partner = None
        if scope == ApiKeyScope.PARTNER:
            partner, _ = Partner.objects.get_or_create(
                tenant=tenant, code="test-partner", defaults={"name": "Test Partner", "currency": "EUR"}
            )
        _, key = api_key_create(
            tenant=tenant,
            name=f"test {scope}",
            scope=scope,
            actor=Actor.system("tests"),
            at=timezone.now(),
            partner=partner,
        )
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        client.api_key = key  # type: ignore[attr-defined]
        return client

    return make


@pytest.fixture
def api(make_client: ClientMaker, tenant: Tenant) -> APIClient:
    return make_client(tenant)


@pytest.fixture
def make_staff(db: Any) -> Callable[..., Any]:
    def make(tenant: Tenant, role: str = Role.OWNER, email: str = "staff@acme.test") -> Any:
        user_model = get_user_model()
        user = user_model.objects.filter(username=email).first() or user_model.objects.create_user(
            username=email, email=email, password="correct-horse-battery"
        )
        Membership.objects.create(tenant=tenant, user=user, role=role)
        return user

    return make


@pytest.fixture
def customer_body() -> dict[str, Any]:
    return dict(DUPONT)
