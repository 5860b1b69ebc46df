"""Every response of the catalog, quote, subscription, bill-run and invoice operations conforms to
the published schema (docs/openapi.yaml), for every component kind and charge model: a client
generated from the schema parses what the server sends.

One offer with a component of each kind and a usage component per charge model is sold, activated,
used, quoted, changed, billed, finalized, credited and voided through the API; each response is
checked by ``tests.openapi.assert_conforms`` (schemathesis' response-conformance check)."""

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient
from standardwebhooks import Webhook

from invoicing.tests.billing_api import eager_celery, paris
from tenancy.keys import generate_webhook_secret
from tenancy.models import ApiKeyScope, Tenant
from tests.openapi import assert_conforms

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]
__all__ = ["eager_celery"]

PRODUCTS = [
    {"code": "eld-200", "name": "ELD-200 tracker", "kind": "hardware", "ssp": [{"currency": "EUR", "amount": "240"}]},
    {"code": "fleet-platform", "name": "Fleet platform", "kind": "service"},
    {"code": "setup", "name": "Setup", "kind": "fee"},
    {"code": "data-overage", "name": "Data overage", "kind": "usage"},
    {"code": "sms", "name": "SMS", "kind": "usage"},
    {"code": "api-calls", "name": "API calls", "kind": "usage"},
    {"code": "payments", "name": "Payments", "kind": "usage"},
    {"code": "storage", "name": "Storage", "kind": "usage"},
    {"code": "roaming", "name": "Roaming", "kind": "usage"},
]
METERS = [
    {"code": "data_mb", "name": "Data", "aggregation": "sum", "field": "mb", "dimensions": ["device_type", "region"]},
    {"code": "sms", "name": "SMS", "aggregation": "count"},
    {"code": "api_calls", "name": "API calls", "aggregation": "count", "time_bands": {"peak": ["08:00", "20:00"]}},
    {"code": "txn", "name": "Transactions", "aggregation": "sum", "field": "amount"},
    {"code": "storage_gb", "name": "Storage", "aggregation": "max", "field": "gb"},
    {"code": "roaming_mb", "name": "Roaming", "aggregation": "sum", "field": "mb", "dimensions": ["device_type"]},
]
TIERS = [{"up_to": 1000, "unit_amount": "0"}, {"up_to": None, "unit_amount": "0.002", "flat_amount": "1"}]
EVERYTHING: dict[str, Any] = {
    "code": "everything",
    "name": "Everything",
    "commitment_months": 12,
    "components": [
        {"product": "eld-200", "kind": "hardware", "price": "240.00", "instalments": 12, "bill_on": "signature"},
        {
            "product": "fleet-platform",
            "kind": "service",
            "per_device": True,
            "starts_on": "activation",
            "charge": {"model": "flat", "amount": "25.00"},
        },
        {"product": "setup", "kind": "fee", "price": "50.00"},
        {
            "product": "data-overage",
            "kind": "usage",
            "meter": "data_mb",
            "included_per_device": 1024,
            "charge": {
                "model": "graduated",
                "tiers": [{"up_to": 10000, "unit_amount": "0.010"}, {"up_to": None, "unit_amount": "0.005"}],
            },
        },
        {
            "product": "sms",
            "kind": "usage",
            "meter": "sms",
            "charge": {"model": "per_unit", "unit_amount": "0.05"},
            "min_amount": "1.00",
            "max_amount": "100.00",
        },
        {"product": "api-calls", "kind": "usage", "meter": "api_calls", "charge": {"model": "volume", "tiers": TIERS}},
        {
            "product": "payments",
            "kind": "usage",
            "meter": "txn",
            "pooled": False,
            "charge": {"model": "percentage", "rate": "1.5", "fixed_per_event": "0.10"},
        },
        {
            "product": "storage",
            "kind": "usage",
            "meter": "storage_gb",
            "charge": {"model": "package", "package_size": 100, "package_amount": "4.00"},
        },
        {
            "product": "roaming",
            "kind": "usage",
            "meter": "roaming_mb",
            "charge": {
                "model": "matrix",
                "dimensions": ["device_type"],
                "cells": [
                    {"match": {"device_type": "eld"}, "charge": {"model": "per_unit", "unit_amount": "0.001"}},
                    {"match": {"device_type": "camera"}, "charge": {"model": "graduated", "tiers": TIERS}},
                ],
                "default": {"model": "flat", "amount": "2.00"},
            },
        },
    ],
    "prices": [{"currency": "EUR"}],
}
BASIC = {
    "code": "basic",
    "name": "Basic",
    "components": [{"product": "fleet-platform", "kind": "service", "charge": {"model": "flat", "amount": "10"}}],
    "prices": [{"currency": "EUR"}],
}
CUSTOMER = {
    "external_id": "dupont",
    "name": "Transports Dupont",
    "email": "compta@dupont.test",
    "currency": "EUR",
    "timezone": "Europe/Paris",
    "language": "fr",
    "country": "FR",
    "billing_day": 1,
    "address": {"line1": "4 quai de Bercy", "postal_code": "75012", "city": "Paris"},
}


