"""Queueing deliveries off the request's path: a conversion's response never waits on the broker.

A message written in a change's transaction calls queue_delivery once the transaction commits;
that only wakes a daemon thread of the process, which publishes one `deliver_due` task ("deliver
what is due") and then sleeps PERIOD seconds, so a process publishes at most 1/PERIOD tasks a
second however many messages it writes: a burst of 1,000 conversions costs a few publishes, not
1,000. The worker's deliver_due claims whatever is due in batches (webhooks/delivery.py), so it
needs no ids. Publishing one task per message from the request itself cost a broker round trip and
about 1-2 ms of web CPU per conversion (kombu builds a Redis client per publish).

With a Redis broker a process publishes only if no `deliver_due` task waits already (queued.py): a
Celery publish cost the web process about 2 ms of CPU, one Redis SET about 50 µs.

Nothing is lost if the process dies before publishing or the broker is down: the message rows are
committed and pending, and the `sweep_due_messages` beat job (every 30 s) queues a delivery.
With Celery's task_always_eager (unit tests) the message is delivered at once, where it was queued.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from . import queued
from .tasks import deliver_due, deliver_message

PERIOD = 0.1  # seconds between two publishes of one process: what a message waits at most for it
EXPIRES = (
    queued.EXPIRES
)  # a task the worker reaches later than this is dropped: the sweep covers a stopped worker
logger = logging.getLogger(__name__)
_wake = threading.Event()
_lock = threading.Lock()
_owner_pid: int | None = None  # the process whose thread is running (a fork has none)


def queue_delivery(message_id: int) -> None:
    if _eager():
        deliver_message.delay(message_id)
        return
    _ensure_thread()
    _wake.set()


_conf = None  # the Celery app's configuration, once loaded


def _eager() -> bool:
    """Celery's task_always_eager (the unit tests' setting), read off the app's configuration
    object. Asked through the shared task (`deliver_message.app.conf`) it cost a conversion about
    40 µs of web CPU: the task's proxy looks the task up by name at every attribute access."""
    global _conf
    if _conf is None:
        conf = deliver_message.app.conf
        conf.task_always_eager  # noqa: B018 - loads a configuration still pending
        _conf = deliver_message.app.conf
    return _conf.task_always_eager


def _ensure_thread() -> None:
    global _owner_pid, _wake
    if _owner_pid == os.getpid():
        return
    with _lock:
        if _owner_pid != os.getpid():
            _wake = threading.Event()  # a fresh one: the parent's may have been copied mid-use
            threading.Thread(
                target=_publish_forever, args=(_wake,), name="webhooks-dispatch", daemon=True
            ).start()
            _owner_pid = os.getpid()


def _publish_forever(wake: threading.Event) -> None:
    while True:
        wake.wait()
        # Cleared before publishing: a message committed from here on wakes the next round, and one
        # committed before is seen by the task published now.
        wake.clear()
        try:
            if queued.mark():  # else a deliver_due waits already: it claims what is due when it starts
                deliver_due.apply_async(expires=EXPIRES)
        except Exception:  # the broker is away: the sweep delivers once it is back
            logger.warning("could not queue webhook deliveries; the sweep will", exc_info=True)
            queued.unmark()
        time.sleep(PERIOD)
