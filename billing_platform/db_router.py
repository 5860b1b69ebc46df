"""Reports on a read replica: the one place that decides which database a read goes to.

Every write, and every read by default, goes to the primary (``default``). A report (revenue,
MRR, usage statistics, receivables, the commission report, the back-office's CSV exports) reads
inside ``replica_reads(tenant=...)``: while the block runs, the ORM's reads go to the database named
by ``settings.REPORTS_DATABASE`` (``replica`` when ``DATABASE_REPLICA_URL`` is set, else
``default``), and raw SQL takes its cursor from ``reads_connection()``. Routing is explicit, never
guessed from the model: the models a report reads are read by writes too (a bill run, a statement's
build), and those must see the primary's latest rows.

The replica connection is behind row-level security like the primary's: the block switches it to
the application role and the report's tenant (``rls.tenant_context(tenant, using=...)``) and puts
back what was there at its end, so a report sees its tenant's rows only, and a connection that
Django keeps open starts the next block from a known state.

A replica lags behind the primary (streaming replication: usually well under a second). A report
read from it may miss the last second's writes, which a report can afford and a write cannot: code
that reads in order to write never runs in the block. A block's writes still go to the primary.
"""

import contextvars
import functools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from billing_platform import rls

REPLICA = "replica"

# The database that reads of the current block go to; None outside any block (the primary).
_reads_alias: contextvars.ContextVar[str | None] = contextvars.ContextVar("tripod_reads_alias", default=None)
# The tenant the current block set on that connection.
_reads_tenant: contextvars.ContextVar[str | None] = contextvars.ContextVar("tripod_reads_tenant", default=None)


def reports_database() -> str:
    """The alias reports read from: ``settings.REPORTS_DATABASE`` when it is a configured database,
    else the primary."""
    alias: str = getattr(settings, "REPORTS_DATABASE", DEFAULT_DB_ALIAS)
    return alias if alias in settings.DATABASES else DEFAULT_DB_ALIAS


def reads_alias() -> str:
    """The alias the current block's reads go to (the primary outside a ``replica_reads`` block)."""
    return _reads_alias.get() or DEFAULT_DB_ALIAS


def reads_connection() -> BaseDatabaseWrapper:
    """The connection for a report's raw SQL: the replica's inside a ``replica_reads`` block."""
    return connections[reads_alias()]


@contextmanager
def replica_reads(*, tenant: Any) -> Iterator[str]:
    """Run the block's reads on the reports' database, under ``tenant``'s row-level security (a
    ``Tenant`` or its id). Yields the alias. Nested blocks for the same tenant cost nothing; with no
    replica configured the block changes nothing."""
    alias = reports_database()
    tenant_text = rls.tenant_id_text(tenant)
    if alias == DEFAULT_DB_ALIAS or (_reads_alias.get() == alias and _reads_tenant.get() == tenant_text):
        yield reads_alias()
        return
    with rls.tenant_context(tenant_text or None, using=alias):
        alias_token = _reads_alias.set(alias)
        tenant_token = _reads_tenant.set(tenant_text)
        try:
            yield alias
        finally:
            _reads_alias.reset(alias_token)
            _reads_tenant.reset(tenant_token)


P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


def replica_report(func: Callable[P, R]) -> Callable[P, R]:
    """Compute a report on the reports' database: the function takes its tenant as the keyword
    argument ``tenant`` or ``tenant_id`` and returns what it read in full (lists, dataclasses),
    never a lazy QuerySet, which would be read after the block, on the primary."""

    @functools.wraps(func)
    def report(*args: P.args, **kwargs: P.kwargs) -> R:
        tenant = kwargs["tenant"] if "tenant" in kwargs else kwargs["tenant_id"]
        with replica_reads(tenant=tenant):
            return func(*args, **kwargs)

    return report


def replica_rows(rows: Iterable[T], *, tenant: Any) -> Iterator[T]:
    """``rows`` read on the reports' database as they are iterated: a download streamed after its
    view has returned."""
    with replica_reads(tenant=tenant):
        yield from rows


class ReplicaRouter:
    """``DATABASE_ROUTERS``: reads in a ``replica_reads`` block go to the replica; everything else,
    and every write, to the primary. Only the primary is migrated: a replica is a copy of it."""

    def db_for_read(self, model: Any, **hints: Any) -> str:
        # Never None: Django would then read from the database the hinted instance came from, and a
        # relation followed after the block from an object read in it would query the replica,
        # whose tenant setting the block has put back (the policy would hide every row).
        return _reads_alias.get() or DEFAULT_DB_ALIAS

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True  # the same rows on both: an object read from the replica may point to one of the primary

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool:
        return db == DEFAULT_DB_ALIAS
