"""The charging and dunning entry points the ledger calls are recorded, not run: each has its own
tests; here they are what the ledger hands over."""

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def charges(monkeypatch: Any) -> list[dict[str, Any]]:
    """Calls of ``payments.charging.invoices_charge_enqueue``."""
    from payments import charging

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(
        charging,
        "invoices_charge_enqueue",
        lambda ids, *, tenant_id, trigger: calls.append({"ids": list(ids), "tenant_id": tenant_id, "trigger": trigger}),
    )
    return calls


@pytest.fixture(autouse=True)
def reactivations(monkeypatch: Any) -> list[dict[str, Any]]:
    """Calls of ``payments.dunning.customers_reactivate_if_clear``."""
    from payments import dunning

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(
        dunning,
        "customers_reactivate_if_clear",
        lambda *, tenant_id, customer_ids, at: calls.append(
            {"tenant_id": tenant_id, "customer_ids": list(customer_ids), "at": at}
        ),
    )
    return calls
