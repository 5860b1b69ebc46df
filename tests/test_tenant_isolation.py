"""Tenant B's key never sees or changes tenant A's data; scopes are enforced; no input gives a 500.

Routes come from the URLconf. A route with path parameters must say below how to make tenant A's
object for it, so a new endpoint cannot slip through untested.
"""

import json
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from catalog.models import Meter, Plan, PriceOverride, PriceVersion, Product, TaxRate
from catalog.services import meter_create, plan_create, product_create
from customers.models import Customer, Partner, PortalUser
from customers.services import customer_create
from invoicing.models import BillRun, Invoice
from partners.models import CommissionLine, CommissionStatement, PartnerUser
from payments.models import DunningPolicy, Payment
from revrec.models import (
    Contract,
    ExchangeRate,
    ExportTarget,
    JournalEntry,
    JournalExport,
    JournalLine,
    PerformanceObligation,
    RecognitionRun,
    RevenuePeriod,
)
from revrec.runs import recognition_run
from subscriptions.models import Device, DeviceCloudWebhook, Order, Subscription, SubscriptionChange
from subscriptions.orders import order_place
from subscriptions.services import subscription_create
from support.models import SupportCase, SupportMessage
from support.services import case_open
from tenancy.actors import Actor
from tenancy.models import ApiKey, ApiKeyScope, AuditLogEntry, Tenant
from tenancy.services import api_key_create
from tests.api_routes import ApiRoute, api_routes
from usage.models import UsageRollup
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.outbox import event_emit
from webhooks.services import webhook_endpoint_create

pytestmark = pytest.mark.django_db

ROUTES = api_routes()


def _customer(tenant: Tenant) -> dict[str, str]:
    if Customer.objects.filter(tenant=tenant, external_id="secret-customer").exists():
        return {"external_id": "secret-customer"}
    customer = customer_create(
        tenant=tenant,
        actor=Actor.system("tests"),
        at=timezone.now(),
        external_id="secret-customer",
        name="Secret Customer of A",
        email="secret@a.test",
        country="FR",
    )
    return {"external_id": customer.external_id}


def _portal_user(tenant: Tenant) -> dict[str, str]:
    found = _customer(tenant)
    customer = Customer.objects.get(tenant=tenant, external_id=found["external_id"])
    user = PortalUser.objects.filter(tenant=tenant, customer=customer).first() or PortalUser.objects.create(
        tenant=tenant, customer=customer, email="secret-user@a.test", name="Secret User of A"
    )
    return {**found, "user_id": str(user.pk)}


def _product(tenant: Tenant) -> dict[str, str]:
    if Product.objects.filter(tenant=tenant, code="secret-product").exists():
        return {"code": "secret-product"}
    product_create(
        tenant=tenant,
        actor=Actor.system("tests"),
        at=timezone.now(),
        code="secret-product",
        name="Secret product of A",
        kind="service",
    )
    return {"code": "secret-product"}


def _meter(tenant: Tenant) -> dict[str, str]:
    if Meter.objects.filter(tenant=tenant, code="secret-meter").exists():
        return {"code": "secret-meter"}
    meter_create(
        tenant=tenant,
        actor=Actor.system("tests"),
        at=timezone.now(),
        code="secret-meter",
        name="Secret meter of A",
        aggregation="count",
    )
    return {"code": "secret-meter"}


def _plan(tenant: Tenant) -> dict[str, str]:
    _product(tenant)
    if Plan.objects.filter(tenant=tenant, code="secret-plan").exists():
        return {"code": "secret-plan"}
    plan_create(
        tenant=tenant,
        actor=Actor.system("tests"),
        at=timezone.now(),
        code="secret-plan",
        name="Secret plan of A",
        components=[{"product": "secret-product", "charge": {"model": "flat", "amount": "9.00"}}],
        prices=[{"currency": "EUR"}],
    )
    return {"code": "secret-plan"}


def _subscription(tenant: Tenant) -> dict[str, str]:
    if Subscription.objects.filter(tenant=tenant, external_id="secret-sub").exists():
        return {"external_id": "secret-sub"}
    _plan(tenant)
    _customer(tenant)
    subscription_create(
        tenant=tenant,
        actor=Actor.system("tests"),
        at=timezone.now(),
        external_id="secret-sub",
        customer=Customer.objects.get(tenant=tenant, external_id="secret-customer"),
        plan=Plan.objects.get(tenant=tenant, code="secret-plan"),
        signed_at=timezone.now(),
        devices=[{"device_id": "secret-device"}],
    )
    return {"external_id": "secret-sub"}


def _order(tenant: Tenant) -> dict[str, str]:
    """A's shop order: one slot of plan secret-shop, shipped to A's secret depot."""
    order = Order.objects.filter(tenant=tenant).first()
    if order is None:
        _product(tenant)
        _customer(tenant)
        plan = plan_create(
            tenant=tenant,
            actor=Actor.system("tests"),
            at=timezone.now(),
            code="secret-shop",
            name="Secret shop plan of A",
            components=[{"product": "secret-product", "charge": {"model": "flat", "amount": "9.00"}}],
            prices=[{"currency": "EUR"}],
            self_service=True,
        )
        order = order_place(
            customer=Customer.objects.get(tenant=tenant, external_id="secret-customer"),
            plan=plan,
            quantity=1,
            shipping_address={
                "name": "Secret depot of A",
                "line1": "1 rue Secrète",
                "postal_code": "75001",
                "city": "Paris",
                "country": "FR",
            },
            actor=Actor.system("tests"),
            at=timezone.now(),
        )
    slot = Device.objects.get(subscription=order.subscription)
    return {"pk": str(order.pk), "external_id": order.subscription.external_id, "device": str(slot.pk)}


