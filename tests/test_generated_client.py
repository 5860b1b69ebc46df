"""A Python client generated from docs/openapi.yaml (openapi-python-client) runs billing.md's Smart
Fleet scenario against a live server, as a third-party integrator would: the catalog with the plan's
components and charges inline, the customer, a subscription of three devices, activation webhooks
signed with the reference ``standardwebhooks`` library, usage, a bill run, then the invoice read
back with its totals. Only the generated client talks to the server, and every response must parse
into its generated model: the schema tells the truth."""

import importlib
import json
import re
import shutil
import subprocess
import sys
import typing
from collections.abc import Iterator
from datetime import UTC, date, datetime
from io import StringIO
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone
from standardwebhooks import Webhook

from invoicing.tests.billing_api import eager_celery, paris
from tenancy.actors import Actor
from tenancy.models import Tenant
from tenancy.services import tenant_seller_update
from tests.openapi import SCHEMA_PATH

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]
__all__ = ["eager_celery"]

PACKAGE = "tripod_client"
# The generator's settings for this client: PDFs as bytes, no formatter run on the generated code.
GENERATOR_CONFIG = {"content_type_overrides": {"application/pdf": "application/octet-stream"}, "post_hooks": []}


def _generator() -> str:
    found = shutil.which("openapi-python-client") or str(Path(sys.executable).parent / "openapi-python-client")
    assert Path(found).exists(), "openapi-python-client is not installed (requirements.lock pins it)"
    return found


@pytest.fixture(scope="session")
def client_package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client generated from the committed schema, once per test session, imported."""
    workdir = tmp_path_factory.mktemp("generated_client")
    config = workdir / "config.json"
    config.write_text(json.dumps(GENERATOR_CONFIG))
    result = subprocess.run(
        [
            _generator(),
            "generate",
            "--path",
            str(SCHEMA_PATH),
            "--meta",
            "none",
            "--output-path",
            str(workdir / PACKAGE),
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    _array_bodies_fixed(workdir / PACKAGE)
    sys.path.insert(0, str(workdir))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(workdir))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _array_bodies_fixed(package: Path) -> None:
    """openapi-python-client 0.29 writes ``isinstance(body, list[Model])`` for an operation whose
    content types include an array (``POST /events`` takes a CloudEvents batch, a JSON array), which
    Python refuses at the call (TypeError). docs/api-clients.md gives the same one-line fix."""
    for module in (package / "api").rglob("*.py"):
        text = module.read_text()
        fixed = re.sub(r"isinstance\(body, list\[\w+\]\)", "isinstance(body, list)", text)
        if fixed != text:
            module.write_text(fixed)


class Generated:
    """The generated package's modules by dotted name: ``g.api("plans.plans_create")``, ``g.model("PlanOutput")``."""

    def __init__(self, package: ModuleType) -> None:
        self.package = package
        self.models = importlib.import_module(f"{PACKAGE}.models")

    def api(self, name: str) -> Any:
        return importlib.import_module(f"{PACKAGE}.api.{name}")

    def model(self, name: str) -> Any:
        return getattr(self.models, name)


def call(operation: Any, status: int, parsed: type, **kwargs: Any) -> Any:
    """Call a generated operation; it must answer ``status`` with a body its model parsed."""
    response = operation.sync_detailed(**kwargs)
    assert response.status_code == status, response.content
    assert isinstance(response.parsed, parsed), (type(response.parsed), response.content)
    return response.parsed


def body_model(operation: Any, payload: dict[str, Any]) -> Any:
    """The generated model of an operation's JSON body, built from ``payload`` (the webhook's body
    model is whichever the schema declares)."""
    hint = typing.get_type_hints(operation.sync_detailed)["body"]
    for candidate in typing.get_args(hint) or (hint,):
        if hasattr(candidate, "from_dict"):
            model = candidate.from_dict(payload)
            if model.to_dict() == payload:
                return model
    raise AssertionError(f"no body model of {operation.__name__} holds {payload}")


