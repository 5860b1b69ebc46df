"""Shop test data: a plan offered in the customer portal's shop and Transports Dupont, who orders it.

Plan ``fleet-shop`` (monthly, EUR): the ELD-200 tracker at 240.00 per device billed at signature
(paid at once, or in ``instalments``), the fleet platform at 25.00 per device and month from its
activation, and optionally a setup fee billed at signature. VAT 20 % in France on everything."""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from catalog.models import Plan, Product
from catalog.services import plan_create, product_create, tax_rate_set
from customers.models import Customer
from customers.tests.factories import dupont
from tenancy.actors import Actor
from tenancy.models import Tenant

ACTOR = Actor.system("tests")
PARIS = ZoneInfo("Europe/Paris")
CATALOG_AT = datetime(2026, 3, 1, 9, 0, tzinfo=PARIS)
ADDRESS: dict[str, str] = {
    "name": "Transports Dupont, dépôt de Lyon",
    "line1": "4 rue des Docks",
    "line2": "",
    "postal_code": "69009",
    "city": "Lyon",
    "country": "FR",
}


def shop_catalog(
    tenant: Tenant,
    *,
    instalments: int = 1,
    setup_fee: str | None = None,
    setup_per_device: bool = False,
    self_service: bool = True,
    code: str = "fleet-shop",
    commitment_months: int = 0,
) -> Plan:
    at = CATALOG_AT
    bodies: tuple[dict[str, Any], ...] = (
        {"code": "eld-200", "name": "ELD-200 tracker", "kind": "hardware"},
        {"code": "fleet-platform", "name": "Fleet platform", "kind": "service"},
        {"code": "setup", "name": "Setup", "kind": "fee"},
    )
    for body in bodies:
        if not Product.objects.filter(tenant=tenant, code=body["code"]).exists():
            product_create(tenant=tenant, actor=ACTOR, at=at, **body)
    tax_rate_set(tenant=tenant, actor=ACTOR, at=at, country="FR", tax_category="standard", rate="20")
    components: list[dict[str, Any]] = [
        {
            "product": "eld-200",
            "kind": "hardware",
            "price": "240.00",
            "instalments": instalments,
            "bill_on": "signature",
        },
        {
            "product": "fleet-platform",
            "kind": "service",
            "per_device": True,
            "starts_on": "activation",
            "charge": {"model": "flat", "amount": "25.00"},
        },
    ]
    if setup_fee is not None:
        components.append({"product": "setup", "kind": "fee", "price": setup_fee, "per_device": setup_per_device})
    return plan_create(
        tenant=tenant,
        actor=ACTOR,
        at=at,
        code=code,
        name="Fleet (shop)",
        components=components,
        prices=[{"currency": "EUR"}],
        self_service=self_service,
        commitment_months=commitment_months,
    )


def shop_customer(tenant: Tenant) -> Customer:
    return dupont(tenant, at=CATALOG_AT)