def _webhook(tenant: Tenant) -> dict[str, str]:
    webhook, _ = DeviceCloudWebhook.objects.get_or_create(
        tenant=tenant,
        webhook_id="secret-msg",
        defaults={
            "received_at": timezone.now(),
            "content_type": "application/json",
            "body": "{}",
            "status": "rejected",
            "outcome": "Secret outcome",
        },
    )
    return {"pk": str(webhook.pk)}


def _invoice(tenant: Tenant) -> dict[str, str]:
    _customer(tenant)
    invoice = Invoice.objects.filter(tenant=tenant).first() or Invoice.objects.create(
        tenant=tenant,
        customer=Customer.objects.get(tenant=tenant, external_id="secret-customer"),
        issue_date=date(2026, 4, 1),
        currency="EUR",
        net_total=Decimal("9.00"),
        total=Decimal("9.00"),
        amount_due=Decimal("9.00"),
    )
    return {"pk": str(invoice.pk)}


def _payment(tenant: Tenant) -> dict[str, str]:
    _invoice(tenant)
    payment = Payment.objects.filter(tenant=tenant).first() or Payment.objects.create(
        tenant=tenant,
        customer=Customer.objects.get(tenant=tenant, external_id="secret-customer"),
        currency="EUR",
        amount=Decimal("9.00"),
        method="bank_transfer",
        received_at=timezone.now(),
        reference="Secret transfer of A",
    )
    return {"pk": str(payment.pk)}


def _support_case(tenant: Tenant) -> dict[str, str]:
    invoice = Invoice.objects.get(pk=_invoice(tenant)["pk"])
    case = SupportCase.objects.filter(tenant=tenant).first() or case_open(
        customer=invoice.customer,
        subject="Secret question of A",
        body="Secret message of A",
        actor=Actor.system("tests"),
        author_type="customer",
        at=timezone.now(),
        invoice=invoice,
    )
    return {"pk": str(case.pk)}


def _bill_run(tenant: Tenant) -> dict[str, str]:
    run = BillRun.objects.filter(tenant=tenant).first() or BillRun.objects.create(
        tenant=tenant, billing_date=date(2026, 4, 1)
    )
    return {"pk": str(run.pk)}


def _webhook_endpoint(tenant: Tenant) -> dict[str, str]:
    endpoint = WebhookEndpoint.objects.filter(tenant=tenant, description="Secret endpoint of A").first()
    if endpoint is None:
        endpoint, _ = webhook_endpoint_create(
            tenant=tenant,
            actor=Actor.system("tests"),
            at=timezone.now(),
            url="https://erp.a.test/secret-hook",
            events=["*"],
            description="Secret endpoint of A",
        )
    return {"pk": str(endpoint.pk)}


def _webhook_delivery(tenant: Tenant) -> dict[str, str]:
    endpoint = WebhookEndpoint.objects.get(pk=_webhook_endpoint(tenant)["pk"])
    delivery = WebhookDelivery.objects.filter(endpoint=endpoint).first()
    if delivery is None:
        event_emit(tenant=tenant, type="invoice.voided", data={"number": "Secret-INV"}, at=timezone.now())
        delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    return {"pk": str(delivery.pk)}


def _revenue(tenant: Tenant) -> dict[str, str]:
    """A's subscription with a revenue contract: one service obligation over the year from this
    month, this month recognized (its entries and journal)."""
    external_id = _subscription(tenant)["external_id"]
    subscription = Subscription.objects.get(tenant=tenant, external_id=external_id)
    month = timezone.now().date().replace(day=1)
    contract, created = Contract.objects.get_or_create(
        tenant=tenant,
        subscription=subscription,
        defaults={
            "currency": "EUR",
            "transaction_price": Decimal("99.00"),
            "created_at": timezone.now(),
            "plan": subscription.plan,
        },
    )
    if created:
        PerformanceObligation.objects.create(
            tenant=tenant,
            contract=contract,
            kind="service",
            product_code="secret-product",
            device_id="secret-device",
            currency="EUR",
            allocated=Decimal("99.00"),
            pattern="ratable",
            starts_on=month,
            ends_on=month.replace(year=month.year + 1),
        )
        recognition_run(tenant_id=tenant.pk, month=month, at=timezone.now())
    return {"subscription": external_id}


def _recognition_run(tenant: Tenant) -> dict[str, str]:
    run = RecognitionRun.objects.filter(tenant=tenant).first() or RecognitionRun.objects.create(
        tenant=tenant, month=date(2026, 3, 1), status="succeeded", requested_by="Secret", created_at=timezone.now()
    )
    RevenuePeriod.objects.get_or_create(tenant=tenant, month=date(2026, 3, 1))
    return {"pk": str(run.pk)}


def _revenue_period(tenant: Tenant) -> dict[str, str]:
    _recognition_run(tenant)
    return {"period": "2026-03"}


def _export_target(tenant: Tenant) -> dict[str, str]:
    target = ExportTarget.objects.filter(tenant=tenant).first() or ExportTarget.objects.create(
        tenant=tenant, name="Secret ERP of A", format="csv", created_at=timezone.now()
    )
    return {"pk": str(target.pk)}


def _journal_export(tenant: Tenant) -> dict[str, str]:
    target = ExportTarget.objects.get(pk=_export_target(tenant)["pk"])
    export = JournalExport.objects.filter(target=target).first()
    if export is None:
        # A's April entry (an open month: March may be closed by the close route's tests).
        entry = JournalEntry.objects.create(
            tenant=tenant,
            period=date(2026, 4, 1),
            date=date(2026, 4, 30),
            source_type="invoice",
            source_id="Secret-INV",
            currency="EUR",
            created_at=timezone.now(),
        )
        JournalLine.objects.create(tenant=tenant, entry=entry, account="receivable", currency="EUR", debit=9)
        JournalLine.objects.create(tenant=tenant, entry=entry, account="contract_balance", currency="EUR", credit=9)
        export = JournalExport.objects.create(
            tenant=tenant, target=target, period=date(2026, 4, 1), entries=1, lines=2, created_at=timezone.now()
        )
        export.exported.create(tenant=tenant, target=target, entry=entry)
    return {"pk": str(target.pk), "export_id": str(export.pk)}


