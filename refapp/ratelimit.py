"""Fixed-window rate limits shared by every web process (Redis in production, local memory otherwise).

With Redis, one pipelined round trip per request (INCR, then EXPIRE on the window's first hit)
through a client kept per thread: Django's cache API would build a new Redis client object for
each call and take up to three round trips, which showed up as the largest cost of a click.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.core.cache import cache

_local = threading.local()


def _redis():
    conn = getattr(_local, "conn", None)
    if conn is None or getattr(_local, "url", None) != settings.REDIS_URL:
        import redis

        conn = redis.Redis.from_url(settings.REDIS_URL)
        _local.conn, _local.url = conn, settings.REDIS_URL
    return conn


def counter(bucket: str, key: str, *, limit: int | None = None, window: int = 60) -> tuple[str, int, int]:
    """(counter key, limit, seconds to keep it) of the current window: for callers that count in
    their own Redis script (the click buffer counts and pushes in one round trip)."""
    limit = settings.REFAPP_RATE_LIMITS[bucket] if limit is None else limit
    return f"rl:{bucket}:{key}:{int(time.time()) // window}", limit, window + 5


def hit(bucket: str, key: str, *, limit: int | None = None, window: int = 60) -> bool:
    """Count one request; False when the caller is over the limit for the current window."""
    cache_key, limit, _ = counter(bucket, key, limit=limit, window=window)
    if settings.REDIS_URL:
        pipe = _redis().pipeline(transaction=False)
        pipe.incr(cache_key)
        pipe.expire(cache_key, window + 5, nx=True)
        count = pipe.execute()[0]
        return count <= limit
    # add() is atomic: the first request of a window creates the counter with its expiry.
    if cache.add(cache_key, 1, timeout=window + 5):
        return limit >= 1
    try:
        count = cache.incr(cache_key)
    except ValueError:  # expired between add() and incr()
        cache.add(cache_key, 1, timeout=window + 5)
        count = 1
    return count <= limit
