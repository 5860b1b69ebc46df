"""The URLconf: every API route is mounted once, and the payments routes resolve by name."""

from collections import Counter

from django.urls import resolve, reverse

from tests.api_routes import api_routes


def test_every_api_route_is_mounted_once() -> None:
    # An app's urls included twice would mount each of its routes twice (the second never reached).
    mounted = Counter(route.route for route in api_routes())
    assert [route for route, times in mounted.items() if times > 1] == []


def test_the_payments_routes_resolve_by_name() -> None:
    paths = {
        "payments": "/api/v1/payments",
        "dunning-policy": "/api/v1/dunning_policy",
        "dunning-runs": "/api/v1/dunning_runs",
        "receivables-report": "/api/v1/reports/receivables",
        "webhooks-stripe": "/api/v1/webhooks/stripe",
    }
    for name, path in paths.items():
        assert reverse(name) == path
        assert resolve(path).url_name == name
    assert reverse("customer-dunning-policy", kwargs={"external_id": "dupont"}) == (
        "/api/v1/customers/dupont/dunning_policy"
    )
    assert reverse("invoice-pay", kwargs={"pk": "x"}) == "/api/v1/invoices/x/pay"
