"""A real Celery worker killed in the middle of a delivery: the message is sent again, once."""

import threading
import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from affiliates.services import affiliate_create
from tests.factories import ProgramFactory
from tests.refapp.worker import start_worker, stop_worker
from webhooks import delivery
from webhooks.models import WebhookDelivery, WebhookMessage
from webhooks.tasks import sweep_due_messages

from .helpers import make_endpoint


@pytest.mark.worker
def test_a_worker_killed_while_the_receiver_answers_is_followed_by_one_successful_delivery(
    transactional_db, receiver
):
    from refapp.celery import app

    program = ProgramFactory(slug="killed")
    endpoint = make_endpoint(program, receiver.url, events=["affiliate.created"])
    receiver.hold = threading.Event()
    app.control.purge()
    worker = start_worker(REFAPP_WEBHOOKS_ALLOW_PRIVATE="1")
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        affiliate_create(
            program=program,
            email="ann@x.example",
            name="Ann",
            code=None,
            status="active",
            group=None,
            actor=None,
        )  # committed: its message is queued to the worker
        assert receiver.arrived.wait(60), "the worker never delivered"
        worker.kill()  # mid-delivery: the receiver has the request, the worker records nothing
        worker.wait(20)
    finally:
        app.conf.task_always_eager = eager
        receiver.hold.set()
        output = stop_worker(worker)
    message = WebhookMessage.objects.get(endpoint=endpoint)
    assert message.status == "pending" and message.claimed_until is not None, output[-3000:]
    assert not WebhookDelivery.objects.exists()

    receiver.hold = None
    sweep_due_messages()  # the dead worker's lease still holds
    assert len(receiver.requests) == 1
    with time_machine.travel(timezone.now() + delivery.LEASE + timedelta(seconds=1)):
        sweep_due_messages()
        sweep_due_messages()
    deadline = time.monotonic() + 5
    while len(receiver.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    message.refresh_from_db()
    assert message.status == "delivered"
    assert list(WebhookDelivery.objects.values_list("status", flat=True)) == ["succeeded"]
    assert [h["webhook-id"] for h, _ in receiver.requests] == [message.public_id] * 2