class Checked:
    """An API client whose every response must conform to the published schema."""

    def __init__(self, client: APIClient) -> None:
        self.client = client

    def call(self, method: str, path: str, at: datetime, body: Any = None, expect: int = 200, **extra: Any) -> Any:
        """``method`` on /api/v1/``path`` at ``at`` (time frozen): ``body`` as JSON, or as the query
        of a GET; the JSON answer, once checked. ``extra``: the request's content type and headers."""
        with time_machine.travel(at, tick=False):
            if method == "get":
                response = self.client.get(f"/api/v1/{path}", body)
            elif "content_type" in extra:
                response = getattr(self.client, method)(f"/api/v1/{path}", body, **extra)
            else:
                response = getattr(self.client, method)(f"/api/v1/{path}", body, format="json", **extra)
        assert response.status_code == expect, response.content
        body = assert_conforms(response)
        return body


@pytest.fixture
def checked(make_client: Callable[..., APIClient], tenant: Tenant) -> dict[str, Checked]:
    return {scope: Checked(make_client(tenant, scope)) for scope in ApiKeyScope.values}


def test_every_response_conforms_to_the_published_schema(
    tenant: Tenant, checked: dict[str, Checked], django_capture_on_commit_callbacks: Any
) -> None:
    api, cloud, ingest = checked["full"], checked["device_cloud"], checked["ingest"]
    secret = generate_webhook_secret()
    tenant.device_cloud_secrets = [secret]
    tenant.save()

    # the catalog, on 1 March
    march = paris(2026, 3, 1, 9)
    for product in PRODUCTS:
        api.call("post", "products", march, product, 201)
    api.call("patch", "products/setup", march, {"description": "Installed by our staff"})
    api.call("get", "products/setup", march)
    api.call("get", "products", march, {"limit": 2})
    for meter in METERS:
        api.call("post", "meters", march, meter, 201)
    api.call("patch", "meters/sms", march, {"name": "Text messages"})
    api.call("get", "meters/api_calls", march)
    api.call("get", "meters", march)
    api.call("post", "tax_rates", march, {"country": "FR", "tax_category": "standard", "rate": "20"}, 201)
    api.call("get", "tax_rates", march)
    plan = api.call("post", "plans", march, EVERYTHING, 201)
    assert [c["kind"] for c in plan["components"]] == ["hardware", "service", "fee", *["usage"] * 6]
    api.call("post", "plans", march, BASIC, 201)
    api.call("get", "plans", march)
    api.call("get", "plans/everything", march)
    api.call(
        "post",
        "plans/everything/price_versions",
        march,
        {
            "currency": "EUR",
            "regions": ["DE"],
            "effective_from": "2026-06-01T00:00:00+02:00",
            "components": [
                {"product": "eld-200", "price": "250.00"},
                {"product": "fleet-platform", "charge": {"model": "flat", "amount": "27.00"}},
                {"product": "setup", "price": "0"},
                {"product": "data-overage", "charge": {"model": "per_unit", "unit_amount": "0.01"}},
                {"product": "sms", "charge": {"model": "per_unit", "unit_amount": "0.04"}, "max_amount": "90"},
                {"product": "api-calls", "charge": {"model": "volume", "tiers": TIERS}},
                {"product": "payments", "charge": {"model": "percentage", "rate": "1"}},
                {"product": "storage", "charge": {"model": "package", "package_size": 50, "package_amount": "2"}},
                {"product": "roaming", "charge": {"model": "flat", "amount": "3"}},
            ],
        },
        201,
    )
    api.call("get", "plans/everything/price_versions", march)
    api.call("post", "customers", march, CUSTOMER, 201)
    api.call("patch", "customers/dupont", march, {"tax_id": "FR40303265045"})
    api.call("get", "customers/dupont", march)
    api.call("get", "customers", march, {"q": "dupont"})
    overrides: list[dict[str, Any]] = [
        {"customer": "dupont", "product": "eld-200", "price": "200.00"},
        {"customer": "dupont", "product": "sms", "charge": {"model": "per_unit", "unit_amount": "0.04"}},
    ]
    for override in overrides:
        api.call("post", "plans/everything/price_overrides", march, override, 201)
    api.call("get", "plans/everything/price_overrides", march)
    quote = api.call(
        "post",
        "price_quotes",
        march,
        {
            "plan": "everything",
            "currency": "EUR",
            "devices": 3,
            "customer": "dupont",
            "usage": [
                {"meter": "data_mb", "quantity": "14000"},
                {"meter": "sms", "quantity": "10"},
                {"meter": "api_calls", "quantity": "2500"},
                {"meter": "txn", "quantity": "370.49", "events": 3},
                {"meter": "storage_gb", "quantity": "250"},
                {"meter": "roaming_mb", "quantity": "100", "dimensions": {"device_type": "eld"}},
            ],
        },
    )
    assert [line["product"] for line in quote["lines"]] == [c["product"] for c in EVERYTHING["components"]]

    # signed on 10 March with three devices; A activated on 15 March
    signed = paris(2026, 3, 10, 10)
    subscription = {
        "external_id": "dupont-fleet",
        "customer": "dupont",
        "plan": "everything",
        "signed_at": "2026-03-10T10:00:00+01:00",
        "devices": [{"device_id": d, "device_type": "eld"} for d in ("A", "B", "C")],
    }
    api.call("post", "subscriptions", signed, subscription, 201)
    activated = paris(2026, 3, 15, 9)
    body = json.dumps({"type": "device.activated", "data": {"device_id": "A", "occurred_at": activated.isoformat()}})
    with django_capture_on_commit_callbacks(execute=True):
        cloud.call(
            "post",
            "webhooks/device-cloud",
            activated,
            body,
            202,
            content_type="application/json",
            HTTP_WEBHOOK_ID="act-A",
            HTTP_WEBHOOK_TIMESTAMP=str(int(activated.timestamp())),
            HTTP_WEBHOOK_SIGNATURE=Webhook(secret).sign("act-A", activated.astimezone(UTC), body),
        )
    api.call("get", "device_cloud_webhooks", activated)
    at = "2026-03-20T10:00:00Z"
    events = [
        ("d-1", "data_mb", {"mb": 3800}),
        ("s-1", "sms", {}),
        ("c-1", "api_calls", {}),
        ("t-1", "txn", {"amount": "100"}),
        ("g-1", "storage_gb", {"gb": 120}),
        ("r-1", "roaming_mb", {"mb": 40}),
    ]
    ingest.call(
        "post",
        "events",
        paris(2026, 3, 20, 12),
        {
            "events": [
                {"transaction_id": tid, "code": code, "device_id": "A", "timestamp": at, "properties": p}
                for tid, code, p in events
            ]
        },
        202,
    )
    api.call("get", "customers/dupont/current_usage", paris(2026, 3, 25, 12))

    # changes: previews of each action, then devices added and removed
    mid_march = paris(2026, 3, 25, 12)
    previews: list[dict[str, Any]] = [
        {"action": "add_devices", "devices": [{"device_id": "D"}], "preview": True},
        {"action": "remove_devices", "device_ids": ["C"], "preview": True},
        {"action": "change_plan", "plan": "basic", "preview": True},
        {"action": "cancel", "preview": True},
    ]
    for change in previews:
        api.call("post", "subscriptions/dupont-fleet/changes", mid_march, change)
    applied: list[dict[str, Any]] = [
        {"action": "add_devices", "devices": [{"device_id": "D"}]},
        {"action": "remove_devices", "device_ids": ["D"]},
    ]
    for change in applied:
        api.call("post", "subscriptions/dupont-fleet/changes", mid_march, change, 201)
    api.call("get", "subscriptions/dupont-fleet", mid_march)
    api.call("get", "subscriptions", mid_march, {"customer": "dupont"})

    # billed on 1 April, finalized, credited in part, then in full, and a draft voided
    april = paris(2026, 4, 1, 0, 30)
    with django_capture_on_commit_callbacks(execute=True):
        run = api.call("post", "bill_runs", april, {"billing_date": "2026-04-01"}, 202)
    api.call("get", f"bill_runs/{run['id']}", april)
    api.call("get", "bill_runs", april)
    [invoice] = api.call("get", "invoices", april, {"customer": "dupont"})["results"]
    assert {line["type"] for line in invoice["lines"]} == {"hardware", "service", "fee", "usage"}
    api.call("get", f"invoices/{invoice['id']}", april)
    with django_capture_on_commit_callbacks(execute=True):
        finalized = api.call("post", f"invoices/{invoice['id']}/finalize", april)
    line = finalized["lines"][0]["id"]
    partial = {"lines": [{"line": line, "amount": "5"}], "reason": "Goodwill"}
    api.call("post", f"invoices/{invoice['id']}/credit_notes", april, partial, 201)
    with django_capture_on_commit_callbacks(execute=True):
        api.call("post", f"invoices/{invoice['id']}/credit_notes", april, {"reason": "Returned"}, 201)
    api.call("get", "invoices", april, {"kind": "credit_note"})
    change = {"action": "change_plan", "plan": "basic", "effective_at": "2026-04-16T10:00:00+02:00", "preview": True}
    preview = api.call("post", "subscriptions/dupont-fleet/changes", paris(2026, 4, 16, 10), change)
    assert [line["type"] for line in preview["lines"]] == ["credit", "service"]
    api.call("get", "customers/dupont/current_usage", paris(2026, 4, 2, 12))
    with django_capture_on_commit_callbacks(execute=True):
        run = api.call("post", "bill_runs", paris(2026, 5, 1, 0, 30), {"billing_date": "2026-05-01"}, 202)
    [may] = api.call("get", "invoices", paris(2026, 5, 1, 1), {"status": "draft"})["results"]
    api.call("post", f"invoices/{may['id']}/void", paris(2026, 5, 1, 1), {"reason": "Rebuilt"})
    api.call("post", "subscriptions/dupont-fleet/changes", paris(2026, 5, 2), {"action": "cancel"}, 201)

    # partners, on 3 May: AlpNet with a graduated service leg, its user and key; Dupont moves to it
    may = paris(2026, 5, 3, 9)
    alpnet = {
        "code": "alpnet",
        "name": "AlpNet",
        "email": "channel@alpnet.test",
        "country": "FR",
        "commission_plan": {
            "hardware": "5",
            "service": {"tiers": [{"up_to": "10000.00", "rate": "20"}, {"up_to": None, "rate": "25"}]},
        },
    }
    api.call("post", "partners", may, alpnet, 201)
    api.call("patch", "partners/alpnet", may, {"name": "AlpNet SAS", "price_book": "alpnet"})
    api.call("get", "partners/alpnet", may)
    api.call("get", "partners", may, {"status": "active"})
    user = api.call("post", "partners/alpnet/users", may, {"email": "lea@alpnet.test", "role": "admin"}, 201)
    api.call("patch", f"partners/alpnet/users/{user['id']}", may, {"role": "sales", "language": "fr"})
    api.call("get", "partners/alpnet/users", may)
    api.call("post", "partners/alpnet/api_keys", may, {"name": "AlpNet shop"}, 201)
    api.call("get", "partners/alpnet/api_keys", may)
    api.call("patch", "customers/dupont", may, {"partner": "alpnet"})
    # the test partner's own key: its customer and a subscription on a plan offered to partners
    partner = checked["partner"]
    api.call("patch", "plans/basic", may, {"partner_visible": True})
    partner.call("get", "partner/plans", may)
    customer = {"external_id": "partner-customer", "name": "Partner's customer", "email": "p@x.test", "country": "FR"}
    partner.call("post", "partner/customers", may, customer, 201)
    partner.call("get", "partner/customers", may)
    partner.call("get", "partner/customers/partner-customer", may)
    subscription = {
        "external_id": "partner-sub",
        "customer": "partner-customer",
        "plan": "basic",
        "signed_at": "2026-05-03T09:00:00+02:00",
        "devices": [{"device_id": "P1"}],
    }
    partner.call("post", "partner/subscriptions", may, subscription, 201)
    partner.call("get", "partner/subscriptions/partner-sub", may)
    partner.call("get", "partner/customers/partner-customer/current_usage", may)
