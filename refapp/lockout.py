"""Failure counters that lock a sign-in form for a while (kept in the cache, shared by processes)."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.cache import cache


def locked(keys: Iterable[str], *, limit: int) -> bool:
    return any((cache.get(key) or 0) >= limit for key in keys)


def failure_record(keys: Iterable[str], *, window: int) -> None:
    for key in keys:
        # add() starts the window once; incr() keeps its expiry, so a lockout ends `window` after
        # the first failure rather than sliding forward with every attempt.
        if not cache.add(key, 1, timeout=window):
            cache.incr(key)


def failures_clear(keys: Iterable[str]) -> None:
    cache.delete_many(list(keys))
