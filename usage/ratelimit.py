"""Per-API-key rate limit on ingestion: a fixed one-second window counted in Redis."""

import time
from functools import cache

import redis
from django.conf import settings

from billing_platform.errors import RateLimited


@cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)


def check_rate(*, key_id: str, limit_per_second: int) -> None:
    """Raise ``RateLimited`` (429, Retry-After: 1) past ``limit_per_second`` requests in this second.
    If Redis cannot be reached, ingestion goes on: losing the limiter must not lose usage."""
    window = int(time.time())
    name = "tripod:rl:%s:%d" % (key_id, window)
    try:
        pipe = _client().pipeline()
        pipe.incr(name)
        pipe.expire(name, 2)
        count = int(pipe.execute()[0])
    except redis.RedisError:
        return
    if count > limit_per_second:
        raise RateLimited(
            "More than %d requests per second with this key; retry after the Retry-After delay." % limit_per_second,
            extra={"retry_after": 1},
        )
