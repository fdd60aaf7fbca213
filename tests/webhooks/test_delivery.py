"""Delivery: nothing for a rolled-back change, at least once after a killed worker, in order per
object, growing retries then giving up (and disabling a dead endpoint), rotation signatures."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from affiliates.models import ProgramStaff
from affiliates.services import affiliate_create, affiliate_set_status
from refapp.models import Actor
from webhooks import delivery
from webhooks.models import WebhookDelivery, WebhookMessage
from webhooks.services import endpoint_rotate_secret
from webhooks.tasks import deliver_message, sweep_due_messages

from .helpers import make_endpoint

pytestmark = pytest.mark.django_db


def _new_affiliate(program, email="ann@partner.example", status="pending"):
    return affiliate_create(
        program=program, email=email, name="Ann", code=None, status=status, group=None, actor=None
    )


def test_a_rolled_back_change_writes_no_message_and_sends_nothing(
    program, receiver, django_capture_on_commit_callbacks
):
    make_endpoint(program, receiver.url)
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        _new_affiliate(program)
        assert WebhookMessage.objects.count() == 1  # written with the change ...
        raise RuntimeError("the change fails after the service")
    assert WebhookMessage.objects.count() == 0  # ... and rolled back with it
    assert receiver.requests == []


def test_affiliate_events_are_written_in_the_transaction_and_sent_after_commit(
    program, receiver, django_capture_on_commit_callbacks
):
    make_endpoint(
        program, receiver.url, events=["affiliate.created", "affiliate.approved", "affiliate.status_changed"]
    )
    with django_capture_on_commit_callbacks(execute=True):
        ann = _new_affiliate(program)
    with django_capture_on_commit_callbacks(execute=True):
        affiliate_set_status(affiliate=ann, status="active")
    with django_capture_on_commit_callbacks(execute=True):
        affiliate_set_status(affiliate=ann, status="suspended", reason="spam")
    types = [WebhookMessage.objects.get(public_id=h["webhook-id"]).event_type for h, _ in receiver.requests]
    assert types == [
        "affiliate.created",
        "affiliate.approved",
        "affiliate.status_changed",
        "affiliate.status_changed",
    ]
    assert (
        WebhookMessage.objects.filter(event_type="affiliate.approved").get().payload["data"]["status"]
        == "active"
    )


def test_a_worker_killed_mid_delivery_is_followed_by_exactly_one_successful_delivery(program, receiver):
    """The worker claims the message (step 1) and dies before recording (step 3): the sweep leaves
    it alone while the lease holds, then sends it once. (A real worker would also have POSTed, so
    the receiver may see the webhook-id twice: at least once, deduped by the id.)"""
    endpoint = make_endpoint(program, receiver.url)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        _new_affiliate(program)  # no on_commit here: the queued task is lost as well
        message = WebhookMessage.objects.get(endpoint=endpoint)
        assert delivery._claim(message.pk, timezone.now(), force=False) is not None  # ... and dies
        sweep_due_messages()
        assert receiver.requests == []  # the lease still holds
        clock.shift(delivery.LEASE + timedelta(seconds=1))
        sweep_due_messages()
        sweep_due_messages()
    assert len(receiver.requests) == 1
    assert WebhookDelivery.objects.filter(status="succeeded").count() == 1
    message.refresh_from_db()
    assert message.status == "delivered"


def test_messages_of_one_object_go_out_in_order(program, receiver):
    endpoint = make_endpoint(program, receiver.url, events=["affiliate.created", "affiliate.status_changed"])
    receiver.answers = [500]
    with time_machine.travel(timezone.now(), tick=False) as clock:
        ann = _new_affiliate(program)
        affiliate_set_status(affiliate=ann, status="active")
        first, second = WebhookMessage.objects.filter(endpoint=endpoint).order_by("pk")
        deliver_message(first.pk)  # answered 500: retried in 5 s
        deliver_message(second.pk)  # must wait for the first
        assert len(receiver.requests) == 1
        clock.shift(timedelta(seconds=6))
        sweep_due_messages()  # the first goes, then the second behind it
    sent = [h["webhook-id"] for h, _ in receiver.requests]
    assert sent == [first.public_id, first.public_id, second.public_id]


def test_retries_grow_for_about_three_days_then_the_endpoint_is_disabled_and_admins_told(
    program, receiver, staff_user, django_capture_on_commit_callbacks
):
    assert ProgramStaff.objects.filter(user=staff_user, role="admin").exists()
    endpoint = make_endpoint(program, receiver.url)
    receiver.answers = [503] * 100
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        _new_affiliate(program)
        message = WebhookMessage.objects.get()
        waits = []
        for _ in range(delivery.MAX_ATTEMPTS):
            with django_capture_on_commit_callbacks(execute=True):
                deliver_message(message.pk)
            message.refresh_from_db()
            if message.next_attempt_at:
                waits.append(message.next_attempt_at - timezone.now())
                clock.move_to(message.next_attempt_at)
    assert waits == delivery.RETRY_DELAYS
    assert timedelta(days=2.5) < sum(waits, timedelta()) < timedelta(days=3.5)
    assert message.status == "failed" and len(receiver.requests) == delivery.MAX_ATTEMPTS
    endpoint.refresh_from_db()
    assert not endpoint.is_active and "three days" in endpoint.disabled_reason
    assert [m.to for m in mail.outbox] == [[staff_user.email]]
    assert endpoint.url in mail.outbox[0].body


def test_after_a_rotation_both_secrets_sign_for_a_day(program, receiver):
    endpoint = make_endpoint(program, receiver.url)
    old = endpoint.secret
    now = timezone.now()
    endpoint = endpoint_rotate_secret(endpoint=endpoint, actor=Actor.system(), now=now)
    headers = delivery.signed_headers(endpoint=endpoint, message_id="msg_1", body="{}", now=now)
    assert len(headers["webhook-signature"].split(" ")) == 2
    with time_machine.travel(now, tick=False):
        assert Webhook(old).verify("{}", headers) == {}
        assert Webhook(endpoint.secret).verify("{}", headers) == {}
    later = delivery.signed_headers(
        endpoint=endpoint, message_id="msg_1", body="{}", now=now + timedelta(hours=25)
    )
    assert len(later["webhook-signature"].split(" ")) == 1


def test_a_url_that_turned_private_is_refused_at_delivery(program, receiver, settings):
    endpoint = make_endpoint(program, receiver.url)
    settings.REFAPP_WEBHOOKS_ALLOW_PRIVATE = False  # as if the name now resolved to a private address
    _new_affiliate(program)
    deliver_message(WebhookMessage.objects.get(endpoint=endpoint).pk)
    attempt = WebhookDelivery.objects.get()
    assert attempt.status == "failed" and attempt.response_code is None and "private" in attempt.error
    assert receiver.requests == []


def test_a_program_without_endpoints_is_checked_once_from_the_cache(program, django_assert_num_queries):
    from webhooks.watch import program_watched

    assert program_watched(program.pk) is False
    with django_assert_num_queries(0):
        assert program_watched(program.pk) is False