def _partner_statement(tenant: Tenant) -> dict[str, str]:
    """Tenant A's partner and its draft statement of April 2026, with a line on A's invoice."""
    partner = Partner.objects.filter(tenant=tenant, code="secret-partner").first() or Partner.objects.create(
        tenant=tenant, code="secret-partner", name="Secret Partner of A", currency="EUR"
    )
    statement = CommissionStatement.objects.filter(partner=partner).first()
    if statement is None:
        invoice = Invoice.objects.get(pk=_invoice(tenant)["pk"])
        statement = CommissionStatement.objects.create(
            tenant=tenant,
            partner=partner,
            month=date(2026, 4, 1),
            currency="EUR",
            total=Decimal("3.00"),
            built_at=timezone.now(),
        )
        CommissionLine.objects.create(
            tenant=tenant,
            statement=statement,
            invoice=invoice,
            customer=invoice.customer,
            leg="service",
            net_collected=Decimal("15.00"),
            rate=Decimal("20"),
            amount=Decimal("3.00"),
        )
    return {"code": partner.code, "pk": str(statement.pk)}


# route name -> makes tenant A's object and returns the path parameters that address it
def _partner(tenant: Tenant) -> dict[str, str]:
    partner = Partner.objects.filter(tenant=tenant, code="secret-partner").first() or Partner.objects.create(
        tenant=tenant, code="secret-partner", name="Secret Partner of A", email="secret@a.test", currency="EUR"
    )
    return {"code": partner.code}


def _partner_user(tenant: Tenant) -> dict[str, str]:
    found = _partner(tenant)
    partner = Partner.objects.get(tenant=tenant, code=found["code"])
    user = PartnerUser.objects.filter(tenant=tenant, partner=partner).first() or PartnerUser.objects.create(
        tenant=tenant, partner=partner, email="secret-partner-user@a.test", name="Secret Partner User of A"
    )
    return {**found, "user_id": str(user.pk)}


def _partner_api_key(tenant: Tenant) -> dict[str, str]:
    found = _partner(tenant)
    partner = Partner.objects.get(tenant=tenant, code=found["code"])
    key = ApiKey.objects.filter(tenant=tenant, partner=partner).first()
    if key is None:
        key, _ = api_key_create(
            tenant=tenant,
            name="Secret partner key of A",
            scope=ApiKeyScope.PARTNER,
            actor=Actor.system("tests"),
            at=timezone.now(),
            partner=partner,
        )
    return {**found, "key_id": str(key.pk)}


def _partner_customer(tenant: Tenant) -> dict[str, str]:
    """A's partner's customer, and the plan A offers to partners (in its shop too)."""
    if Customer.objects.filter(tenant=tenant, external_id="secret-partner-customer").exists():
        return {"external_id": "secret-partner-customer"}
    _product(tenant)
    partner = Partner.objects.get(tenant=tenant, code=_partner(tenant)["code"])
    plan_create(
        tenant=tenant,
        actor=Actor.system("tests"),
        at=timezone.now(),
        code="secret-partner-plan",
        name="Secret partner plan of A",
        components=[{"product": "secret-product", "charge": {"model": "flat", "amount": "9.00"}}],
        prices=[{"currency": "EUR"}],
        self_service=True,
        partner_visible=True,
    )
    customer_create(
        tenant=tenant,
        actor=Actor.system("tests"),
        at=timezone.now(),
        external_id="secret-partner-customer",
        name="Secret Partner Customer of A",
        email="secret@a.test",
        country="FR",
        partner=partner,
    )
    return {"external_id": "secret-partner-customer"}


def _partner_order(tenant: Tenant) -> dict[str, str]:
    """An order of A's partner's customer: its subscription and its slot."""
    order = Order.objects.filter(tenant=tenant, customer__external_id="secret-partner-customer").first()
    if order is None:
        _partner_customer(tenant)
        order = order_place(
            customer=Customer.objects.get(tenant=tenant, external_id="secret-partner-customer"),
            plan=Plan.objects.get(tenant=tenant, code="secret-partner-plan"),
            quantity=1,
            shipping_address={
                "name": "Secret depot of A's partner",
                "line1": "1 rue Secrète",
                "postal_code": "75001",
                "city": "Paris",
                "country": "FR",
            },
            actor=Actor.system("tests"),
            at=timezone.now(),
        )
    slot = Device.objects.get(subscription=order.subscription)
    return {"external_id": order.subscription.external_id, "device": str(slot.pk)}


PARTNER_ROUTES_PREFIX = "api/v1/partner/"


