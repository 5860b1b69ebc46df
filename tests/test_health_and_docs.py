import re
from typing import Any

import pytest
from django.test import Client


@pytest.mark.django_db
def test_healthz_reports_database_and_broker(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


@pytest.mark.django_db
def test_healthz_says_which_dependency_is_down(client: Client, settings: Any, monkeypatch: Any) -> None:
    from billing_platform import health

    monkeypatch.setattr(health, "_broker_ok", lambda: False)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "broker": "down"}


def test_openapi_schema_is_served_and_lists_the_api(client: Client) -> None:
    response = client.get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    assert "/api/v1/customers" in schema["paths"]
    assert "/api/v1/customers/{external_id}" in schema["paths"]
    assert schema["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"


def test_swagger_ui_is_served_without_a_cdn(client: Client) -> None:
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    # Every script and stylesheet is served from this host; "cdn" alone could appear inside the
    # page's random CSRF token, so look for addresses, not letters.
    sources = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)', html)
    assert sources
    assert not [s for s in sources if s.startswith(("http:", "https:", "//"))], sources
    assert "jsdelivr" not in html.lower()
    assert "unpkg" not in html.lower()


@pytest.mark.django_db
def test_unknown_api_path_is_problem_json(client: Client) -> None:
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"
