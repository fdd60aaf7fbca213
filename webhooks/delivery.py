"""Delivering webhook messages: at least once, in order per object, with growing retries, in batches.

The protocol, per batch:
1. Claim: one statement takes up to CLAIM_BATCH messages that are pending, due, to an active
   endpoint, not held by another delivery's lease, and with no earlier message of the same object
   to the same endpoint still pending (messages of one object go out in order: the next one is
   claimable only once the earlier one is delivered or given up). Each gets a lease
   (`claimed_until`) and its attempt counted. On PostgreSQL the rows are chosen with
   FOR NO KEY UPDATE SKIP LOCKED, so concurrent workers take disjoint batches without waiting.
2. Outside any transaction: sign (Standard Webhooks; during a rotation, with both secrets) and POST,
   one message after the other, on one kept-alive connection per endpoint address (net.Client).
   No POST starts later than BATCH_SECONDS after the claim, so every POST ends inside the lease;
   the messages left over are released untouched. After a connection-level failure (refused,
   timed out, refused by the address check) the endpoint's other messages of the batch are not
   tried: they are released to the failed message's next retry, without counting an attempt, so
   a dead endpoint costs one timeout per batch rather than one per message.
3. Record, in one transaction: every outcome with one UPDATE (delivered, the next retry, or given up
   after the last one: RETRY_DELAYS spans about three days), every attempt as a WebhookDelivery row
   with one INSERT, the endpoint's `failing_since`. A message is only updated while the lease is
   still the one this batch took (its `claimed_until` and attempt count): an attempt recorded after
   someone else took the message over is kept in the log but does not change the message. A
   message given up by an endpoint that has not succeeded since the message was written disables
   the endpoint and tells the program's admins.

A worker killed between 1 and 3 leaves the leases behind; once they end the messages are due again
and claimed by the next batch (the sweep queues one), and sent with the same `webhook-id`:
receivers dedupe by it.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from affiliates.models import ProgramStaff
from refapp.emails import send_templated
from refapp.ids import new_public_id

from . import net, payloads
from .models import WebhookDelivery, WebhookEndpoint, WebhookMessage
from .watch import forget_program

# The wait before each retry: attempt n+1 waits RETRY_DELAYS[n-1] after attempt n failed. The sum,
# about 71 hours, is the "about three days" an endpoint has to come back.
RETRY_DELAYS = [
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
    timedelta(hours=10),
    timedelta(hours=10),
    timedelta(hours=10),
    timedelta(hours=14),
]
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
LEASE = timedelta(seconds=net.TIMEOUT * 3)
# No POST of a batch starts later than this after its claim: with the POST's own TIMEOUT (and a
# slow DNS answer's margin) it still ends inside the LEASE, so the sweep never sends a message
# that a live worker is still sending.
BATCH_SECONDS = LEASE.total_seconds() - 2 * net.TIMEOUT
CLAIM_BATCH = 50
STORED_BODY = 1024


def payload_of(message: WebhookMessage) -> dict[str, Any]:
    """A message's payload: stored, or frozen now if it was written without its data."""
    if message.payload is None:
        item = Claimed(
            message.pk, message.public_id, message.endpoint, message.object_id, None, message.attempts,
            timezone.now(), message.next_attempt_at, message.created_at, message.event_type,
        )  # fmt: skip
        _freeze_payloads([item])
        message.payload = item.payload
    return message.payload


def body_of_payload(payload: dict[str, Any]) -> str:
    # Keys sorted: the same bytes whether the payload was just frozen (a dict in its written order)
    # or read back from its jsonb column (PostgreSQL's own order), so every attempt is identical.
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


@functools.lru_cache(maxsize=256)
def _signer(secret: str) -> Webhook:
    return Webhook(secret)  # decodes the secret: once per secret, not once per message


