"""Queueing deliveries off the request's path: a conversion's response never waits on the broker.

A message written in a change's transaction is handed, once the transaction commits, to a daemon
thread of the process that publishes the `deliver_messages` task for whatever has gathered (up to
BATCH ids per task). Publishing one Celery task per message from the request itself cost a broker
round trip and about 1-2 ms of web CPU per conversion (kombu builds a Redis client per publish);
`make bench`'s webhooks section measured the events rate falling several-fold with an endpoint on.

Nothing is lost if the process dies with ids still in memory or the broker is down: the message
rows are committed and pending, and the `sweep_due_messages` beat job (every 30 s) queues them.
With Celery's task_always_eager (unit tests) the task runs at once, where it was queued.
"""

from __future__ import annotations

import logging
import os
import queue
import threading

from .tasks import deliver_message, deliver_messages

BATCH = 20  # ids per task: several worker processes still share a burst
logger = logging.getLogger(__name__)
_ids: queue.SimpleQueue[int] = queue.SimpleQueue()
_lock = threading.Lock()
_owner_pid: int | None = None  # the process whose thread is running (a fork has none)


def queue_delivery(message_id: int) -> None:
    if deliver_message.app.conf.task_always_eager:
        deliver_message.delay(message_id)
        return
    _ids.put(message_id)
    _ensure_thread()


def _ensure_thread() -> None:
    global _owner_pid
    if _owner_pid == os.getpid():
        return
    with _lock:
        if _owner_pid != os.getpid():
            threading.Thread(target=_publish_forever, name="webhooks-dispatch", daemon=True).start()
            _owner_pid = os.getpid()


def _publish_forever() -> None:
    while True:
        ids = [_ids.get()]
        while len(ids) < BATCH:
            try:
                ids.append(_ids.get_nowait())
            except queue.Empty:
                break
        try:
            deliver_messages.delay(ids)
        except Exception:  # the broker is away: the sweep sends them once it is back
            logger.warning("could not queue %d webhook deliveries; the sweep will", len(ids), exc_info=True)
