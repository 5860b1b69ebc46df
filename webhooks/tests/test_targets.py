"""Targets: https and public addresses only, checked when an endpoint is saved and again at every
try (DNS rebinding), the try connecting to the address that was checked."""

from typing import Any

import pytest
from django.test import override_settings

from tenancy.models import Tenant
from webhooks.delivery import deliveries_send
from webhooks.errors import InvalidWebhookEndpoint
from webhooks.models import WebhookAttempt, WebhookDelivery
from webhooks.outbox import event_emit
from webhooks.targets import address_refused
from webhooks.tests.factories import T0, endpoint
from webhooks.tests.receiver import Receiver

pytestmark = pytest.mark.django_db

PUBLIC = "93.184.215.14"


def dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    """Names resolve to ``answers`` (changeable while the test runs); returns the names looked up."""
    looked_up: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        looked_up.append(host)
        if host in answers:
            return answers[host]
        if host.replace(".", "").isdigit() or ":" in host:
            return [host]  # an address written in the URL is its own
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.setattr("webhooks.targets.resolve", resolve)
    return looked_up


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("10.0.0.5", True),  # private
        ("172.16.3.4", True),
        ("192.168.1.10", True),
        ("127.0.0.1", True),  # loopback
        ("169.254.169.254", True),  # link-local: the cloud metadata service
        ("100.64.0.1", True),  # shared (carrier-grade NAT)
        ("0.0.0.0", True),
        ("224.0.0.1", True),  # multicast
        ("::1", True),
        ("fe80::1", True),
        ("fd00::1", True),  # unique local
        ("::ffff:127.0.0.1", True),  # IPv4 loopback written as IPv6
        ("93.184.215.14", False),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", False),
    ],
)
def test_which_addresses_are_refused(address: str, refused: bool) -> None:
    assert address_refused(address) is refused


@override_settings(WEBHOOKS_ALLOW_PRIVATE_TARGETS=False)
@pytest.mark.parametrize(
    ("url", "code", "message"),
    [
        ("http://hooks.acme.test/in", "https_required", "The URL must start with https://."),
        ("https://127.0.0.1/in", "private_address", "127.0.0.1 resolves to a private or reserved address (127.0.0.1)."),
        (
            "https://10.1.2.3:8443/in",
            "private_address",
            "10.1.2.3 resolves to a private or reserved address (10.1.2.3).",
        ),
        (
            "https://169.254.169.254/latest/meta-data",
            "private_address",
            "169.254.169.254 resolves to a private or reserved address (169.254.169.254).",
        ),
        ("https://[::1]/in", "private_address", "::1 resolves to a private or reserved address (::1)."),
        (
            "https://intranet.acme.test/in",
            "private_address",
            "intranet.acme.test resolves to a private or reserved address (192.168.0.7).",
        ),
        (
            "https://half.acme.test/in",
            "private_address",
            "half.acme.test resolves to a private or reserved address (10.0.0.1).",
        ),
        (
            "https://nowhere.acme.test/in",
            "unresolvable_host",
            "nowhere.acme.test does not resolve: [Errno -2] Name or service not known",
        ),
        ("https://user:pw@hooks.acme.test/in", "credentials_in_url", None),
        ("ftp://hooks.acme.test/in", "https_required", None),
        ("https:///in", "invalid_url", "The URL has no host."),
        ("https://hooks.acme.test:99999/in", "invalid_url", "This is not a URL."),
    ],
)
def test_an_endpoint_to_a_private_or_plain_http_target_is_refused(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch, url: str, code: str, message: str | None
) -> None:
    dns(monkeypatch, {"intranet.acme.test": ["192.168.0.7"], "half.acme.test": [PUBLIC, "10.0.0.1"]})
    with pytest.raises(InvalidWebhookEndpoint) as raised:
        endpoint(tenant, url)
    [error] = raised.value.errors
    assert (error.field, error.code) == ("url", code)
    if message:
        assert error.message == message