def signed_headers(*, endpoint: WebhookEndpoint, message_id: str, body: str, now: datetime) -> dict[str, str]:
    secrets = [endpoint.secret]
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_expires_at
        and endpoint.previous_secret_expires_at > now
    ):
        secrets.append(endpoint.previous_secret)
    moment = now.replace(microsecond=0)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": " ".join(_signer(secret).sign(message_id, moment, body) for secret in secrets),
        "content-type": "application/json",
        "user-agent": "refapp-webhooks/1",
    }


def _without_flush_wait() -> None:
    """Commit this transaction without waiting for its WAL to reach the disk (PostgreSQL).

    Safe for the delivery's bookkeeping, whose protocol is at least once: a claim lost in a crash
    is taken again, a lost record sends the message again with the same webhook-id. The fsync wait
    was most of a delivery's time on a busy disk, and it took turns with the conversions' commits
    (the bench's events rate fell with an endpoint on)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")


@dataclass
class Claimed:
    """A message taken by a batch: what it needs to be sent and recorded without reading it again."""

    pk: int
    public_id: str
    endpoint: WebhookEndpoint
    object_id: str
    payload: dict[str, Any] | None  # None until frozen (payloads.AT_FIRST_ATTEMPT)
    attempts: int  # counting the attempt this claim is for
    claimed_until: datetime  # the lease: with `attempts`, proof that the message is still ours
    next_attempt_at: datetime | None
    created_at: datetime
    event_type: str = ""


@dataclass
class Outcome:
    claimed: Claimed
    answer: net.Answer | None  # None: not tried; released (to `release_to`, or as it was)
    at: datetime
    release_to: datetime | None = None


def claim(
    *, now: datetime, limit: int = CLAIM_BATCH, ids: Iterable[int] | None = None, force: bool = False
) -> list[Claimed]:
    """Take up to `limit` deliverable messages (only those of `ids` if given; `force`: due or not)."""
    until = now + LEASE
    ids = list(ids) if ids is not None else None
    if connection.vendor == "postgresql":
        claimed = _claim_pg(now, until, limit, ids, force)
    else:
        claimed = _claim_orm(now, until, limit, ids, force)
    _freeze_payloads([item for item in claimed if item.payload is None])
    return claimed


def _freeze_payloads(items: list[Claimed]) -> None:
    """Give each message written without its data (payloads.AT_FIRST_ATTEMPT) its payload, read
    now, once: stored with the claim's lease held, so every later attempt and replay sends the same
    bytes. An object deleted meanwhile is sent as its id with `deleted`."""
    if not items:
        return
    by_kind: dict[str, list[Claimed]] = {}
    for item in items:
        by_kind.setdefault(_KIND.get(item.event_type, ""), []).append(item)
    frozen = []
    for kind, group in by_kind.items():
        found = payloads.load_many(kind, [item.object_id for item in group])
        for item in group:
            data = found.get(item.object_id) or {"id": item.object_id, **payloads.GONE}
            item.payload = payloads.envelope(
                public_id=item.public_id, event_type=item.event_type, created=item.created_at, data=data
            )
            frozen.append(WebhookMessage(pk=item.pk, payload=item.payload))
    with transaction.atomic():
        _without_flush_wait()  # lost in a crash, the payload is read again at the next attempt
        WebhookMessage.objects.bulk_update(frozen, ["payload"])


# The kind of object of each event type whose data is read at the first attempt.
_KIND = {"conversion.created": "conversion", "commission.created": "commission"}


_M = WebhookMessage._meta.db_table
_E = WebhookEndpoint._meta.db_table
_CLAIM_SQL = f"""
UPDATE {_M} AS m
SET attempts = m.attempts + 1, claimed_until = %(until)s
FROM {_E} AS e
WHERE e.id = m.endpoint_id AND m.id IN (
    SELECT c.id FROM {_M} AS c JOIN {_E} AS ce ON ce.id = c.endpoint_id
    WHERE c.status = 'pending' AND ce.is_active {{due}} {{only}}
      AND (c.claimed_until IS NULL OR c.claimed_until <= %(now)s)
      AND NOT EXISTS (
          SELECT 1 FROM {_M} AS p
          WHERE p.endpoint_id = c.endpoint_id AND p.object_id = c.object_id
            AND p.status = 'pending' AND p.id < c.id
      )
    ORDER BY c.next_attempt_at, c.id
    LIMIT %(limit)s
    FOR NO KEY UPDATE OF c SKIP LOCKED
)
RETURNING m.id, m.public_id, m.object_id, m.payload, m.attempts, m.claimed_until, m.next_attempt_at,
    m.created_at, m.event_type, e.id, e.program_id, e.url, e.secret, e.previous_secret, e.previous_secret_expires_at,
    e.failing_since, e.is_active
