"""The seller identity's tests start from tenants that have not filled in their settings page."""

from collections.abc import Callable

import pytest

from tenancy.models import Tenant

TenantMaker = Callable[..., Tenant]


@pytest.fixture
def tenant(make_tenant: TenantMaker) -> Tenant:
    return make_tenant("acme", name="Acme Telematics", seller=False)


@pytest.fixture
def other_tenant(make_tenant: TenantMaker) -> Tenant:
    return make_tenant("globex", name="Globex Devices", seller=False)