@override_settings(WEBHOOKS_ALLOW_PRIVATE_TARGETS=False)
def test_an_https_endpoint_on_a_public_address_is_accepted(tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    dns(monkeypatch, {"hooks.acme.test": [PUBLIC]})
    hook, secret = endpoint(tenant, "https://hooks.acme.test/tripod?source=billing")
    assert hook.url == "https://hooks.acme.test/tripod?source=billing"
    assert secret.startswith("whsec_")


def test_private_targets_are_allowed_when_the_deployment_says_so(tenant: Tenant) -> None:
    # conftest.py: WEBHOOKS_ALLOW_PRIVATE_TARGETS is on in tests, as under DEBUG
    hook, _ = endpoint(tenant, "http://127.0.0.1:8470/tripod")
    assert hook.url == "http://127.0.0.1:8470/tripod"


def test_a_name_that_resolves_to_a_private_address_at_delivery_is_not_called(
    tenant: Tenant, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    # given: an endpoint whose name resolved to a public address when it was saved
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    answers = {"hooks.acme.test": [PUBLIC]}
    dns(monkeypatch, answers)
    hook, _ = endpoint(tenant, "https://hooks.acme.test:%d/in" % receiver.port)
    event_emit(tenant=tenant, type="invoice.finalized", data={}, at=T0)
    # when: the name now resolves to the loopback, where a receiver listens (DNS rebinding)
    answers["hooks.acme.test"] = ["127.0.0.1"]
    deliveries_send(at=T0)
    # then: the try fails without any connection, and is retried on the schedule
    assert receiver.received == []
    [attempt] = WebhookAttempt.objects.filter(delivery__endpoint=hook)
    assert (attempt.status_code, attempt.error) == (
        None,
        "hooks.acme.test resolves to a private or reserved address (127.0.0.1).",
    )
    assert WebhookDelivery.objects.get(endpoint=hook).status == "pending"


def test_a_try_connects_to_the_address_it_checked_with_the_urls_host(
    tenant: Tenant, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a name that no DNS knows, resolved (once per try) to the receiver's address
    looked_up = dns(monkeypatch, {"hooks.acme.test": ["127.0.0.1"]})
    endpoint(tenant, "http://hooks.acme.test:%d/in?tenant=acme" % receiver.port)
    event_emit(tenant=tenant, type="invoice.finalized", data={}, at=T0)
    looked_up.clear()
    # when
    deliveries_send(at=T0)
    # then: the request reached 127.0.0.1 with the URL's host and path, after one lookup
    [got] = receiver.received
    assert got.headers["host"] == "hooks.acme.test:%d" % receiver.port
    assert got.path == "/in?tenant=acme"
    assert looked_up == ["hooks.acme.test"]


def test_https_connects_to_the_checked_address_and_checks_the_certificate_against_the_urls_name(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: an https receiver with a certificate for hooks.acme.test, from a test authority that
    # this test trusts; two names resolving to it
    from webhooks.tests.receiver import TLS

    server = Receiver(tls=True).start()
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(TLS / "ca.pem"))
        dns(monkeypatch, {"hooks.acme.test": ["127.0.0.1"], "other.acme.test": ["127.0.0.1"]})
        good, _ = endpoint(tenant, "https://hooks.acme.test:%d/in" % server.port)
        wrong, _ = endpoint(tenant, "https://other.acme.test:%d/in" % server.port)
        event_emit(tenant=tenant, type="invoice.finalized", data={}, at=T0)
        # when
        deliveries_send(at=T0)
        # then: the certificate matches hooks.acme.test only
        assert WebhookDelivery.objects.get(endpoint=good).status == "delivered"
        [refused] = WebhookAttempt.objects.filter(delivery__endpoint=wrong)
        assert (refused.status_code, refused.error) == (
            None,
            "SSLError: hostname 'other.acme.test' doesn't match 'hooks.acme.test'",
        )
        assert [r.headers["host"] for r in server.received] == ["hooks.acme.test:%d" % server.port]

        # an authority nobody trusts: the try fails before anything is sent
        monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent/ca.pem")
        event_emit(tenant=tenant, type="invoice.voided", data={}, at=T0)
        deliveries_send(at=T0)
        latest = WebhookAttempt.objects.filter(delivery__endpoint=good).order_by("-id").first()
        assert latest is not None
        assert "CERTIFICATE_VERIFY_FAILED" in latest.error
        assert len(server.received) == 1
    finally:
        server.stop()