"""


def _claim_pg(
    now: datetime, until: datetime, limit: int, ids: list[int] | None, force: bool
) -> list[Claimed]:
    # One statement: the rows are chosen and locked by the subquery (SKIP LOCKED: a row another
    # claim is taking is left to it; one it has taken and committed fails the re-check of its
    # lease), leased by the UPDATE, and returned with their endpoint (not locked: a conversion
    # writing a message for it holds FOR KEY SHARE on it, see _record_endpoints).
    sql = _CLAIM_SQL.format(
        due="" if force else "AND c.next_attempt_at <= %(now)s",
        only="" if ids is None else "AND c.id = ANY(%(ids)s)",
    )
    with transaction.atomic():
        _without_flush_wait()
        with connection.cursor() as cursor:
            cursor.execute(sql, {"now": now, "until": until, "limit": limit, "ids": ids})
            rows = cursor.fetchall()
    claimed = []
    for row in rows:
        # The message's columns in Claimed's order but for the endpoint (RETURNING above), then the
        # endpoint's.
        e = row[9:]
        endpoint = WebhookEndpoint(
            id=e[0],
            program_id=e[1],
            url=e[2],
            secret=e[3],
            previous_secret=e[4],
            previous_secret_expires_at=e[5],
            failing_since=e[6],
            is_active=e[7],
        )
        payload = row[3]
        if isinstance(payload, (str, bytes)):  # Django loads jsonb as text for JSONField to decode
            payload = json.loads(payload)
        claimed.append(Claimed(row[0], row[1], endpoint, row[2], payload, *row[4:9]))
    claimed.sort(key=lambda c: (c.next_attempt_at is not None, c.next_attempt_at, c.pk))
    return claimed


def _claim_orm(
    now: datetime, until: datetime, limit: int, ids: list[int] | None, force: bool
) -> list[Claimed]:
    # SQLite: the transaction is IMMEDIATE (settings), so nothing else writes between the read and
    # the update below.
    pending = WebhookMessage.Status.PENDING
    earlier = WebhookMessage.objects.filter(
        endpoint_id=OuterRef("endpoint_id"),
        object_id=OuterRef("object_id"),
        status=pending,
        pk__lt=OuterRef("pk"),
    )
    candidates = (
        WebhookMessage.objects.filter(status=pending, endpoint__is_active=True)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
        .filter(~Exists(earlier))
        .select_related("endpoint")
        .order_by("next_attempt_at", "pk")
    )
    if not force:
        candidates = candidates.filter(next_attempt_at__lte=now)
    if ids is not None:
        candidates = candidates.filter(pk__in=ids)
    with transaction.atomic():
        messages = list(candidates[:limit])
        WebhookMessage.objects.filter(pk__in=[m.pk for m in messages]).update(
            attempts=F("attempts") + 1, claimed_until=until
        )
    return [
        Claimed(
            m.pk,
            m.public_id,
            m.endpoint,
            m.object_id,
            m.payload,
            m.attempts + 1,
            until,
            m.next_attempt_at,
            m.created_at,
            m.event_type,
        )
        for m in messages
    ]


def _retry_at(attempts: int, at: datetime) -> datetime | None:
    """When a message that failed its `attempts`-th attempt at `at` is tried again (None: given up)."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return at + RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]