def _client(route: ApiRoute, tenant: Tenant, make_client: Callable[..., APIClient]) -> APIClient:
    """A key of ``tenant`` that may call ``route``: the partner routes take a key of one of the
    tenant's partners (A's secret partner, or B's own), the others a full-scope key."""
    if not route.route.startswith(PARTNER_ROUTES_PREFIX):
        return make_client(tenant, ApiKeyScope.FULL)
    partner = Partner.objects.filter(tenant=tenant).order_by("created_at").first()
    if partner is None:
        partner = Partner.objects.create(tenant=tenant, code="own-partner", name="Own partner", currency="EUR")
    _, key = api_key_create(
        tenant=tenant,
        name="partner key",
        scope=ApiKeyScope.PARTNER,
        actor=Actor.system("tests"),
        at=timezone.now(),
        partner=partner,
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


OBJECT_MAKERS: dict[str, Callable[[Tenant], dict[str, str]]] = {
    "customer-detail": _customer,
    "customer-current-usage": _customer,
    "partner-statements": lambda tenant: {"code": _partner_statement(tenant)["code"]},
    "partner-statement": lambda tenant: {"pk": _partner_statement(tenant)["pk"]},
    "partner-statement-approve": lambda tenant: {"pk": _partner_statement(tenant)["pk"]},
    "partner-statement-mark-paid": lambda tenant: {"pk": _partner_statement(tenant)["pk"]},
    "partner-statement-pdf": lambda tenant: {"pk": _partner_statement(tenant)["pk"]},
    "partner-statement-csv": lambda tenant: {"pk": _partner_statement(tenant)["pk"]},
    "partner-own-statement": lambda tenant: {"pk": _partner_statement(tenant)["pk"]},
    "partner-own-statement-pdf": lambda tenant: {"pk": _partner_statement(tenant)["pk"]},
    "partner-own-statement-csv": lambda tenant: {"pk": _partner_statement(tenant)["pk"]},
    "customer-dunning-policy": _customer,
    "customer-portal-sessions": _customer,
    "customer-portal-users": _customer,
    "customer-portal-user-detail": _portal_user,
    "product-detail": _product,
    "meter-detail": _meter,
    "plan-detail": _plan,
    "plan-price-versions": _plan,
    "plan-price-overrides": _plan,
    "subscription-detail": _subscription,
    "subscription-changes": _subscription,
    "subscription-device-bind": lambda tenant: {k: v for k, v in _order(tenant).items() if k != "pk"},
    "order-detail": lambda tenant: {"pk": _order(tenant)["pk"]},
    "device-cloud-webhook-replay": _webhook,
    "bill-run-detail": _bill_run,
    "invoice-detail": _invoice,
    "invoice-finalize": _invoice,
    "invoice-void": _invoice,
    "invoice-credit-notes": _invoice,
    "invoice-pdf": _invoice,
    "invoice-facturx": _invoice,
    "invoice-pay": _invoice,
    "customer-payment-method": _customer,
    "webhook-endpoint-detail": _webhook_endpoint,
    "webhook-endpoint-rotate-secret": _webhook_endpoint,
    "webhook-endpoint-deliveries": _webhook_endpoint,
    "webhook-delivery-replay": _webhook_delivery,
    "payment-detail": _payment,
    "payment-refunds": _payment,
    "customer-balance-transactions": _customer,
    "support-case-detail": _support_case,
    "support-case-messages": _support_case,
    "support-case-credit-notes": _support_case,
    "partner-detail": _partner,
    "partner-users": _partner,
    "partner-user-detail": _partner_user,
    "partner-api-keys": _partner,
    "partner-api-key-detail": _partner_api_key,
    "partner-customer-detail": _partner_customer,
    "partner-customer-current-usage": _partner_customer,
    "partner-subscription-detail": lambda tenant: {"external_id": _partner_order(tenant)["external_id"]},
    "partner-subscription-device-bind": _partner_order,
    # no path parameter: the query's (QUERY_ROUTES)
    "revenue-schedules": _revenue,
    "revenue-run-detail": _recognition_run,
    "revenue-period-close": _revenue_period,
    "export-target-exports": _export_target,
    "journal-export-download": _journal_export,
}
# Routes that read one object named in the query rather than the path: another tenant's gets 404.
QUERY_ROUTES = {"revenue-schedules"}

# A plausible, valid body per route, so that a 404 is about the tenant and not about the body.
VALID_BODIES: dict[str, dict[str, Any]] = {
    "partner-statement-mark-paid": {"reference": "by B"},
    "customers": {"external_id": "new-one", "name": "New", "email": "n@x.test", "country": "FR"},
    "customer-detail": {"name": "Renamed by B"},
    "customer-portal-sessions": {"return_url": "https://b.example/account"},
    "customer-portal-users": {"email": "new-user@b.test", "name": "New", "role": "viewer"},
    "customer-portal-user-detail": {"role": "viewer"},
    "products": {"code": "new-product", "name": "New", "kind": "fee"},
    "product-detail": {"name": "Renamed by B"},
    "meters": {"code": "new-meter", "name": "New", "aggregation": "count"},
    "meter-detail": {"name": "Renamed by B"},
    "tax_rates": {"country": "FR", "tax_category": "standard", "rate": "20"},
    "plan-price-versions": {
        "currency": "EUR",
        "effective_from": "2030-01-01T00:00:00Z",
        "components": [{"product": "secret-product", "charge": {"model": "flat", "amount": "1.00"}}],
    },
    "plan-price-overrides": {
        "customer": "secret-customer",
        "product": "secret-product",
        "charge": {"model": "flat", "amount": "1.00"},
    },
    "price-quotes": {"plan": "secret-plan", "currency": "EUR", "devices": 1},
    "subscription-changes": {"action": "remove_devices", "device_ids": ["secret-device"]},
    "subscription-device-bind": {"device_id": "bound-by-b"},
    "bill-runs": {"billing_date": "2026-04-01"},
    "payments": {
        "customer": "secret-customer",
        "amount": "9.00",
        "currency": "EUR",
        "method": "bank_transfer",
        "received_at": "2026-04-20T10:00:00Z",
    },
    "payment-refunds": {"amount": "1.00", "reason": "by B"},
    "invoice-void": {"reason": "by B"},
    "customer-payment-method": {"payment_method": "pm_card_of_b"},
    "invoice-credit-notes": {"reason": "by B"},
    "support-cases": {"customer": "secret-customer", "subject": "By B", "body": "By B"},
    "support-case-detail": {"status": "resolved"},
    "support-case-messages": {"body": "By B"},
    "support-case-credit-notes": {"reason": "by B"},
    "events": {
        "events": [
            {
                "transaction_id": "b-1",
                "code": "secret-meter",
                "device_id": "secret-device",
                "timestamp": "2026-04-16T10:00:00Z",
                "properties": {},
            }
        ]
    },
    "dunning-policy": {
        "retry_days": [2],
        "reminder_days": [1],
        "suspend_after_days": 10,
        "uncollectible_after_days": 30,
        "bill_while_suspended": False,
    },
    "customer-dunning-policy": {
        "retry_days": [2],
        "reminder_days": [1],
        "suspend_after_days": 10,
        "uncollectible_after_days": 30,
    },
    "revenue-runs": {"period": "2026-03"},
    "export-targets": {"name": "ERP of B", "format": "csv"},
    "export-target-exports": {"period": "2026-04"},
    "webhook-endpoints": {"url": "https://erp.b.test/hook", "events": ["invoice.finalized"], "description": "B"},
    "webhook-endpoint-detail": {"description": "Renamed by B", "enabled": False},
    "exchange-rates": {"rates": [{"month": "2026-04", "currency": "USD", "rate": "0.92"}]},
    "subscriptions": {
        "external_id": "new-sub",
        "customer": "secret-customer",
        "plan": "secret-plan",
        "signed_at": "2026-03-10T10:00:00+01:00",
        "devices": [{"device_id": "secret-device"}],
    },
    "partners": {
        "code": "new-partner",
        "name": "New",
        "currency": "EUR",
        "commission_plan": {"service": {"tiers": [{"up_to": "10000.00", "rate": "20"}, {"up_to": None, "rate": "25"}]}},
    },
    "partner-detail": {"name": "Renamed by B", "commission_plan": {"service": "30"}},
    "partner-users": {"email": "new-partner-user@b.test", "name": "New", "role": "sales"},
    "partner-user-detail": {"role": "admin", "is_active": False},
    "partner-api-keys": {"name": "Key of B"},
    "partner-customers": {"external_id": "new-partner-customer", "name": "New", "email": "n@x.test", "country": "FR"},
    "partner-subscriptions": {
        "external_id": "new-partner-sub",
        "customer": "secret-partner-customer",
        "plan": "secret-partner-plan",
        "signed_at": "2026-03-10T10:00:00+01:00",
        "devices": [{"device_id": "new-partner-device"}],
    },
    "partner-subscription-device-bind": {"device_id": "bound-by-b"},
}

# Reports answer one object, not a page: the list in it that would show another tenant's rows.
REPORTS = {
    "receivables-report": "currencies",
    "mrr-report": "currencies",
    "usage-report": "meters",
    "revenue-report": "currencies",
    "revenue-stream-report": "currencies",
}
# Routes reading the caller's own tenant-wide settings rather than a collection.
SINGLETONS = {"dunning-policy"}

# POST actions without a request body (their input is the path).
BODYLESS_ACTIONS = {
    "dunning-runs",
    "device-cloud-webhook-replay",
    "invoice-finalize",
    "invoice-pay",
    "webhook-endpoint-rotate-secret",
    "webhook-delivery-replay",
    "revenue-period-close",
    "partner-statement-approve",
}


def _nested(levels: int) -> Any:
    value: Any = "leaf"
    for i in range(levels):
        value = {"n": value} if i % 2 else [value]
    return value


BAD_BODIES: list[Any] = [
    "not json at all",
    "[]",
    '"a string"',
    "null",
    '{"external_id": {"nested": [1, 2]}, "name": 12, "email": false}',
    json.dumps({"external_id": "x" * 10000, "name": "\u0000", "email": "a@b", "country": "??", "billing_day": "31st"}),
    json.dumps({"billing_day": 10**30, "currency": None, "timezone": ["Europe/Paris"], "unknown": 1}),
    "{" * 5000,
    json.dumps(_nested(300)),  # valid JSON, nested deeper than any body Tripod reads
    "[" * 5000 + "]" * 5000,  # deeper than a JSON parser goes
]


def _data_snapshot(tenant: Tenant) -> tuple[Any, ...]:
    customers = list(Customer.objects.filter(tenant=tenant).order_by("external_id").values())
    products = list(Product.objects.filter(tenant=tenant).order_by("code").values())
    meters = list(Meter.objects.filter(tenant=tenant).order_by("code").values())
    plans = list(Plan.objects.filter(tenant=tenant).order_by("code").values())
    versions = PriceVersion.objects.filter(tenant=tenant).count()
    overrides = PriceOverride.objects.filter(tenant=tenant).count()
    rates = list(TaxRate.objects.filter(tenant=tenant).values())
    audit = AuditLogEntry.objects.filter(tenant=tenant).count()
    subscriptions = list(Subscription.objects.filter(tenant=tenant).values())
    devices = list(Device.objects.filter(tenant=tenant).order_by("pk").values())
    orders = list(Order.objects.filter(tenant=tenant).order_by("pk").values())
    webhooks = list(DeviceCloudWebhook.objects.filter(tenant=tenant).values())
    changes = SubscriptionChange.objects.filter(tenant=tenant).count()
    invoices = list(Invoice.objects.filter(tenant=tenant).values("id", "status", "number", "amount_due"))
    runs = BillRun.objects.filter(tenant=tenant).count()
    endpoints = list(WebhookEndpoint.objects.filter(tenant=tenant).order_by("pk").values())
    deliveries = list(WebhookDelivery.objects.filter(tenant=tenant).order_by("pk").values())
    rollups = UsageRollup.objects.filter(tenant=tenant).count()
    support = (
        list(SupportCase.objects.filter(tenant=tenant).order_by("pk").values()),
        list(SupportMessage.objects.filter(tenant=tenant).order_by("pk").values()),
    )
    payments = list(Payment.objects.filter(tenant=tenant).order_by("pk").values())
    partners = (
        list(Partner.objects.filter(tenant=tenant).order_by("pk").values()),
        list(PartnerUser.objects.filter(tenant=tenant).order_by("pk").values()),
        list(ApiKey.objects.filter(tenant=tenant).exclude(partner=None).order_by("pk").values("pk", "revoked_at")),
    )
    statements = list(CommissionStatement.objects.filter(tenant=tenant).order_by("pk").values())
    policies = list(DunningPolicy.objects.filter(tenant=tenant).order_by("pk").values())
    exchange_rates = list(ExchangeRate.objects.filter(tenant=tenant).order_by("pk").values())
    revenue = (
        list(RecognitionRun.objects.filter(tenant=tenant).order_by("pk").values()),
        list(RevenuePeriod.objects.filter(tenant=tenant).order_by("pk").values()),
        list(ExportTarget.objects.filter(tenant=tenant).order_by("pk").values()),
        list(JournalExport.objects.filter(tenant=tenant).order_by("pk").values()),
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM usage_event WHERE tenant_id = %s", [tenant.pk])
        events = cursor.fetchone()
    return (
        customers,
        products,
        meters,
        plans,
        versions,
        overrides,
        rates,
        audit,
        subscriptions,
        devices,
        orders,
        webhooks,
        changes,
        rollups,
        events,
        invoices,
        runs,
        endpoints,
        deliveries,
        payments,
        statements,
        policies,
        exchange_rates,
        revenue,
        support,
        partners,
    )


def _send(client: APIClient, method: str, path: str, body: Any = None, raw: str | None = None) -> Any:
    if raw is not None:
        return getattr(client, method)(path, data=raw, content_type="application/json")
    if method in ("get", "delete"):
        return getattr(client, method)(path)
    return getattr(client, method)(path, data=body or {}, format="json")


def _route_params(route: ApiRoute) -> list[Any]:
    return [pytest.param(route, id=route.name)]


def test_every_route_with_parameters_has_an_object_maker() -> None:
    missing = [r.route for r in ROUTES if r.params and r.name not in OBJECT_MAKERS]
    assert not missing, f"add these routes to OBJECT_MAKERS in {__file__}: {missing}"
    assert ROUTES, "no API route found: the URLconf walk is broken"


@pytest.mark.parametrize("route", [r for r in ROUTES if r.params], ids=lambda r: r.name)
def test_another_tenants_key_gets_404_and_changes_nothing(
    route: ApiRoute, tenant: Tenant, other_tenant: Tenant, make_client: Callable[..., APIClient]
) -> None:
    # given: tenant A's object, and tenant B's full-scope key
    path = route.path(**OBJECT_MAKERS[route.name](tenant))
    intruder = _client(route, other_tenant, make_client)
    before = _data_snapshot(tenant)
    for method in route.methods:
        # when
        response = _send(intruder, method, path, VALID_BODIES.get(route.name))
        # then
        assert response.status_code == 404, (method, path, response.content)
        assert response["Content-Type"] == "application/problem+json"
        assert b"Secret" not in response.content
        assert b"secret@a.test" not in response.content
    assert _data_snapshot(tenant) == before


@pytest.mark.parametrize("route", [r for r in ROUTES if not r.params], ids=lambda r: r.name)
def test_collections_never_show_another_tenants_objects(
    route: ApiRoute, tenant: Tenant, other_tenant: Tenant, make_client: Callable[..., APIClient]
) -> None:
    for maker in OBJECT_MAKERS.values():
        maker(tenant)
    # Tenant A's own dunning policy: a tenant-wide singleton, not a collection.
    DunningPolicy.objects.create(tenant=tenant, retry_days=[1], reminder_days=[1])
    # Tenant A's exchange rate: B's list must not show it.
    ExchangeRate.objects.create(
        tenant=tenant, month=date(2026, 4, 1), currency="USD", rate=1, source="manual", entered_at=timezone.now()
    )
    intruder = _client(route, other_tenant, make_client)
    before = _data_snapshot(tenant)
    if route.name in QUERY_ROUTES:
        response = intruder.get(route.path(), OBJECT_MAKERS[route.name](tenant))
        assert response.status_code == 404, response.content
        assert response["Content-Type"] == "application/problem+json"
        assert b"Secret" not in response.content
    elif "get" in route.methods:
        response = intruder.get(route.path())
        assert response.status_code == 200
        body = response.json()
        if route.name in REPORTS:
            assert body[REPORTS[route.name]] == [], body
        elif route.name in SINGLETONS:
            assert body["reminder_days"] == [-3, 7]  # B's own: the defaults, not A's [1]
        else:
            assert body["results"] == []
    if "post" in route.methods:
        intruder.post(route.path(), data=VALID_BODIES.get(route.name, {}), format="json")
    assert _data_snapshot(tenant) == before


def test_revenue_reports_show_their_own_tenant_only(
    tenant: Tenant, other_tenant: Tenant, make_client: Callable[..., APIClient]
) -> None:
    # given: A's contract, recognized this month
    query = _revenue(tenant)
    owner, intruder = make_client(tenant, ApiKeyScope.READ), make_client(other_tenant, ApiKeyScope.READ)
    # then: A reads its own figures, B none of them
    for path in ("/api/v1/revenue/report", "/api/v1/reports/revenue"):
        assert [c["currency"] for c in owner.get(path).json()["currencies"]] == ["EUR"]
        assert intruder.get(path).json()["currencies"] == []
    assert owner.get("/api/v1/revenue/schedules", query).status_code == 200
    assert intruder.get("/api/v1/revenue/schedules", query).status_code == 404
    assert len(owner.get("/api/v1/revenue/journal").json()["results"]) == 1
    assert intruder.get("/api/v1/revenue/journal").json()["results"] == []


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
@pytest.mark.parametrize("scope", [ApiKeyScope.READ, ApiKeyScope.INGEST, ApiKeyScope.DEVICE_CLOUD])
def test_keys_without_the_scope_get_403(
    route: ApiRoute, scope: str, tenant: Tenant, make_client: Callable[..., APIClient]
) -> None:
    params = OBJECT_MAKERS[route.name](tenant) if route.params else {}
    client = make_client(tenant, scope)
    before = _data_snapshot(tenant)
    read_scopes = getattr(route.view_class, "read_scopes", {ApiKeyScope.FULL, ApiKeyScope.READ})
    write_scopes = getattr(route.view_class, "write_scopes", {ApiKeyScope.FULL})
    for method in route.methods:
        allowed = read_scopes if method == "get" else write_scopes
        if scope in allowed:
            continue
        response = _send(client, method, route.path(**params), VALID_BODIES.get(route.name))
        assert response.status_code == 403, (scope, method, response.content)
        assert response.json()["code"] == "permission_denied"
    assert _data_snapshot(tenant) == before


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_no_key_or_a_bad_key_gets_401(route: ApiRoute, tenant: Tenant) -> None:
    params = OBJECT_MAKERS[route.name](tenant) if route.params else {}
    for credentials in (None, "Bearer tpk_00000000_not-a-real-key", "Basic dXNlcjpwYXNz", "Bearer"):
        client = APIClient()
        if credentials:
            client.credentials(HTTP_AUTHORIZATION=credentials)
        for method in route.methods:
            response = _send(client, method, route.path(**params), VALID_BODIES.get(route.name))
            assert response.status_code == 401, (credentials, method)
            assert response["Content-Type"] == "application/problem+json"
            assert response.json()["status"] == 401


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_bad_input_gets_a_problem_json_4xx_and_never_a_500(
    route: ApiRoute, tenant: Tenant, make_client: Callable[..., APIClient]
) -> None:
    params = OBJECT_MAKERS[route.name](tenant) if route.params else {}
    client = _client(route, tenant, make_client)
    path = route.path(**params)
    for method in route.methods:
        if method in ("get", "delete"):
            for query in ("?limit=abc", "?limit=0", "?limit=501", "?cursor=garbage", "?limit=-1&cursor=%00"):
                response = getattr(client, method)(path + query)
                assert response.status_code < 500, (method, query)
            continue
        for raw in BAD_BODIES:
            response = _send(client, method, path, raw=raw)
            if route.name in BODYLESS_ACTIONS:
                # an action that takes no body ignores one; it must still never fail
                assert response.status_code < 500, (method, raw[:60])
                continue
            assert 400 <= response.status_code < 500, (
                method,
                raw[:60],
                response.status_code,
                response.content[:300],
            )
            body = response.json()
            assert response["Content-Type"] == "application/problem+json"
            assert {"type", "title", "status", "detail"} <= set(body)


# --- Fuzzing: hostile values in every field, query parameter and path of every route ----------


# What probing the API found breaking things: instants that leave years 1900-9999 once their
# offset is applied, numbers beyond every column, control characters, and deep nesting.
FUZZ_VALUES: list[Any] = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01",
    10**30,
    -(10**30),
    -1,
    "9" * 27,
    "-" + "9" * 27,
    "Ctl\u0001Name",
    "tab\there\u007f",
    _nested(300),
]
FUZZ_QUERY_VALUES = ["0001-01-01", "0001-01-01T00:00:00+14:00", "9" * 30, "-1", "Ctl\u0001Name", "\u007f"]
FUZZ_PATH_VALUES = ["0001-01-01", "9" * 30, "-1", "Ctl%01Name"]
# Every filter a list of the API reads, and the pagination.
QUERY_FILTERS = [
    "q",
    "currency",
    "country",
    "kind",
    "status",
    "customer",
    "plan",
    "date_from",
    "date_to",
    "from",
    "to",
    "period",
    "source_type",
    "subscription",
]

# A valid body for the routes VALID_BODIES leaves empty, so that each of their fields gets fuzzed.
FUZZ_BODIES: dict[str, Any] = {
    **VALID_BODIES,
    "tax-rates": VALID_BODIES["tax_rates"],
    "plans": {
        "code": "fuzz-plan",
        "name": "Fuzz plan",
        "interval": "month",
        "trial_days": 0,
        "components": [{"product": "secret-product", "charge": {"model": "flat", "amount": "9.00"}}],
        "prices": [{"currency": "EUR", "effective_from": "2026-01-01T00:00:00+01:00"}],
    },
    "plan-price-overrides": {
        **VALID_BODIES["plan-price-overrides"],
        "effective_from": "2026-05-01T00:00:00+02:00",
    },
    "price-quotes": {**VALID_BODIES["price-quotes"], "at": "2026-04-01T00:00:00Z"},
    # recent enough not to be too old, so that the rest of the event is read
    "events": {"events": [{**VALID_BODIES["events"]["events"][0], "timestamp": "NOW", "properties": {"n": 1}}]},
}
# Routes that render a document (slow): not read again after every route's fuzzing.
DOCUMENT_ROUTES = {"invoice-pdf", "invoice-facturx", "partner-statement-pdf", "partner-own-statement-pdf"}
# The values that name what a body creates: each variant gets its own, so that one accepted variant
# does not make every later one a conflict that hides what its fuzzed field does.
FRESH_IDS: dict[str, tuple[str, ...]] = {
    "customers": ("new-one",),
    "products": ("new-product",),
    "meters": ("new-meter",),
    "plans": ("fuzz-plan",),
    "events": ("b-1",),
    "subscriptions": ("new-sub", "secret-device"),
    "partners": ("new-partner",),
    "partner-users": ("new-partner-user@b.test",),
    "partner-customers": ("new-partner-customer",),
    "partner-subscriptions": ("new-partner-sub", "new-partner-device"),
    "export-targets": ("ERP of B",),
}
# Tables whose text keeps what was sent as it was sent (event properties, rejected events, webhook
# bodies): they are data, never printed as a name or a description.
KEPT_AS_SENT = {"usage_event", "usage_rejectedevent", "subscriptions_devicecloudwebhook"}


def _variants(body: Any) -> list[Any]:
    """``body`` with one of its values (at any depth) replaced by each of ``FUZZ_VALUES``."""
    out: list[Any] = []

    def walk(node: Any, replace: Callable[[Any], Any]) -> None:
        items = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        for key, child in items:

            def replace_child(value: Any, key: Any = key) -> Any:
                copy = dict(node) if isinstance(node, dict) else list(node)
                copy[key] = value
                return replace(copy)

            out.extend(replace_child(value) for value in FUZZ_VALUES)
            if isinstance(child, dict | list):
                walk(child, replace_child)

    if isinstance(body, dict | list):
        walk(body, lambda whole: whole)
    return out


def _fresh(body: Any, ids: tuple[str, ...], n: int) -> Any:
    """``body`` with each of ``ids`` made ``<id>-<n>``, and ``"NOW"`` the current instant."""
    if isinstance(body, dict):
        return {key: _fresh(value, ids, n) for key, value in body.items()}
    if isinstance(body, list):
        return [_fresh(value, ids, n) for value in body]
    if body == "NOW":
        return timezone.now().isoformat()
    return "%s-%d" % (body, n) if isinstance(body, str) and body in ids else body


@pytest.fixture(scope="module")
def tenant_tables(django_db_setup: Any, django_db_blocker: Any) -> list[str]:
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT c.relname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE a.attname = 'tenant_id' AND n.nspname = 'public' AND c.relkind IN ('r', 'p') "
            "AND NOT c.relispartition ORDER BY 1"
        )
        return [name for (name,) in cursor.fetchall()]


