"""Generation counters in Redis that tell a cached projection its inputs changed.

A cache entry records the generations it was computed under and is served only while they are all
unchanged. There are three:

- **global**: bumped by a write to an input table made with no tenant set (the tables' owner: a
  migration, a script, the test suite's factories); it invalidates every tenant.
- **tenant**: bumped by any write to an input table (``INPUT_TABLES``) made under that tenant's
  row-level security. The writes are seen where every statement passes, the connection's execute
  wrapper (``watch_writes``): ORM saves, ``update()``, ``bulk_create``, raw SQL alike, so no service
  can forget to invalidate.
- **customer**: bumped by usage ingestion for the customers of a batch (``usage_changed``). Usage
  tables are left out of the tenant's list on purpose: ingestion writes all day, and a batch
  concerns a few customers only.

Why an entry is never served stale: a read takes the generations *before* it reads the database,
and a write bumps them *after* its transaction commits. A read that took the generations before the
bump stores its entry under the old generation, whatever rows it saw, and that entry is never
served again; a read that took them after the bump reads the committed rows. Two rules keep this:

- Reads inside a transaction (``in_transaction``) bypass the cache, neither served nor stored: an
  entry computed from rows the transaction changed but has not committed (and may roll back) would
  outlive them. Reads of the API and the portal run in autocommit.
- A write inside a transaction bumps once, when the transaction commits: one pending bump per
  connection (``_Pending``), registered with ``transaction.on_commit``, whose keys grow with each
  write; a rollback drops it with the rows. A write in autocommit bumps at once, after the
  statement (committed by then).

Redis unreachable: a read computes afresh (nothing is served from the cache). A bump that fails
(timeout, connection error) is remembered by the process: its next call that reaches Redis bumps
the global generation first, in the same round trip, which retires every entry, so an entry never
outlives a lost bump by more than the time Redis stays unreachable from that process (and at most
``ENTRY_TTL``, should the process end first). After a failed call the process's reads leave Redis
alone for ``PAUSE_SECONDS`` and compute afresh: a Redis that hangs, rather than refusing
connections, would otherwise add its socket timeout to every read. Bumps are always tried, so that
a lost one is paid as soon as Redis answers again: pausing them would leave other processes serving
entries older than this process's writes.

A Redis restored from a snapshot (RDB or AOF) brings back old counters and old entries together,
consistently, so the generations alone would serve an entry computed before writes the snapshot
does not hold. Each entry is therefore stamped with the server's ``run_id`` (``INFO server``, new
at every start), read in the same round trip as the generations: an entry of another run is a miss.

Statements that bypass the execute wrappers are not seen: psycopg's ``cursor.copy()`` (``COPY ...
FROM STDIN``) among them. The code COPYs only into usage staging and partition tables, which are no
inputs; whoever COPYs into an input table must call ``bump`` after it.
"""

import logging
import re
import time
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

import redis
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

logger = logging.getLogger(__name__)

PREFIX = "tripod:gen:"
GLOBAL = PREFIX + "global"
# How long a cache entry may live at most (seconds): see the module's docstring.
ENTRY_TTL = 3600

# The tables whose rows a projection reads (current usage: customers and partners, the tenant's tax
# settings, the catalog and its prices, subscriptions, devices, slots, the service-charge ledger,
# changes; invoicing settings), by app prefix, less the tables that are no input (sessions, logins,
# audit). A table added to one of these apps is an input until said otherwise: the safe default.
INPUT_PREFIXES = ("customers_", "catalog_", "subscriptions_", "invoicing_invoicingsettings")
INPUT_EXACT = frozenset({"tenancy_tenant"})
NOT_INPUTS = frozenset(
    {
        "customers_portaluser",
        "customers_portallink",
        "customers_portalsession",
        "customers_portalinvitation",
        "customers_portallogincode",
        "subscriptions_devicecloudwebhook",
    }
)
# The statements that write, and the table each writes: INSERT INTO t, UPDATE t, DELETE FROM t,
# TRUNCATE t, MERGE INTO t, COPY t FROM (when run through ``execute``); a CTE may hold several. A
# table may be schema-qualified (``public.t``, ``"public"."t"``): the table's own name is kept.
_WRITE = re.compile(
    r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?|MERGE\s+INTO|COPY)\s+(?:ONLY\s+)?"
    r'(?:"?\w+"?\s*\.\s*)?"?(\w+)"?',
    re.IGNORECASE,
)
_WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "WITH", "TRUNCA", "MERGE", "COPY")
# Whitespace and comments before the statement's first word.
_LEADING = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.DOTALL)


