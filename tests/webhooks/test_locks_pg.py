"""A delivery never waits on a conversion's locks (PostgreSQL).

A conversion that writes a message holds FOR KEY SHARE on the program and, at its commit, takes it
on the endpoint (the foreign-key checks). Recording a delivery used to lock both rows FOR UPDATE,
which conflicts with that: the two deadlocked under load and the conversion answered 500."""

import os
import threading

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from affiliates.services import affiliate_create
from webhooks import delivery
from webhooks.models import WebhookMessage

from .helpers import make_endpoint

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="row locks are PostgreSQL's"
    ),
]


class KeyShareHolder(threading.Thread):
    """Another connection holding FOR KEY SHARE on the program and the endpoint, as a conversion
    writing a message for it does until it commits."""

    def __init__(self, program_id: int, endpoint_id: int):
        super().__init__(daemon=True)
        self.ids = program_id, endpoint_id
        self.holding = threading.Event()
        self.release = threading.Event()

    def run(self):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM affiliates_program WHERE id = %s FOR KEY SHARE", [self.ids[0]])
                cursor.execute(
                    "SELECT 1 FROM webhooks_webhookendpoint WHERE id = %s FOR KEY SHARE", [self.ids[1]]
                )
                self.holding.set()
                self.release.wait(30)
        finally:
            connections.close_all()


def test_claiming_and_recording_a_delivery_do_not_wait_for_a_conversion(program, receiver):
    endpoint = make_endpoint(program, receiver.url, events=["affiliate.created"])
    affiliate_create(
        program=program,
        email="ann@partner.example",
        name="Ann",
        code=None,
        status="pending",
        group=None,
        actor=None,
    )
    message = WebhookMessage.objects.get(endpoint=endpoint)
    holder = KeyShareHolder(program.pk, endpoint.pk)
    holder.start()
    assert holder.holding.wait(10)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")  # a wait fails the test instead of hanging it
        delivery.message_deliver(message_id=message.pk, now=timezone.now())
    finally:
        holder.release.set()
        holder.join(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")
    message.refresh_from_db()
    assert message.status == "delivered" and len(receiver.requests) == 1


def test_a_batch_that_fails_gives_up_and_succeeds_does_not_wait_for_a_conversion(program, receiver):
    """The batch path's endpoint writes (failing_since, giving up) under the conversion's locks."""
    endpoint = make_endpoint(program, receiver.url, events=["affiliate.created"])
    now = timezone.now()
    first, last = (
        WebhookMessage.objects.create(
            endpoint=endpoint, event_type="affiliate.created", object_id=f"aff_{i}", payload={},
            next_attempt_at=now, created_at=now, attempts=attempts,
        )
        for i, attempts in ((1, 0), (2, delivery.MAX_ATTEMPTS - 1))
    )  # fmt: skip
    receiver.answers = [200, 500]  # the second is the last attempt of its message
    holder = KeyShareHolder(program.pk, endpoint.pk)
    holder.start()
    assert holder.holding.wait(10)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")
        assert delivery.deliver_batch(now=now).claimed == 2
    finally:
        holder.release.set()
        holder.join(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")
    first.refresh_from_db()
    last.refresh_from_db()
    endpoint.refresh_from_db()
    assert (first.status, last.status) == ("delivered", "failed")
    assert endpoint.failing_since is not None and endpoint.is_active  # it succeeded since `last` was written


def test_concurrent_claimers_never_take_the_same_message(program, receiver):
    endpoint = make_endpoint(program, receiver.url, events=["affiliate.created"])
    now = timezone.now()
    WebhookMessage.objects.bulk_create(
        WebhookMessage(
            public_id=f"msg_{i}_{n}", endpoint=endpoint, event_type="affiliate.created",
            object_id=f"aff_{i}", payload={}, next_attempt_at=now, created_at=now,
        )
        for n in range(2)  # two messages per object: only the first may be claimed
        for i in range(150)
    )  # fmt: skip
    firsts = set(WebhookMessage.objects.filter(public_id__endswith="_0").values_list("pk", flat=True))
    taken: list[list[int]] = [[] for _ in range(4)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(taken))

    def claimer(mine: list[int]) -> None:
        try:
            start.wait(10)
            while batch := delivery.claim(now=now, limit=7):
                mine.extend(c.pk for c in batch)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claimer, args=(mine,)) for mine in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    everything = [pk for mine in taken for pk in mine]
    assert len(everything) == len(set(everything))  # no message in two batches
    assert set(everything) == firsts
    assert set(WebhookMessage.objects.filter(attempts=1).values_list("pk", flat=True)) == firsts
    assert not WebhookMessage.objects.filter(attempts__gt=1).exists()
