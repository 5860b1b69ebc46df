"""Sending deliveries: a batch claimed in the database, posted concurrently, signed per Standard
Webhooks with the reference ``standardwebhooks`` library, and recorded in a few set-based
statements whatever the batch's size.

A 2xx answer delivers. Anything else (another status, a timeout, a refused connection, a target
that resolves to a private address) is a failed try, retried after 5 s, 5 min, 30 min, 2 h, 5 h,
10 h and 10 h (``RETRY_DELAYS``); the delivery fails after the last. Redirects are never followed:
a 3xx is a failed try. An endpoint whose tries have all failed for 5 days is disabled and the
tenant e-mailed (``webhooks.services.webhook_endpoints_disable_failing``).
"""

import logging
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from types import TracebackType
from typing import Any

import urllib3
from django.db import connection, transaction
from standardwebhooks import Webhook
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.outbox import BATCH_SIZE, deliveries_enqueue_on_commit
from webhooks.targets import Target, TargetRefused, target_for

logger = logging.getLogger(__name__)

# After the n-th failed try of a round, the next comes this much later; after the last, the
# delivery has failed (8 tries in all, over 27 h 35 min 5 s).
RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
# An endpoint failing this long (no 2xx since its first failed try) is disabled.
FAILING_DISABLE_AFTER = timedelta(days=5)
# How often Celery beat looks for deliveries due (settings.CELERY_BEAT_SCHEDULE). A retry due
# sooner than that (the 5 s one) is queued with its countdown instead of waiting for the sweep.
SWEEP_INTERVAL = timedelta(seconds=30)
# A claimed delivery is the worker's for this long; if the worker dies, it is due again after.
LEASE = timedelta(minutes=5)
# A retry queued with its countdown is queued this much later than due, so that its task finds it due.
COUNTDOWN_MARGIN = timedelta(seconds=1)
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 10.0
# However slowly an answer trickles in, the try stops reading it after this many seconds.
RESPONSE_DEADLINE = 15.0
# What is kept of an answer's body, and read of it.
EXCERPT_CHARS = 1000
READ_BYTES = 4 * EXCERPT_CHARS
# Concurrent requests of one batch.
CONCURRENCY = 10
USER_AGENT = "Tripod-Webhooks/1.0"


@dataclass(frozen=True)
class Message:
    """What one try sends: the endpoint's URL, the event's id and body, the secrets that sign it."""

    url: str
    webhook_id: str
    body: str
    secrets: tuple[str, ...]


@dataclass(frozen=True)
class TryResult:
    status_code: int | None
    duration_ms: int
    response_excerpt: str
    error: str

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class SendReport:
    tried: int
    delivered: int
    failed: int  # deliveries that have now failed for good (their round is over)


def signing_secrets(endpoint: WebhookEndpoint, at: datetime) -> tuple[str, ...]:
    """The secrets that sign a message at ``at``: the endpoint's, and for 24 hours after a rotation
    the one before it as well."""
    secrets = [endpoint.signing_secret]
    expires = endpoint.previous_signing_secret_expires_at
    if endpoint.previous_signing_secret and expires is not None and at < expires:
        secrets.append(endpoint.previous_signing_secret)
    return tuple(secrets)


def signed_headers(message: Message, at: datetime) -> dict[str, str]:
    """Standard Webhooks headers: ``webhook-signature`` holds one ``v1,<base64 HMAC-SHA256 of
    id.timestamp.body>`` per secret, separated by spaces; a receiver accepts any that matches."""
    sent_at = at.astimezone(UTC)  # the library reads the instant as UTC
    return {
        "webhook-id": message.webhook_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": " ".join(
            Webhook(s).sign(message.webhook_id, sent_at, message.body) for s in message.secrets
        ),
    }


