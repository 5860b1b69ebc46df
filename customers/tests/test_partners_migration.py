"""The migration that made partners of the free-text resellers (customers 0007): each tenant's
distinct names become partners, matched in any case and with surrounding spaces ignored, and their
customers point to them; another tenant's same name is its own partner."""

from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("customers", "0006_portal_invitations_and_login_codes")]
AFTER = [("customers", "0007_partners")]


def _customer(Customer: Any, tenant: Any, external_id: str, reseller: str) -> None:
    Customer.objects.create(
        tenant=tenant,
        external_id=external_id,
        name=external_id.title(),
        email="%s@example.test" % external_id,
        currency="EUR",
        timezone="Europe/Paris",
        country="FR",
        reseller=reseller,
    )


@pytest.mark.django_db(transaction=True)
def test_resellers_become_partners_by_name_in_each_tenant() -> None:
    # given: the schema before partners, and customers with free-text resellers in two tenants
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE[0]).apps
    Tenant, Customer = old.get_model("tenancy", "Tenant"), old.get_model("customers", "Customer")
    acme = Tenant.objects.create(slug="acme", name="Acme", default_currency="EUR", timezone="UTC", country="FR")
    globex = Tenant.objects.create(slug="globex", name="Globex", default_currency="CHF", timezone="UTC")
    _customer(Customer, acme, "dupont", "AlpNet")
    _customer(Customer, acme, "martin", " alpnet ")
    _customer(Customer, acme, "bernard", "Geo Sat")
    _customer(Customer, acme, "direct", "")
    _customer(Customer, globex, "muller", "AlpNet")
    try:
        # when
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
        new = executor.loader.project_state(AFTER[0]).apps
        Partner, Customer = new.get_model("customers", "Partner"), new.get_model("customers", "Customer")
        # then: Acme has two partners, AlpNet ("AlpNet" and " alpnet " are one; one customer each,
        # the spelling with capitals names it) and Geo Sat, in Acme's currency and country
        acme_partners = {p.code: (p.name, p.currency, p.country) for p in Partner.objects.filter(tenant_id=acme.pk)}
        assert acme_partners == {"alpnet": ("AlpNet", "EUR", "FR"), "geo-sat": ("Geo Sat", "EUR", "FR")}
        linked = dict(Customer.objects.filter(tenant_id=acme.pk).values_list("external_id", "partner__code"))
        assert linked == {"dupont": "alpnet", "martin": "alpnet", "bernard": "geo-sat", "direct": None}
        # Globex's AlpNet is another partner, in Globex's currency
        [globex_alpnet] = Partner.objects.filter(tenant_id=globex.pk)
        assert (globex_alpnet.code, globex_alpnet.name, globex_alpnet.currency, globex_alpnet.country) == (
            "alpnet",
            "AlpNet",
            "CHF",
            "",
        )
        assert Customer.objects.get(external_id="muller").partner_id == globex_alpnet.pk
        assert Partner.objects.count() == 3
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
