import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from billing_platform.rls import tenant_context
from tenancy.keys import hash_api_key
from tenancy.models import ApiKey, AuditLogEntry, Membership, Tenant

pytestmark = pytest.mark.django_db

ARGS = [
    "--name",
    "Acme Telematics",
    "--slug",
    "acme",
    "--currency",
    "EUR",
    "--timezone",
    "Europe/Paris",
    "--admin-email",
    "finance@acme.test",
]


def run(*args: str) -> list[str]:
    out = StringIO()
    # as in production: the command runs as the application role, under row-level security
    with tenant_context(None):
        call_command("create_tenant", *args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_create_tenant_prints_json_last_and_its_key_lists_customers() -> None:
    lines = run(*ARGS)
    created = json.loads(lines[-1])
    assert set(created) == {"tenant", "api_key", "device_cloud_secret"}
    assert created["tenant"] == "acme"
    assert created["api_key"].startswith("tpk_")
    assert created["device_cloud_secret"].startswith("whsec_")

    tenant = Tenant.objects.get(slug="acme")
    assert (tenant.name, tenant.default_currency, tenant.timezone) == (
        "Acme Telematics",
        "EUR",
        "Europe/Paris",
    )
    assert tenant.device_cloud_secrets == [created["device_cloud_secret"]]
    key = ApiKey.objects.get(tenant=tenant)
    assert key.scope == "full"
    assert key.key_hash == hash_api_key(created["api_key"])
    assert created["api_key"] not in {key.prefix, key.key_hash, key.name}

    owner = get_user_model().objects.get(email="finance@acme.test")
    assert Membership.objects.get(tenant=tenant, user=owner).role == "owner"
    assert any(line.startswith("Owner login: finance@acme.test / ") for line in lines)
    assert AuditLogEntry.objects.filter(tenant=tenant, action="tenant.created").count() == 1

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer " + created["api_key"])
    response = client.get("/api/v1/customers")
    assert response.status_code == 200
    assert response.json() == {"results": [], "next": None}


def test_existing_admin_becomes_owner_of_a_second_tenant_without_a_new_password() -> None:
    run(*ARGS)
    lines = run(*[a if a != "acme" else "acme-us" for a in ARGS])
    assert "password unchanged" in lines[-3]
    user = get_user_model().objects.get(email="finance@acme.test")
    assert sorted(m.tenant.slug for m in Membership.objects.filter(user=user)) == ["acme", "acme-us"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (("--slug", "acme"), "A tenant with slug acme already exists."),
        (("--currency", "EUX"), "Unknown ISO 4217 currency: EUX."),
        (("--timezone", "Europe/Atlantis"), "Unknown IANA time zone: Europe/Atlantis."),
    ],
)
def test_bad_arguments_fail_clearly_and_create_nothing(override: tuple[str, str], message: str) -> None:
    run(*ARGS)
    args = list(ARGS)
    args[args.index("--slug") + 1] = "second"
    args[args.index(override[0]) + 1] = override[1]
    with pytest.raises(CommandError, match=message.replace(".", r"\.")):
        run(*args)
    assert Tenant.objects.count() == 1
    assert ApiKey.objects.count() == 1
