"""Does a program have an active webhook endpoint? One answer per program, kept in each process.

Asked for every change of the domain (refapp.models.audit_watched), so it sits on the hot path of
conversions: a program with no endpoint must pay nothing measurable. The answer lives in this
process's memory for WATCH_SECONDS. A shared cache was tried first: Django's Redis cache builds a
client per call, and that one GET cost about 150 µs of web CPU per conversion plus a Redis round
trip, a third of an event's cost in the bench. An endpoint change forgets the answer in the process
that made it at once (and again at commit); other processes see it within WATCH_SECONDS, so an
endpoint hears of the changes made from a few seconds after it was created or activated. The
answer is the program's active endpoints, not only whether there are any: the conversions' one-
statement writer (outbox.messages_for) writes their messages from it, guarded in the statement by
the endpoint still being active.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.db import transaction

from .models import WebhookEndpoint

WATCH_SECONDS = 5.0


@dataclass(frozen=True)
class Watching:
    """What a conversion's one-statement writer needs of an active endpoint to write its message
    (outbox.messages_for); the statement itself re-checks that the endpoint is still active."""

    id: int
    livemode: bool
    events: frozenset[str]


_answers: dict[int, tuple[float, tuple[Watching, ...]]] = {}  # program id -> (monotonic expiry, endpoints)


def program_endpoints(program_id: int) -> tuple[Watching, ...]:
    now = time.monotonic()
    known = _answers.get(program_id)
    if known is not None and known[0] > now:
        return known[1]
    endpoints = tuple(
        Watching(id=pk, livemode=livemode, events=frozenset(events or ()))
        for pk, livemode, events in WebhookEndpoint.objects.filter(program_id=program_id, is_active=True)
        .order_by("pk")
        .values_list("pk", "livemode", "events")
    )
    _answers[program_id] = (now + WATCH_SECONDS, endpoints)
    return endpoints


def program_watched(program_id: int) -> bool:
    return bool(program_endpoints(program_id))


def forget_program(program_id: int) -> None:
    _answers.pop(program_id, None)
    transaction.on_commit(lambda: _answers.pop(program_id, None))


def forget_all() -> None:
    """Tests: every answer is asked again."""
    _answers.clear()