def signed_webhook(g: Generated, client: Any, secret: str, msg_id: str, at: datetime, payload: dict[str, Any]) -> Any:
    """POST /webhooks/device-cloud through the generated client, signed per Standard Webhooks with
    the reference library over the exact bytes the client sends."""
    operation = g.api("webhooks.webhooks_device_cloud")
    body = body_model(operation, payload)
    sent = httpx.Request("POST", "http://tripod.test/", json=body.to_dict()).content.decode()
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at.astimezone(UTC), sent),
    }
    declared = typing.get_type_hints(operation.sync_detailed)
    arguments = {name.replace("-", "_"): value for name, value in headers.items()}
    if all(name in declared for name in arguments):  # the schema declares the signature headers
        return call(operation, 202, g.model("WebhookOutput"), client=client, body=body, **arguments)
    return call(operation, 202, g.model("WebhookOutput"), client=client.with_headers(headers), body=body)


@pytest.fixture
def tenant_keys() -> dict[str, str]:
    """A tenant made as api.md bootstraps one (``create_tenant``): the JSON of its last line, with
    the full-scope API key and the device-cloud secret."""
    out = StringIO()
    call_command(
        "create_tenant",
        name="Acme Telematics",
        slug="acme",
        currency="EUR",
        timezone="Europe/Paris",
        admin_email="finance@acme.test",
        stdout=out,
    )
    keys: dict[str, str] = json.loads(out.getvalue().splitlines()[-1])
    # the seller identity its owner enters on the settings page (there is no API for it): its invoices
    # must be valid e-invoices to be finalized
    tenant_seller_update(
        tenant=Tenant.objects.get(slug="acme"),
        actor=Actor.system("tests"),
        at=timezone.now(),
        data={
            "legal_name": "Acme Telematics SAS",
            "vat_number": "FR74852379890",
            "legal_registration_id": "852379890",
            "legal_registration_scheme": "0002",
            "address_line1": "12 rue de la Boétie",
            "postal_code": "75008",
            "city": "Paris",
            "country": "FR",
            "billing_email": "factures@acme.test",
        },
    )
    return keys