def _row_counts(tenant: Tenant, tables: list[str]) -> dict[str, int]:
    sql = " UNION ALL ".join("SELECT '%s', count(*) FROM %s WHERE tenant_id = %%(t)s" % (t, t) for t in tables)
    with connection.cursor() as cursor:
        cursor.execute(sql, {"t": tenant.pk})
        return dict(cursor.fetchall())


def _texts_with_control_characters(tenant: Tenant, tables: list[str]) -> list[str]:
    """Tables where a row of the tenant holds a control character in a text column (jsonb columns
    escape theirs as \\u0001, so they do not match)."""
    sql = " UNION ALL ".join(
        "SELECT '%s' FROM %s x WHERE x.tenant_id = %%(t)s AND x::text ~ '[\\x01-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]'"
        % (t, t)
        for t in tables
        if t not in KEPT_AS_SENT
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, {"t": tenant.pk})
        return sorted({name for (name,) in cursor.fetchall()})


def _objects_of(tenant: Tenant) -> dict[str, dict[str, str]]:
    return {name: maker(tenant) for name, maker in OBJECT_MAKERS.items()}


def _assert_every_read_answers(client: APIClient, objects: dict[str, dict[str, str]]) -> None:
    """Nothing stored breaks a page: every GET route (the invoice's PDF and Factur-X included) and
    a price quote still answer."""
    for route in ROUTES:
        if "get" in route.methods:
            response = client.get(route.path(**objects.get(route.name, {})))
            assert response.status_code < 500, (route.name, response.content[:300])
    quote = client.post("/api/v1/price_quotes", data=FUZZ_BODIES["price-quotes"], format="json")
    assert quote.status_code < 500, quote.content[:300]


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_hostile_values_never_give_a_500_and_a_refusal_stores_nothing(
    route: ApiRoute, tenant: Tenant, make_client: Callable[..., APIClient], tenant_tables: list[str]
) -> None:
    objects = _objects_of(tenant)
    client = _client(route, tenant, make_client)
    client.raise_request_exception = False  # a 500 is asserted on, not raised
    path = route.path(**objects.get(route.name, {}))
    wrote = False
    for method in route.methods:
        if method == "get" and route.name in DOCUMENT_ROUTES:
            continue  # a document's only input is its path, fuzzed by the other invoice routes
        if method == "get":
            queries = [{"limit": v} for v in FUZZ_QUERY_VALUES] + [{"cursor": v} for v in FUZZ_QUERY_VALUES]
            queries += [dict.fromkeys(QUERY_FILTERS, v) for v in FUZZ_QUERY_VALUES]
            for query in queries:
                response = client.get(path, data=query)
                assert response.status_code < 500, (query, response.content[:300])
            for value in FUZZ_PATH_VALUES if route.params else []:
                response = client.get(route.path(**dict.fromkeys(route.params, value)))
                assert response.status_code < 500, (value, response.content[:300])
            continue
        if route.name in BODYLESS_ACTIONS:
            continue
        counts = _row_counts(tenant, tenant_tables)
        for n, variant in enumerate(_variants(FUZZ_BODIES.get(route.name, {}))):
            body = _fresh(variant, FRESH_IDS.get(route.name, ()), n)
            # when
            response = _send(client, method, path, body)
            # then: a clear answer, and a refusal leaves every table of the tenant as it was
            assert response.status_code < 500, (method, json.dumps(body)[:300], response.content[:300])
            wrote = wrote or response.status_code < 300
            after = _row_counts(tenant, tenant_tables)
            if response.status_code >= 400:
                assert response["Content-Type"] == "application/problem+json"
                assert after == counts, (json.dumps(body)[:300], response.status_code)
            counts = after
    assert _texts_with_control_characters(tenant, tenant_tables) == []
    if wrote:
        _assert_every_read_answers(client, objects)
