"""Model instances from the columns of a hand-written statement, for the few hot reads that join
several tables in one query (a portal request's session, its tenant, customer and user) where
building the ORM's query would cost more than running it.

``ModelColumns(Customer, "c")`` gives the select list (``c."id", c."tenant_id", ...``, in the order
of the model's concrete fields, less those skipped) and turns a slice of a fetched row back into a
``Customer``, as the ORM would: each field's ``from_db_value`` applied (JSON, encrypted fields), the
instance marked as loaded from the database, skipped fields deferred (read on access, like
``.defer()``)."""

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model

M = TypeVar("M", bound=Model)


class ModelColumns(Generic[M]):
    def __init__(self, model: type[M], alias: str, *, skip: Sequence[str] = ()) -> None:
        unknown = set(skip) - {f.attname for f in model._meta.concrete_fields}
        if unknown:
            raise ValueError(f"{model.__name__} has no column {sorted(unknown)}")
        self.model = model
        self.fields = [f for f in model._meta.concrete_fields if f.attname not in skip]
        self.names = [f.attname for f in self.fields]
        self.sql = ", ".join(f'{alias}."{f.column}"' for f in self.fields)
        self.width = len(self.fields)
        self._converters = [(i, f) for i, f in enumerate(self.fields) if hasattr(f, "from_db_value")]

    def instance(self, row: Sequence[Any], start: int = 0, *, using: str = DEFAULT_DB_ALIAS) -> M:
        """The instance whose columns are ``row[start:start + width]``."""
        values = list(row[start : start + self.width])
        connection = connections[using]
        for i, field in self._converters:
            values[i] = field.from_db_value(values[i], None, connection)
        return self.model.from_db(using, self.names, values)