def _error_text(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    # urllib3 wraps the cause: "HTTPConnectionPool(host=...): Max retries exceeded ... (Caused by X)"
    reason = getattr(exc, "reason", None)
    if reason is not None and str(reason):
        text = str(reason)
    return ("%s: %s" % (exc.__class__.__name__, text))[:500]


class Sender:
    """Posts messages, reusing one connection pool per target (scheme, address, port, name) for
    the batch. Use as a context manager: the pools are closed at the end."""

    def __init__(self) -> None:
        self._pools: dict[tuple[str, str, int, str], HTTPConnectionPool] = {}

    def __enter__(self) -> "Sender":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()

    def _pool(self, target: Target) -> HTTPConnectionPool:
        key = (target.scheme, target.address, target.port, target.host)
        pool = self._pools.get(key)
        if pool is None:
            timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT)
            if target.scheme == "https":
                # Connect to the checked address; TLS checks the certificate against the URL's name.
                pool = HTTPSConnectionPool(
                    target.address,
                    target.port,
                    timeout=timeout,
                    maxsize=CONCURRENCY,
                    retries=False,
                    cert_reqs="CERT_REQUIRED",
                    assert_hostname=target.host,
                    server_hostname=target.host,
                )
            else:
                pool = HTTPConnectionPool(
                    target.address, target.port, timeout=timeout, maxsize=CONCURRENCY, retries=False
                )
            pool = self._pools.setdefault(key, pool)
        return pool

    def post(self, message: Message, at: datetime) -> TryResult:
        """One try: never raises, every outcome is a ``TryResult``."""
        started = time.monotonic()

        def elapsed() -> int:
            return int((time.monotonic() - started) * 1000)

        try:
            target = target_for(message.url)
        except TargetRefused as exc:
            return TryResult(None, elapsed(), "", str(exc)[:500])
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **signed_headers(message, at),
        }
        try:
            response = self._pool(target).urlopen(
                "POST",
                target.path,
                body=message.body.encode(),
                headers=headers,
                retries=False,
                redirect=False,
                assert_same_host=False,
                preload_content=False,
            )
            try:
                excerpt = self._read_excerpt(response, started)
            finally:
                response.release_conn()
        except Exception as exc:  # a try fails with its reason, whatever went wrong on the wire
            return TryResult(None, elapsed(), "", _error_text(exc))
        status = response.status
        error = ""
        if 300 <= status < 400:
            error = "Redirect to %s not followed." % (response.headers.get("Location") or "nowhere")
        elif not 200 <= status < 300:
            error = "HTTP %d" % status
        return TryResult(status, elapsed(), excerpt, error[:500])

    @staticmethod
    def _read_excerpt(response: Any, started: float) -> str:
        """The start of the answer's body, read in small pieces until enough is kept, the body
        ends, or the deadline passes."""
        data = b""
        while len(data) < READ_BYTES and time.monotonic() - started < RESPONSE_DEADLINE:
            chunk = response.read(1024)
            if not chunk:
                break
            data += chunk
        return data.decode("utf-8", errors="replace")[:EXCERPT_CHARS]

    def post_all(self, messages: Sequence[Message], at: datetime) -> list[TryResult]:
        if len(messages) <= 1:
            return [self.post(m, at) for m in messages]
        with ThreadPoolExecutor(max_workers=min(CONCURRENCY, len(messages))) as pool:
            return list(pool.map(partial(self.post, at=at), messages))


