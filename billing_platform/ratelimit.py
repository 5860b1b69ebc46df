"""Rate limits counted in Redis, in fixed windows: one counter per limit and window, all the limits
of a request counted in one round trip. Used by the API's throttle (``tenancy.throttling``: per API key and
per tenant on every route) and by ingestion (per key, at each tenant's own rate).

The answer past a limit is a ``RateLimited`` (429 problem+json) with ``Retry-After``: the seconds
until the window that was exceeded ends. Every API answer that was counted carries ``RateLimit-Limit``,
``RateLimit-Remaining`` and ``RateLimit-Reset`` for the limit closest to being reached
(``billing_platform.middleware.RateLimitHeadersMiddleware``).

If Redis cannot be reached the request goes on: losing the limiter must not stop the API (nor lose
usage events).
"""

import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import redis
from django.conf import settings
from django.http import HttpRequest

from billing_platform.errors import RateLimited

logger = logging.getLogger(__name__)

RATE_PATTERN = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|second|m|min|minute|h|hour|d|day)\s*$")
_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
_PERIODS.update({"d": 86400, "day": 86400})
_PERIOD_NAMES = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}


@dataclass(frozen=True)
class Rate:
    requests: int
    seconds: int

    def __str__(self) -> str:
        return "%d requests per %s" % (self.requests, _PERIOD_NAMES.get(self.seconds, "%d s" % self.seconds))


def parse_rate(text: str) -> Rate:
    """``"1200/min"`` -> ``Rate(1200, 60)``; ``ValueError`` for anything else."""
    match = RATE_PATTERN.match(text)
    if match is None or int(match.group(1)) < 1:
        raise ValueError("%r is not a rate: write <requests>/<s|min|h|day>, e.g. 1200/min." % text)
    return Rate(int(match.group(1)), _PERIODS[match.group(2)])


@dataclass(frozen=True)
class Limit:
    """One limit a request counts against: ``name`` identifies the counter (scope and who, e.g.
    ``api:key:<uuid>``), ``holder`` says whose limit it is in the 429's detail ("this API key")."""

    name: str
    rate: Rate
    holder: str


@dataclass(frozen=True)
class Count:
    limit: Limit
    count: int
    reset: int  # whole seconds until the window ends, at least 1

    @property
    def remaining(self) -> int:
        return max(0, self.limit.rate.requests - self.count)

    @property
    def exceeded(self) -> bool:
        return self.count > self.limit.rate.requests


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)


def counts_hit(limits: Sequence[Limit], *, now: float | None = None) -> list[Count] | None:
    """Count one request against each limit; ``None`` when Redis cannot be reached.

    A window is ``now // seconds``: with 2/min, requests at 10:00:05 and 10:00:59 share the window
    that ends at 10:01:00 (reset 55 s, then 1 s); a third at 10:00:59 is the count 3 > 2, refused."""
    if not limits:
        return []
    now = time.time() if now is None else now
    keys = []
    try:
        pipe = _client(settings.REDIS_URL).pipeline(transaction=False)
        for limit in limits:
            key = "tripod:rl:%s:%d:%d" % (limit.name, limit.rate.seconds, int(now // limit.rate.seconds))
            keys.append(key)
            # The window's counter lives one period from its first request (a second more for
            # clocks a little apart), whatever comes later.
            pipe.set(key, 0, ex=limit.rate.seconds + 1, nx=True)
            pipe.incr(key)
        replies = pipe.execute()
    except redis.RedisError as exc:
        logger.warning("rate limits not counted: Redis unreachable (%s)", exc.__class__.__name__)
        return None
    counts = []
    for index, limit in enumerate(limits):
        reset = max(1, math.ceil(limit.rate.seconds - now % limit.rate.seconds))
        counts.append(Count(limit=limit, count=int(replies[2 * index + 1]), reset=reset))
    return counts


def rate_limit(request: HttpRequest, limits: Sequence[Limit], *, now: float | None = None) -> None:
    """Count the request against ``limits``; raise ``RateLimited`` (429, ``Retry-After``) past any.
    The closest limit is kept on the request for the ``RateLimit-*`` headers."""
    counts = counts_hit(limits, now=now)
    if not counts:
        return
    closest = min(counts, key=lambda c: (c.remaining, -c.reset))
    previous: Count | None = getattr(request, "rate_limit", None)
    if previous is None or (closest.remaining, -closest.reset) < (previous.remaining, -previous.reset):
        request.rate_limit = closest  # type: ignore[attr-defined]
    exceeded = [c for c in counts if c.exceeded]
    if exceeded:
        worst = max(exceeded, key=lambda c: c.reset)
        raise RateLimited(
            "More than %s for %s; retry after the Retry-After delay (%d s)."
            % (worst.limit.rate, worst.limit.holder, worst.reset),
            extra={"retry_after": worst.reset},
        )
