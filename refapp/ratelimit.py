"""Fixed-window rate limits shared by every web process (Redis in production, local memory otherwise).

With Redis, one pipelined round trip per request (INCR, then EXPIRE on the window's first hit)
through a client kept per thread: Django's cache API would build a new Redis client object for
each call and take up to three round trips, which showed up as the largest cost of a click.

Redis is a speed-up here, never a dependency (docs/architecture.md, "Security": tracking degrades, never fails):
when it cannot be reached a limit fails open (the request is allowed) and a short circuit breaker
(`redis_down()`) makes this process skip Redis for REFAPP_REDIS_RETRY_SECONDS, so a dead or
unreachable Redis costs one short connect timeout every few seconds instead of one per request.
The click buffer (tracking/buffer.py) shares the breaker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis
from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)
_local = threading.local()
# What a Redis that is down, restarting (BusyLoadingError is a ConnectionError) or unreachable raises.
UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
_down_until = 0.0  # monotonic time until which this process does not try Redis (the breaker is open)


def redis_options() -> dict:
    """Short timeouts for every client of the web path: a dead Redis must cost milliseconds."""
    return {
        "socket_connect_timeout": settings.REFAPP_REDIS_CONNECT_TIMEOUT,
        "socket_timeout": settings.REFAPP_REDIS_SOCKET_TIMEOUT,
    }


def redis_down() -> bool:
    """True while the breaker is open: a recent call found Redis unreachable, so skip it."""
    return _down_until > time.monotonic()


def redis_failed(exc: BaseException) -> None:
    """Open the breaker for REFAPP_REDIS_RETRY_SECONDS. Callers then take their path without Redis."""
    global _down_until
    if not redis_down():
        logger.warning(
            "Redis unreachable (%s): skipping it for %ss", exc, settings.REFAPP_REDIS_RETRY_SECONDS
        )
    _down_until = time.monotonic() + settings.REFAPP_REDIS_RETRY_SECONDS


def redis_reset() -> None:
    """Close the breaker (tests, or a health check that reached Redis)."""
    global _down_until
    _down_until = 0.0


def _redis():
    conn = getattr(_local, "conn", None)
    if conn is None or getattr(_local, "url", None) != settings.REDIS_URL:
        conn = redis.Redis.from_url(settings.REDIS_URL, **redis_options())
        _local.conn, _local.url = conn, settings.REDIS_URL
    return conn


def counter(bucket: str, key: str, *, limit: int | None = None, window: int = 60) -> tuple[str, int, int]:
    """(counter key, limit, seconds to keep it) of the current window: for callers that count in
    their own Redis script (the click buffer counts and pushes in one round trip)."""
    limit = settings.REFAPP_RATE_LIMITS[bucket] if limit is None else limit
    return f"rl:{bucket}:{key}:{int(time.time()) // window}", limit, window + 5


def hit(bucket: str, key: str, *, limit: int | None = None, window: int = 60) -> bool:
    """Count one request; False when the caller is over the limit for the current window.

    Fails open (True) while Redis is unreachable."""
    cache_key, limit, _ = counter(bucket, key, limit=limit, window=window)
    if settings.REDIS_URL:
        if redis_down():
            return True
        try:
            pipe = _redis().pipeline(transaction=False)
            pipe.incr(cache_key)
            pipe.expire(cache_key, window + 5, nx=True)
            count = pipe.execute()[0]
        except UNREACHABLE as exc:
            redis_failed(exc)
            return True
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


# --- leased counting, for busy keys -----------------------------------------------------------
# A merchant backend sends a key's requests in bursts; counting each one in Redis was 12 % of a
# conversion's CPU. A process instead takes a lease of several requests at once (INCRBY) and spends
# it locally. The counter in Redis then runs ahead of what was served, never behind: no window ever
# admits more than the limit; near the limit a few requests (at most a lease per process) may be
# refused while another process still holds unspent slots.

_leases: dict[str, int] = {}
_lease_lock = threading.Lock()
LEASE_SHARE = 300  # a lease is 1/300 of the limit: 20 requests of the API's 6,000 a minute


def clear_leases() -> None:
    with _lease_lock:
        _leases.clear()


def lease_size(limit: int) -> int:
    return max(1, limit // LEASE_SHARE)


def hit_leased(
    bucket: str,
    key: str,
    *,
    limit: int | None = None,
    window: int = 60,
    take: Callable[[str, int, int], int] | None = None,
) -> bool:
    """Count one request like hit(), from a lease this process took earlier when it has one.

    `take(counter key, n, ttl)` adds n to the shared counter and returns its new value (Redis by
    default); without Redis this is hit(). Fails open (True) while Redis is unreachable.
    """
    if take is None:
        if not settings.REDIS_URL:
            return hit(bucket, key, limit=limit, window=window)
        if redis_down():
            return True
        take = _take_from_redis
    cache_key, limit, ttl = counter(bucket, key, limit=limit, window=window)
    with _lease_lock:
        left = _leases.get(cache_key, 0)
        if left > 0:
            _leases[cache_key] = left - 1
            return True
    size = lease_size(limit)
    try:
        total = take(cache_key, size, ttl)
    except UNREACHABLE as exc:
        redis_failed(exc)
        return True
    granted = max(0, min(size, limit - (total - size)))
    if granted == 0:
        return False
    with _lease_lock:
        if len(_leases) > 1000:  # old windows' leftovers
            _leases.clear()
        _leases[cache_key] = _leases.get(cache_key, 0) + granted - 1
    return True


def _take_from_redis(cache_key: str, n: int, ttl: int) -> int:
    pipe = _redis().pipeline(transaction=False)
    pipe.incrby(cache_key, n)
    pipe.expire(cache_key, ttl, nx=True)
    return pipe.execute()[0]
