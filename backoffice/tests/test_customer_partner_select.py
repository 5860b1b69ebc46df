"""The customer form of the back-office chooses the customer's partner among the tenant's (or
none: a direct customer); the customer's page shows it."""

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from customers.models import Customer, Partner
from tenancy.models import AuditLogEntry, Tenant

pytestmark = pytest.mark.django_db


def test_the_partner_is_chosen_among_the_tenants_and_shown(
    client: Client,
    tenant: Tenant,
    other_tenant: Tenant,
    make_staff: Callable[..., Any],
    customer_body: dict[str, Any],
) -> None:
    Partner.objects.create(tenant=tenant, code="alpnet", name="AlpNet", currency="EUR")
    Partner.objects.create(tenant=other_tenant, code="globex-reseller", name="Globex Reseller", currency="EUR")
    client.force_login(make_staff(tenant, email="owner@acme.test"))
    page = client.get("/app/customers/new/").content.decode()
    assert '<option value="alpnet">AlpNet (alpnet)</option>' in page
    # another tenant's partner is not offered, nor accepted
    assert "globex-reseller" not in page
    refused = client.post("/app/customers/new/", {**customer_body, "partner": "globex-reseller"})
    assert refused.status_code == 200
    assert not Customer.objects.filter(tenant=tenant).exists()
    response = client.post("/app/customers/new/", {**customer_body, "partner": "alpnet"})
    assert response.status_code == 302
    customer = Customer.objects.get(tenant=tenant, external_id="dupont")
    assert customer.partner is not None
    assert customer.partner.code == "alpnet"
    detail = client.get("/app/customers/dupont/").content.decode()
    # named with a link to the partner's page
    assert '<a href="/app/partners/alpnet/" data-partner="alpnet">AlpNet</a> <code>alpnet</code>' in detail
    # the edit form starts on the partner; none makes a direct customer
    edit = client.get("/app/customers/dupont/edit/").content.decode()
    assert '<option value="alpnet" selected>AlpNet (alpnet)</option>' in edit
    fields = {**customer_body, "partner": ""}
    fields.pop("external_id")
    assert client.post("/app/customers/dupont/edit/", fields).status_code == 302
    assert Customer.objects.get(pk=customer.pk).partner is None
    entry = AuditLogEntry.objects.get(tenant=tenant, action="customer.updated")
    assert (entry.before, entry.after) == ({"partner": "alpnet"}, {"partner": None})