def _claim(*, at: datetime, delivery_ids: Sequence[str] | None, limit: int) -> list[WebhookDelivery]:
    """Take up to ``limit`` due deliveries of enabled endpoints (among ``delivery_ids`` if given)
    for this worker: their ``next_attempt_at`` becomes the lease's end, in one statement that
    skips rows another worker holds. Returns them with their event and endpoint."""
    table = WebhookDelivery._meta.db_table
    endpoints = WebhookEndpoint._meta.db_table
    only_ids = "AND d.id = ANY(%(ids)s::uuid[])" if delivery_ids is not None else ""
    sql = f"""
        UPDATE {table} SET next_attempt_at = %(lease)s
        WHERE id IN (
            SELECT d.id FROM {table} d
            JOIN {endpoints} e ON e.id = d.endpoint_id AND e.disabled_at IS NULL
            WHERE d.status = %(pending)s AND d.next_attempt_at <= %(due)s {only_ids}
            ORDER BY d.next_attempt_at
            LIMIT %(limit)s
            FOR UPDATE OF d SKIP LOCKED
        )
        RETURNING id
    """
    params: dict[str, Any] = {
        "lease": at + LEASE,
        "pending": DeliveryStatus.PENDING,
        "due": at,
        "ids": list(delivery_ids or []),
        "limit": limit,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = [pk for (pk,) in cursor.fetchall()]
    if not ids:
        return []
    return list(WebhookDelivery.objects.filter(pk__in=ids).select_related("event", "endpoint").order_by("created_at"))


def deliveries_send(*, at: datetime, delivery_ids: Sequence[str] | None = None, limit: int = BATCH_SIZE) -> SendReport:
    """Send one batch: up to ``limit`` deliveries due at ``at`` (only ``delivery_ids`` if given),
    each tried once, and every try recorded. Safe to run in several workers at once: a delivery is
    claimed by one of them."""
    claimed = _claim(at=at, delivery_ids=delivery_ids, limit=limit)
    if not claimed:
        return SendReport(0, 0, 0)
    messages = [
        Message(
            url=d.endpoint.url,
            webhook_id=d.event.webhook_id,
            body=d.event.body,
            secrets=signing_secrets(d.endpoint, at),
        )
        for d in claimed
    ]
    with Sender() as sender:
        results = sender.post_all(messages, at)
    return _record(claimed, results, at)


def _record(claimed: Sequence[WebhookDelivery], results: Sequence[TryResult], at: datetime) -> SendReport:
    """The tries of a batch, in one transaction: the tries' rows, the deliveries' new state, the
    endpoints' health, and the endpoints failing for too long disabled."""
    from webhooks.services import webhook_endpoints_disable_failing

    outcome = {str(d.pk): r for d, r in zip(claimed, results, strict=True)}
    with transaction.atomic():
        # Locked and read again: a delivery deleted meanwhile (its endpoint was) is not recorded,
        # and one replayed meanwhile is recorded from its new state.
        deliveries = list(WebhookDelivery.objects.select_for_update().filter(pk__in=list(outcome)).order_by("pk"))
        WebhookAttempt.objects.bulk_create(
            [
                WebhookAttempt(
                    tenant_id=d.tenant_id,
                    delivery_id=d.pk,
                    attempted_at=at,
                    status_code=outcome[str(d.pk)].status_code,
                    duration_ms=outcome[str(d.pk)].duration_ms,
                    response_excerpt=outcome[str(d.pk)].response_excerpt,
                    error=outcome[str(d.pk)].error,
                )
                for d in deliveries
            ]
        )
        soon: list[tuple[str, str, float]] = []
        failed = 0
        for d in deliveries:
            result = outcome[str(d.pk)]
            d.attempts += 1
            d.round_attempts += 1
            d.last_attempt_at, d.last_status_code, d.last_error = at, result.status_code, result.error
            if result.delivered:
                d.status, d.delivered_at, d.next_attempt_at = DeliveryStatus.DELIVERED, at, None
            elif d.round_attempts > len(RETRY_DELAYS):
                d.status, d.next_attempt_at = DeliveryStatus.FAILED, None
                failed += 1
            else:
                delay = RETRY_DELAYS[d.round_attempts - 1]
                d.status, d.next_attempt_at = DeliveryStatus.PENDING, at + delay
                if delay < SWEEP_INTERVAL:
                    soon.append((str(d.tenant_id), str(d.pk), delay.total_seconds()))
        _deliveries_update(deliveries)
        answered = {d.endpoint_id for d in deliveries if outcome[str(d.pk)].delivered}
        failing = {d.endpoint_id for d in deliveries} - answered
        if answered:
            WebhookEndpoint.objects.filter(pk__in=answered).update(failing_since=None, last_success_at=at)
        if failing:
            WebhookEndpoint.objects.filter(pk__in=failing, failing_since__isnull=True).update(failing_since=at)
            webhook_endpoints_disable_failing(endpoint_ids=failing, at=at)
        for tenant_id, countdown in sorted({(t, c) for t, _, c in soon}):
            ids = [pk for t, pk, c in soon if (t, c) == (tenant_id, countdown)]
            deliveries_enqueue_on_commit(ids, countdown + COUNTDOWN_MARGIN.total_seconds(), tenant_id=tenant_id)
    delivered = sum(1 for d in deliveries if outcome[str(d.pk)].delivered)
    _log(deliveries, outcome)
    return SendReport(len(deliveries), delivered, failed)


def _deliveries_update(deliveries: Sequence[WebhookDelivery]) -> None:
    """Write the deliveries' new state in one ``UPDATE ... FROM (VALUES ...)``: Django's
    ``bulk_update`` builds a CASE per column and row, which costs more than the tries themselves."""
    if not deliveries:
        return
    row = (
        "(%s::uuid, %s, %s::integer, %s::smallint, %s::timestamptz, %s::timestamptz, %s::smallint, %s, %s::timestamptz)"
    )
    params: list[Any] = []
    for d in deliveries:
        params += [d.pk, d.status, d.attempts, d.round_attempts, d.next_attempt_at, d.last_attempt_at]
        params += [d.last_status_code, d.last_error, d.delivered_at]
    sql = f"""
        UPDATE {WebhookDelivery._meta.db_table} AS d SET
            status = v.status, attempts = v.attempts, round_attempts = v.round_attempts,
            next_attempt_at = v.next_attempt_at, last_attempt_at = v.last_attempt_at,
            last_status_code = v.last_status_code, last_error = v.last_error, delivered_at = v.delivered_at
        FROM (VALUES {", ".join([row] * len(deliveries))}) AS v(
            id, status, attempts, round_attempts, next_attempt_at, last_attempt_at, last_status_code,
            last_error, delivered_at
        )
        WHERE d.id = v.id
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _log(deliveries: Iterable[WebhookDelivery], outcome: dict[str, TryResult]) -> None:
    for d in deliveries:
        result = outcome[str(d.pk)]
        if not result.delivered:
            logger.info(
                "webhook delivery %s failed: %s",
                d.pk,
                result.error,
                extra={"tenant_id": str(d.tenant_id), "endpoint_id": str(d.endpoint_id), "status": result.status_code},
            )


def deliveries_due_enqueue(*, tenant_id: str, at: datetime, max_batches: int = 50) -> int:
    """The sweep: queue a task per ``BATCH_SIZE`` deliveries due at ``at`` (at most
    ``max_batches``), each of which claims that many. It sends what was committed but never
    queued, what a dead worker held beyond its lease, and the retries that fall due. Returns the
    number of tasks queued."""
    from webhooks.tasks import webhook_deliveries_send_task

    due = (
        WebhookDelivery.objects.filter(
            tenant_id=tenant_id,
            status=DeliveryStatus.PENDING,
            next_attempt_at__lte=at,
            endpoint__disabled_at__isnull=True,
        )
        .order_by()
        .values("pk")[: max_batches * BATCH_SIZE]
        .count()
    )
    tasks = -(-due // BATCH_SIZE)
    for _ in range(tasks):
        webhook_deliveries_send_task.delay(None, tenant_id=tenant_id)
    return tasks