def is_input_table(table: str) -> bool:
    table = table.lower()
    if table in NOT_INPUTS:
        return False
    return table in INPUT_EXACT or table.startswith(INPUT_PREFIXES)


# Statements that write one table, named right after their first word: only their start is read
# (a bulk insert of thousands of rows is a long text, and scanning it all cost milliseconds).
_ONE_TARGET = ("INSERT", "UPDATE", "DELETE", "MERGE", "COPY")
_TRUNCATE_OPTIONS = re.compile(r"\b(?:RESTART|CONTINUE|CASCADE|RESTRICT)\b", re.IGNORECASE)


def written_inputs(sql: str) -> bool:
    """Does the statement write to an input table?"""
    leading = _LEADING.match(sql)
    start = leading.end() if leading else 0
    verb = sql[start : start + 6].upper()
    if not verb.startswith(_WRITE_VERBS):
        return False
    if verb.startswith(_ONE_TARGET):
        target = _WRITE.match(sql, start)
        return target is not None and is_input_table(target.group(1))
    if verb.startswith("TRUNCA"):  # a list of tables, then its options
        tables = _TRUNCATE_OPTIONS.split(sql[start:], maxsplit=1)[0]
        return any(is_input_table(word) for word in re.findall(r"\w+", tables))
    return any(is_input_table(t) for t in _WRITE.findall(sql))  # WITH: each of its parts may write


def tenant_key(tenant_id: Any) -> str:
    return "%stenant:%s" % (PREFIX, tenant_id)


def customer_key(tenant_id: Any, external_id: str) -> str:
    """A customer's key, by its external id: a read finds it before touching the database."""
    return "%scustomer:%s:%s" % (PREFIX, tenant_id, external_id)


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)


def client() -> redis.Redis:
    return _client(settings.REDIS_URL)


# After a call to Redis fails, how long this process's reads leave it alone (seconds).
PAUSE_SECONDS = 5.0
_monotonic = time.monotonic


class _Lost:
    """Bumps this process failed to make (``failed``), and how many of them a global bump has
    covered since (``retired``): while they differ, the next round trip bumps the global key. Reads
    leave Redis alone until ``paused_until`` (``time.monotonic``), after a failed call."""

    failed = 0
    retired = 0
    paused_until = 0.0


def _paused() -> bool:
    return _monotonic() < _Lost.paused_until


def _failed_call(exc: Exception, what: str) -> None:
    _Lost.paused_until = _monotonic() + PAUSE_SECONDS
    logger.warning("%s (reads leave Redis alone for %g s): %s", what, PAUSE_SECONDS, exc)


def resume() -> None:
    """End a pause now (the test suite, between tests)."""
    _Lost.paused_until = 0.0


def _pipeline() -> tuple[Any, int | None]:
    """A pipeline that starts with the global bump owed for lost bumps, if any, and the count of
    failures that bump covers (``None``: nothing owed)."""
    pipe = client().pipeline(transaction=False)
    owed = _Lost.failed
    if owed == _Lost.retired:
        return pipe, None
    pipe.incr(GLOBAL)
    return pipe, owed


def _settled(owed: int | None) -> None:
    if owed is not None:
        _Lost.retired = max(_Lost.retired, owed)
        logger.warning("global generation bumped for lost bumps")


def _bump(keys: Sequence[str]) -> None:
    if not keys:
        return
    try:
        pipe, owed = _pipeline()
        for key in keys:
            pipe.incr(key)
        pipe.execute()
    except redis.RedisError as exc:
        _Lost.failed += 1
        _failed_call(exc, "generations not bumped (%s)" % ", ".join(keys))
        return
    _settled(owed)