def test_the_smart_fleet_scenario_through_a_generated_client(
    client_package: ModuleType, live_server: Any, tenant_keys: dict[str, str]
) -> None:
    g = Generated(client_package)
    m = g.model
    client = client_package.AuthenticatedClient(
        base_url=live_server.url, token=tenant_keys["api_key"], raise_on_unexpected_status=True
    )

    # given: the Smart Fleet offer and Transports Dupont, on 1 March 2026
    with time_machine.travel(paris(2026, 3, 1, 9), tick=True):
        products = [
            m("ProductInputRequest")(
                code="eld-200",
                name="ELD-200 tracker",
                kind=m("ProductKindEnum").HARDWARE,
                ssp=[m("SspRequest")(currency="EUR", amount="240.00")],
            ),
            m("ProductInputRequest")(code="fleet-platform", name="Fleet platform", kind=m("ProductKindEnum").SERVICE),
            m("ProductInputRequest")(code="data-overage", name="Data overage", kind=m("ProductKindEnum").USAGE),
        ]
        for product in products:
            call(g.api("products.products_create"), 201, m("ProductOutput"), client=client, body=product)
        meter = m("MeterInputRequest")(
            code="data_mb",
            name="Data (MB)",
            aggregation=m("AggregationEnum").SUM,
            field="mb",
            dimensions=["device_type", "region"],
        )
        call(g.api("meters.meters_create"), 201, m("MeterOutput"), client=client, body=meter)
        vat = m("TaxRateInputRequest")(country="FR", tax_category=m("TaxCategoryEnum").STANDARD, rate="20")
        call(g.api("tax_rates.tax_rates_create"), 201, m("TaxRateOutput"), client=client, body=vat)
        # api.md's plan: hardware 240.00 in 12 instalments, 25.00 per device and month from its
        # activation, data pooled over 1024 MB per device, then 0.010 per MB up to 10000, 0.005 beyond
        plan = m("PlanInputRequest")(
            code="smart-fleet",
            name="Smart Fleet",
            interval=m("IntervalEnum").MONTH,
            commitment_months=12,
            components=[
                m("HardwareComponentRequest")(
                    product="eld-200",
                    kind=m("HardwareComponentKindEnum").HARDWARE,
                    price="240.00",
                    instalments=12,
                    bill_on=m("BillOnEnum").SIGNATURE,
                ),
                m("ServiceComponentRequest")(
                    product="fleet-platform",
                    kind=m("ServiceComponentKindEnum").SERVICE,
                    per_device=True,
                    starts_on=m("StartsOnEnum").ACTIVATION,
                    charge=m("FlatChargeRequest")(model=m("FlatChargeModelEnum").FLAT, amount="25.00"),
                ),
                m("UsageComponentRequest")(
                    product="data-overage",
                    kind=m("UsageComponentKindEnum").USAGE,
                    meter="data_mb",
                    pooled=True,
                    included_per_device=1024,
                    charge=m("GraduatedChargeRequest")(
                        model=m("GraduatedChargeModelEnum").GRADUATED,
                        tiers=[
                            m("TierRequest")(up_to=10000, unit_amount="0.010"),
                            m("TierRequest")(up_to=None, unit_amount="0.005"),
                        ],
                    ),
                ),
            ],
            prices=[m("PlanPriceVersionInputRequest")(currency="EUR")],
        )
        created = call(g.api("plans.plans_create"), 201, m("PlanOutput"), client=client, body=plan)
        hardware, service, usage = created.components
        assert (type(hardware), type(service), type(usage)) == (
            m("HardwareComponent"),
            m("ServiceComponent"),
            m("UsageComponent"),
        )
        assert (hardware.instalments, usage.included_per_device) == (12, "1024.00")
        [version] = created.price_versions
        prices = {p.product: p for p in version.components}
        # hardware has a price and no charge; the usage charge comes back typed, its tiers normalised
        assert (prices["eld-200"].price, prices["eld-200"].charge) == ("240.00", None)
        graduated = prices["data-overage"].charge
        assert isinstance(graduated, m("GraduatedCharge"))
        assert [(t.up_to, t.unit_amount, t.flat_amount) for t in graduated.tiers] == [
            ("10000", "0.010", "0"),
            (None, "0.005", "0"),
        ]
        assert isinstance(prices["fleet-platform"].charge, m("FlatCharge"))
        retrieved = call(g.api("plans.plans_retrieve"), 200, m("PlanOutput"), client=client, code="smart-fleet")
        assert [c.kind for c in retrieved.components] == ["hardware", "service", "usage"]
        page = call(g.api("plans.plans_list"), 200, m("PlanPage"), client=client, limit=500)
        assert [p.code for p in page.results] == ["smart-fleet"]
        dupont = m("CustomerInputRequest")(
            external_id="dupont",
            name="Transports Dupont",
            email="compta@dupont.test",
            country="FR",
            currency="EUR",
            timezone="Europe/Paris",
            language=m("LanguageEnum").FR,
            billing_day=1,
            # an invoice names its buyer's postal address (EN 16931 BG-8): finalizing needs it
            address=m("CustomerAddressInputRequest")(line1="4 quai de Bercy", postal_code="75012", city="Paris"),
        )
        call(g.api("customers.customers_create"), 201, m("CustomerOutput"), client=client, body=dupont)
        # the price calculator: a month of 3 devices, 14000 MB, before anything is signed
        quote = m("PriceQuoteInputRequest")(
            plan="smart-fleet",
            currency="EUR",
            devices=3,
            usage=[m("UsageQuantityRequest")(meter="data_mb", quantity="14000")],
        )
        quoted = call(g.api("price_quotes.price_quotes_create"), 200, m("PriceQuoteOutput"), client=client, body=quote)
        # 3 x 20.00 + 3 x 25.00 + (14000 - 3 x 1024 = 10928: 10000 x 0.010 + 928 x 0.005 = 104.64)
        assert [line.amount for line in quoted.lines] == ["60.00", "75.00", "104.64"]
        assert quoted.lines[2].unit_amount is None

    # when: signed on 10 March with devices A, B and C
    with time_machine.travel(paris(2026, 3, 10, 10), tick=True):
        subscription = m("SubscriptionInputRequest")(
            external_id="dupont-fleet",
            customer="dupont",
            plan="smart-fleet",
            signed_at=paris(2026, 3, 10, 10),
            devices=[m("DeviceInputRequest")(device_id=d, device_type="eld") for d in ("A", "B", "C")],
        )
        call(
            g.api("subscriptions.subscriptions_create"),
            201,
            m("SubscriptionDetailOutput"),
            client=client,
            body=subscription,
        )
    # A activated on 15 March 09:00 and B on 20 March 14:00 (Paris), told by the device cloud
    for device, at in (("A", paris(2026, 3, 15, 9)), ("B", paris(2026, 3, 20, 14))):
        with time_machine.travel(at, tick=True):
            payload = {"type": "device.activated", "data": {"device_id": device, "occurred_at": at.isoformat()}}
            stored = signed_webhook(g, client, tenant_keys["device_cloud_secret"], f"act-{device}", at, payload)
            assert (stored.type_, stored.device_id) == ("device.activated", device)
    # March usage: A 800 MB, B 3000 MB
    with time_machine.travel(paris(2026, 3, 31, 12), tick=True):
        events = m("EventBatchRequest")(
            events=[
                m("UsageEventInRequest")(
                    transaction_id=tid,
                    code="data_mb",
                    device_id=device,
                    timestamp=at,
                    properties=m("UsageEventInRequestProperties").from_dict({"mb": mb}),
                )
                for tid, device, at, mb in (
                    ("a-0001", "A", paris(2026, 3, 16, 11), 800),
                    ("b-0001", "B", paris(2026, 3, 25, 11), 3000),
                )
            ]
        )
        ingested = call(g.api("events.events_ingest"), 202, m("EventBatchResult"), client=client, body=events)
        assert (ingested.accepted, ingested.rejected) == (2, 0)
        usage_now = call(
            g.api("customers.customers_current_usage"), 200, m("CurrentUsage"), client=client, external_id="dupont"
        )
        # 3800 - 2 x 1024 = 1752 MB x 0.010 so far
        assert usage_now.subscriptions[0].components[0].amount == "17.52"

    # then: the bill run of 1 April, its invoice read back
    with time_machine.travel(paris(2026, 4, 1, 0, 30), tick=True):
        run = call(
            g.api("bill_runs.bill_runs_create"),
            202,
            m("BillRunOutput"),
            client=client,
            body=m("BillRunInputRequest")(billing_date=date(2026, 4, 1)),
        )
        run = call(g.api("bill_runs.bill_runs_retrieve"), 200, m("BillRunOutput"), client=client, id=run.id)
        assert (run.status, run.progress.done, run.progress.failed) == ("completed", 1, 0)
        page = call(g.api("invoices.invoices_list"), 200, m("InvoicePage"), client=client, customer="dupont")
        [listed] = page.results
        invoice = call(g.api("invoices.invoices_retrieve"), 200, m("InvoiceOutput"), client=client, id=listed.id)
    assert [(line.type_, ",".join(line.devices), line.amount) for line in invoice.lines] == [
        ("hardware", "A,B,C", "60.00"),  # instalment 1/12, 3 x 20.00
        ("service", "A", "13.71"),  # 25.00 x 17/31
        ("service", "B", "9.68"),  # 25.00 x 12/31
        ("service", "A,B", "50.00"),  # April in advance, 2 x 25.00
        ("usage", "", "17.52"),  # 3800 - 2 x 1024 = 1752 MB x 0.010
    ]
    # the usage line has no unit price (its charge prices it as a whole); its detail shows the tiers
    assert invoice.lines[4].unit_amount is None
    assert invoice.lines[4].detail["model"] == "graduated"
    # net 60.00 + 13.71 + 9.68 + 50.00 + 17.52 = 150.91; VAT 20 % = 30.182 -> 30.18; total 181.09
    assert (invoice.net_total, invoice.tax_total, invoice.total) == ("150.91", "30.18", "181.09")
    assert [(t.category, t.rate, t.base, t.amount) for t in invoice.taxes] == [("standard", "20.00", "150.91", "30.18")]
    assert (invoice.status, invoice.number, invoice.credited_invoice) == ("draft", "", None)

    with time_machine.travel(paris(2026, 4, 2, 9), tick=True):
        finalized = call(g.api("invoices.invoices_finalize"), 200, m("InvoiceOutput"), client=client, id=invoice.id)
        pdf = g.api("invoices.invoices_pdf").sync_detailed(client=client, id=invoice.id)
    assert (finalized.status, finalized.number, finalized.amount_due) == ("finalized", "INV-2026-000001", "181.09")
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")
