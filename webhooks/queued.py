"""Is a `deliver_due` task already waiting in the broker? A flag in Redis, so that web processes
publish one only when none waits.

A web process that wrote messages publishes `deliver_due` (dispatch.py) at most once per PERIOD.
With a Redis broker it first sets this flag (SET NX with the task's expiry) and publishes only if
the flag was not set: one Redis command instead of a Celery publish, which cost the web process
about 2 ms of CPU each (measured in the server: 3 processes publishing up to 10 times a second
took about 140 µs of web CPU per conversion at 400 conversions a second). `deliver_due` clears the
flag when it starts, before its first claim: a message committed after that claim sets the flag
again and publishes the next task, one committed before it is claimed by the running task.

Nothing waits on the flag for correctness: a flag left set (its task lost, or dropped because a
worker reached it after EXPIRES) goes away with its expiry, and the `sweep_due_messages` beat job
delivers whatever is due meanwhile. Any other broker (the embedded default's file queue) has no
flag: every wake publishes, as before.
"""

from __future__ import annotations

import logging
import os
import threading

import redis
from django.conf import settings

from refapp.ratelimit import UNREACHABLE, redis_options

EXPIRES = 60  # seconds: a deliver_due published by a web process is dropped after this (dispatch.py)
KEY = "refapp:webhooks:deliver-due-queued"
logger = logging.getLogger(__name__)
_lock = threading.Lock()
_client: tuple[int, str, redis.Redis] | None = None  # (pid, broker URL, client)


def _redis() -> redis.Redis | None:
    """A client of the broker's Redis for this process, or None when the broker is not Redis."""
    global _client
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return None
    known = _client
    if known is not None and known[0] == os.getpid() and known[1] == url:
        return known[2]
    with _lock:
        client = redis.Redis.from_url(url, **redis_options())
        _client = (os.getpid(), url, client)
        return client


def _key() -> str:
    # The broker's own key prefix keeps two sets of processes on one Redis apart (the tests).
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}
    return options.get("global_keyprefix", "") + KEY


def mark() -> bool:
    """Set the flag; True when it was not set (so the caller publishes a task), and always True
    without a Redis broker or when Redis cannot be reached (then the publish decides)."""
    client = _redis()
    if client is None:
        return True
    try:
        return bool(client.set(_key(), b"1", nx=True, ex=EXPIRES))
    except UNREACHABLE:
        return True


def unmark() -> None:
    """Clear the flag: the task that it stood for has started."""
    client = _redis()
    if client is None:
        return
    try:
        client.delete(_key())
    except UNREACHABLE:
        # It expires on its own; until then the running task and the sweep deliver what is due.
        logger.warning("could not clear the deliver_due flag; it expires in %s s", EXPIRES, exc_info=True)