def in_transaction(connection: BaseDatabaseWrapper) -> bool:
    """Is the connection inside a transaction of its own? The transaction a test case wraps each
    test in stands for autocommit (it never commits; the test's own ``atomic`` blocks do)."""
    return any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)


class _Pending:
    """The bump a transaction owes at its commit: the keys its writes touched."""

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        self.connection = connection
        self.keys: set[str] = set()

    def __call__(self) -> None:
        if getattr(self.connection, "tripod_pending", None) is self:
            self.connection.tripod_pending = None
        _bump(sorted(self.keys))

    def registered(self) -> bool:
        return any(hook[1] is self for hook in self.connection.run_on_commit)


def bump(keys: Iterable[str], *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Bump ``keys`` once the current transaction commits, with the other keys it touched (at once,
    in autocommit)."""
    connection = connections[using]
    if not in_transaction(connection):
        _bump(sorted(set(keys)))
        return
    pending = getattr(connection, "tripod_pending", None)
    if pending is None or not pending.registered():  # the first write, or the first after a rollback
        pending = _Pending(connection)
        connection.tripod_pending = pending  # type: ignore[attr-defined]
        transaction.on_commit(pending, using=using)
    pending.keys.update(keys)


def cache_usable(*, using: str = DEFAULT_DB_ALIAS) -> bool:
    """May a read use the cache now (outside a transaction)? A bump still pending outside any
    transaction (its ``atomic`` block ended inside the test case's transaction, which never commits)
    is made first."""
    connection = connections[using]
    if in_transaction(connection):
        return False
    pending = getattr(connection, "tripod_pending", None)
    if pending is not None and pending.registered():
        connection.run_on_commit = [c for c in connection.run_on_commit if c[1] is not pending]
        pending()
    return True


def tenant_keys(connection: BaseDatabaseWrapper) -> list[str]:
    """The keys a write on ``connection`` bumps: each tenant the connection's row-level security
    may be set to (``rls`` records them; several after a switch inside a transaction, which a
    rollback may undo), the global key for none."""
    tenants = getattr(connection, "tripod_tenants", None) or {""}
    return sorted(tenant_key(t) if t else GLOBAL for t in tenants)


class WriteWatcher:
    """The execute wrapper that bumps the tenant's generation on every write to an input table."""

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        self.connection = connection

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        result = execute(sql, params, many, context)
        if isinstance(sql, str) and written_inputs(sql):
            bump(tenant_keys(self.connection), using=self.connection.alias)
        return result


def watch_writes(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """Install the watcher on a new connection (``connection_created``), once per wrapper."""
    connection.tripod_tenants = {""}  # type: ignore[attr-defined] # a new session has no tenant set
    if not any(isinstance(w, WriteWatcher) for w in connection.execute_wrappers):
        connection.execute_wrappers.insert(0, WriteWatcher(connection))


def usage_changed(*, tenant: Any, external_ids: Iterable[str], using: str = DEFAULT_DB_ALIAS) -> None:
    """Usage of these customers (by external id) was written: their projections are out of date."""
    tenant_id = getattr(tenant, "pk", tenant)
    bump([customer_key(tenant_id, e) for e in external_ids], using=using)


def usage_changed_tenant(*, tenant: Any, using: str = DEFAULT_DB_ALIAS) -> None:
    """Usage of any of the tenant's customers may have changed (rollups rebuilt)."""
    bump([tenant_key(getattr(tenant, "pk", tenant))], using=using)


def run_id(info: dict[str, Any]) -> str:
    """The server's run, from ``INFO server``: new at every start of Redis."""
    return str(info.get("run_id", ""))


def generations_read(keys: Sequence[str], extra: Sequence[str] = ()) -> tuple[str, list[bytes | None]] | None:
    """The server's run id and the values of ``keys`` then ``extra``, in one round trip; ``None``
    when Redis cannot be reached."""
    if _paused():
        return None
    try:
        pipe, owed = _pipeline()
        pipe.info("server")
        pipe.mget([*keys, *extra])
        *_, info, values = pipe.execute()
    except redis.RedisError as exc:
        _failed_call(exc, "generations not read")
        return None
    _settled(owed)
    return run_id(info), values
