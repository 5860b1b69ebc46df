from collections.abc import Iterator

import pytest

from subscriptions.models import Subscription
from tenancy.actors import Actor
from tenancy.models import Tenant
from usage.partitions import forget_known_partitions
from usage.tests.factories import build_fleet

ACTOR = Actor.system("tests")


@pytest.fixture(autouse=True)
def fresh_partitions() -> Iterator[None]:
    # Test databases are rolled back between tests: partitions created in one are gone in the next.
    forget_known_partitions()
    yield
    forget_known_partitions()


@pytest.fixture
def fleet(tenant: Tenant) -> Subscription:
    """Transports Dupont (Paris, billing day 1) on a plan billing six meters, devices A, B, C."""
    return build_fleet(tenant)
