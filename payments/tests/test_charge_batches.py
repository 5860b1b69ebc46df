"""Charging tasks stay within the tasks' time limit: 10 invoices per task at most."""

import uuid
from typing import Any

import pytest

from payments import charging, tasks


@pytest.mark.django_db
def test_invoices_are_charged_by_tasks_of_10(monkeypatch: Any, django_capture_on_commit_callbacks: Any) -> None:
    sent: list[tuple[list[str], dict[str, Any]]] = []
    monkeypatch.setattr(tasks.invoices_charge_task, "delay", lambda ids, **kwargs: sent.append((ids, kwargs)))
    ids = [uuid.uuid4() for _ in range(25)]
    tenant_id = uuid.uuid4()
    with django_capture_on_commit_callbacks(execute=True):
        charging.invoices_charge_enqueue(ids, tenant_id=tenant_id, trigger="dunning")
    assert [len(batch) for batch, _ in sent] == [10, 10, 5]
    assert [x for batch, _ in sent for x in batch] == [str(i) for i in ids]
    assert {(k["trigger"], k["tenant_id"]) for _, k in sent} == {("dunning", str(tenant_id))}
