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