def send(batch: list[Claimed], *, clock: Callable[[], datetime] = timezone.now) -> list[Outcome]:
    """POST each claimed message, outside any transaction; see the module's step 2."""
    started = time.monotonic()
    outcomes: list[Outcome] = []
    down: dict[int, datetime] = {}  # endpoint id -> its messages wait until then
    with net.Client() as client:
        for item in batch:
            at = clock()
            if item.endpoint.pk in down:
                outcomes.append(Outcome(item, None, at, release_to=down[item.endpoint.pk]))
                continue
            if outcomes and time.monotonic() - started > BATCH_SECONDS:
                outcomes.append(Outcome(item, None, at))
                continue
            body = body_of_payload(item.payload)
            headers = signed_headers(endpoint=item.endpoint, message_id=item.public_id, body=body, now=at)
            answer = client.post(item.endpoint.url, body.encode(), headers)
            outcomes.append(Outcome(item, answer, at))
            if answer.status is None:
                down[item.endpoint.pk] = _retry_at(item.attempts, at) or at + RETRY_DELAYS[0]
    return outcomes


class Batch(NamedTuple):
    claimed: int
    again: bool  # more may be claimable now: a full batch, a message left over, or an object's next


def deliver_batch(*, now: datetime, limit: int = CLAIM_BATCH) -> Batch:
    """Claim, send and record one batch of due messages."""
    batch = claim(now=now, limit=limit)
    if not batch:
        return Batch(0, False)
    recorded = record(send(batch))
    return Batch(len(batch), len(batch) == limit or recorded.waiting)


def message_deliver(*, message_id: int, now: datetime, force: bool = False) -> int | None:
    """One attempt at one message (`force`: even if it is not due: replays). Returns the pk of the
    object's next message to send, if this one is done (delivered or given up) and another waits."""
    batch = claim(now=now, limit=1, ids=[message_id], force=force)
    if not batch:
        return None
    if not record(send(batch, clock=lambda: now)).finished:
        return None
    item = batch[0]
    return (
        WebhookMessage.objects.filter(
            endpoint_id=item.endpoint.pk,
            object_id=item.object_id,
            status=WebhookMessage.Status.PENDING,
            pk__gt=item.pk,
        )
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )


@dataclass
class _Change:
    pk: int
    status: str
    delivered_at: datetime | None
    next_attempt_at: datetime | None
    attempts: int
    lease: datetime
    leased_attempts: int
    endpoint_id: int
    object_id: str


def _change_of(outcome: Outcome) -> _Change:
    item = outcome.claimed
    if outcome.answer is None:  # not tried: the attempt is given back
        return _Change(
            item.pk,
            WebhookMessage.Status.PENDING,
            None,
            outcome.release_to or item.next_attempt_at,
            item.attempts - 1,
            item.claimed_until,
            item.attempts,
            item.endpoint.pk,
            item.object_id,
        )
    if _succeeded(outcome.answer):
        status, delivered_at, next_at = WebhookMessage.Status.DELIVERED, outcome.at, None
    else:
        next_at = _retry_at(item.attempts, outcome.at)
        status = WebhookMessage.Status.PENDING if next_at else WebhookMessage.Status.FAILED
        delivered_at = None
    return _Change(
        item.pk,
        status,
        delivered_at,
        next_at,
        item.attempts,
        item.claimed_until,
        item.attempts,
        item.endpoint.pk,
        item.object_id,
    )


def _succeeded(answer: net.Answer) -> bool:
    return answer.status is not None and 200 <= answer.status < 300


class Recorded(NamedTuple):
    finished: list[int]  # delivered or given up, while this batch still held them
    waiting: bool  # a finished message's object has a later pending message, or one was released


