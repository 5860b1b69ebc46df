"""Webhook test data: endpoints made through the service, as the API makes them."""

from collections.abc import Sequence
from datetime import UTC, datetime

from tenancy.actors import Actor
from tenancy.models import Tenant
from webhooks.models import WebhookEndpoint
from webhooks.services import webhook_endpoint_create

ACTOR = Actor.system("tests")
T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)


def endpoint(
    tenant: Tenant, url: str, *, events: Sequence[str] = ("*",), description: str = "", at: datetime = T0
) -> tuple[WebhookEndpoint, str]:
    """An enabled endpoint of ``tenant`` receiving ``events`` at ``url``, and its secret."""
    return webhook_endpoint_create(
        tenant=tenant, actor=ACTOR, at=at, url=url, events=list(events), description=description
    )
