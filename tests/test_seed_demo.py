from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from billing_platform.rls import tenant_context
from catalog.models import Plan, PriceVersion, Product
from catalog.quotes import UsageInput, price_quote
from customers.models import Customer
from tenancy.models import ApiKey, AuditLogEntry, Membership, Tenant

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent_and_its_catalog_prices_the_smart_fleet_offer() -> None:
    first, second = StringIO(), StringIO()
    # as in production: the command runs as the application role, under row-level security
    with tenant_context(None):
        call_command("seed_demo", stdout=first)
        call_command("seed_demo", stdout=second)
    assert "Back-office login: demo@smartfleet.test / smartfleet-demo" in second.getvalue()
    assert "Demo API key" in first.getvalue()
    assert "Demo API key" not in second.getvalue()
    tenant = Tenant.objects.get(slug="smart-fleet")
    assert Membership.objects.filter(tenant=tenant).count() == 1
    assert Customer.objects.filter(tenant=tenant).count() == 3
    assert Product.objects.filter(tenant=tenant).count() == 4
    assert PriceVersion.objects.filter(tenant=tenant).count() == 1
    assert ApiKey.objects.filter(tenant=tenant).count() == 1
    # the seller identity of its invoices, filled once, through the audited service
    assert (tenant.seller_name, tenant.vat_number, tenant.legal_registration_id) == (
        "Smart Fleet Telematics SAS",
        "FR74852379890",
        "852379890",
    )
    assert (tenant.postal_code, tenant.city, tenant.country) == ("75008", "Paris", "FR")
    assert AuditLogEntry.objects.filter(tenant=tenant, action="tenant.seller_updated").count() == 1
    dupont = Customer.objects.get(tenant=tenant, external_id="dupont")
    quote = price_quote(
        tenant=tenant,
        plan=Plan.objects.get(tenant=tenant, code="smart-fleet"),
        currency="EUR",
        devices=2,
        usage=[UsageInput("data_mb", Decimal("3800"))],
        at=timezone.now(),
        customer=dupont,
    )
    # 2 x 20.00 + 2 x 25.00 + (3800 - 2048) x 0.010 = 40.00 + 50.00 + 17.52 = 107.52; VAT 20 % = 21.50
    assert [str(line.amount) for line in quote.lines] == ["40.00", "50.00", "17.52"]
    assert (str(quote.net_total.amount), str(quote.total.amount)) == ("107.52", "129.02")
