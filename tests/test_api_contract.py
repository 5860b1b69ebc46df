"""What the published schema promises a generated client, checked on the schema itself, and what the
server does with what no operation declares: errors as problem+json, the Idempotency-Key header,
strict bodies, unknown query parameters refused."""

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.api_routes import api_routes

PROBLEM = "application/problem+json"
IDEMPOTENT_OPERATIONS = {
    "bill_runs_create",
    "customers_create",
    "customers_portal_sessions_create",
    "customers_portal_users_create",
    "dunning_runs_create",
    "customers_payment_method_set",
    "invoices_credit_notes_create",
    "invoices_pay",
    "meters_create",
    "partner_customers_create",
    "partner_subscriptions_create",
    "partner_subscriptions_devices_bind",
    "partners_api_keys_create",
    "partners_create",
    "partners_users_create",
    "payments_create",
    "payments_refunds_create",
    "plans_create",
    "price_overrides_create",
    "price_versions_create",
    "products_create",
    "revenue_export_targets_create",
    "revenue_export_targets_exports_create",
    "revenue_periods_close",
    "revenue_runs_create",
    "subscriptions_changes_create",
    "subscriptions_create",
    "subscriptions_devices_bind",
    "support_cases_create",
    "support_cases_credit_notes_create",
    "support_cases_messages_create",
    "tax_rates_create",
    "webhook_deliveries_replay",
    "webhook_endpoints_create",
    "webhook_endpoints_rotate_secret",
}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    from drf_spectacular.generators import SchemaGenerator

    return dict(SchemaGenerator().get_schema(request=None, public=True))


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict)
    ]


def test_every_error_of_every_operation_is_problem_json(schema: dict[str, Any]) -> None:
    ops = operations(schema)
    assert len(ops) >= 40
    for path, method, operation in ops:
        errors = {code: r for code, r in operation["responses"].items() if code.startswith("4")}
        # 400 (malformed, unknown query parameter) and 429 on every operation, whatever its view does
        assert {"400", "429"} <= set(errors), (path, method)
        for code, response in errors.items():
            assert response["content"] == {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}, (
                path,
                method,
                code,
            )
        assert set(errors["429"]["headers"]) == {"Retry-After"}
        located = {p["in"] for p in operation.get("parameters", [])}
        if "path" in located:
            assert "404" in errors, (path, method)
        if "requestBody" in operation:
            assert {"413", "415", "422"} <= set(errors), (path, method)
        if operation.get("security") != [{"ApiKey": []}, {}]:
            assert {"401", "403"} <= set(errors), (path, method)


def test_the_problem_schema_is_rfc_9457_with_field_errors(schema: dict[str, Any]) -> None:
    problem = schema["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}
    assert problem["properties"]["errors"]["items"] == {"$ref": "#/components/schemas/ProblemError"}
    assert schema["components"]["schemas"]["ProblemError"]["required"] == ["field", "code", "message"]


def test_idempotency_key_is_declared_on_every_post_that_takes_it(schema: dict[str, Any]) -> None:
    declared = set()
    for _, _, operation in operations(schema):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "header" and parameter["name"] == "Idempotency-Key":
                declared.add(operation["operationId"])
                assert parameter["schema"]["maxLength"] == 255
                assert "409" in operation["responses"]
                success = [r for code, r in operation["responses"].items() if code.startswith("2")]
                assert all("Idempotent-Replayed" in r["headers"] for r in success), operation["operationId"]
    assert declared == IDEMPOTENT_OPERATIONS


def test_request_bodies_refuse_unknown_fields_in_the_schema(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    body = schema["paths"]["/api/v1/customers"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    customer_input = components[body["$ref"].rsplit("/", 1)[1]]
    assert customer_input["additionalProperties"] is False
    # the country is the shared CountryCode, with the note that address.country may give it instead
    country = customer_input["properties"]["country"]
    assert country["allOf"] == [{"$ref": "#/components/schemas/CountryCode"}]
    assert "address.country" in country["description"]
    assert customer_input["properties"]["metadata"]["maxProperties"] == 50
    assert components["CountryCode"]["pattern"] == "^[A-Za-z]{2}$"
    assert components["EventBatchRequest"]["additionalProperties"] is False


def test_the_device_cloud_webhook_declares_its_signature_headers_and_bodies(schema: dict[str, Any]) -> None:
    operation = schema["paths"]["/api/v1/webhooks/device-cloud"]["post"]
    headers = {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}
    assert {name for name, p in headers.items() if p.get("required")} == {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
    assert {"ce-id", "ce-type", "ce-source", "ce-specversion", "ce-time", "ce-subject"} <= set(headers)
    content = operation["requestBody"]["content"]
    components = schema["components"]["schemas"]
    json_body = components[content["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert json_body == {
        "anyOf": [
            {"$ref": "#/components/schemas/DeviceEventRequest"},
            {"$ref": "#/components/schemas/DeviceCloudEventDataRequest"},
        ]
    }
    event = components["DeviceEventRequest"]
    assert event["properties"]["type"]["$ref"].endswith("Enum")
    assert components["DeviceEventDataRequest"]["required"] == ["device_id", "occurred_at"]
    assert content["application/cloudevents+json"]["schema"] == {"$ref": "#/components/schemas/DeviceCloudEventRequest"}
    assert operation["security"] == [{"ApiKey": []}, {}]  # a key, or ?tenant= and the signature


def test_the_cloudevents_batch_is_an_array(schema: dict[str, Any]) -> None:
    content = schema["paths"]["/api/v1/events"]["post"]["requestBody"]["content"]
    assert content["application/cloudevents-batch+json"]["schema"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/UsageCloudEventRequest"},
    }
    assert content["application/cloudevents+json"]["schema"] == {"$ref": "#/components/schemas/UsageCloudEventRequest"}


@pytest.mark.django_db
def test_an_unknown_query_parameter_is_a_400_naming_it(api: APIClient) -> None:
    # a misspelt filter used to return the whole unfiltered list
    response = api.get("/api/v1/invoices", {"stauts": "draft", "limit": "10"})
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert response.json() == {
        "type": "https://tripod.dev/problems/unknown_query_parameter",
        "title": "Unknown query parameter",
        "status": 400,
        "detail": "Unknown query parameter: stauts. This operation takes: "
        "cursor, customer, date_from, date_to, kind, limit, status.",
        "code": "unknown_query_parameter",
        "errors": [{"field": "stauts", "code": "unknown_query_parameter", "message": "Unknown query parameter."}],
    }


@pytest.mark.django_db
def test_every_api_route_refuses_unknown_query_parameters(api: APIClient) -> None:
    # every route of the URLconf, with made-up path values: the parameter is refused before the
    # view looks anything up, so the answer is the same 400 for a path naming nothing
    checked = 0
    for route in api_routes():
        path = route.path(**dict.fromkeys(route.params, "00000000-0000-0000-0000-000000000000"))
        for method in route.methods:
            response = getattr(api, method)(path + "?bogus=1&also=2", format="json")
            assert response.status_code == 400, (method, path, response.content)
            assert [e["field"] for e in response.json()["errors"]] == ["also", "bogus"], (method, path)
            checked += 1
    assert checked >= 40


@pytest.mark.django_db
def test_declared_query_parameters_still_work(api: APIClient) -> None:
    assert api.get("/api/v1/customers", {"q": "dupont", "limit": "5"}).status_code == 200
    assert api.get("/api/v1/invoices", {"date_from": ""}).status_code == 422  # an empty date is no date


def test_the_schema_itself_takes_its_format_parameter(client: Client) -> None:
    assert client.get("/api/v1/schema/?format=json").status_code == 200