def record(outcomes: list[Outcome]) -> Recorded:
    """Write a batch's outcomes (see the module's step 3)."""
    changes = [_change_of(o) for o in outcomes]
    with transaction.atomic():
        _without_flush_wait()
        if connection.vendor == "postgresql":
            held, followed = _update_messages_pg(changes)
        else:
            held, followed = _update_messages_orm(changes)
        tried = [o for o in outcomes if o.answer is not None]
        lost = {o.claimed.pk for o in tried} - held
        if lost:  # another delivery took them over, or they were deleted with their endpoint
            lost -= set(WebhookMessage.objects.filter(pk__in=lost).values_list("pk", flat=True))
        WebhookDelivery.objects.bulk_create(
            [
                _delivery_row(o, change)
                for o, change in zip(outcomes, changes, strict=True)
                if o.answer is not None and o.claimed.pk not in lost
            ]
        )
        _record_endpoints(tried)
        for o, change in zip(outcomes, changes, strict=True):
            if change.status == WebhookMessage.Status.PENDING and o.answer is not None and change.pk in held:
                # The object's later messages wait for this one: the sweep need not look at them
                # before its retry.
                WebhookMessage.objects.filter(
                    endpoint_id=o.claimed.endpoint.pk,
                    object_id=o.claimed.object_id,
                    status=WebhookMessage.Status.PENDING,
                    pk__gt=change.pk,
                    next_attempt_at__lt=change.next_attempt_at,
                ).update(next_attempt_at=change.next_attempt_at)
            if change.status == WebhookMessage.Status.FAILED and change.pk in held:
                _give_up(o.claimed, o.at)
    finished = [c.pk for c in changes if c.pk in held and c.status != WebhookMessage.Status.PENDING]
    released = any(o.answer is None and o.release_to is None for o in outcomes)
    return Recorded(finished, released or bool(followed & set(finished)))


def _update_messages_pg(changes: list[_Change]) -> tuple[set[int], set[int]]:
    """(the pks still held and updated, those of them with a later pending message of their object)"""
    if not changes:
        return set(), set()
    values = ", ".join(
        [
            "(%s::bigint, %s::varchar, %s::timestamptz, %s::timestamptz, %s::integer, %s::timestamptz, %s::integer)"
        ]
        * len(changes)
    )
    params: list[Any] = []
    for c in changes:
        params += [
            c.pk,
            str(c.status),
            c.delivered_at,
            c.next_attempt_at,
            c.attempts,
            c.lease,
            c.leased_attempts,
        ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_M} AS m SET status = v.status, delivered_at = v.delivered_at,"
            " next_attempt_at = v.next_attempt_at, attempts = v.attempts, claimed_until = NULL"
            f" FROM (VALUES {values}) AS v(id, status, delivered_at, next_attempt_at, attempts, lease, leased)"
            " WHERE m.id = v.id AND m.claimed_until = v.lease AND m.attempts = v.leased"
            # Whether the object's next message is waiting for this one: the deliver_due loop goes
            # on for it rather than leave it to the sweep.
            f" RETURNING m.id, EXISTS (SELECT 1 FROM {_M} AS n WHERE n.endpoint_id = m.endpoint_id"
            " AND n.object_id = m.object_id AND n.status = 'pending' AND n.id > m.id)",
            params,
        )
        rows = cursor.fetchall()
    return {pk for pk, _ in rows}, {pk for pk, waiting in rows if waiting}


def _update_messages_orm(changes: list[_Change]) -> tuple[set[int], set[int]]:
    held, followed = set(), set()
    for c in changes:
        message = WebhookMessage.objects.filter(pk=c.pk, claimed_until=c.lease, attempts=c.leased_attempts)
        if message.update(
            status=c.status,
            delivered_at=c.delivered_at,
            next_attempt_at=c.next_attempt_at,
            attempts=c.attempts,
            claimed_until=None,
        ):
            held.add(c.pk)
            if c.status != WebhookMessage.Status.PENDING and (
                WebhookMessage.objects.filter(
                    endpoint_id=c.endpoint_id,
                    object_id=c.object_id,
                    status=WebhookMessage.Status.PENDING,
                    pk__gt=c.pk,
                ).exists()
            ):
                followed.add(c.pk)
    return held, followed


def _delivery_row(outcome: Outcome, change: _Change) -> WebhookDelivery:
    answer = outcome.answer
    assert answer is not None
    succeeded = _succeeded(answer)
    return WebhookDelivery(
        public_id=new_public_id("whd"),
        message_id=outcome.claimed.pk,
        endpoint_id=outcome.claimed.endpoint.pk,
        attempt=outcome.claimed.attempts,
        status=WebhookDelivery.Status.SUCCEEDED if succeeded else WebhookDelivery.Status.FAILED,
        response_code=answer.status,
        duration_ms=answer.duration_ms,
        response_body=answer.body[:STORED_BODY].decode("utf-8", "replace"),
        error=answer.error[:500],
        attempted_at=outcome.at,
        next_retry_at=None if succeeded else change.next_attempt_at,
    )


def _record_endpoints(tried: list[Outcome]) -> None:
    """`failing_since`: cleared by a success, set by the first failure after one.

    Plain UPDATEs of the endpoint row, which take FOR NO KEY UPDATE: a conversion writing a message
    for this endpoint takes FOR KEY SHARE on it (the foreign-key check at its commit), after its own
    key-share lock on the program. FOR UPDATE of the endpoint and, through a join, of the program
    deadlocked against it, and the conversion answered 500 (found by `make bench`'s webhooks
    section); FOR NO KEY UPDATE does not conflict with FOR KEY SHARE. Skipped when the endpoint as
    claimed already says so; a batch of another worker recording meanwhile is concurrent with this
    one, and either order is a true story."""
    by_endpoint: dict[int, list[Outcome]] = {}
    for o in tried:
        by_endpoint.setdefault(o.claimed.endpoint.pk, []).append(o)
    for endpoint_id, mine in by_endpoint.items():
        as_claimed = mine[0].claimed.endpoint.failing_since
        last_success = max((i for i, o in enumerate(mine) if _succeeded(o.answer)), default=None)
        if last_success == len(mine) - 1:
            if as_claimed is not None:
                WebhookEndpoint.objects.filter(pk=endpoint_id).update(failing_since=None)
            continue
        first_failure = mine[0 if last_success is None else last_success + 1].at
        if last_success is not None:
            WebhookEndpoint.objects.filter(pk=endpoint_id).update(failing_since=first_failure)
        elif as_claimed is None:
            WebhookEndpoint.objects.filter(pk=endpoint_id, failing_since__isnull=True).update(
                failing_since=first_failure
            )


def _give_up(item: Claimed, now: datetime) -> None:
    """The message's last attempt failed: disable an endpoint that has not succeeded since it was written."""
    endpoint = (
        WebhookEndpoint.objects.select_for_update(of=("self",), no_key=True)
        .select_related("program")
        .get(pk=item.endpoint.pk)
    )
    if (
        endpoint.is_active
        and endpoint.failing_since is not None
        and endpoint.failing_since <= item.created_at
    ):
        _disable(endpoint, now)


def _disable(endpoint: WebhookEndpoint, now: datetime) -> None:
    endpoint.is_active = False
    endpoint.disabled_reason = f"Disabled on {now:%Y-%m-%d %H:%M} UTC after failing for about three days."
    endpoint.save(update_fields=["is_active", "disabled_reason"])
    forget_program(endpoint.program_id)
    program = endpoint.program
    admins = list(
        ProgramStaff.objects.filter(program=program, role=ProgramStaff.Role.ADMIN, user__is_active=True)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )
    if admins:
        send_templated(
            "webhook_endpoint_disabled",
            to=admins,
            context={
                "program": program.name,
                "url": endpoint.url,
                "endpoint": endpoint.public_id,
                "panel_url": f"{settings.BASE_URL}/panel/p/{program.slug}/webhooks/{endpoint.public_id}/",
            },
        )
